//! The one error type every provider returns, with a kind that tells callers what to do.

use kb_core::error::{Class, ClassKind, Error, ErrorKind};
use std::fmt;

/// What a caller should do with a failed embedding call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EmbedErrorKind {
    /// Worth retrying later (rate limit, timeout, server busy): nak with a delay.
    Transient,
    /// Retrying the same input will fail again: dead-letter it.
    Permanent,
    /// The provider is misconfigured or not installed: fix the setup, do not retry in a loop.
    Config,
}

impl ErrorKind for EmbedErrorKind {
    const SUBSYSTEM: &'static str = "embedder";

    fn class(self) -> Class {
        match self {
            Self::Transient => Class::Transient,
            Self::Permanent => Class::Permanent,
            Self::Config => Class::Configuration,
        }
    }

    /// `<class> embedding error: message`; the cause stays in `source()`.
    fn describe(e: &EmbedError, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} embedding error: {}", e.kind.class(), e.message)
    }
}

impl ClassKind for EmbedErrorKind {
    fn of(class: Class) -> Self {
        match class {
            Class::Transient => Self::Transient,
            Class::Permanent => Self::Permanent,
            Class::Configuration => Self::Config,
        }
    }
}

/// An embedding failure: its [`EmbedErrorKind`], a message for operators, the cause, and
/// the provider's HTTP status and requested delay when it answered.
///
/// Cheap to clone (the cause is shared), because one failed request fails every input of it,
/// and those inputs may belong to several documents.
pub type EmbedError = Error<EmbedErrorKind>;

/// What the dispatcher asks of a provider's answer (a trait, since [`EmbedError`] is an
/// alias of the shared shape).
pub trait EmbedErrorExt {
    /// A rate-limit answer (HTTP 429): callers send fewer requests at once for a while.
    fn is_throttled(&self) -> bool;
    /// A rejection caused by the request's inputs (HTTP 400/413/422): the same inputs in
    /// smaller requests may pass, and one bad input must not fail its batch neighbours.
    fn is_input_specific(&self) -> bool;
}

impl EmbedErrorExt for EmbedError {
    fn is_throttled(&self) -> bool {
        self.status() == Some(429)
    }

    fn is_input_specific(&self) -> bool {
        matches!(self.status(), Some(400 | 413 | 422))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::error::Error as _;
    use std::time::Duration;

    #[test]
    fn display_names_kind_and_message_and_keeps_source() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let err = EmbedError::config("model missing").with_source(io);
        assert_eq!(
            err.to_string(),
            "configuration embedding error: model missing"
        );
        assert_eq!(err.kind(), EmbedErrorKind::Config);
        assert_eq!(err.source().map(|s| s.to_string()), Some("gone".into()));
    }

    #[test]
    fn retry_after_is_carried() {
        let err = EmbedError::transient("429").with_retry_after(Duration::from_secs(3));
        assert!(err.is_transient());
        assert_eq!(err.retry_after(), Some(Duration::from_secs(3)));
        assert_eq!(EmbedError::permanent("bad").retry_after(), None);
    }
}
