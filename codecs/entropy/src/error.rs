//! Errors of the entropy core.

/// What went wrong while building a model, coding symbols or parsing a container.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EntropyError {
    /// A model table is malformed (bad CDF, length, precision, ...).
    #[error("invalid entropy model: {0}")]
    InvalidModel(String),
    /// Input to an encoder does not fit the model it was given.
    #[error("cannot encode: {0}")]
    Encode(String),
    /// A bitstream is truncated, corrupt or does not match the model it is decoded with.
    #[error("corrupt bitstream: {0}")]
    Corrupt(String),
    /// A container is malformed; the message says which field and why.
    #[error("invalid container: {0}")]
    Container(String),
    /// The work was asked to stop (its request ended): see [`crate::interrupt`].
    #[error("interrupted: the request ended")]
    Interrupted,
}

/// Result alias of the entropy core.
pub type Result<T> = std::result::Result<T, EntropyError>;

impl terse_core::Classify for EntropyError {
    fn kind(&self) -> terse_core::ErrorKind {
        match self {
            Self::Interrupted => terse_core::ErrorKind::Cancelled,
            Self::InvalidModel(_) => terse_core::ErrorKind::Internal,
            Self::Encode(_) | Self::Corrupt(_) | Self::Container(_) => {
                terse_core::ErrorKind::InvalidInput
            }
        }
    }
}
