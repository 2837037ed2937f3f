//! Typed errors: the kind tells a caller whether to retry later, fix the configuration, or
//! report the one file and move on.

use kb_core::error::{Class, Error, ErrorKind};
use std::fmt;

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

impl ErrorKind for DriveErrorKind {
    const SUBSYSTEM: &'static str = "drive";

    fn class(self) -> Class {
        match self {
            DriveErrorKind::Transient => Class::Transient,
            DriveErrorKind::Auth => Class::Configuration,
            DriveErrorKind::NotFound
            | DriveErrorKind::Refused
            | DriveErrorKind::TooLarge
            | DriveErrorKind::Invalid => Class::Permanent,
        }
    }

    /// `message[ (HTTP status[, reason])][: cause]`.
    fn describe(e: &DriveError, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&e.message)?;
        if let Some(status) = e.status() {
            write!(f, " (HTTP {status}")?;
            if let Some(r) = e.code() {
                write!(f, ", {r}")?;
            }
            f.write_str(")")?;
        }
        if let Some(s) = std::error::Error::source(e) {
            write!(f, ": {s}")?;
        }
        Ok(())
    }
}

/// A Drive error: its kind, the HTTP status and the API's `errors[0].reason` (e.g.
/// `userRateLimitExceeded`) or OAuth `error` code as [`Error::code`], and a server-requested
/// wait (`Retry-After`) when the error is an API answer.
pub type DriveError = Error<DriveErrorKind>;

/// What only Drive's errors need (a trait, since [`DriveError`] is an alias of the shared
/// shape).
pub trait DriveErrorExt {
    /// A quota answer: 429, or 403 with a rate-limit reason.
    fn is_rate_limited(&self) -> bool;
}

impl DriveErrorExt for DriveError {
    fn is_rate_limited(&self) -> bool {
        self.status() == Some(429)
            || (self.status() == Some(403)
                && matches!(
                    self.code(),
                    Some("userRateLimitExceeded" | "rateLimitExceeded")
                ))
    }
}

/// Network-level failures of a request (connect, timeout, broken body): transient.
pub(crate) fn network(what: &str, e: reqwest::Error) -> DriveError {
    DriveError::with(DriveErrorKind::Transient, what.to_string(), e)
}
