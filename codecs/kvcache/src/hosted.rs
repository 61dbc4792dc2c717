//! The KV codec of one causal LM as a [`terse_codec::Codec`]: its caches in, bitstreams that
//! name the model out. The server registers one per causal LM of its model repository; the
//! shape of every cache is checked against the model's before any work.

use terse_codec::{
    Codec, CodecInfo, DecodeCall, DecodeFuture, EncodeCall, EncodeFuture, Encoding, UnitCost, Work,
};
use terse_core::{Error, KvCache, on_worker_classified};
use terse_entropy::{CodecId, ModelTag};

use crate::codec::{self, EncodeOptions};

/// Element types a KV cache may come in (and is given back in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvDtype {
    /// IEEE single precision.
    Fp32,
    /// IEEE half precision.
    Fp16,
    /// bfloat16.
    Bf16,
}

impl KvDtype {
    /// Its name in bitstreams and messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Fp32 => "fp32",
            Self::Fp16 => "fp16",
            Self::Bf16 => "bf16",
        }
    }

    /// The type named `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Fp32, Self::Fp16, Self::Bf16]
            .into_iter()
            .find(|d| d.name() == name)
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Self::Fp32 => 4,
            Self::Fp16 | Self::Bf16 => 2,
        }
    }

    /// Little-endian `bytes` of this type as f32 values (`None` when the length is not a
    /// whole number of elements).
    pub fn to_f32(self, bytes: &[u8]) -> Option<Vec<f32>> {
        if !bytes.len().is_multiple_of(self.size()) {
            return None;
        }
        Some(match self {
            Self::Fp32 => terse_core::from_le_bytes(bytes),
            Self::Fp16 => bytes
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Self::Bf16 => bytes
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
        })
    }

    /// `values` as little-endian bytes of this type (rounded to nearest).
    pub fn from_f32(self, values: &[f32]) -> Vec<u8> {
        match self {
            Self::Fp32 => terse_core::le_bytes(values),
            Self::Fp16 => values
                .iter()
                .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
                .collect(),
            Self::Bf16 => values
                .iter()
                .flat_map(|&v| half::bf16::from_f32(v).to_le_bytes())
                .collect(),
        }
    }
}

/// A KV cache with the element type it travels in.
#[derive(Debug, Clone, PartialEq)]
pub struct KvMedia {
    /// The values.
    pub cache: KvCache,
    /// Their element type outside the codec.
    pub dtype: KvDtype,
}

/// The dimensions of the model a codec codes the caches of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelDims {
    /// Transformer blocks.
    pub layers: usize,
    /// Key/value heads per block.
    pub kv_heads: usize,
    /// Channels per head.
    pub head_dim: usize,
    /// Longest cache the model can produce.
    pub context_length: usize,
}

/// Working memory per cache element, in bytes: the request's bytes (up to 4), the f32 cache
/// (4), the bitstream (under 1), the per-plane symbol and index buffers of the coding threads
/// and, for an encode, the reconstruction the cost report is measured on (4) — counted from
/// the buffers each call holds, not measured.
const COST_PER_ELEMENT: UnitCost = UnitCost::new(14, 10);

/// The KV-cache codec of one causal LM.
pub struct KvCacheCodec {
    info: CodecInfo,
    tag: ModelTag,
    dims: ModelDims,
}

impl KvCacheCodec {
    /// The codec of the model `name` (whose file has sha256 `sha256_hex`) of `version`.
    pub fn new(
        name: &str,
        version: &str,
        sha256_hex: &str,
        dims: ModelDims,
    ) -> Result<Self, Error> {
        let tag = ModelTag::from_sha256_hex(name, sha256_hex)
            .map_err(|e| Error::internal(format!("model `{name}`: {e}")))?;
        if dims.layers == 0 || dims.layers > codec::MAX_LAYERS || dims.kv_heads == 0 {
            return Err(Error::internal(format!(
                "model `{name}` has unusable dimensions {dims:?}"
            )));
        }
        Ok(Self {
            info: CodecInfo::learned(
                &tag,
                version,
                "kvcache",
                CodecId::KvCache,
                format!(
                    "lossy KV caches of {name} ({} layers, {} KV heads of {} channels): \
                     CacheGen-style layer-wise quantization, sink tokens kept, per-channel \
                     delta and Laplace-ANS coding",
                    dims.layers, dims.kv_heads, dims.head_dim
                ),
            ),
            tag,
            dims,
        })
    }

    /// The model's dimensions.
    pub fn dims(&self) -> ModelDims {
        self.dims
    }

    /// Refuses a cache whose shape is not one of this model's.
    pub fn check_cache(&self, cache: &KvCache) -> Result<(), Error> {
        let shape = cache.shape();
        let d = self.dims;
        if (shape.layers, shape.kv_heads, shape.head_dim) != (d.layers, d.kv_heads, d.head_dim) {
            return Err(Error::invalid(format!(
                "the cache has {} layers of {} KV heads of {} channels; {} has {} of {} of {}",
                shape.layers,
                shape.kv_heads,
                shape.head_dim,
                self.info.name,
                d.layers,
                d.kv_heads,
                d.head_dim
            )));
        }
        if shape.tokens > d.context_length {
            return Err(Error::invalid(format!(
                "the cache holds {} tokens; {} has a context of {}",
                shape.tokens, self.info.name, d.context_length
            )));
        }
        Ok(())
    }
}

impl Codec for KvCacheCodec {
    type Media = KvMedia;
    type Knobs = EncodeOptions;

    fn info(&self) -> &CodecInfo {
        &self.info
    }

    fn working_memory(&self, work: Work, shape: &[u64]) -> u64 {
        work.memory(shape, COST_PER_ELEMENT)
    }

    /// Encodes; with `options.reconstruct`, also decodes the bitstream so the caller can
    /// report the error.
    fn encode<'a>(
        &'a self,
        call: EncodeCall<'a, KvMedia, EncodeOptions>,
    ) -> EncodeFuture<'a, KvMedia> {
        let (media, options, worker) = (call.media, call.options, call.worker);
        Box::pin(async move {
            options.refuse_latents("KV")?;
            self.check_cache(&media.cache)?;
            let (knobs, reconstruct, tag) = (options.knobs, options.reconstruct, self.tag.clone());
            on_worker_classified(worker, move || -> crate::Result<_> {
                let bitstream = codec::encode(&media.cache, &tag, media.dtype.name(), &knobs)?;
                let mut encoding = Encoding::bitstream(bitstream);
                if reconstruct {
                    let (_, cache) = codec::decode(&encoding.bitstream, Some(&tag), usize::MAX)?;
                    encoding.reconstruction = Some(KvMedia {
                        cache,
                        dtype: media.dtype,
                    });
                }
                Ok(encoding)
            })
            .await
        })
    }

    /// Decodes, refusing a cache of more than `max_elements` values before allocating it.
    fn decode<'a>(&'a self, call: DecodeCall<'a>) -> DecodeFuture<'a, KvMedia> {
        let (bitstream, max_elements, worker) = (call.bitstream, call.max_units, call.worker);
        Box::pin(async move {
            let tag = self.tag.clone();
            let limit = usize::try_from(max_elements).unwrap_or(usize::MAX);
            let media = on_worker_classified(worker, move || -> crate::Result<_> {
                let (info, cache) = codec::decode(&bitstream, Some(&tag), limit)?;
                let dtype = KvDtype::from_name(&info.dtype).ok_or_else(|| {
                    crate::KvError::Invalid(format!("unknown dtype `{}`", info.dtype))
                })?;
                Ok(KvMedia { cache, dtype })
            })
            .await?;
            self.check_cache(&media.cache)?;
            Ok(media)
        })
    }
}
