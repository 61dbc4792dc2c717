//! The weight codec as a [`terse_codec::Codec`]: safetensors files in, terse bitstreams out,
//! with the chunk size as its knob.

use std::sync::Arc;

use terse_codec::{Codec, CodecInfo, EncodeOptions, Encoding, ModelRef, Work};
use terse_core::{BoxFuture, Error, Worker, on_worker_classified};
use terse_entropy::{CodecId, ModelTag};

use crate::file;

/// Working memory beyond the file itself: a few chunks in flight per thread, at most
/// [`file::MAX_CHUNK_ELEMENTS`] FP32 elements each on a 16-thread pool.
const CHUNK_SCRATCH_BYTES: u64 = 4 * 16 * 4 * file::MAX_CHUNK_ELEMENTS;

/// The lossless safetensors codec.
pub struct WeightCodec {
    info: CodecInfo,
}

impl WeightCodec {
    /// The codec's name.
    pub const NAME: &str = "terse-weights";

    /// The codec.
    pub fn new() -> Self {
        Self {
            info: CodecInfo {
                name: Self::NAME.into(),
                family: "tensor",
                id: CodecId::Tensor,
                model: ModelRef {
                    name: Self::NAME.into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                },
                description: "lossless: exponent and top mantissa bit ANS-coded per chunk, \
                              sign and low mantissa bits packed, other dtypes zstd"
                    .into(),
                latent_channels: 0,
                levels: 0,
                latent_bits: 0,
                sample_rate: 0,
                channels: 0,
            },
        }
    }
}

impl Default for WeightCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl Codec for WeightCodec {
    /// A safetensors file.
    type Media = Vec<u8>;
    type Knobs = file::EncodeOptions;

    fn info(&self) -> &CodecInfo {
        &self.info
    }

    fn tag(&self) -> Option<&ModelTag> {
        None
    }

    /// `shape`: the file's bytes. An encode holds the chunk payloads and the bitstream (each
    /// at most about the file), a decode the file; both a few chunks per thread.
    fn working_memory(&self, work: Work, shape: &[u64]) -> u64 {
        work.memory(shape, 2, 1).saturating_add(
            CHUNK_SCRATCH_BYTES.min(shape.first().copied().unwrap_or(0).saturating_mul(2)),
        )
    }

    /// Encodes with `options.knobs`. Lossless: there is no reconstruction to report (the
    /// decode is the input, byte for byte), and latents do not apply.
    fn encode<'a>(
        &'a self,
        media: Arc<Vec<u8>>,
        options: EncodeOptions<file::EncodeOptions>,
        worker: &'a dyn Worker,
    ) -> BoxFuture<'a, Result<Encoding<Vec<u8>>, Error>> {
        Box::pin(async move {
            if options.latent_bits != 0 || options.latents {
                return Err(Error::invalid(
                    "the weight codec has no latents: latent_bits and latents do not apply",
                ));
            }
            let knobs = options.knobs;
            let bitstream =
                on_worker_classified(worker, move || file::encode(&media, knobs)).await?;
            Ok(Encoding::bitstream(bitstream))
        })
    }

    /// Decodes, refusing a file over `max_bytes`.
    fn decode<'a>(
        &'a self,
        bitstream: Vec<u8>,
        max_bytes: u64,
        worker: &'a dyn Worker,
    ) -> BoxFuture<'a, Result<Vec<u8>, Error>> {
        Box::pin(async move {
            on_worker_classified(worker, move || file::decode(&bitstream, max_bytes)).await
        })
    }
}
