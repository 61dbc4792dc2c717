//! terse's MLIC-style learned image codec (after MLIC/MLIC++): a hyperprior plus a
//! multi-reference entropy model (channel context over earlier slices, checkerboard spatial
//! context), trained by `models/scripts/mlic/train_mlic.py`.
//!
//! Everything that selects an entropy model — hyper synthesis, context convolutions, entropy
//! parameters, the scale-table index — is computed in fixed-point integers ([`int_net`]), so
//! a bitstream decodes identically on every CPU, GPU and thread count. The float analysis
//! (`g_a` + `h_a`) and synthesis (`g_s`) networks run behind [`terse_core::Network`] (ONNX
//! Runtime in the server); [`MlicImage`] is a rate point with its networks.

pub mod codec;
pub mod entropy_model;
mod hosted;
pub mod int_net;
pub mod rate;

pub use codec::{Encoded, MlicCodec};
pub use entropy_model::{ContextKind, EntropyModel};
pub use hosted::MlicImage;
pub use rate::{RatePoint, rate_point_name};

/// Errors of the MLIC codec.
#[derive(Debug, thiserror::Error)]
pub enum MlicError {
    /// The model files are inconsistent.
    #[error("model: {0}")]
    Model(String),
    /// The input image is unusable (size, format).
    #[error("{0}")]
    Image(String),
    /// The bitstream is malformed, truncated or for another model.
    #[error("bitstream: {0}")]
    Bitstream(String),
    /// The declared size exceeds the configured limit.
    #[error("{0}")]
    TooLarge(String),
    /// A network stage failed.
    #[error("network {stage}: {message}")]
    Network {
        /// Which stage.
        stage: &'static str,
        /// Its error.
        message: String,
    },
    /// The entropy coder failed.
    #[error("bitstream: {0}")]
    Entropy(#[from] terse_entropy::EntropyError),
}

/// Result of this crate.
pub type Result<T> = std::result::Result<T, MlicError>;
