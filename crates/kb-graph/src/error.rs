//! Maps Bolt driver errors onto the store's retry classes.

use kb_store::{StoreError, StoreErrorKind};
use neo4rs::{Neo4jClientErrorKind, Neo4jErrorKind};

/// Classifies a driver error, naming what was being done.
pub(crate) fn classify(context: &str, err: neo4rs::Error) -> StoreError {
    let kind = kind_of(&err);
    StoreError::with(kind, format!("graph: {context}"), err)
}

fn kind_of(err: &neo4rs::Error) -> StoreErrorKind {
    use neo4rs::Error as E;
    if let Some(code) = server_code(err) {
        return server_kind(code);
    }
    match err {
        // Refused, reset, broken pipe, pool exhaustion, a reply out of step (a connection
        // in a bad state): a new connection later may well succeed.
        E::IOError { .. } | E::ConnectionError | E::UnexpectedMessage(_) => {
            StoreErrorKind::Transient
        }
        E::UrlParseError(_)
        | E::UnsupportedScheme(_)
        | E::InvalidDnsName(_)
        | E::InvalidConfig
        | E::AuthenticationError(_)
        | E::UnsupportedVersion(_) => StoreErrorKind::Config,
        // Oversized values, unknown types, undecodable rows: retrying sends the same thing.
        _ => StoreErrorKind::Permanent,
    }
}

/// The server's status code, e.g. `Neo.TransientError.Transaction.DeadlockDetected`.
///
/// neo4rs 0.8 reports a FAILURE answering BEGIN or COMMIT as `UnexpectedMessage` with the
/// failure's debug text, so the code is dug out of that text; COMMIT is exactly where
/// ArcadeDB reports its optimistic-concurrency conflicts.
fn server_code(err: &neo4rs::Error) -> Option<&str> {
    match err {
        neo4rs::Error::Neo4j(e) => Some(e.code()),
        neo4rs::Error::UnexpectedMessage(text) => code_in(text),
        _ => None,
    }
}

fn code_in(text: &str) -> Option<&str> {
    let start = text.find("Neo.")?;
    let rest = &text[start..];
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.'))
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

fn server_kind(code: &str) -> StoreErrorKind {
    match Neo4jErrorKind::from(code) {
        // Deadlocks, lock timeouts, unavailable database, ArcadeDB's concurrent-modification
        // conflicts (reported as DeadlockDetected).
        Neo4jErrorKind::Transient => StoreErrorKind::Transient,
        Neo4jErrorKind::Client(c) => match c {
            Neo4jClientErrorKind::SessionExpired | Neo4jClientErrorKind::TransactionTerminated => {
                StoreErrorKind::Transient
            }
            Neo4jClientErrorKind::Security(_) | Neo4jClientErrorKind::FatalDiscovery => {
                StoreErrorKind::Config
            }
            _ if is_constraint_race(code) || code.ends_with(".TransactionTimedOut") => {
                StoreErrorKind::Transient
            }
            // Syntax, semantic, type errors in our own statements: retrying cannot help.
            _ => StoreErrorKind::Permanent,
        },
        // The server failed to serve the request (out of memory, I/O): not our query.
        Neo4jErrorKind::Database | Neo4jErrorKind::Unknown => StoreErrorKind::Transient,
    }
}

/// Every write here MERGEs on the constrained key, so a uniqueness violation means another
/// transaction created the same key concurrently (ArcadeDB checks keys at commit instead of
/// locking as Neo4j does); running the transaction again finds the node and merges.
fn is_constraint_race(code: &str) -> bool {
    code == "Neo.ClientError.Schema.ConstraintValidationFailed"
}

/// Whether an error is a write conflict worth retrying at once inside the store, rather than
/// handing it back to the caller's slower redelivery.
pub(crate) fn is_conflict(err: &StoreError) -> bool {
    use std::error::Error as _;
    let code = err
        .source()
        .and_then(|s| s.downcast_ref::<neo4rs::Error>())
        .and_then(server_code);
    match code {
        Some(code) => {
            matches!(Neo4jErrorKind::from(code), Neo4jErrorKind::Transient)
                || is_constraint_race(code)
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_found_in_commit_failures() {
        let text = "unexpected response for COMMIT: Failure(Failure { metadata: BoltMap { value: \
            {BoltString { value: \"code\" }: String(BoltString { value: \
            \"Neo.ClientError.Schema.ConstraintValidationFailed\" })} } })";
        let err = classify("commit", neo4rs::Error::UnexpectedMessage(text.into()));
        assert_eq!(err.kind, StoreErrorKind::Transient);
        assert!(is_conflict(&err));
    }

    #[test]
    fn server_codes_map_to_retry_classes() {
        let cases = [
            (
                "Neo.TransientError.Transaction.DeadlockDetected",
                StoreErrorKind::Transient,
            ),
            (
                "Neo.ClientError.Cluster.NotALeader",
                StoreErrorKind::Transient,
            ),
            (
                "Neo.ClientError.Statement.SyntaxError",
                StoreErrorKind::Permanent,
            ),
            (
                "Neo.ClientError.Statement.SemanticError",
                StoreErrorKind::Permanent,
            ),
            (
                "Neo.ClientError.Security.Unauthorized",
                StoreErrorKind::Config,
            ),
            (
                "Neo.ClientError.Database.DatabaseNotFound",
                StoreErrorKind::Config,
            ),
            (
                "Neo.DatabaseError.General.UnknownError",
                StoreErrorKind::Transient,
            ),
        ];
        for (code, kind) in cases {
            assert_eq!(server_kind(code), kind, "{code}");
        }
    }

    #[test]
    fn a_refused_connection_is_transient_and_not_a_conflict() {
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let err = classify("connect", neo4rs::Error::from(io));
        assert_eq!(err.kind, StoreErrorKind::Transient);
        assert!(!is_conflict(&err));
    }
}
