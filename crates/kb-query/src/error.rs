//! What can go wrong answering a query, by kind: the caller's fault (400), nothing there
//! (404), nobody to ask (503). A store that is away is not an error: it makes the answer
//! degraded.

use kb_core::error::{Class, Error, ErrorKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryErrorKind {
    /// The request is invalid; the message says which field and why.
    Invalid,
    /// The document or entity does not exist in any store that answered.
    NotFound,
    /// No store that could answer is reachable.
    Unavailable,
}

impl ErrorKind for QueryErrorKind {
    const SUBSYSTEM: &'static str = "query";

    fn class(self) -> Class {
        match self {
            QueryErrorKind::Invalid | QueryErrorKind::NotFound => Class::Permanent,
            QueryErrorKind::Unavailable => Class::Transient,
        }
    }
}

/// A query's error: its message, classified by its [`QueryErrorKind`].
pub type QueryError = Error<QueryErrorKind>;

/// The query's constructors (a trait, since [`QueryError`] is an alias of the shared shape).
pub trait QueryErrorExt {
    fn invalid(message: impl Into<String>) -> Self;
    fn not_found(message: impl Into<String>) -> Self;
    fn unavailable(message: impl Into<String>) -> Self;
}

impl QueryErrorExt for QueryError {
    fn invalid(message: impl Into<String>) -> Self {
        QueryError::new(QueryErrorKind::Invalid, message)
    }

    fn not_found(message: impl Into<String>) -> Self {
        QueryError::new(QueryErrorKind::NotFound, message)
    }

    fn unavailable(message: impl Into<String>) -> Self {
        QueryError::new(QueryErrorKind::Unavailable, message)
    }
}
