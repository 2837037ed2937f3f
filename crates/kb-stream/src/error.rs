use kb_core::error::{BoxError, Class, Error, ErrorKind};
use std::fmt;
use std::ops::Deref;
use std::time::Duration;

/// Lets callers decide by matching; its [`Class`] says what to do.
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
    /// The broker refused to store: a stream or the object store reached its byte limit, or
    /// JetStream ran out of storage. Nothing was trimmed; the write may be retried once space
    /// is freed.
    Full,
    /// JetStream does not answer: disabled (e.g. after a disk filled up; it needs a restart)
    /// or the stream is missing.
    BrokerDown,
}

/// How long a caller waits before retrying a full or absent broker: longer than any other
/// transient error, since it takes an operator (or the GC) to heal.
pub const BROKER_RETRY_AFTER: Duration = Duration::from_secs(30);

impl ErrorKind for StreamErrorKind {
    const SUBSYSTEM: &'static str = "broker";

    fn class(self) -> Class {
        match self {
            StreamErrorKind::Transient | StreamErrorKind::Full | StreamErrorKind::BrokerDown => {
                Class::Transient
            }
            StreamErrorKind::Decode | StreamErrorKind::NotFound => Class::Permanent,
            StreamErrorKind::Config => Class::Configuration,
        }
    }

    fn retry_after(self) -> Option<Duration> {
        match self {
            StreamErrorKind::Full | StreamErrorKind::BrokerDown => Some(BROKER_RETRY_AFTER),
            _ => None,
        }
    }

    /// `message[: cause][ (hint)]`: a full or absent broker says how to heal it.
    fn describe(e: &Error<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        e.write_message_and_source(f)?;
        if let Some(hint) = e.kind.hint() {
            write!(f, " ({hint})")?;
        }
        Ok(())
    }
}

impl StreamErrorKind {
    /// What an operator reads next to the error.
    pub const fn hint(self) -> Option<&'static str> {
        match self {
            StreamErrorKind::Full => Some(
                "the broker is full: free space (or raise nats.*_max_bytes / max_file_store); \
                 if JetStream was disabled, restart nats-server",
            ),
            StreamErrorKind::BrokerDown => Some(
                "JetStream does not answer: if it was disabled (a full disk), free space and \
                 restart nats-server",
            ),
            _ => None,
        }
    }
}

/// A broker error: the shared shape ([`Error`]) of a [`StreamErrorKind`], read through
/// `Deref` (`e.kind`, `e.class()`, `e.retry_after()`).
///
/// A newtype rather than an alias: the orphan rule allows inherent methods only on local
/// types, and the broker's constructors are its own (`write` classifies by the broker's
/// answer), used all over the stream code and the services.
#[derive(Debug, Clone)]
pub struct StreamError(pub Error<StreamErrorKind>);

impl StreamError {
    pub fn new(kind: StreamErrorKind, message: impl Into<String>) -> Self {
        Self(Error::new(kind, message))
    }

    pub fn with(
        kind: StreamErrorKind,
        message: impl Into<String>,
        source: impl Into<BoxError>,
    ) -> Self {
        Self(Error::with(kind, message, source))
    }

    pub fn transient(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::with(StreamErrorKind::Transient, message, source)
    }

    pub fn decode(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::with(StreamErrorKind::Decode, message, source)
    }

    /// A failed write to the broker (publish, object put, KV put): `Full` or `BrokerDown`
    /// when the broker says so, else `Transient`.
    pub fn write(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        let source = source.into();
        let kind = broker_refusal(&*source).unwrap_or(StreamErrorKind::Transient);
        Self::with(kind, message, source)
    }
}

impl Deref for StreamError {
    type Target = Error<StreamErrorKind>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl From<Error<StreamErrorKind>> for StreamError {
    fn from(e: Error<StreamErrorKind>) -> Self {
        Self(e)
    }
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for StreamError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// Whether the broker refused a write for lack of room (`Full`) or because JetStream is off
/// (`BrokerDown`), from the JetStream API error in `e`'s chain, or failing that its text
/// (the object store and KV wrap the API error in their own).
pub fn broker_refusal(e: &(dyn std::error::Error + 'static)) -> Option<StreamErrorKind> {
    use async_nats::jetstream::context::{PublishError, PublishErrorKind};
    use async_nats::jetstream::ErrorCode;
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut text = String::new();
    while let Some(err) = cur {
        if let Some(p) = err.downcast_ref::<PublishError>() {
            // No responders: no stream took the message (JetStream disabled, stream missing).
            if p.kind() == PublishErrorKind::StreamNotFound {
                return Some(StreamErrorKind::BrokerDown);
            }
        }
        if let Some(api) = err.downcast_ref::<async_nats::jetstream::Error>() {
            match api.error_code() {
                ErrorCode::INSUFFICIENT_RESOURCES
                | ErrorCode::STORAGE_RESOURCES_EXCEEDED
                | ErrorCode::MEMORY_RESOURCES_EXCEEDED
                | ErrorCode::ACCOUNT_RESOURCES_EXCEEDED => return Some(StreamErrorKind::Full),
                ErrorCode::JETSTREAM_NOT_ENABLED | ErrorCode::JETSTREAM_NOT_ENABLED_FOR_ACCOUNT => {
                    return Some(StreamErrorKind::BrokerDown)
                }
                _ => {}
            }
        }
        text.push_str(&err.to_string().to_ascii_lowercase());
        text.push('\n');
        cur = err.source();
    }
    const FULL: [&str; 5] = [
        "maximum bytes exceeded",
        "maximum messages exceeded",
        "insufficient resources",
        "resource limits exceeded",
        "no space left",
    ];
    if FULL.iter().any(|t| text.contains(t)) {
        Some(StreamErrorKind::Full)
    } else if text.contains("jetstream not enabled") {
        Some(StreamErrorKind::BrokerDown)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_classified_once() {
        use StreamErrorKind::*;
        for (kind, t) in [
            (Transient, Class::Transient),
            (Full, Class::Transient),
            (BrokerDown, Class::Transient),
            (Decode, Class::Permanent),
            (NotFound, Class::Permanent),
            (Config, Class::Configuration),
        ] {
            assert_eq!(kind.class(), t, "{kind:?}");
        }
        assert_eq!(Full.retry_after(), Some(BROKER_RETRY_AFTER));
        assert_eq!(Transient.retry_after(), None);
        let e = StreamError::write(
            "cannot publish",
            std::io::Error::other("maximum bytes exceeded"),
        );
        assert_eq!(e.kind, Full);
        assert!(e.is_transient());
        assert!(e.to_string().contains("free space"), "{e}");
        let e = StreamError::write("cannot publish", std::io::Error::other("timed out"));
        assert_eq!(e.kind, Transient);
    }
}
