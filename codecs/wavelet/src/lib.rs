//! Wavelet transforms for the WaLLoC codecs: one-level DWT and full wavelet-packet transforms
//! (every band split at every level) in 1-D and 2-D, with periodic extension, for the bior4.4
//! (CDF 9/7) wavelet. Coefficients match PyWavelets (`mode="periodization"`, packet nodes in
//! `natural` order) to float precision; the tests check against a PyWavelets fixture.
//!
//! Lengths must be divisible by `2^levels` along every transformed axis: padding is the
//! codec's job, not the transform's.

mod filters;
mod packet;

pub use filters::{Wavelet, bior44};
pub use packet::{dwt, idwt, wpt1d, wpt1d_inverse, wpt2d, wpt2d_inverse};

/// Why a transform was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WaveletError {
    /// The input shape does not allow the requested transform.
    #[error("{0}")]
    Shape(String),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, WaveletError>;
