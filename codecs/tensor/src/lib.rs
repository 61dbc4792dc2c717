//! Lossless tensor codec (issue 22, weights): safetensors files in, the same bytes out.
//!
//! Each float tensor (BF16, F16, F32) is cut into chunks; in each chunk the exponent and the top
//! mantissa bit of every element form a symbol coded with ANS under the chunk's own histogram,
//! and the sign and remaining mantissa bits go to byte planes (zstd where it pays, e.g. the
//! zero low halves of an FP32 upcast of BF16). Other dtypes are zstd-coded chunks. Chunks
//! decode independently: in parallel, and one tensor without the rest.

pub mod ans;
mod buffer;
pub mod chunk;
pub mod error;
pub mod file;
pub mod float;
pub mod hosted;
mod palette;
mod planes;
mod section;
mod symbols;

pub use error::{Result, TensorError};
pub use file::{
    EncodeOptions, FileInfo, TensorEntry, decode, decode_tensor, decode_to, encode, inspect,
};
pub use hosted::WeightCodec;
