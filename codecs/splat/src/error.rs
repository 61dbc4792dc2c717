//! Errors of scene parsing and coding.

/// Why a scene or bitstream was refused.
#[derive(Debug, thiserror::Error)]
pub enum SplatError {
    /// The input is not a well-formed scene file or bitstream; the message says where.
    #[error("{0}")]
    Malformed(String),
    /// The input exceeds a configured limit.
    #[error("{0}")]
    TooLarge(String),
    /// Options are invalid or cannot be applied to this scene.
    #[error("{0}")]
    InvalidOptions(String),
    /// A terse container or entropy stream is corrupt.
    #[error("bitstream: {0}")]
    Entropy(#[from] terse_entropy::EntropyError),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, SplatError>;

pub(crate) fn malformed(message: impl Into<String>) -> SplatError {
    SplatError::Malformed(message.into())
}

impl terse_core::Classify for SplatError {
    fn kind(&self) -> terse_core::ErrorKind {
        match self {
            Self::Malformed(_) | Self::InvalidOptions(_) => terse_core::ErrorKind::InvalidInput,
            Self::TooLarge(_) => terse_core::ErrorKind::TooLarge,
            Self::Entropy(e) => terse_core::Classify::kind(e),
        }
    }
}
