//! The one error type of the crate, with a kind that tells callers what to do.

use std::fmt;
use std::time::Duration;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

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

impl fmt::Display for LlmErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Transient => "transient",
            Self::Permanent => "permanent",
            Self::Config => "configuration",
        })
    }
}

/// An LLM failure: its [`LlmErrorKind`], a message for operators (never the API key), the
/// HTTP status when there was one, a delay the server asked for, and the cause.
#[derive(Debug)]
pub struct LlmError {
    kind: LlmErrorKind,
    message: String,
    status: Option<u16>,
    retry_after: Option<Duration>,
    source: Option<BoxError>,
}

impl LlmError {
    pub fn new(kind: LlmErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            status: None,
            retry_after: None,
            source: None,
        }
    }

    pub fn transient(message: impl Into<String>) -> Self {
        Self::new(LlmErrorKind::Transient, message)
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self::new(LlmErrorKind::Permanent, message)
    }

    pub fn config(message: impl Into<String>) -> Self {
        Self::new(LlmErrorKind::Config, message)
    }

    /// Attaches the underlying error, kept for `source()` chains.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// A delay the server asked for (`Retry-After`); meaningful for transient errors.
    pub fn with_retry_after(mut self, delay: Option<Duration>) -> Self {
        self.retry_after = delay;
        self
    }

    pub fn kind(&self) -> LlmErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// The HTTP status of the failed call, if the server answered.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    pub fn is_transient(&self) -> bool {
        self.kind == LlmErrorKind::Transient
    }
}

impl fmt::Display for LlmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} LLM error: {}", self.kind, self.message)?;
        if let Some(s) = self.status {
            write!(f, " (HTTP {s})")?;
        }
        Ok(())
    }
}

impl std::error::Error for LlmError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

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
