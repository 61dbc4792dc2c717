//! The error taxonomy every domain error maps into.

use std::fmt;

/// Most characters of user input (a model or codec name, an option value) echoed into an error
/// message.
pub const ECHO_CHARS: usize = 200;

/// `input` as echoed into an error message: at most [`ECHO_CHARS`] characters, with the number
/// left out said, so a huge name cannot blow up a status trailer.
pub fn echo(input: &str) -> String {
    match input.char_indices().nth(ECHO_CHARS) {
        None => input.to_string(),
        Some((cut, _)) => format!(
            "{}… ({} more characters)",
            &input[..cut],
            input[cut..].chars().count()
        ),
    }
}

/// Who is at fault and what a caller can do about it; the transport maps each kind to one
/// status code (`services/common`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The input is malformed, inconsistent or out of range (the caller must change it).
    InvalidInput,
    /// The input or the work it asks for is over a limit.
    TooLarge,
    /// A named thing (model, codec, method) does not exist here.
    NotFound,
    /// The thing exists but cannot do this as the server is set up (not loaded, another
    /// build of a model, a bitstream of another service).
    Unavailable,
    /// The call ended (deadline, cancellation, shutdown) before the work finished.
    Cancelled,
    /// A fault of ours: a model returned something unexpected, a worker panicked.
    Internal,
}

/// A domain error that knows its [`ErrorKind`].
pub trait Classify: std::error::Error {
    /// The kind of this error.
    fn kind(&self) -> ErrorKind;
}

/// An error of a given kind with its message: what the shared layers (networks, workers,
/// registries) return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// The kind.
    pub kind: ErrorKind,
    /// What went wrong, for the caller.
    pub message: String,
}

impl Error {
    /// An error of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// An [`ErrorKind::InvalidInput`] error.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    /// An [`ErrorKind::Internal`] error.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    /// Any classified error, keeping its kind and message.
    pub fn from_classified(error: &(impl Classify + ?Sized)) -> Self {
        Self::new(error.kind(), error.to_string())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl Classify for Error {
    fn kind(&self) -> ErrorKind {
        self.kind
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoed_input_is_cut_at_a_character_boundary() {
        assert_eq!(echo("mlic-q3"), "mlic-q3");
        let long = "é".repeat(100_000);
        let echoed = echo(&long);
        assert!(echoed.starts_with(&"é".repeat(ECHO_CHARS)));
        assert!(echoed.ends_with("(99800 more characters)"));
        assert!(echoed.len() < 500);
    }
}
