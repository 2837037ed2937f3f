use kb_stream::{StreamError, StreamErrorKind};
use std::fmt;

/// Lets callers tell what to do: retry (`Transient`, `Conflict`) or report (the others).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchErrorKind {
    /// The broker is unreachable or timed out; the same call may succeed later.
    Transient,
    /// Another watcher (or a crashed run) changed the state entry in between; re-read and retry.
    Conflict,
    /// The watched folder itself cannot be read (missing, permissions).
    Io,
    /// The request makes no sense, e.g. a file outside the watched folder.
    Invalid,
    /// A stored state entry cannot be decoded.
    Corrupt,
}

#[derive(Debug)]
pub struct WatchError {
    pub kind: WatchErrorKind,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl WatchError {
    pub fn new(kind: WatchErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    pub fn with(
        kind: WatchErrorKind,
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self {
            kind,
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// True when retrying the same call may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self.kind,
            WatchErrorKind::Transient | WatchErrorKind::Conflict
        )
    }
}

impl fmt::Display for WatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(s) = &self.source {
            write!(f, ": {s}")?;
        }
        Ok(())
    }
}

impl std::error::Error for WatchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<StreamError> for WatchError {
    fn from(e: StreamError) -> Self {
        let kind = match e.kind {
            StreamErrorKind::Transient
            | StreamErrorKind::NotFound
            | StreamErrorKind::Full
            | StreamErrorKind::BrokerDown => WatchErrorKind::Transient,
            StreamErrorKind::Decode => WatchErrorKind::Corrupt,
            StreamErrorKind::Config => WatchErrorKind::Invalid,
        };
        Self::with(kind, "stream operation failed", e)
    }
}
