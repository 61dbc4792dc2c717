//! Rust SDK for the terse compression services.
//!
//! [`Client`] wraps one HTTP/2 channel and hands out the tonic clients generated from
//! `proto/` (re-exported as [`proto`]), plus typed helpers for the common calls. Every call
//! gets the configured deadline, the bearer token (when set) and retries on `UNAVAILABLE`
//! with exponential back-off; large uploads switch to the streaming methods by themselves.
//!
//! ```no_run
//! # async fn demo() -> Result<(), terse_client::Error> {
//! use terse_client::{Client, proto::image::v1::{EncodeOptions, ImageFormat}};
//!
//! let client = Client::builder("http://127.0.0.1:50051")
//!     .timeout(std::time::Duration::from_secs(30))
//!     .connect()
//!     .await?;
//! let png = std::fs::read("photo.png")?;
//! let encoded = client
//!     .encode_image(&png, EncodeOptions { measure_quality: true, ..Default::default() })
//!     .await?;
//! let decoded = client.decode_image(&encoded.bitstream, ImageFormat::Png).await?;
//! # let _ = decoded;
//! # Ok(())
//! # }
//! ```

pub mod tensor;
mod vision;

use std::{future::Future, time::Duration};

pub use terse_proto as proto;
pub use tonic::{Code, Status};
pub use vision::{PrunedImage, TokenInputs, keep_count, keep_ratio};

use terse_proto::{
    audio::v1::{self as audio, audio_service_client::AudioServiceClient},
    common::v1::Chunk,
    context::v1::{self as context, context_service_client::ContextServiceClient},
    image::v1::{self as image, image_service_client::ImageServiceClient},
    models::v1::model_repository_service_client::ModelRepositoryServiceClient,
    splat::v1::{self as splat, splat_service_client::SplatServiceClient},
    tensor::v1::{self as weights, tensor_service_client::TensorServiceClient},
    vision::v1::vision_service_client::VisionServiceClient,
};
use tonic::{
    Request,
    metadata::{AsciiMetadataValue, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Certificate, ClientTlsConfig, Endpoint, Identity},
};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// Whether a failed call may be sent again: the server was unavailable, or the connection
/// broke under the call (a killed replica: `Unknown` with a transport error, or an I/O error
/// such as a reset while the response body was read, somewhere in its sources). Retrying the
/// second kind is safe because every call of this API is a pure function of its request.
fn retryable(status: &Status) -> bool {
    status.code() == Code::Unavailable
        || std::iter::successors(std::error::Error::source(status), |e| e.source())
            .any(|e| e.is::<tonic::transport::Error>() || e.is::<std::io::Error>())
}

/// Longest wait between two retries.
pub const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Everything a call through this SDK can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with a gRPC status (after retries, for `UNAVAILABLE`).
    #[error("{:?}: {}", .0.code(), .0.message())]
    Status(Status),
    /// The channel could not be set up or connected.
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// A client-side option was invalid (address, token).
    #[error("invalid option: {0}")]
    Option(String),
    /// A tensor in a response did not match its declared type or shape.
    #[error("tensor: {0}")]
    Tensor(String),
    /// Reading a local file failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

impl From<Status> for Error {
    fn from(status: Status) -> Self {
        Error::Status(status)
    }
}

impl Error {
    /// The gRPC status code, when the server answered with one.
    pub fn code(&self) -> Option<Code> {
        match self {
            Error::Status(status) => Some(status.code()),
            _ => None,
        }
    }
}

/// Adds `authorization: Bearer <token>` to every call when a token is configured.
#[derive(Clone, Default)]
pub struct BearerToken(Option<AsciiMetadataValue>);

impl Interceptor for BearerToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// The channel every generated client of this SDK runs on.
pub type Channel = InterceptedService<tonic::transport::Channel, BearerToken>;

/// Options of a [`Client`]; start with [`Client::builder`].
#[derive(Clone, Debug)]
pub struct ClientBuilder {
    address: String,
    replicas: Vec<String>,
    timeout: Option<Duration>,
    connect_timeout: Duration,
    retries: u32,
    backoff: Duration,
    token: Option<String>,
    tls: Option<ClientTlsConfig>,
    max_message_bytes: usize,
    chunk_bytes: usize,
}

impl ClientBuilder {
    /// Deadline of every call (sent as `grpc-timeout`; the server enforces it too).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// More addresses of the same service (replicas): calls are spread over every address
    /// that is up, client-side (power of two choices), and a replica that goes away is skipped
    /// by the retries. The channel then connects lazily.
    pub fn replicas<S: Into<String>>(mut self, addresses: impl IntoIterator<Item = S>) -> Self {
        self.replicas.extend(addresses.into_iter().map(Into::into));
        self
    }

    /// How long connecting may take (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Retries after `UNAVAILABLE` or a broken connection (default 3), waiting `backoff`, then twice as long each time
    /// up to [`MAX_BACKOFF`] (default 100 ms). Other codes are returned at once: they would fail
    /// again. Every call of this API is a pure function of its request, so a retry after a lost
    /// connection is safe.
    pub fn retries(mut self, retries: u32, backoff: Duration) -> Self {
        self.retries = retries;
        self.backoff = backoff;
        self
    }

    /// Bearer token sent as `authorization: Bearer <token>` on every call.
    pub fn auth_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// TLS with the system's root certificates (the address should use `https://`).
    pub fn tls(mut self) -> Self {
        self.tls = Some(self.tls.take().unwrap_or_default().with_native_roots());
        self
    }

    /// TLS trusting `ca_pem` (PEM), for private CAs; `domain` overrides the name checked
    /// against the server certificate.
    pub fn tls_ca(mut self, ca_pem: impl AsRef<[u8]>, domain: Option<&str>) -> Self {
        let mut tls = self
            .tls
            .take()
            .unwrap_or_default()
            .ca_certificate(Certificate::from_pem(ca_pem));
        if let Some(domain) = domain {
            tls = tls.domain_name(domain);
        }
        self.tls = Some(tls);
        self
    }

    /// Client certificate and key (PEM) for mutual TLS.
    pub fn tls_identity(mut self, cert_pem: impl AsRef<[u8]>, key_pem: impl AsRef<[u8]>) -> Self {
        self.tls = Some(
            self.tls
                .take()
                .unwrap_or_default()
                .identity(Identity::from_pem(cert_pem, key_pem)),
        );
        self
    }

    /// Largest message either way (default 256 MiB; the server has its own limits).
    pub fn max_message_bytes(mut self, bytes: usize) -> Self {
        self.max_message_bytes = bytes;
        self
    }

    /// Uploads larger than this go through the streaming methods in chunks of this size
    /// (default 1 MiB).
    pub fn chunk_bytes(mut self, bytes: usize) -> Self {
        self.chunk_bytes = bytes.max(1);
        self
    }

    fn endpoint(&self, address: &str) -> Result<Endpoint, Error> {
        let url = if address.contains("://") {
            address.to_string()
        } else if self.tls.is_some() {
            format!("https://{address}")
        } else {
            format!("http://{address}")
        };
        let mut endpoint = Endpoint::from_shared(url)
            .map_err(|e| Error::Option(format!("address `{address}`: {e}")))?
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_while_idle(true);
        if let Some(tls) = &self.tls {
            endpoint = endpoint.tls_config(tls.clone())?;
        }
        Ok(endpoint)
    }

    fn finish(self, channel: tonic::transport::Channel) -> Result<Client, Error> {
        let token = match &self.token {
            Some(token) => Some(
                MetadataValue::try_from(format!("Bearer {token}"))
                    .map_err(|_| Error::Option("auth token has non-ASCII characters".into()))?,
            ),
            None => None,
        };
        Ok(Client {
            channel: InterceptedService::new(channel, BearerToken(token)),
            timeout: self.timeout,
            retries: self.retries,
            backoff: self.backoff,
            max_message_bytes: self.max_message_bytes,
            chunk_bytes: self.chunk_bytes,
        })
    }

    /// Connects now (fails fast when the server is not there); with [`Self::replicas`],
    /// connects lazily.
    pub async fn connect(self) -> Result<Client, Error> {
        if !self.replicas.is_empty() {
            return self.connect_lazy();
        }
        let channel = self.endpoint(&self.address)?.connect().await?;
        self.finish(channel)
    }

    /// Connects on first use (and reconnects after failures), for clients made before the
    /// server is up.
    pub fn connect_lazy(self) -> Result<Client, Error> {
        let channel = if self.replicas.is_empty() {
            self.endpoint(&self.address)?.connect_lazy()
        } else {
            let endpoints = std::iter::once(&self.address)
                .chain(&self.replicas)
                .map(|address| self.endpoint(address))
                .collect::<Result<Vec<_>, _>>()?;
            tonic::transport::Channel::balance_list(endpoints.into_iter())
        };
        self.finish(channel)
    }
}

/// A connection to a terse server. Cheap to clone; clones share the channel.
#[derive(Clone)]
pub struct Client {
    channel: Channel,
    timeout: Option<Duration>,
    retries: u32,
    backoff: Duration,
    max_message_bytes: usize,
    chunk_bytes: usize,
}

/// Applies the SDK's message-size limits to a generated client.
macro_rules! sized {
    ($client:ty, $self:ident) => {
        <$client>::new($self.channel.clone())
            .max_decoding_message_size($self.max_message_bytes)
            .max_encoding_message_size($self.max_message_bytes)
    };
}

/// One message of a streamed download (`DecodeStream`): header fields and a chunk of the file.
trait DownloadPart {
    /// Takes the chunk this message carries.
    fn take_chunk(&mut self) -> Option<Chunk>;
}

macro_rules! download_part {
    ($($message:ty),*) => {$(
        impl DownloadPart for $message {
            fn take_chunk(&mut self) -> Option<Chunk> {
                self.chunk.take()
            }
        }
    )*};
}
download_part!(
    image::DecodeStreamResponse,
    audio::DecodeStreamResponse,
    splat::DecodeStreamResponse,
    weights::DecodeStreamResponse,
    weights::EncodeStreamResponse
);

/// Reads a whole streamed download: the first message (for its header fields) and the file,
/// each chunk's offset checked against the bytes before it, so nothing is lost or reordered.
async fn download<P: DownloadPart>(stream: tonic::Streaming<P>) -> Result<(P, Vec<u8>), Status> {
    let (first, _, data) = download_all(stream).await?;
    Ok((first, data))
}

/// [`download`], also keeping the last message when there are several (where an encode's
/// result closes its bitstream).
async fn download_all<P: DownloadPart>(
    mut stream: tonic::Streaming<P>,
) -> Result<(P, Option<P>, Vec<u8>), Status> {
    let (mut first, mut last) = (None, None);
    let mut data = Vec::new();
    while let Some(mut part) = stream.message().await? {
        if let Some(chunk) = part.take_chunk() {
            if chunk.offset != data.len() as u64 {
                return Err(Status::data_loss(format!(
                    "download chunk at offset {} follows {} bytes",
                    chunk.offset,
                    data.len()
                )));
            }
            data.extend_from_slice(&chunk.data);
        }
        match first {
            None => first = Some(part),
            Some(_) => last = Some(part),
        }
    }
    let first = first.ok_or_else(|| Status::data_loss("the download ended without a message"))?;
    Ok((first, last, data))
}

/// A unary `Encode` call of `$data` with `$options`: the response's result, if any.
macro_rules! encode_unary {
    ($self:ident, $data:ident, $options:ident, $module:ident, $client:ident, $field:ident) => {
        $self
            .call(|| {
                let request = $self.request($module::EncodeRequest {
                    $field: $data.to_vec(),
                    options: Some($options.clone()),
                });
                let mut client = $self.$client();
                async move { client.encode(request).await }
            })
            .await?
            .result
    };
}

/// The body of an `encode_*` helper: unary `Encode` for small inputs, else `EncodeStream`
/// with the options first and the bytes in chunks.
macro_rules! encode_upload {
    ($self:ident, $data:ident, $options:ident, $module:ident, $client:ident, $field:ident) => {{
        use $module::encode_stream_request::Part;
        let result = if $data.len() <= $self.chunk_bytes {
            encode_unary!($self, $data, $options, $module, $client, $field)
        } else {
            $self
                .call(|| {
                    let request = $self
                        .stream_parts($data, Part::Options($options.clone()), Part::Chunk)
                        .map(|parts| {
                            tokio_stream::StreamExt::map(parts, |part| {
                                $module::EncodeStreamRequest { part: Some(part) }
                            })
                        });
                    let mut client = $self.$client();
                    async move { client.encode_stream(request).await }
                })
                .await?
                .result
        };
        result.ok_or_else(|| Status::internal("EncodeResponse without a result").into())
    }};
}

impl Client {
    /// Options for a client of the server at `address` (`http://host:port`, `https://…`, or
    /// `host:port`).
    pub fn builder(address: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            address: address.into(),
            replicas: Vec::new(),
            timeout: None,
            connect_timeout: Duration::from_secs(10),
            retries: 3,
            backoff: Duration::from_millis(100),
            token: None,
            tls: None,
            max_message_bytes: 256 << 20,
            chunk_bytes: 1 << 20,
        }
    }

    /// Connects with default options.
    pub async fn connect(address: impl Into<String>) -> Result<Self, Error> {
        Self::builder(address).connect().await
    }

    /// The generated model-repository client.
    pub fn models(&self) -> ModelRepositoryServiceClient<Channel> {
        sized!(ModelRepositoryServiceClient<Channel>, self)
    }

    /// The generated image client.
    pub fn image(&self) -> ImageServiceClient<Channel> {
        sized!(ImageServiceClient<Channel>, self)
    }

    /// The generated audio client.
    pub fn audio(&self) -> AudioServiceClient<Channel> {
        sized!(AudioServiceClient<Channel>, self)
    }

    /// The generated splat client.
    pub fn splat(&self) -> SplatServiceClient<Channel> {
        sized!(SplatServiceClient<Channel>, self)
    }

    /// The generated tensor (weights) client.
    pub fn tensor(&self) -> TensorServiceClient<Channel> {
        sized!(TensorServiceClient<Channel>, self)
    }

    /// The generated context-compression client.
    pub fn context(&self) -> ContextServiceClient<Channel> {
        sized!(ContextServiceClient<Channel>, self)
    }

    /// The generated visual-token client.
    pub fn vision(&self) -> VisionServiceClient<Channel> {
        sized!(VisionServiceClient<Channel>, self)
    }

    /// A request carrying the configured deadline.
    pub fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        if let Some(timeout) = self.timeout {
            request.set_timeout(timeout);
        }
        request
    }

    /// Runs `call` (which builds its request with [`Client::request`]), retrying on
    /// `UNAVAILABLE` with back-off.
    pub async fn call<T, F, Fut>(&self, mut call: F) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let mut delay = self.backoff;
        let mut attempt = 0;
        loop {
            match call().await {
                Ok(response) => return Ok(response.into_inner()),
                Err(status) if retryable(&status) && attempt < self.retries => {
                    attempt += 1;
                    tokio::time::sleep(delay).await;
                    delay = delay.saturating_mul(2).min(MAX_BACKOFF);
                }
                Err(status) => return Err(status.into()),
            }
        }
    }

    /// Whether `service` (e.g. `compress.image.v1.ImageService`; empty: the whole server)
    /// reports SERVING on the gRPC health protocol.
    pub async fn serving(&self, service: &str) -> Result<bool, Error> {
        let response = self
            .call(|| {
                let mut health = HealthClient::new(self.channel.clone());
                let request = self.request(HealthCheckRequest {
                    service: service.to_string(),
                });
                async move { health.check(request).await }
            })
            .await?;
        Ok(response.status
            == tonic_health::pb::health_check_response::ServingStatus::Serving as i32)
    }

    /// The options part followed by the upload in chunks, as a streaming request.
    fn stream_parts<P: Clone + Send + 'static>(
        &self,
        data: &[u8],
        options: P,
        chunk: fn(Chunk) -> P,
    ) -> Request<tokio_stream::Iter<std::vec::IntoIter<P>>> {
        let mut parts = vec![options];
        parts.extend(self.chunk_parts(data, chunk));
        self.request(tokio_stream::iter(parts))
    }

    /// `data` in offset-stamped chunks of the configured size, each wrapped by `chunk`.
    fn chunk_parts<P>(&self, data: &[u8], chunk: impl Fn(Chunk) -> P) -> Vec<P> {
        data.chunks(self.chunk_bytes)
            .enumerate()
            .map(|(i, bytes)| {
                chunk(Chunk {
                    data: bytes.to_vec(),
                    offset: (i * self.chunk_bytes) as u64,
                })
            })
            .collect()
    }

    /// Encodes an image file's bytes (PNG, JPEG, WebP, BMP, TIFF) with a learned codec.
    pub async fn encode_image(
        &self,
        data: &[u8],
        options: image::EncodeOptions,
    ) -> Result<image::EncodeResult, Error> {
        encode_upload!(self, data, options, image, image, image)
    }

    /// Decodes an image bitstream to `format` (PNG, WebP or raw RGB8). The image comes back
    /// through `DecodeStream`, so its size is not bounded by the message-size limits.
    pub async fn decode_image(
        &self,
        bitstream: &[u8],
        format: image::ImageFormat,
    ) -> Result<image::DecodeResponse, Error> {
        self.call(|| {
            let request = self.request(image::DecodeStreamRequest {
                bitstream: bitstream.to_vec(),
                format: format as i32,
            });
            let mut client = self.image();
            async move {
                let stream = client.decode_stream(request).await?.into_inner();
                let (header, image) = download(stream).await?;
                let format = match format {
                    image::ImageFormat::Unspecified => image::ImageFormat::Png,
                    other => other,
                };
                Ok(tonic::Response::new(image::DecodeResponse {
                    image,
                    format: format as i32,
                    width: header.width,
                    height: header.height,
                    channels: header.channels,
                }))
            }
        })
        .await
    }

    /// Encodes an audio file's bytes (WAV, FLAC, MP3, OGG Vorbis) with a learned codec.
    pub async fn encode_audio(
        &self,
        data: &[u8],
        options: audio::EncodeOptions,
    ) -> Result<audio::EncodeResult, Error> {
        encode_upload!(self, data, options, audio, audio, audio)
    }

    /// Decodes an audio bitstream to 16-bit WAV (through `DecodeStream`, so the WAV's size is
    /// not bounded by the message-size limits).
    pub async fn decode_audio(&self, bitstream: &[u8]) -> Result<audio::DecodeResponse, Error> {
        self.call(|| {
            let request = self.request(audio::DecodeStreamRequest {
                bitstream: bitstream.to_vec(),
            });
            let mut client = self.audio();
            async move {
                let stream = client.decode_stream(request).await?.into_inner();
                let (header, wav) = download(stream).await?;
                Ok(tonic::Response::new(audio::DecodeResponse {
                    wav,
                    sample_rate: header.sample_rate,
                    channels: header.channels,
                    frames: header.frames,
                }))
            }
        })
        .await
    }

    /// Encodes a splat scene (3DGS `.ply` or SPZ).
    pub async fn encode_splat(
        &self,
        data: &[u8],
        options: splat::EncodeOptions,
    ) -> Result<splat::EncodeResult, Error> {
        encode_upload!(self, data, options, splat, splat, scene)
    }

    /// Decodes a splat bitstream to PLY or SPZ (`spz_version` 0: the latest), through
    /// `DecodeStream`, so a scene over the message-size limits (a 500k-splat SH2 PLY is over
    /// 64 MiB) still decodes.
    pub async fn decode_splat(
        &self,
        bitstream: &[u8],
        format: splat::SplatFormat,
        spz_version: u32,
    ) -> Result<splat::DecodeResponse, Error> {
        self.call(|| {
            let request = self.request(splat::DecodeStreamRequest {
                bitstream: bitstream.to_vec(),
                output_format: format as i32,
                spz_version,
            });
            let mut client = self.splat();
            async move {
                let stream = client.decode_stream(request).await?.into_inner();
                let (header, scene) = download(stream).await?;
                let format = match format {
                    splat::SplatFormat::Unspecified => splat::SplatFormat::Ply,
                    other => other,
                };
                Ok(tonic::Response::new(splat::DecodeResponse {
                    scene,
                    format: format as i32,
                    splat_count: header.splat_count,
                    sh_degree: header.sh_degree,
                }))
            }
        })
        .await
    }

    /// Encodes a safetensors file losslessly. A file over the chunk size goes up and its
    /// bitstream comes back through `EncodeStream` in chunks, so neither is bounded by the
    /// message-size limits.
    pub async fn encode_weights(
        &self,
        file: &[u8],
        options: weights::EncodeOptions,
    ) -> Result<weights::EncodeResult, Error> {
        use weights::encode_stream_request::Part;
        if file.len() <= self.chunk_bytes {
            return encode_unary!(self, file, options, weights, tensor, file)
                .ok_or_else(|| Status::internal("EncodeResponse without a result").into());
        }
        self.call(|| {
            let request = self
                .stream_parts(file, Part::Options(options), Part::Chunk)
                .map(|parts| {
                    tokio_stream::StreamExt::map(parts, |part| weights::EncodeStreamRequest {
                        part: Some(part),
                    })
                });
            let mut client = self.tensor();
            async move {
                let stream = client.encode_stream(request).await?.into_inner();
                let (first, last, bitstream) = download_all(stream).await?;
                let mut result = last
                    .unwrap_or(first)
                    .result
                    .ok_or_else(|| Status::data_loss("EncodeStream ended without its result"))?;
                result.bitstream = bitstream;
                Ok(tonic::Response::new(result))
            }
        })
        .await
    }

    /// Decodes a weights bitstream to the safetensors file it was made from, byte for byte:
    /// both go through `DecodeStream` in chunks.
    pub async fn decode_weights(&self, bitstream: &[u8]) -> Result<Vec<u8>, Error> {
        self.call(|| {
            let parts = self.chunk_parts(bitstream, |chunk| weights::DecodeStreamRequest {
                chunk: Some(chunk),
            });
            let request = self.request(tokio_stream::iter(parts));
            let mut client = self.tensor();
            async move {
                let stream = client.decode_stream(request).await?.into_inner();
                let (_, file) = download(stream).await?;
                Ok(tonic::Response::new(file))
            }
        })
        .await
    }

    /// Reads one tensor of a weights bitstream (its summary and little-endian data) without
    /// decoding the rest.
    pub async fn read_tensor(
        &self,
        bitstream: &[u8],
        name: &str,
    ) -> Result<weights::ReadTensorResponse, Error> {
        self.call(|| {
            let request = self.request(weights::ReadTensorRequest {
                bitstream: bitstream.to_vec(),
                name: name.to_string(),
            });
            let mut client = self.tensor();
            async move { client.read_tensor(request).await }
        })
        .await
    }

    /// Encodes the KV cache of the causal LM `model` (lossy) at `level` (1 smallest ..= 8
    /// closest; 0 = the server's default), the first `sink_tokens` tokens kept (`None`: 1).
    pub async fn encode_kv_cache(
        &self,
        model: &str,
        cache: weights::KvCache,
        level: u32,
        sink_tokens: Option<u32>,
    ) -> Result<weights::EncodeKvCacheResponse, Error> {
        let request = weights::EncodeKvCacheRequest {
            model: model.to_string(),
            cache: Some(cache),
            level,
            sink_tokens,
        };
        self.call(|| {
            let request = self.request(request.clone());
            let mut client = self.tensor();
            async move { client.encode_kv_cache(request).await }
        })
        .await
    }

    /// Decodes a KV-cache bitstream to the cache, in the dtype it was encoded from.
    pub async fn decode_kv_cache(
        &self,
        bitstream: &[u8],
    ) -> Result<weights::DecodeKvCacheResponse, Error> {
        self.call(|| {
            let request = self.request(weights::DecodeKvCacheRequest {
                bitstream: bitstream.to_vec(),
            });
            let mut client = self.tensor();
            async move { client.decode_kv_cache(request).await }
        })
        .await
    }

    /// The causal LMs whose KV caches the server codes, with their dimensions.
    pub async fn list_kv_models(&self) -> Result<Vec<weights::KvModel>, Error> {
        self.call(|| {
            let request = self.request(weights::ListKvModelsRequest {});
            let mut client = self.tensor();
            async move {
                let response = client.list_kv_models(request).await?;
                Ok(tonic::Response::new(response.into_inner().models))
            }
        })
        .await
    }

    /// Compresses a prompt (one or more contexts) with LLMLingua-2.
    pub async fn compress_prompt<S: Into<String>>(
        &self,
        contexts: impl IntoIterator<Item = S>,
        options: context::PromptOptions,
    ) -> Result<context::CompressPromptResponse, Error> {
        self.send_prompt(context::CompressPromptRequest {
            perplexity: None,
            context: contexts.into_iter().map(Into::into).collect(),
            options: Some(options),
            model: None,
        })
        .await
    }

    /// Compresses a prompt with LLMLingua-1, LongLLMLingua or LongCodeZip (`options.method`)
    /// on the server's causal LM.
    pub async fn compress_prompt_llmlingua<S: Into<String>>(
        &self,
        contexts: impl IntoIterator<Item = S>,
        options: context::PerplexityOptions,
    ) -> Result<context::CompressPromptResponse, Error> {
        self.send_prompt(context::CompressPromptRequest {
            perplexity: Some(options),
            context: contexts.into_iter().map(Into::into).collect(),
            options: None,
            model: None,
        })
        .await
    }

    /// One CompressPrompt call.
    async fn send_prompt(
        &self,
        request: context::CompressPromptRequest,
    ) -> Result<context::CompressPromptResponse, Error> {
        self.call(|| {
            let request = self.request(request.clone());
            let mut client = self.context();
            async move { client.compress_prompt(request).await }
        })
        .await
    }

    /// Selects (and optionally compresses) retrieved documents for a query (RECOMP).
    pub async fn compress_context(
        &self,
        request: context::CompressContextRequest,
    ) -> Result<context::CompressContextResponse, Error> {
        self.call(|| {
            let request = self.request(request.clone());
            let mut client = self.context();
            async move { client.compress_context(request).await }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stands for hyper's body error: its source is the I/O error under it.
    #[derive(Debug)]
    struct BodyError(std::io::Error);

    impl std::fmt::Display for BodyError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("error reading a body from connection")
        }
    }

    impl std::error::Error for BodyError {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn lost_connections_are_retried_and_answers_are_not() {
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        let reset = Status::from_error(Box::new(BodyError(reset)));
        assert_eq!(reset.code(), Code::Unknown, "{reset:?}");
        assert!(retryable(&reset), "a reset under the response body");
        assert!(retryable(&Status::unavailable("draining")));
        assert!(!retryable(&Status::unknown(
            "a failure the server reported"
        )));
        assert!(!retryable(&Status::invalid_argument("bad input")));
        assert!(!retryable(&Status::from_error(Box::new(std::fmt::Error))));
    }
}
