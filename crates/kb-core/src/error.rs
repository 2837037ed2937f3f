//! The one error shape of the project: [`Error<K>`], a kind enum per subsystem (the broker,
//! the stores, a provider, the parser…) with a message and the cause. Each kind says once
//! which [`Class`] it is in, so every caller (the consume loop above all) decides the same
//! way: retry, give up, or wait for an operator.
//!
//! A subsystem names its error `pub type StoreError = Error<StoreErrorKind>`; what is
//! special to it stays in its kind ([`ErrorKind::retry_after`], [`ErrorKind::describe`]) or
//! in a small extension trait beside the alias, since the orphan rule keeps inherent methods
//! here.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Any error, boxed, as a cause.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The one question every caller asks of an error: try again, give up, or ask an operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// May succeed later on its own (a peer away, a timeout, a full disk being freed).
    Transient,
    /// Will fail the same way every time (malformed input, a body that is gone).
    Permanent,
    /// Needs an operator's fix (settings, a peer's configuration); a pipeline stage retries
    /// meanwhile, so a fix lets the work through without resending anything.
    Configuration,
}

impl Class {
    /// The word logs and messages use: "transient", "permanent", "configuration".
    pub const fn as_str(self) -> &'static str {
        match self {
            Class::Transient => "transient",
            Class::Permanent => "permanent",
            Class::Configuration => "configuration",
        }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A subsystem's kind enum: classified once, here, for every caller.
pub trait ErrorKind: fmt::Debug + Copy + PartialEq + Send + Sync + 'static {
    /// What fails with these kinds, as operators call it ("store", "embedder", "broker"…).
    const SUBSYSTEM: &'static str;

    fn class(self) -> Class;

    /// The least a retry should wait, when the kind implies one (a full broker).
    fn retry_after(self) -> Option<Duration> {
        None
    }

    /// How an error of this kind reads; by default `message[: cause]`.
    fn describe(e: &Error<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        e.write_message_and_source(f)
    }
}

/// A kind with one variant per [`Class`], so `Error::transient(…)` and friends can name it.
pub trait ClassKind: ErrorKind {
    fn of(class: Class) -> Self;
}

/// An error of kind `K`: what to do ([`Error::class`]), a message for operators, and the cause.
///
/// Cheap to clone (the cause is shared), since one failed request may fail several inputs.
#[derive(Debug, Clone)]
pub struct Error<K> {
    pub kind: K,
    pub message: String,
    source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
    status: Option<u16>,
    code: Option<String>,
    retry_after: Option<Duration>,
}

impl<K: ErrorKind> Error<K> {
    pub fn new(kind: K, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
            status: None,
            code: None,
            retry_after: None,
        }
    }

    /// An error with its cause.
    pub fn with(kind: K, message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::new(kind, message).with_source(source)
    }

    /// Attaches the underlying error, kept for `source()` chains.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(Arc::from(source.into()));
        self
    }

    /// The status code of the peer's answer (HTTP), when there was one.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// The peer's own name for the error (an API's reason, an OAuth `error`), when it gave one.
    pub fn with_code(mut self, code: impl Into<Option<String>>) -> Self {
        self.code = code.into();
        self
    }

    /// A delay the peer asked for (`Retry-After`); meaningful for transient errors.
    pub fn with_retry_after(mut self, delay: impl Into<Option<Duration>>) -> Self {
        self.retry_after = delay.into();
        self
    }

    pub fn kind(&self) -> K {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn class(&self) -> Class {
        self.kind.class()
    }

    /// Retry later (after [`Error::retry_after`] if given)?
    pub fn is_transient(&self) -> bool {
        self.class() == Class::Transient
    }

    pub fn status(&self) -> Option<u16> {
        self.status
    }

    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// The delay the peer asked for, else the one the kind implies.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after.or_else(|| self.kind.retry_after())
    }

    /// The default reading: `message[: cause]`.
    pub fn write_message_and_source(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(s) = &self.source {
            write!(f, ": {s}")?;
        }
        Ok(())
    }
}

impl<K: ClassKind> Error<K> {
    /// Worth retrying later.
    pub fn transient(message: impl Into<String>) -> Self {
        Self::new(K::of(Class::Transient), message)
    }

    /// Retrying the same input fails again.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self::new(K::of(Class::Permanent), message)
    }

    /// The setup is wrong: fix it.
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(K::of(Class::Configuration), message)
    }
}

impl<K: ErrorKind> fmt::Display for Error<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        K::describe(self, f)
    }
}

impl<K: ErrorKind> std::error::Error for Error<K> {
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

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Kind {
        Busy,
        Broken,
        Unset,
    }

    impl ErrorKind for Kind {
        const SUBSYSTEM: &'static str = "test";

        fn class(self) -> Class {
            match self {
                Kind::Busy => Class::Transient,
                Kind::Broken => Class::Permanent,
                Kind::Unset => Class::Configuration,
            }
        }
        fn retry_after(self) -> Option<Duration> {
            (self == Kind::Busy).then_some(Duration::from_secs(5))
        }
    }

    impl ClassKind for Kind {
        fn of(class: Class) -> Self {
            match class {
                Class::Transient => Kind::Busy,
                Class::Permanent => Kind::Broken,
                Class::Configuration => Kind::Unset,
            }
        }
    }

    #[test]
    fn the_kind_classifies_and_the_error_reads_message_and_cause() {
        let e = Error::with(Kind::Broken, "cannot read", std::io::Error::other("gone"));
        assert_eq!(e.class(), Class::Permanent);
        assert!(!e.is_transient());
        assert_eq!(e.to_string(), "cannot read: gone");
        assert_eq!(e.source().map(|s| s.to_string()), Some("gone".into()));
        assert_eq!(e.clone().kind(), Kind::Broken);

        let e = Error::<Kind>::transient("busy");
        assert!(e.is_transient());
        // The kind's delay, unless the peer asked for another.
        assert_eq!(e.retry_after(), Some(Duration::from_secs(5)));
        let e = e
            .with_retry_after(Duration::from_secs(1))
            .with_status(429)
            .with_code("rateLimitExceeded".to_owned());
        assert_eq!(e.retry_after(), Some(Duration::from_secs(1)));
        assert_eq!(e.status(), Some(429));
        assert_eq!(e.code(), Some("rateLimitExceeded"));
        assert_eq!(Error::<Kind>::config("x").class(), Class::Configuration);
        assert_eq!(Class::Configuration.to_string(), "configuration");
    }
}
