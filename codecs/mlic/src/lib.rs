//! terse's MLIC-style learned image codec (after MLIC/MLIC++): a hyperprior plus a
//! multi-reference entropy model (channel context over earlier slices, checkerboard spatial
//! context), trained by `models/scripts/mlic/train_mlic.py`.
//!
//! Everything that selects an entropy model — hyper synthesis, context convolutions, entropy
//! parameters, the scale-table index — is computed in fixed-point integers ([`int_net`]), so
//! a bitstream decodes identically on every CPU, GPU and thread count. The float analysis
//! (`g_a` + `h_a`) and synthesis (`g_s`) networks run behind the [`Network`] trait (ONNX
//! Runtime in the service).

pub mod codec;
pub mod entropy_model;
pub mod int_net;
pub mod rate;

pub use codec::{Encoded, MlicCodec};
pub use entropy_model::{ContextKind, EntropyModel};
pub use rate::{RatePoint, rate_point_name};

/// A float network stage (ONNX graph) the codec calls: the analysis (`g_a` + `h_a`: image,
/// and for a variable-rate model its gains → `[y, z]`) or the synthesis (`g_s`: `y_hat` →
/// `[image]`).
pub trait Network {
    /// Runs the stage on its inputs (in graph order) and returns its outputs in graph order.
    fn run(
        &self,
        inputs: Vec<ndarray::ArrayD<f32>>,
    ) -> std::result::Result<Vec<ndarray::ArrayD<f32>>, String>;
}

/// Errors of the MLIC codec.
#[derive(Debug, thiserror::Error)]
pub enum MlicError {
    /// The model files are inconsistent.
    #[error("model: {0}")]
    Model(String),
    /// The input image is unusable (size, format).
    #[error("image: {0}")]
    Image(String),
    /// The bitstream is malformed, truncated or for another model.
    #[error("bitstream: {0}")]
    Bitstream(String),
    /// The declared size exceeds the configured limit.
    #[error("too large: {0}")]
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
    #[error(transparent)]
    Entropy(#[from] terse_entropy::EntropyError),
}

/// Result of this crate.
pub type Result<T> = std::result::Result<T, MlicError>;
