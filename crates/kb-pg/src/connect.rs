//! From the `[postgres]` settings to sqlx connect options: TLS that verifies the server by
//! default, and server-side time limits on every session.
//!
//! - **TLS.** The URL's `sslmode` wins when it names one; otherwise `postgres.ssl_mode`;
//!   otherwise `PGSSLMODE` (libpq's variable, which sqlx reads); otherwise `verify-full` for a
//!   remote host and sqlx's `prefer` for loopback and Unix sockets, where there is no network
//!   to trust. `postgres.ssl_root_cert` names the CA unless the URL names one (`sslrootcert`).
//!   `require` encrypts without checking whom it talks to: it is allowed, with a warning.
//! - **Time limits.** `statement_timeout`, `lock_timeout` and
//!   `idle_in_transaction_session_timeout` from `postgres.statement_timeout_ms`, sent in the
//!   startup packet, so the server ends a statement that runs away, a lock wait, and a
//!   transaction whose client went silent (releasing its locks) on its own. Schema work (the
//!   migrations, the HNSW build) lifts them for its own session.
//! - **Vector search.** `hnsw.ef_search` (the default query depth) and an iterative scan, in
//!   the startup packet too, so a search is one statement and not a transaction of four.

use std::net::IpAddr;
use std::str::FromStr;

use kb_core::settings::{PostgresSettings, SslMode};
use kb_store::{StoreError, StoreErrorKind};
use sqlx::postgres::{PgConnectOptions, PgSslMode};

use crate::error::store_error;
use crate::query::SESSION_EF_SEARCH;

/// The session settings the server enforces, all from `postgres.statement_timeout_ms`.
const SERVER_TIMEOUTS: [&str; 3] = [
    "statement_timeout",
    "lock_timeout",
    "idle_in_transaction_session_timeout",
];

/// The sqlx options for `settings`, with the session settings every connection starts with:
/// the server-side time limits, and the vector search's (see `query::nearest`). The search
/// settings are pgvector's; a server without pgvector keeps them as unused placeholders.
pub(crate) fn connect_options(settings: &PostgresSettings) -> Result<PgConnectOptions, StoreError> {
    let url = settings.url.expose();
    let mut options = PgConnectOptions::from_str(url)
        .map_err(|e| store_error("parsing the Postgres URL (postgres.url)", e))?;
    if !settings.password.is_empty() {
        options = options.password(settings.password.expose());
    }
    let env_mode = std::env::var_os("PGSSLMODE").is_some_and(|v| !v.is_empty());
    let chosen = choose_ssl_mode(
        url_names(url, &["sslmode", "ssl-mode"]),
        settings.ssl_mode,
        env_mode,
        is_local(&options),
    );
    if let Some(mode) = chosen {
        options = options.ssl_mode(pg_ssl_mode(mode));
    }
    if let Some(ca) = &settings.ssl_root_cert {
        if !url_names(url, &["sslrootcert", "ssl-root-cert", "ssl-ca"]) {
            options = options.ssl_root_cert(ca);
        }
    }
    if matches!(options.get_ssl_mode(), PgSslMode::Require) {
        tracing::warn!(
            host = options.get_host(),
            "postgres sslmode=require encrypts but does not verify the server; use verify-full \
             (postgres.ssl_mode, with postgres.ssl_root_cert for a private CA)"
        );
    }
    let limit = settings.statement_timeout_ms.to_string();
    let ef_search = SESSION_EF_SEARCH.to_string();
    let already = options.get_options().unwrap_or_default().to_owned();
    let session: Vec<(&str, &str)> = SERVER_TIMEOUTS
        .into_iter()
        .map(|name| (name, limit.as_str()))
        .chain([
            ("hnsw.ef_search", ef_search.as_str()),
            ("hnsw.iterative_scan", "relaxed_order"),
        ])
        .filter(|(name, _)| !already.contains(name))
        .collect();
    if !session.is_empty() {
        options = options.options(session);
    }
    Ok(options)
}

/// The TLS mode to set, or `None` to keep what the URL or the environment gave sqlx.
fn choose_ssl_mode(
    url_names_mode: bool,
    setting: Option<SslMode>,
    env_names_mode: bool,
    local: bool,
) -> Option<SslMode> {
    if url_names_mode {
        return None;
    }
    if setting.is_some() {
        return setting;
    }
    if env_names_mode || local {
        return None;
    }
    Some(SslMode::VerifyFull)
}

fn pg_ssl_mode(mode: SslMode) -> PgSslMode {
    match mode {
        SslMode::Disable => PgSslMode::Disable,
        SslMode::Allow => PgSslMode::Allow,
        SslMode::Prefer => PgSslMode::Prefer,
        SslMode::Require => PgSslMode::Require,
        SslMode::VerifyCa => PgSslMode::VerifyCa,
        SslMode::VerifyFull => PgSslMode::VerifyFull,
    }
}

/// The `sslmode` name of `mode`, as libpq and the URL spell it.
fn libpq_name(mode: PgSslMode) -> &'static str {
    match mode {
        PgSslMode::Disable => "disable",
        PgSslMode::Allow => "allow",
        PgSslMode::Prefer => "prefer",
        PgSslMode::Require => "require",
        PgSslMode::VerifyCa => "verify-ca",
        PgSslMode::VerifyFull => "verify-full",
    }
}

/// Whether the URL's query names one of `keys`.
fn url_names(url: &str, keys: &[&str]) -> bool {
    let Some((_, query)) = url.split_once('?') else {
        return false;
    };
    let query = query.split('#').next().unwrap_or_default();
    query
        .split('&')
        .filter_map(|pair| pair.split('=').next())
        .any(|key| keys.contains(&key))
}

/// A Unix socket or a loopback address: nobody on a network to verify.
fn is_local(options: &PgConnectOptions) -> bool {
    if options.get_socket().is_some() {
        return true;
    }
    let host = options.get_host();
    if host.starts_with('/') || host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A connect error, with what to check when TLS was refused.
pub(crate) fn connect_error(options: &PgConnectOptions, err: sqlx::Error) -> StoreError {
    if let sqlx::Error::Tls(_) = &err {
        let mode = libpq_name(options.get_ssl_mode());
        return StoreError::with(
            StoreErrorKind::Config,
            format!(
                "connecting to Postgres at {} with TLS ({mode}) failed: check \
                 postgres.ssl_root_cert (the CA that signed the server's certificate; \
                 `sslrootcert` in the URL) and that the URL's host is the name in the \
                 certificate; postgres.ssl_mode (or `sslmode` in the URL) chooses how much \
                 is checked",
                options.get_host()
            ),
            err,
        );
    }
    store_error("connecting to Postgres", err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kb_core::Secret;

    fn settings(url: &str) -> PostgresSettings {
        PostgresSettings {
            url: Secret::new(url),
            ..PostgresSettings::default()
        }
    }

    fn mode_of(s: &PostgresSettings) -> PgSslMode {
        connect_options(s)
            .map(|o| o.get_ssl_mode())
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_ssl_mode_follows_url_then_setting_then_host() {
        use PgSslMode as M;
        // Every case leaves PGSSLMODE alone (the environment is the process's); unset here.
        if std::env::var_os("PGSSLMODE").is_some() {
            eprintln!("PGSSLMODE is set: skipping the defaulting cases");
            return;
        }
        let cases: &[(&str, Option<SslMode>, M)] = &[
            // A remote host without sslmode: verify the server.
            ("postgres://kb@db.example.com/kb", None, M::VerifyFull),
            ("postgres://kb@10.1.2.3:5432/kb", None, M::VerifyFull),
            ("postgres://kb@[2001:db8::1]:5432/kb", None, M::VerifyFull),
            // Loopback and sockets: nothing on a network; sqlx's default (prefer).
            ("postgres://kb@127.0.0.1:5433/kb", None, M::Prefer),
            ("postgres://kb@localhost/kb", None, M::Prefer),
            ("postgres://kb@[::1]:5433/kb", None, M::Prefer),
            (
                "postgres://kb@%2Fvar%2Frun%2Fpostgresql/kb",
                None,
                M::Prefer,
            ),
            (
                "postgres://kb@db.example.com/kb?host=/var/run/postgresql",
                None,
                M::Prefer,
            ),
            // The URL's sslmode wins over everything.
            (
                "postgres://kb@db.example.com/kb?sslmode=require",
                None,
                M::Require,
            ),
            (
                "postgres://kb@db.example.com/kb?sslmode=disable",
                Some(SslMode::VerifyFull),
                M::Disable,
            ),
            (
                "postgres://kb@127.0.0.1/kb?ssl-mode=verify-ca",
                None,
                M::VerifyCa,
            ),
            // Else the setting, for any host.
            (
                "postgres://kb@db.example.com/kb",
                Some(SslMode::VerifyCa),
                M::VerifyCa,
            ),
            (
                "postgres://kb@127.0.0.1/kb",
                Some(SslMode::VerifyFull),
                M::VerifyFull,
            ),
            (
                "postgres://kb@db.example.com/kb",
                Some(SslMode::Disable),
                M::Disable,
            ),
        ];
        for (url, setting, want) in cases {
            let s = PostgresSettings {
                ssl_mode: *setting,
                ..settings(url)
            };
            let got = mode_of(&s);
            assert_eq!(
                format!("{got:?}"),
                format!("{want:?}"),
                "{url} with {setting:?}"
            );
        }
    }

    #[test]
    fn an_environment_sslmode_counts_as_named() {
        assert_eq!(choose_ssl_mode(false, None, true, false), None);
        assert_eq!(
            choose_ssl_mode(false, Some(SslMode::Require), true, false),
            Some(SslMode::Require)
        );
        assert_eq!(
            choose_ssl_mode(true, Some(SslMode::Require), false, false),
            None
        );
        assert_eq!(
            choose_ssl_mode(false, None, false, false),
            Some(SslMode::VerifyFull)
        );
        assert_eq!(choose_ssl_mode(false, None, false, true), None);
    }

    #[test]
    fn every_session_gets_the_server_side_time_limits() {
        let s = PostgresSettings {
            statement_timeout_ms: 1234,
            ..settings("postgres://kb@127.0.0.1:5433/kb")
        };
        let options = connect_options(&s).unwrap_or_else(|e| panic!("{e}"));
        let text = options.get_options().unwrap_or_default();
        for name in SERVER_TIMEOUTS {
            assert!(text.contains(&format!("-c {name}=1234")), "{text}");
        }
        // A limit the URL sets itself is left as it is.
        let s = PostgresSettings {
            statement_timeout_ms: 1234,
            ..settings("postgres://kb@127.0.0.1/kb?options[statement_timeout]=99")
        };
        let text = connect_options(&s)
            .unwrap_or_else(|e| panic!("{e}"))
            .get_options()
            .unwrap_or_default()
            .to_owned();
        assert!(text.contains("statement_timeout=99"), "{text}");
        assert!(!text.contains("statement_timeout=1234"), "{text}");
        assert!(text.contains("lock_timeout=1234"), "{text}");
    }

    #[test]
    fn the_root_certificate_setting_is_used_unless_the_url_names_one() {
        assert!(url_names(
            "postgres://h/kb?sslmode=verify-full&sslrootcert=/ca.pem",
            &["sslrootcert"]
        ));
        assert!(!url_names(
            "postgres://h/kb?sslmode=verify-full",
            &["sslrootcert"]
        ));
        assert!(!url_names("postgres://h/sslrootcert", &["sslrootcert"]));
        // The setting reaches the options (sqlx has no getter: a missing file shows on connect).
        let s = PostgresSettings {
            ssl_root_cert: Some("/nonexistent/ca.pem".into()),
            ..settings("postgres://kb@db.example.com/kb")
        };
        assert!(connect_options(&s).is_ok());
    }

    #[test]
    fn a_bad_url_names_the_setting() {
        let err = connect_options(&settings("postgres://kb@db:notaport/kb")).expect_err("bad port");
        assert!(err.to_string().contains("postgres.url"), "{err}");
    }
}
