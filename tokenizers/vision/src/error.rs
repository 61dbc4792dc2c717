//! Errors of the reducers.

/// Why a reduction was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PruneError {
    /// Shapes, values or parameters do not fit the method; the message says which.
    #[error("{0}")]
    InvalidInput(String),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, PruneError>;

pub(crate) fn invalid(message: impl Into<String>) -> PruneError {
    PruneError::InvalidInput(message.into())
}
