//! Typed errors: the kind tells a caller whether to retry later, fix the configuration, or
//! report the one file and move on.

use std::fmt;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriveErrorKind {
    /// Network trouble, a 5xx, or a quota still exhausted after backing off: try again later.
    Transient,
    /// Credentials missing, malformed or rejected: nothing works until the configuration changes.
    Auth,
    /// The file or folder does not exist, or these credentials cannot see it.
    NotFound,
    /// Drive refuses this operation on this file (no download permission, export too large,
    /// conversion not supported): permanent for this version of the file.
    Refused,
    /// The content is larger than the configured limit.
    TooLarge,
    /// A malformed request or response (a bug or an API change): permanent.
    Invalid,
}

#[derive(Debug)]
pub struct DriveError {
    pub kind: DriveErrorKind,
    /// HTTP status, when the error is an API answer.
    pub status: Option<u16>,
    /// The API's `errors[0].reason` (e.g. `userRateLimitExceeded`), or the OAuth `error` code.
    pub reason: Option<String>,
    /// A server-requested wait (`Retry-After`).
    pub retry_after: Option<Duration>,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl DriveError {
    pub fn new(kind: DriveErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            status: None,
            reason: None,
            retry_after: None,
            message: message.into(),
            source: None,
        }
    }

    pub fn with(
        kind: DriveErrorKind,
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self {
            source: Some(source.into()),
            ..Self::new(kind, message)
        }
    }

    /// True when the same call may succeed later.
    pub fn is_transient(&self) -> bool {
        self.kind == DriveErrorKind::Transient
    }

    /// A quota answer: 429, or 403 with a rate-limit reason.
    pub fn is_rate_limited(&self) -> bool {
        self.status == Some(429)
            || (self.status == Some(403)
                && matches!(
                    self.reason.as_deref(),
                    Some("userRateLimitExceeded" | "rateLimitExceeded")
                ))
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for DriveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(status) = self.status {
            write!(f, " (HTTP {status}")?;
            if let Some(r) = &self.reason {
                write!(f, ", {r}")?;
            }
            f.write_str(")")?;
        }
        if let Some(s) = &self.source {
            write!(f, ": {s}")?;
        }
        Ok(())
    }
}

impl std::error::Error for DriveError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Network-level failures of a request (connect, timeout, broken body): transient.
pub(crate) fn network(what: &str, e: reqwest::Error) -> DriveError {
    DriveError::with(DriveErrorKind::Transient, what.to_string(), e)
}
