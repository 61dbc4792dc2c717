//! Lossy KV-cache codec after CacheGen (issue 22, part 2): a transformer's key/value cache
//! into a compact bitstream that names its model, shape and dtype, and back.
//!
//! Per layer and kind (keys, values) — a *plane* of `[kv head][token][channel]`:
//! 1. the first `sink_tokens` tokens (the attention sink) are kept in fp16;
//! 2. the rest of the plane is quantized with one uniform step, a fraction of its RMS (around
//!    the channel means) set by the quality level and, as in CacheGen, by the layer (the first
//!    third of the layers finer, the rest coarser);
//! 3. each channel is coded against its integer anchor (its rounded mean level) either as is or
//!    as deltas against the previous token (CacheGen's token-wise locality; the encoder keeps
//!    the cheaper), with ANS under a Laplace model whose scale row the encoder picks per channel
//!    (CacheGen's per-channel models).
//!
//! Planes are independent sections: encoded and decoded in parallel, each CRC-checked.

pub mod codec;
pub mod error;
pub mod hosted;

pub use codec::{
    DEFAULT_LEVEL, EncodeOptions, KV_FORMAT, KvInfo, MAX_LAYERS, MAX_LEVEL, decode, encode, info,
    step_fraction,
};
pub use error::{KvError, Result};
pub use hosted::{KvCacheCodec, KvDtype, KvMedia, ModelDims};
