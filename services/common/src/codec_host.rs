//! [`CodecHost`]: what a codec service holds (its codecs, its limits, the server's memory
//! budget) and the checks every codec call makes with it, written once for the image, audio,
//! splat and tensor services.

use std::sync::Arc;

use terse_codec::{CodecRegistry, DynCodec, Work};
use tonic::{Status, Streaming};

use crate::{MemoryBudget, Reservation, UploadMessage, status_of};

/// The codecs a service hosts, its limits (`L`, its config section) and the memory budget its
/// calls reserve from. `M` is the media the codecs code and `K` their knobs.
pub struct CodecHost<L, M, K = ()> {
    /// The hosted codecs (shared with the blocking work of a call).
    pub codecs: Arc<CodecRegistry<M, K>>,
    /// The service's limits.
    pub limits: L,
    max_bytes: usize,
    memory: MemoryBudget,
}

impl<L, M: Send + Sync + 'static, K: Default + Send + Sync + 'static> CodecHost<L, M, K> {
    /// Hosts `codecs` under `limits`, of which `max_bytes` bounds one payload (a file or a
    /// bitstream, unary or streamed); calls reserve their working memory from `memory`.
    pub fn new(
        codecs: CodecRegistry<M, K>,
        limits: L,
        max_bytes: usize,
        memory: MemoryBudget,
    ) -> Self {
        Self {
            codecs: Arc::new(codecs),
            limits,
            max_bytes,
            memory,
        }
    }

    /// The most bytes of one payload.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// The names of the hosted codecs, default first.
    pub fn names(&self) -> Vec<String> {
        self.codecs.names()
    }

    /// The codec a request names (the default one for an empty name); NOT_FOUND listing the
    /// hosted ones otherwise.
    pub fn pick(&self, name: &str) -> Result<&Arc<DynCodec<M, K>>, Status> {
        self.codecs.pick(name).map_err(|e| status_of(&e))
    }

    /// The codec that wrote `bitstream` (its container's codec id and model tag); the precise
    /// status when none hosted did.
    pub fn for_bitstream(&self, bitstream: &[u8]) -> Result<&Arc<DynCodec<M, K>>, Status> {
        self.codecs
            .for_bitstream(bitstream)
            .map_err(|e| status_of(&e))
    }

    /// Collects a streamed upload (options first, then chunks) of at most the payload limit;
    /// `what` names the payload in errors.
    pub async fn upload<U: UploadMessage>(
        &self,
        mut stream: Streaming<U>,
        what: &str,
    ) -> Result<(U::Options, Vec<u8>), Status> {
        crate::collect_upload(&mut stream, self.max_bytes, what).await
    }

    /// Refuses a payload (`what`) of `len` bytes over the service's limit with
    /// RESOURCE_EXHAUSTED, before any work.
    pub fn check_bytes(&self, len: usize, what: &str) -> Result<(), Status> {
        crate::check_bytes(len, self.max_bytes, what)
    }

    /// Checks a bitstream before any work: within the payload limit, a terse container (its
    /// magic), and of one of the `accepted` codecs (else FAILED_PRECONDITION naming the service
    /// that decodes it).
    pub fn check_container(
        &self,
        bitstream: &[u8],
        accepted: &[terse_entropy::CodecId],
    ) -> Result<(), Status> {
        self.check_bytes(bitstream.len(), "bitstream")?;
        if !terse_entropy::Container::sniff(bitstream) {
            return Err(Status::invalid_argument(
                "bitstream does not start with the terse magic `TRSE`",
            ));
        }
        crate::expect_codec_family(bitstream, accepted)?;
        Ok(())
    }

    /// Reserves the working memory `codec` estimates for `work` on an input of `dims`, before
    /// the work; `what` describes the request in a refusal.
    pub fn reserve(
        &self,
        codec: &DynCodec<M, K>,
        work: Work,
        dims: &[u64],
        what: &str,
    ) -> Result<Reservation, Status> {
        self.memory.reserve(codec.working_memory(work, dims), what)
    }
}
