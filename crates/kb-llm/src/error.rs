//! The one error type of the crate, with a kind that tells callers what to do.

use kb_core::error::{Class, ClassKind, Error, ErrorKind};
use std::fmt;

/// What a caller should do with a failed extraction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LlmErrorKind {
    /// Worth retrying later (429, 5xx, timeout, connection refused): nak with a delay.
    Transient,
    /// The same document will fail again (400, 413, 422): do not retry it.
    Permanent,
    /// The setup is wrong (401, 403, 404, bad settings, unreadable key file): fix it;
    /// retrying any document fails the same way.
    Config,
}

impl ErrorKind for LlmErrorKind {
    const SUBSYSTEM: &'static str = "llm";

    fn class(self) -> Class {
        match self {
            Self::Transient => Class::Transient,
            Self::Permanent => Class::Permanent,
            Self::Config => Class::Configuration,
        }
    }

    /// `<class> LLM error: message[ (HTTP status)]`; the cause stays in `source()`.
    fn describe(e: &LlmError, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} LLM error: {}", e.kind.class(), e.message)?;
        if let Some(s) = e.status() {
            write!(f, " (HTTP {s})")?;
        }
        Ok(())
    }
}

impl ClassKind for LlmErrorKind {
    fn of(class: Class) -> Self {
        match class {
            Class::Transient => Self::Transient,
            Class::Permanent => Self::Permanent,
            Class::Configuration => Self::Config,
        }
    }
}

/// An LLM failure: its [`LlmErrorKind`], a message for operators (never the API key), the
/// HTTP status when there was one, a delay the server asked for, and the cause.
pub type LlmError = Error<LlmErrorKind>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;
    use std::time::Duration;

    #[test]
    fn display_kind_status_and_source() {
        let io = std::io::Error::other("reset");
        let e = LlmError::transient("server busy")
            .with_status(503)
            .with_retry_after(Some(Duration::from_secs(2)))
            .with_source(io);
        assert_eq!(e.to_string(), "transient LLM error: server busy (HTTP 503)");
        assert!(e.is_transient());
        assert_eq!(e.retry_after(), Some(Duration::from_secs(2)));
        assert_eq!(e.source().map(|s| s.to_string()), Some("reset".into()));
        assert!(!LlmError::config("bad key").is_transient());
    }
}
