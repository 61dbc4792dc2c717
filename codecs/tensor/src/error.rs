//! Errors of tensor-file parsing and coding.

/// Why a tensor file or bitstream was refused.
#[derive(Debug, thiserror::Error)]
pub enum TensorError {
    /// The input is not a well-formed safetensors file or tensor bitstream; the message says
    /// where.
    #[error("{0}")]
    Malformed(String),
    /// The input exceeds a limit.
    #[error("{0}")]
    TooLarge(String),
    /// A tensor asked for is not in the file.
    #[error("{0}")]
    NotFound(String),
    /// A terse container or entropy stream is corrupt.
    #[error("bitstream: {0}")]
    Entropy(#[from] terse_entropy::EntropyError),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, TensorError>;

pub(crate) fn malformed(message: impl Into<String>) -> TensorError {
    TensorError::Malformed(message.into())
}

impl terse_core::Classify for TensorError {
    fn kind(&self) -> terse_core::ErrorKind {
        use terse_core::ErrorKind;
        match self {
            Self::Malformed(_) => ErrorKind::InvalidInput,
            Self::TooLarge(_) => ErrorKind::TooLarge,
            Self::NotFound(_) => ErrorKind::NotFound,
            Self::Entropy(e) => terse_core::Classify::kind(e),
        }
    }
}
