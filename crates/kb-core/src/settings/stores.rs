//! The `[postgres]` and `[neo4j]` sections: the two stores, as the writers, `kb replay` and
//! the read side reach them.

use std::path::PathBuf;

use serde::Deserialize;

use crate::secret::Secret;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PostgresSettings {
    /// The seed's rollback switch: a disabled writer consumes nothing and catches up when enabled.
    pub enabled: bool,
    pub url: Secret,
    /// When set, replaces the URL's password, so the URL can live in plain configuration and
    /// the password in a secrets file (`KB_POSTGRES__PASSWORD_FILE`).
    pub password: Secret,
    pub max_connections: u32,
    /// TLS mode when the URL names no `sslmode`. Unset: `verify-full` for a remote host,
    /// `prefer` for loopback and Unix sockets.
    pub ssl_mode: Option<SslMode>,
    /// CA certificate(s) (PEM) the server's certificate is verified with.
    pub ssl_root_cert: Option<PathBuf>,
    /// Server-side bound on one statement, a lock wait and an idle transaction.
    pub statement_timeout_ms: u64,
    /// Client-side deadline of one document's apply, plus 1 s per 500 chunks.
    pub apply_timeout_secs: u64,
}

/// libpq's `sslmode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    Disable,
    Allow,
    Prefer,
    /// Encrypts, but does not check whom it talks to.
    Require,
    /// Checks the certificate chain, not the host name.
    VerifyCa,
    /// Checks the certificate chain and that it names the host.
    VerifyFull,
}

impl SslMode {
    /// The libpq name (`verify-full`, ...), as in a URL's `sslmode=`.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

impl Default for PostgresSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            url: Secret::new("postgres://postgres@127.0.0.1:5433/kb"),
            password: Secret::default(),
            max_connections: 8,
            ssl_mode: None,
            ssl_root_cert: None,
            statement_timeout_ms: 30_000,
            apply_timeout_secs: 60,
        }
    }
}

impl PostgresSettings {
    /// Validation problems of this section.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let url = self.url.expose();
        if !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
            p.push(
                "postgres.url (KB_POSTGRES_URL) must be a postgres:// or postgresql:// URL".into(),
            );
        }
        if self.max_connections == 0 {
            p.push("postgres.max_connections must be at least 1".into());
        }
        if let Some(f) = self.ssl_root_cert.as_ref().filter(|f| !f.is_file()) {
            p.push(format!(
                "postgres.ssl_root_cert {} is not a file",
                f.display()
            ));
        }
        if self.statement_timeout_ms == 0 || self.apply_timeout_secs == 0 {
            p.push(
                "postgres.statement_timeout_ms and postgres.apply_timeout_secs must be at least 1"
                    .into(),
            );
        }
        p
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Neo4jSettings {
    pub enabled: bool,
    pub uri: String,
    pub user: String,
    pub password: Secret,
    /// Database name; the server's default when unset.
    pub database: Option<String>,
    pub max_connections: usize,
    /// Deadline of one document's apply, plus 1 s per 500 chunks.
    pub apply_timeout_secs: u64,
    /// Accept the `+ssc` schemes (TLS without checking the certificate).
    pub allow_self_signed: bool,
}

impl Default for Neo4jSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            uri: "bolt://127.0.0.1:7687".into(),
            user: "neo4j".into(),
            password: Secret::default(),
            database: None,
            max_connections: 8,
            apply_timeout_secs: 60,
            allow_self_signed: false,
        }
    }
}

impl Neo4jSettings {
    /// Validation problems of this section.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let scheme = self.uri.split_once("://").map(|(s, _)| s);
        match scheme {
            Some("bolt" | "bolt+s" | "neo4j" | "neo4j+s") => {}
            Some("bolt+ssc" | "neo4j+ssc") if self.allow_self_signed => {}
            Some(s @ ("bolt+ssc" | "neo4j+ssc")) => p.push(format!(
                "neo4j.uri: {s}:// does not check the server's certificate; use {}:// with a \
                 trusted certificate, or set neo4j.allow_self_signed = true",
                s.trim_end_matches("+ssc").to_owned() + "+s"
            )),
            _ => p.push(format!(
                "neo4j.uri (KB_NEO4J_URI) must be a bolt:// or neo4j:// URI, got {:?}",
                crate::secret::redact_url(&self.uri)
            )),
        }
        if self.user.is_empty() {
            p.push("neo4j.user (KB_NEO4J_USER) is empty".into());
        }
        if self.max_connections == 0 {
            p.push("neo4j.max_connections must be at least 1".into());
        }
        if self.apply_timeout_secs == 0 {
            p.push("neo4j.apply_timeout_secs must be at least 1".into());
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert!(PostgresSettings::default().problems().is_empty());
        assert!(Neo4jSettings::default().problems().is_empty());
    }

    #[test]
    fn self_signed_bolt_needs_the_opt_in() {
        let mut s = Neo4jSettings {
            uri: "bolt+ssc://graph.example:7687".into(),
            ..Neo4jSettings::default()
        };
        let p = s.problems();
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].contains("allow_self_signed") && p[0].contains("bolt+s://"),
            "{p:?}"
        );
        s.allow_self_signed = true;
        assert!(s.problems().is_empty());
        s.uri = "neo4j+s://graph.example".into();
        s.allow_self_signed = false;
        assert!(s.problems().is_empty());
    }

    #[test]
    fn ssl_mode_reads_libpq_names() {
        #[derive(Deserialize)]
        struct W {
            m: SslMode,
        }
        for name in [
            "disable",
            "allow",
            "prefer",
            "require",
            "verify-ca",
            "verify-full",
        ] {
            let w: W = serde_json::from_str(&format!(r#"{{"m": "{name}"}}"#)).expect(name);
            assert_eq!(w.m.as_str(), name);
        }
        assert!(serde_json::from_str::<W>(r#"{"m": "verify_full"}"#).is_err());
        let p = PostgresSettings {
            ssl_root_cert: Some("/nonexistent/ca.pem".into()),
            statement_timeout_ms: 0,
            ..PostgresSettings::default()
        }
        .problems();
        assert_eq!(p.len(), 2, "{p:?}");
    }
}
