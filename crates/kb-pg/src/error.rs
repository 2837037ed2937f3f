//! Maps driver errors to [`StoreError`] kinds so callers can tell retry from dead-letter.

use kb_store::{StoreError, StoreErrorKind};
use sqlx::migrate::MigrateError;

/// Wraps a driver error with what we were doing, classified by [`kind_of`].
pub(crate) fn store_error(context: impl Into<String>, err: sqlx::Error) -> StoreError {
    StoreError::with(kind_of(&err), context, err)
}

/// Wraps a migration error: a broken or edited migration history is the operator's to fix.
pub(crate) fn migrate_error(err: MigrateError) -> StoreError {
    let kind = match &err {
        MigrateError::Execute(e) | MigrateError::ExecuteMigration(e, _) => match kind_of(e) {
            StoreErrorKind::Transient => StoreErrorKind::Transient,
            _ => StoreErrorKind::Config,
        },
        _ => StoreErrorKind::Config,
    };
    StoreError::with(kind, "running the Postgres migrations", err)
}

pub(crate) fn config(message: impl Into<String>) -> StoreError {
    StoreError::new(StoreErrorKind::Config, message)
}

pub(crate) fn kind_of(err: &sqlx::Error) -> StoreErrorKind {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_)
        | sqlx::Error::BeginFailed => StoreErrorKind::Transient,
        sqlx::Error::Database(db) => match db.code() {
            Some(code) => kind_of_sqlstate(&code),
            None => StoreErrorKind::Transient,
        },
        // Bad URL, TLS refused by the server, missing `vector` type, schema not as expected.
        sqlx::Error::Configuration(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::TypeNotFound { .. }
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. }
        | sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::Migrate(_) => StoreErrorKind::Config,
        sqlx::Error::Encode(_) | sqlx::Error::InvalidArgument(_) => StoreErrorKind::Permanent,
        _ => StoreErrorKind::Transient,
    }
}

/// SQLSTATE classes, see the PostgreSQL manual's "Error Codes" appendix.
fn kind_of_sqlstate(code: &str) -> StoreErrorKind {
    match code {
        // serialization failure, deadlock, lock not available, statement timeout / cancel,
        // server shutting down or starting.
        "40001" | "40P01" | "55P03" | "57014" | "57P01" | "57P02" | "57P03" => {
            StoreErrorKind::Transient
        }
        // Foreign key violation: input is validated before writing, so this is a race with
        // another document's orphan-entity cleanup; the retry re-creates the entity.
        "23503" => StoreErrorKind::Transient,
        "3D000" => StoreErrorKind::Config,
        c if c.starts_with("08") || c.starts_with("53") || c.starts_with("58") => {
            StoreErrorKind::Transient
        }
        c if c.starts_with("XX") => StoreErrorKind::Transient,
        // auth, undefined objects, privileges, unsupported features: fix the setup.
        c if c.starts_with("28") || c.starts_with("42") || c.starts_with("0A") => {
            StoreErrorKind::Config
        }
        // data exceptions (e.g. a vector of the wrong dimension), constraint violations,
        // program limits (a row too large): this input will never go in.
        c if c.starts_with("22") || c.starts_with("23") || c.starts_with("54") => {
            StoreErrorKind::Permanent
        }
        _ => StoreErrorKind::Transient,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_map_to_the_right_kind() {
        assert_eq!(kind_of_sqlstate("40001"), StoreErrorKind::Transient);
        assert_eq!(kind_of_sqlstate("40P01"), StoreErrorKind::Transient);
        assert_eq!(kind_of_sqlstate("08006"), StoreErrorKind::Transient);
        assert_eq!(kind_of_sqlstate("53300"), StoreErrorKind::Transient);
        assert_eq!(kind_of_sqlstate("28P01"), StoreErrorKind::Config);
        assert_eq!(kind_of_sqlstate("3D000"), StoreErrorKind::Config);
        assert_eq!(kind_of_sqlstate("42P01"), StoreErrorKind::Config);
        assert_eq!(kind_of_sqlstate("22000"), StoreErrorKind::Permanent);
        assert_eq!(kind_of_sqlstate("23505"), StoreErrorKind::Permanent);
        assert_eq!(kind_of_sqlstate("23503"), StoreErrorKind::Transient);
    }

    #[test]
    fn unreachable_server_is_transient() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(kind_of(&sqlx::Error::Io(io)), StoreErrorKind::Transient);
        assert_eq!(
            kind_of(&sqlx::Error::PoolTimedOut),
            StoreErrorKind::Transient
        );
    }
}
