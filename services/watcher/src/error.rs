use kb_core::error::{BoxError, Class, Error, ErrorKind};
use kb_stream::{StreamError, StreamErrorKind};
use std::fmt;
use std::ops::Deref;

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

impl ErrorKind for WatchErrorKind {
    const SUBSYSTEM: &'static str = "watcher";

    fn class(self) -> Class {
        match self {
            WatchErrorKind::Transient | WatchErrorKind::Conflict => Class::Transient,
            WatchErrorKind::Io | WatchErrorKind::Invalid | WatchErrorKind::Corrupt => {
                Class::Permanent
            }
        }
    }
}

/// The watcher's error: the shared shape ([`Error`]) of a [`WatchErrorKind`], read through
/// `Deref` (`e.kind`, `e.is_transient()`).
///
/// A newtype rather than an alias: `?` turns a [`StreamError`] into it, and the orphan rule
/// forbids `From` between two instances of the shared (foreign) type.
#[derive(Debug, Clone)]
pub struct WatchError(pub Error<WatchErrorKind>);

impl WatchError {
    pub fn new(kind: WatchErrorKind, message: impl Into<String>) -> Self {
        Self(Error::new(kind, message))
    }

    pub fn with(
        kind: WatchErrorKind,
        message: impl Into<String>,
        source: impl Into<BoxError>,
    ) -> Self {
        Self(Error::with(kind, message, source))
    }
}

impl Deref for WatchError {
    type Target = Error<WatchErrorKind>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl fmt::Display for WatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for WatchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
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
