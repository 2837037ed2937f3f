use std::fmt;

/// Lets callers decide by matching: retry on `Transient`, give up on the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamErrorKind {
    /// Broker unreachable, timeout, or a request that may succeed later.
    Transient,
    /// A message that cannot be decoded or is otherwise malformed.
    Decode,
    /// A referenced object or record does not exist (any more).
    NotFound,
    /// Broker-side configuration refused (e.g. stream settings conflict).
    Config,
}

#[derive(Debug)]
pub struct StreamError {
    pub kind: StreamErrorKind,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl StreamError {
    pub fn new(kind: StreamErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }
    pub fn with(
        kind: StreamErrorKind,
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self {
            kind,
            message: message.into(),
            source: Some(source.into()),
        }
    }
    pub fn transient(
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::with(StreamErrorKind::Transient, message, source)
    }
    pub fn decode(
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::with(StreamErrorKind::Decode, message, source)
    }
    pub fn is_transient(&self) -> bool {
        self.kind == StreamErrorKind::Transient
    }
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(s) = &self.source {
            write!(f, ": {s}")?;
        }
        Ok(())
    }
}

impl std::error::Error for StreamError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
