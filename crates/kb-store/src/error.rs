use std::fmt;

/// Whether retrying can help: callers match on this, never on messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// The store is unreachable, timed out, or a transaction conflicted: retry later.
    Transient,
    /// The change can never be applied as it is (e.g. vector dimension mismatch): dead-letter it.
    Permanent,
    /// The store is misconfigured (schema disagrees with settings): stop and tell the operator.
    Config,
}

#[derive(Debug)]
pub struct StoreError {
    pub kind: StoreErrorKind,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
    /// The store did not answer within its deadline (a [`StoreErrorKind::Transient`] error):
    /// the writer counts these per document to tell a store that hangs from a document that
    /// cannot be written in time.
    timed_out: bool,
}

impl StoreError {
    pub fn new(kind: StoreErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
            timed_out: false,
        }
    }
    pub fn with_source(
        kind: StoreErrorKind,
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            kind,
            message: message.into(),
            source: Some(Box::new(source)),
            timed_out: false,
        }
    }
    pub fn transient(message: impl Into<String>) -> Self {
        Self::new(StoreErrorKind::Transient, message)
    }
    pub fn permanent(message: impl Into<String>) -> Self {
        Self::new(StoreErrorKind::Permanent, message)
    }
    /// A deadline passed before the store answered: transient, and [`Self::is_timeout`].
    pub fn timeout(message: impl Into<String>) -> Self {
        Self {
            timed_out: true,
            ..Self::transient(message)
        }
    }
    pub fn is_transient(&self) -> bool {
        self.kind == StoreErrorKind::Transient
    }
    /// Whether this is a deadline that passed (see [`Self::timeout`]).
    pub fn is_timeout(&self) -> bool {
        self.timed_out
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)?;
        if let Some(src) = &self.source {
            write!(f, ": {src}")?;
        }
        Ok(())
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
