use kb_core::error::{Class, ClassKind, Error, ErrorKind};

/// Whether retrying can help: callers match on this, never on messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// The store is unreachable or a transaction conflicted: retry later.
    Transient,
    /// The store did not answer within its deadline (transient): the writer counts these per
    /// document to tell a store that hangs from a document that cannot be written in time.
    Timeout,
    /// The change can never be applied as it is (e.g. vector dimension mismatch): dead-letter it.
    Permanent,
    /// The store is misconfigured (schema disagrees with settings): stop and tell the operator.
    Config,
}

impl ErrorKind for StoreErrorKind {
    const SUBSYSTEM: &'static str = "store";

    fn class(self) -> Class {
        match self {
            StoreErrorKind::Transient | StoreErrorKind::Timeout => Class::Transient,
            StoreErrorKind::Permanent => Class::Permanent,
            StoreErrorKind::Config => Class::Configuration,
        }
    }
}

impl ClassKind for StoreErrorKind {
    fn of(class: Class) -> Self {
        match class {
            Class::Transient => StoreErrorKind::Transient,
            Class::Permanent => StoreErrorKind::Permanent,
            Class::Configuration => StoreErrorKind::Config,
        }
    }
}

/// A store's error: `message[: cause]`, classified by its [`StoreErrorKind`].
pub type StoreError = Error<StoreErrorKind>;

/// What only a store's errors need (a trait, since [`StoreError`] is an alias of the shared
/// shape: bring it into scope to call `StoreError::timeout`).
pub trait StoreErrorExt {
    /// A deadline passed before the store answered: transient, and [`Self::is_timeout`].
    fn timeout(message: impl Into<String>) -> Self;
    /// Whether this is a deadline that passed (see [`Self::timeout`]).
    fn is_timeout(&self) -> bool;
}

impl StoreErrorExt for StoreError {
    fn timeout(message: impl Into<String>) -> Self {
        StoreError::new(StoreErrorKind::Timeout, message)
    }

    fn is_timeout(&self) -> bool {
        self.kind == StoreErrorKind::Timeout
    }
}
