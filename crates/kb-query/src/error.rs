//! What can go wrong answering a query, by kind: the caller's fault (400), nothing there
//! (404), nobody to ask (503). A store that is away is not an error: it makes the answer
//! degraded.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryErrorKind {
    /// The request is invalid; the message says which field and why.
    Invalid,
    /// The document or entity does not exist in any store that answered.
    NotFound,
    /// No store that could answer is reachable.
    Unavailable,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    pub kind: QueryErrorKind,
    pub message: String,
}

impl QueryError {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self {
            kind: QueryErrorKind::Invalid,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            kind: QueryErrorKind::NotFound,
            message: message.into(),
        }
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self {
            kind: QueryErrorKind::Unavailable,
            message: message.into(),
        }
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for QueryError {}
