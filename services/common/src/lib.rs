//! Helpers shared by the terse gRPC services.

mod codec_host;
mod hosting;
mod rpc;
mod tensors;

pub use codec_host::CodecHost;
pub use hosting::{Host, HostedService};
pub use tensors::{datatype_from_proto, datatype_to_proto, tensor_from_proto, tensor_to_proto};
pub use terse_core::{ECHO_CHARS, echo};
/// The tonic crate the [`rpcs!`] expansion names.
pub use tonic;

/// What a service's transport code uses: `use terse_service_common::prelude::*;`.
pub mod prelude {
    pub use crate::{
        CodecHost, Download, Host, HostedService, MemoryBudget, Reservation, collect_chunks,
        declared_fields, decode_in_call, download, download_then, encode_in_call, model_ref, rpcs,
        run_blocking, status_of, tensor_to_proto,
    };
    pub use tonic::{Status, Streaming, service::RoutesBuilder};
}

use terse_core::{BoxFuture, Classify, ErrorKind, Job, Worker, on_worker};
use tonic::Status;

use std::{
    any::Any,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

/// What a call shares with the blocking work it starts: a token that keeps the call's
/// concurrency permit taken until the work ends (so work abandoned at a deadline or by a
/// cancelled client still counts against `server.max_concurrent_requests`, and memory stays
/// bounded by the limit: issue 18, finding 3), and a flag that says the call has ended.
#[derive(Clone, Default)]
pub struct CallScope {
    /// Kept alive (never read) while the call or any of its blocking work runs: the call's
    /// concurrency permit, and what it reserved while it ran (its working memory).
    held: Arc<std::sync::Mutex<Vec<Box<dyn Any + Send>>>>,
    ended: Arc<AtomicBool>,
}

impl CallScope {
    /// A scope keeping `hold` (e.g. the call's semaphore permit) alive while any of its work
    /// runs.
    pub fn new(hold: Arc<dyn Any + Send + Sync>) -> Self {
        let scope = Self::default();
        scope.keep(Box::new(hold));
        scope
    }

    /// Keeps `value` alive until the call and all its blocking work have ended.
    fn keep(&self, value: Box<dyn Any + Send>) {
        self.held
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(value);
    }

    /// Marks the call as ended: work that checks [`call_ended`] stops early.
    pub fn end(&self) {
        self.ended.store(true, Ordering::Relaxed);
    }

    /// Runs `future` (the call) inside this scope, so [`run_blocking`] finds it.
    pub async fn run<F: std::future::Future>(self, future: F) -> F::Output {
        CALL.scope(self, future).await
    }
}

tokio::task_local! {
    static CALL: CallScope;
}

/// Working memory shared by the calls of one server (issue 18, finding 4). Each call that can
/// allocate in proportion to its input reserves its estimate (see [`MemoryBudget::reserve`])
/// before the work starts; the reservation lasts until the call and all its blocking work have
/// ended, so no request can buy more than the budget, and all calls together stay within it.
#[derive(Clone)]
pub struct MemoryBudget {
    mebibytes: Arc<tokio::sync::Semaphore>,
    total_mebibytes: u32,
}

impl MemoryBudget {
    /// A budget of `bytes` (rounded down to whole MiB, at most 4 PiB).
    pub fn new(bytes: u64) -> Self {
        let total = u32::try_from(bytes >> 20)
            .unwrap_or(u32::MAX)
            .min(tokio::sync::Semaphore::MAX_PERMITS as u32);
        Self {
            mebibytes: Arc::new(tokio::sync::Semaphore::new(total as usize)),
            total_mebibytes: total,
        }
    }

    /// MiB not reserved at the moment.
    pub fn available_mebibytes(&self) -> usize {
        self.mebibytes.available_permits()
    }

    /// Reserves `bytes` of working memory for the current call, held until the call and its
    /// blocking work have ended (outside a call: until the returned guard drops). Refused with
    /// RESOURCE_EXHAUSTED when the request alone needs more than the whole budget (it can
    /// never run here), or when calls in flight hold too much of it right now (try again).
    /// `what` describes the request in the message (e.g. `MLIC decode of 4096x4096 pixels`).
    pub fn reserve(&self, bytes: u64, what: &str) -> Result<Reservation, Status> {
        let needed = bytes.div_ceil(1 << 20).max(1);
        if needed > u64::from(self.total_mebibytes) {
            return Err(Status::resource_exhausted(format!(
                "{what} needs about {needed} MiB of working memory, more than this server's \
                 budget of {} MiB (server.max_work_memory_bytes)",
                self.total_mebibytes
            )));
        }
        let permit = Arc::clone(&self.mebibytes)
            .try_acquire_many_owned(needed as u32)
            .map_err(|_| {
                Status::resource_exhausted(format!(
                    "{what} needs about {needed} MiB of working memory; calls in flight hold \
                     all but {} MiB of the server's {} MiB: try again later",
                    self.mebibytes.available_permits(),
                    self.total_mebibytes
                ))
            })?;
        let permit = Arc::new(permit);
        let _ = CALL.try_with(|scope| scope.keep(Box::new(Arc::clone(&permit))));
        Ok(Reservation { _permit: permit })
    }
}

impl std::fmt::Debug for MemoryBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBudget")
            .field("total_mebibytes", &self.total_mebibytes)
            .field("available_mebibytes", &self.available_mebibytes())
            .finish()
    }
}

/// The `u64` header fields `keys` of a terse bitstream, for estimating a request's cost
/// before its work (`None` when the container or a field is unreadable: decoding then refuses
/// it with the precise reason).
pub fn declared_fields<const N: usize>(bitstream: &[u8], keys: [&str; N]) -> Option<[u64; N]> {
    let header = terse_entropy::Header::read(bitstream).ok()?;
    let mut values = [0; N];
    for (value, key) in values.iter_mut().zip(keys) {
        *value = header.u64(key).ok()?;
    }
    Some(values)
}

/// A working-memory reservation (see [`MemoryBudget::reserve`]); inside a call the call's
/// scope holds it too, so dropping this guard early releases nothing.
#[must_use = "outside a call the reservation ends when this guard drops"]
pub struct Reservation {
    _permit: Arc<tokio::sync::OwnedSemaphorePermit>,
}

/// In blocking work started by [`run_blocking`]: whether its call has already ended (deadline,
/// client cancellation, shutdown), so long work can stop between stages. The codecs check the
/// same flag through [`terse_entropy::interrupt`].
pub fn call_ended() -> bool {
    terse_entropy::interrupt::is_interrupted()
}

/// Runs blocking work on the blocking pool for the call it was made in: the work sees the
/// call's ended flag (through [`terse_entropy::interrupt`], which the codecs check between
/// stages) and holds the call's permit and reservations until it returns, even if the call
/// itself ended first. Work of a call that has already ended does not start (CANCELLED); a
/// panic in the work becomes INTERNAL instead of taking the connection down.
#[derive(Clone)]
pub struct CallWorker {
    scope: Option<CallScope>,
}

impl CallWorker {
    /// The worker of the current call (outside a [`CallScope`]: plain blocking work).
    pub fn current() -> Self {
        Self {
            scope: CALL.try_with(CallScope::clone).ok(),
        }
    }
}

impl Worker for CallWorker {
    fn run(&self, job: Job) -> BoxFuture<'static, Result<(), terse_core::Error>> {
        let scope = self.scope.clone();
        Box::pin(async move {
            let ran = tokio::task::spawn_blocking(move || {
                let ended = scope.as_ref().map(|s| Arc::clone(&s.ended));
                let ran =
                    terse_entropy::interrupt::run_with_flag(ended.unwrap_or_default(), || {
                        if call_ended() {
                            return false;
                        }
                        job();
                        true
                    });
                drop(scope);
                ran
            })
            .await
            .map_err(|e| terse_core::Error::internal(format!("worker failed: {e}")))?;
            if ran {
                Ok(())
            } else {
                Err(terse_core::Error::new(
                    ErrorKind::Cancelled,
                    "the call ended before its work started",
                ))
            }
        })
    }
}

/// Runs CPU-bound request work on the call's [`CallWorker`], so it never stalls the async
/// runtime.
pub async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Status> + Send + 'static,
) -> Result<T, Status> {
    on_worker(&CallWorker::current(), work)
        .await
        .map_err(|e| status_of(&e))?
}

/// Encodes `media` with `codec` on the call's worker.
pub async fn encode_in_call<M: Send + Sync + 'static, K: Default + Send + Sync + 'static>(
    codec: &terse_codec::DynCodec<M, K>,
    media: Arc<M>,
    options: terse_codec::EncodeOptions<K>,
) -> Result<terse_codec::Encoding<M>, Status> {
    let worker = CallWorker::current();
    let call = terse_codec::EncodeCall::new(media, options, &worker);
    codec.encode(call).await.map_err(|e| status_of(&e))
}

/// Decodes `bitstream` with `codec` on the call's worker, refusing media over `max_units`.
pub async fn decode_in_call<M: Send + Sync + 'static, K: Default + Send + Sync + 'static>(
    codec: &terse_codec::DynCodec<M, K>,
    bitstream: Vec<u8>,
    max_units: u64,
) -> Result<M, Status> {
    let worker = CallWorker::current();
    let call = terse_codec::DecodeCall::new(bitstream, max_units, &worker);
    codec.decode(call).await.map_err(|e| status_of(&e))
}

/// The gRPC status of a classified error: the one mapping from [`ErrorKind`] to a status code.
pub fn status_of(error: &(impl Classify + ?Sized)) -> Status {
    let message = error.to_string();
    match error.kind() {
        ErrorKind::InvalidInput => Status::invalid_argument(message),
        ErrorKind::TooLarge => Status::resource_exhausted(message),
        ErrorKind::NotFound => Status::not_found(message),
        ErrorKind::Unavailable => Status::failed_precondition(message),
        ErrorKind::Cancelled => Status::cancelled(message),
        ErrorKind::Internal => Status::internal(message),
    }
}

#[cfg(test)]
mod scope_tests {
    use super::*;

    /// Runs a call in `scope` that first calls `prepare` (holding what it returns) and then
    /// starts blocking work that waits to be released; abandons the call (as a deadline does)
    /// once the work runs, and returns the work's release.
    async fn abandon_while_working(
        scope: CallScope,
        prepare: impl FnOnce() -> Result<Box<dyn Any + Send>, Status> + Send + 'static,
    ) -> std::sync::mpsc::Sender<()> {
        let (started, wait) = std::sync::mpsc::channel::<()>();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let call = scope.run(async move {
            let _held = prepare()?;
            run_blocking(move || {
                started.send(()).unwrap();
                released.recv().unwrap();
                Ok(())
            })
            .await
        });
        let handle = tokio::spawn(call);
        tokio::task::spawn_blocking(move || wait.recv().unwrap())
            .await
            .unwrap();
        handle.abort();
        release
    }

    /// Whether `done` holds within a second.
    async fn eventually(done: impl Fn() -> bool) -> bool {
        for _ in 0..200 {
            if done() {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        done()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn blocking_work_holds_the_scope_and_sees_the_end_of_its_call() {
        let permit: Arc<dyn Any + Send + Sync> = Arc::new(());
        let weak = Arc::downgrade(&permit);
        let scope = CallScope::new(permit);
        let ended = scope.clone();
        let release = abandon_while_working(scope, || Ok(Box::new(()))).await;
        ended.end();
        drop(ended);
        assert!(
            weak.upgrade().is_some(),
            "the permit is held while the work runs"
        );
        release.send(()).unwrap();
        assert!(
            eventually(|| weak.upgrade().is_none()).await,
            "the permit is released when the work ends"
        );
        assert!(!call_ended(), "outside blocking work nothing has ended");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn memory_reservations_last_as_long_as_the_work_of_their_call() {
        let budget = MemoryBudget::new(100 << 20);
        let too_big = budget.reserve(101 << 20, "a huge request").err().unwrap();
        assert_eq!(too_big.code(), tonic::Code::ResourceExhausted);
        assert!(
            too_big
                .message()
                .contains("more than this server's budget of 100 MiB")
        );
        let in_call = budget.clone();
        let release = abandon_while_working(CallScope::new(Arc::new(())), move || {
            Ok(Box::new(in_call.reserve(60 << 20, "a request")?))
        })
        .await;
        // The call was abandoned; its blocking work still holds the 60 MiB.
        assert_eq!(budget.available_mebibytes(), 40);
        let busy = budget.reserve(50 << 20, "another request").err().unwrap();
        assert!(
            busy.message().contains("try again later"),
            "{}",
            busy.message()
        );
        release.send(()).unwrap();
        assert!(
            eventually(|| budget.available_mebibytes() == 100).await,
            "released when the work ends"
        );
        assert!(budget.reserve(50 << 20, "another request").is_ok());
    }
}

use terse_proto::common::v1::Chunk;
use tonic::Streaming;

/// Bytes per message of streamed downloads.
pub const DOWNLOAD_CHUNK_BYTES: usize = 1 << 20;

/// One message of a chunked upload, as a service's request type splits into.
pub enum UploadPart<O> {
    /// The options (must come first, once).
    Options(O),
    /// A piece of the file.
    Chunk(Chunk),
    /// Neither (an empty oneof).
    Empty,
}

/// A streamed-upload request message (`oneof part { Options options; Chunk chunk; }`).
pub trait UploadMessage {
    /// The options type of the first message.
    type Options;
    /// Which part the message carries.
    fn into_part(self) -> UploadPart<Self::Options>;
}

/// Implements [`UploadMessage`] for a generated `EncodeStreamRequest`: the message type, the
/// module holding its `Part` oneof, and the options type.
macro_rules! upload_message {
    ($message:ty, $oneof:path, $options:ty) => {
        impl $crate::UploadMessage for $message {
            type Options = $options;
            fn into_part(self) -> $crate::UploadPart<$options> {
                use $oneof as oneof;
                match self.part {
                    Some(oneof::Part::Options(o)) => $crate::UploadPart::Options(o),
                    Some(oneof::Part::Chunk(c)) => $crate::UploadPart::Chunk(c),
                    None => $crate::UploadPart::Empty,
                }
            }
        }
    };
}

upload_message!(
    terse_proto::splat::v1::EncodeStreamRequest,
    terse_proto::splat::v1::encode_stream_request,
    terse_proto::splat::v1::EncodeOptions
);
upload_message!(
    terse_proto::image::v1::EncodeStreamRequest,
    terse_proto::image::v1::encode_stream_request,
    terse_proto::image::v1::EncodeOptions
);
upload_message!(
    terse_proto::tensor::v1::EncodeStreamRequest,
    terse_proto::tensor::v1::encode_stream_request,
    terse_proto::tensor::v1::EncodeOptions
);
upload_message!(
    terse_proto::audio::v1::EncodeStreamRequest,
    terse_proto::audio::v1::encode_stream_request,
    terse_proto::audio::v1::EncodeOptions
);

/// Collects a chunked upload: options first, then chunks whose offsets must follow each other,
/// at most `max_bytes` in all. `what` names the payload in errors.
pub async fn collect_upload<M: UploadMessage>(
    stream: &mut Streaming<M>,
    max_bytes: usize,
    what: &str,
) -> Result<(M::Options, Vec<u8>), Status> {
    let options = match stream.message().await?.map(M::into_part) {
        Some(UploadPart::Options(o)) => o,
        Some(_) => {
            return Err(Status::invalid_argument(
                "the first stream message must carry the options",
            ));
        }
        None => return Err(Status::invalid_argument("the stream carried no messages")),
    };
    let data = collect_chunks(stream, max_bytes, what, |message| {
        match message.into_part() {
            UploadPart::Chunk(c) => Ok(c),
            UploadPart::Options(_) => Err(Status::invalid_argument(
                "options may only be sent once, in the first message",
            )),
            UploadPart::Empty => Err(Status::invalid_argument(
                "a stream message carries neither options nor a chunk",
            )),
        }
    })
    .await?;
    if data.is_empty() {
        return Err(Status::invalid_argument(format!(
            "the stream carried options but no {what} bytes"
        )));
    }
    Ok((options, data))
}

/// Collects the rest of a chunked upload: each message's chunk (`chunk_of` refuses a message
/// that carries none), the offsets following each other, at most `max_bytes` in all. `what`
/// names the payload in errors.
pub async fn collect_chunks<M>(
    stream: &mut Streaming<M>,
    max_bytes: usize,
    what: &str,
    chunk_of: impl Fn(M) -> Result<Chunk, Status>,
) -> Result<Vec<u8>, Status> {
    let mut data = Vec::new();
    while let Some(message) = stream.message().await? {
        let chunk = chunk_of(message)?;
        if chunk.offset != data.len() as u64 {
            return Err(Status::invalid_argument(format!(
                "chunk offset {} does not follow the {} bytes received (lost or reordered chunk)",
                chunk.offset,
                data.len()
            )));
        }
        if data.len() + chunk.data.len() > max_bytes {
            return Err(Status::resource_exhausted(format!(
                "streamed {what} exceeds the limit of {max_bytes} bytes"
            )));
        }
        data.extend_from_slice(&chunk.data);
    }
    Ok(data)
}

/// The message stream of a download (a `DecodeStream` answer).
pub type Download<T> =
    std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<T, Status>> + Send>>;

/// A download as offset-stamped chunks of [`DOWNLOAD_CHUNK_BYTES`], one message each (`make`
/// wraps a chunk in the service's message).
pub fn download<T: Send + 'static>(bytes: &[u8], make: impl Fn(Chunk) -> T) -> Download<T> {
    download_then(bytes, make, None)
}

/// [`download`], then `last` as the closing message (an encode's result after its bitstream).
pub fn download_then<T: Send + 'static>(
    bytes: &[u8],
    make: impl Fn(Chunk) -> T,
    last: Option<T>,
) -> Download<T> {
    let messages: Vec<Result<T, Status>> = bytes
        .chunks(DOWNLOAD_CHUNK_BYTES)
        .enumerate()
        .map(|(i, data)| {
            Ok(make(Chunk {
                data: data.to_vec(),
                offset: (i * DOWNLOAD_CHUNK_BYTES) as u64,
            }))
        })
        .chain(last.map(Ok))
        .collect();
    Box::pin(tokio_stream::iter(messages))
}

/// A float option of a request: `default` when unset, else the value when it is finite and
/// inside `range`; INVALID_ARGUMENT naming the option otherwise, so NaN, infinities and
/// out-of-range values never reach the work (issue 18, finding 7).
pub fn float_option<F: Copy + PartialOrd + std::fmt::Display + Into<f64>>(
    name: &str,
    value: Option<F>,
    default: F,
    range: std::ops::RangeInclusive<F>,
) -> Result<F, Status> {
    match value {
        None => Ok(default),
        Some(v) if v.into().is_finite() && range.contains(&v) => Ok(v),
        Some(v) => Err(Status::invalid_argument(format!(
            "{name} {v} is outside {}..={}",
            range.start(),
            range.end()
        ))),
    }
}

#[cfg(test)]
mod float_option_tests {
    use super::*;

    #[test]
    fn unset_takes_the_default_and_bad_values_are_named() {
        assert_eq!(float_option("alpha", None, 0.5, 0.0..=1.0).unwrap(), 0.5);
        assert_eq!(
            float_option("alpha", Some(1.0), 0.5, 0.0..=1.0).unwrap(),
            1.0
        );
        for bad in [f32::NAN, f32::INFINITY, -2.0, 1.5] {
            let e = float_option("alpha", Some(bad), 0.5, 0.0..=1.0).unwrap_err();
            assert_eq!(e.code(), tonic::Code::InvalidArgument);
            assert!(e.message().starts_with("alpha "), "{}", e.message());
        }
    }
}

/// The service that decodes bitstreams of `codec`.
fn service_of(codec: terse_entropy::CodecId) -> &'static str {
    use terse_entropy::CodecId;
    match codec {
        CodecId::Splat => "compress.splat.v1.SplatService",
        CodecId::WallocImage | CodecId::MlicImage => "compress.image.v1.ImageService",
        CodecId::WallocAudio => "compress.audio.v1.AudioService",
        CodecId::Tensor => "compress.tensor.v1.TensorService",
        CodecId::KvCache => "compress.tensor.v1.TensorService (DecodeKvCache)",
        CodecId::Test => "no service (a test payload)",
    }
}

/// Refuses a well-formed container of a codec this service does not decode with
/// FAILED_PRECONDITION naming the service that does (issue 18, finding 13: it used to be
/// NOT_FOUND "which this server does not host"). Anything that is not a container is left to
/// the service's own parser, which says what is wrong with it. Only the container's prelude is
/// read (the decoder validates the rest); returns the codec it names, so the caller can
/// dispatch on it.
pub fn expect_codec_family(
    bitstream: &[u8],
    accepted: &[terse_entropy::CodecId],
) -> Result<Option<terse_entropy::CodecId>, Status> {
    match terse_entropy::Container::peek_codec(bitstream) {
        Some(codec) if !accepted.contains(&codec) => Err(Status::failed_precondition(format!(
            "this is a {codec:?} bitstream: {} decodes it",
            service_of(codec)
        ))),
        codec => Ok(codec),
    }
}

/// Refuses `what` of `len` bytes over `max` bytes with RESOURCE_EXHAUSTED, before any work.
pub fn check_bytes(len: usize, max: usize, what: &str) -> Result<(), Status> {
    if len > max {
        return Err(Status::resource_exhausted(format!(
            "{what} of {len} bytes exceeds the limit of {max} bytes"
        )));
    }
    Ok(())
}

/// The API's name of the model a codec runs.
pub fn model_ref(model: &terse_codec::ModelRef) -> terse_proto::common::v1::ModelRef {
    terse_proto::common::v1::ModelRef {
        name: model.name.clone(),
        version: model.version.clone(),
    }
}
