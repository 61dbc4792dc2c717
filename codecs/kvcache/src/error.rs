//! Why a KV cache could not be encoded or decoded.

/// A KV-codec failure; [`terse_core::Classify`] maps it to a status.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    /// The cache or the request is unusable (non-finite values, an unknown level, a bitstream
    /// whose header contradicts itself); the message says what.
    #[error("{0}")]
    Invalid(String),
    /// The cache or bitstream exceeds a limit.
    #[error("{0}")]
    TooLarge(String),
    /// The bitstream was written for another model than the one it is decoded for.
    #[error("{0}")]
    WrongModel(String),
    /// A terse container or entropy stream is corrupt, or the work was interrupted.
    #[error("bitstream: {0}")]
    Entropy(#[from] terse_entropy::EntropyError),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, KvError>;

pub(crate) fn invalid(message: impl Into<String>) -> KvError {
    KvError::Invalid(message.into())
}

impl terse_core::Classify for KvError {
    fn kind(&self) -> terse_core::ErrorKind {
        use terse_core::ErrorKind;
        match self {
            Self::Invalid(_) | Self::WrongModel(_) => ErrorKind::InvalidInput,
            Self::TooLarge(_) => ErrorKind::TooLarge,
            Self::Entropy(e) => terse_core::Classify::kind(e),
        }
    }
}
