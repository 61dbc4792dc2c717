//! Bearer-token authentication: `authorization: Bearer <token>` checked against the configured
//! tokens in constant time. Tokens are kept only as SHA-256 digests, so neither a log line nor a
//! `Debug` print of the configuration can reveal one.

use http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tonic::Status;

/// The accepted tokens, as SHA-256 digests.
pub struct TokenSet {
    digests: Vec<[u8; 32]>,
}

impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenSet({} token(s), redacted)", self.digests.len())
    }
}

fn digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

impl TokenSet {
    /// Accepts exactly `tokens`.
    pub fn new(tokens: &[String]) -> Self {
        Self {
            digests: tokens.iter().map(|t| digest(t.as_bytes())).collect(),
        }
    }

    /// Number of accepted tokens.
    pub fn len(&self) -> usize {
        self.digests.len()
    }

    /// True when no token is accepted (never the case for a loaded configuration).
    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// Whether `token` is one of the accepted tokens. Every stored digest is compared, each in
    /// constant time, so the time taken says nothing about which token or how much of it matched.
    pub fn accepts(&self, token: &[u8]) -> bool {
        let presented = digest(token);
        self.digests
            .iter()
            .fold(subtle::Choice::from(0), |found, stored| {
                found | stored.ct_eq(&presented)
            })
            .into()
    }

    /// Checks a call's `authorization` header; the error never echoes what was sent.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), Status> {
        let Some(value) = headers.get(http::header::AUTHORIZATION) else {
            return Err(Status::unauthenticated(
                "missing `authorization: Bearer <token>` metadata",
            ));
        };
        let bytes = value.as_bytes();
        let token = bytes
            .strip_prefix(b"Bearer ")
            .or_else(|| bytes.strip_prefix(b"bearer "))
            .ok_or_else(|| {
                Status::unauthenticated("authorization metadata is not `Bearer <token>`")
            })?;
        if self.accepts(token) {
            Ok(())
        } else {
            Err(Status::unauthenticated("invalid bearer token"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(value) = value {
            headers.insert(http::header::AUTHORIZATION, value.parse().unwrap());
        }
        headers
    }

    #[test]
    fn only_configured_tokens_pass() {
        let set = TokenSet::new(&[
            "first-token-0123456789".into(),
            "second-token-abcdefgh".into(),
        ]);
        assert!(
            set.check(&headers(Some("Bearer first-token-0123456789")))
                .is_ok()
        );
        assert!(
            set.check(&headers(Some("bearer second-token-abcdefgh")))
                .is_ok()
        );
        for bad in [
            None,
            Some("Bearer first-token-012345678"),
            Some("Bearer first-token-01234567890"),
            Some("Basic first-token-0123456789"),
            Some("first-token-0123456789"),
            Some("Bearer "),
        ] {
            let err = set.check(&headers(bad)).unwrap_err();
            assert_eq!(err.code(), tonic::Code::Unauthenticated, "{bad:?}");
            assert!(!err.message().contains("0123456789"), "{err:?}");
        }
        assert!(!format!("{set:?}").contains("token-"));
    }
}
