//! The one error type every provider returns, with a kind that tells callers what to do.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

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

impl fmt::Display for EmbedErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Transient => "transient",
            Self::Permanent => "permanent",
            Self::Config => "configuration",
        })
    }
}

/// An embedding failure: its [`EmbedErrorKind`], a message for operators, and the cause.
///
/// Cheap to clone (the cause is shared), because one failed request fails every input of it,
/// and those inputs may belong to several documents.
#[derive(Debug, Clone)]
pub struct EmbedError {
    pub kind: EmbedErrorKind,
    message: String,
    source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
    retry_after: Option<Duration>,
    throttled: bool,
    input_specific: bool,
}

impl EmbedError {
    pub fn new(kind: EmbedErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
            retry_after: None,
            throttled: false,
            input_specific: false,
        }
    }

    pub fn transient(message: impl Into<String>) -> Self {
        Self::new(EmbedErrorKind::Transient, message)
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self::new(EmbedErrorKind::Permanent, message)
    }

    pub fn config(message: impl Into<String>) -> Self {
        Self::new(EmbedErrorKind::Config, message)
    }

    /// Attaches the underlying error, kept for `source()` chains.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(Arc::from(source.into()));
        self
    }

    /// Marks a rate-limit answer (HTTP 429): callers send fewer requests at once for a while.
    pub fn throttled(mut self) -> Self {
        self.throttled = true;
        self
    }

    /// Marks a rejection caused by the request's inputs (HTTP 400/413/422): the same inputs in
    /// smaller requests may pass, and one bad input must not fail its batch neighbours.
    pub fn input_specific(mut self) -> Self {
        self.input_specific = true;
        self
    }

    /// A delay the provider asked for (e.g. `Retry-After`); meaningful for transient errors.
    pub fn with_retry_after(mut self, delay: Duration) -> Self {
        self.retry_after = Some(delay);
        self
    }

    pub fn kind(&self) -> EmbedErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    pub fn is_transient(&self) -> bool {
        self.kind == EmbedErrorKind::Transient
    }

    pub fn is_throttled(&self) -> bool {
        self.throttled
    }

    pub fn is_input_specific(&self) -> bool {
        self.input_specific
    }
}

impl fmt::Display for EmbedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} embedding error: {}", self.kind, self.message)
    }
}

impl std::error::Error for EmbedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::error::Error as _;

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
