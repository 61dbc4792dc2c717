//! Errors of the model runtime, split by who is at fault so transports can map them precisely.

use std::path::PathBuf;

/// Why the ONNX Runtime library, a manifest or a model could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The ONNX Runtime shared library is missing or could not be opened.
    #[error("ONNX Runtime library {path}: {reason}")]
    Library {
        /// The path that was tried.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A manifest could not be read or is invalid.
    #[error("manifest {path}: {reason}")]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A model file is missing, does not match its manifest, or ONNX Runtime rejected it.
    #[error("model {model}: {reason}")]
    Model {
        /// `name:version` of the model.
        model: String,
        /// What went wrong.
        reason: String,
    },
    /// The configuration names something the repository does not have.
    #[error("{0}")]
    Config(String),
}

/// Why one inference request failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum InferError {
    /// No such model or version in the repository.
    #[error("{0}")]
    NotFound(String),
    /// The model exists but is not loaded or failed to load.
    #[error("{0}")]
    Unavailable(String),
    /// The request's tensors do not fit the model (names, types, shapes, byte lengths).
    #[error("{0}")]
    InvalidInput(String),
    /// ONNX Runtime failed while running the model.
    #[error("model execution failed: {0}")]
    Execution(String),
}

impl terse_core::Classify for InferError {
    fn kind(&self) -> terse_core::ErrorKind {
        use terse_core::ErrorKind;
        match self {
            Self::NotFound(_) => ErrorKind::NotFound,
            Self::Unavailable(_) => ErrorKind::Unavailable,
            Self::InvalidInput(_) => ErrorKind::InvalidInput,
            Self::Execution(_) => ErrorKind::Internal,
        }
    }
}
