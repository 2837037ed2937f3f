//! One typed settings struct for every component, layered: built-in defaults, then an optional
//! TOML file, then environment variables. Validated at start, all problems reported together.
//!
//! Environment: `KB_<SECTION>__<KEY>` (e.g. `KB_PARSER__CHUNK_TOKENS=300`), plus these stable
//! names that scripts rely on: `KB_NATS_URL`, `KB_POSTGRES_URL`, `KB_NEO4J_URI`,
//! `KB_NEO4J_USER`, `KB_NEO4J_PASSWORD`, `KB_WATCH_DIR`, `KB_MODEL_DIR`. The file is
//! `KB_CONFIG` (or the `--config` flag of a binary).

mod llm;
mod nats;
mod query;
mod sources;
mod stages;
mod stores;

pub use llm::{LlmConfigError, LlmSettings, Provider as LlmProvider};
pub use nats::{NatsSettings, NatsSync, UrlAuth};
pub use query::QuerySettings;
pub use sources::{DriveSettings, WatcherSettings};
pub use stages::{EmbedProvider, EmbedderSettings, Isolation, ParserSettings, WriterSettings};
pub use stores::{Neo4jSettings, PostgresSettings, SslMode};

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub nats: NatsSettings,
    pub postgres: PostgresSettings,
    pub neo4j: Neo4jSettings,
    pub watcher: WatcherSettings,
    pub parser: ParserSettings,
    pub embedder: EmbedderSettings,
    pub writer: WriterSettings,
    pub telemetry: TelemetrySettings,
    pub drive: DriveSettings,
    pub llm: LlmSettings,
    pub query: QuerySettings,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetrySettings {
    pub log_format: LogFormat,
    /// `tracing` filter, e.g. "info,kb_stream=debug"; `RUST_LOG` wins when set.
    pub log_level: String,
    /// Address of `/metrics` and `/healthz`, e.g. "127.0.0.1:9101"; none when unset.
    pub metrics_addr: Option<String>,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            log_format: LogFormat::Text,
            log_level: "info".into(),
            metrics_addr: None,
        }
    }
}

/// A list from TOML, or one comma-separated string (environment variables).
fn string_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    let items = match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => s.split(',').map(str::to_string).collect(),
        OneOrMany::Many(v) => v,
    };
    Ok(items
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect())
}

/// What a component needs from the settings; validation checks only those parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    Nats,
    Postgres,
    Neo4j,
    Watcher,
    Embedder,
    /// The watcher's Google Drive source (`[drive]`).
    Drive,
    /// The parser's optional LLM extractor (`[llm]`), checked only when enabled.
    Llm,
    /// The read side (`[query]`): kb-query, `kb search`, `kb mcp`.
    Query,
    /// Both writers (`[writer]`).
    Writer,
}

/// Every problem found, reported at once.
#[derive(Debug)]
pub struct ConfigError(pub Vec<String>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid configuration ({} problem(s)):", self.0.len())?;
        for p in &self.0 {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// The stable environment names and the settings keys they set.
const ALIASES: &[(&str, &str)] = &[
    ("KB_NATS_URL", "nats.url"),
    ("KB_POSTGRES_URL", "postgres.url"),
    ("KB_NEO4J_URI", "neo4j.uri"),
    ("KB_NEO4J_USER", "neo4j.user"),
    ("KB_NEO4J_PASSWORD", "neo4j.password"),
    ("KB_WATCH_DIR", "watcher.dir"),
    ("KB_MODEL_DIR", "embedder.model_dir"),
];

/// Secrets that may come from a file instead: `<VAR>_FILE` names a file whose content (without
/// a final newline) is the value of the setting, as with container secrets. Only these names,
/// so that settings that are paths themselves (`drive.credentials_file`) keep their meaning.
const SECRET_KEYS: &[&str] = &[
    "nats.token",
    "nats.password",
    "postgres.url",
    "postgres.password",
    "neo4j.password",
    "embedder.api_key",
    "llm.api_key",
    "drive.credentials_json",
    "drive.client_secret",
    "drive.refresh_token",
];

/// `(variable, key)` for every accepted `*_FILE` variable.
fn secret_file_vars() -> Vec<(String, &'static str)> {
    let mut vars: Vec<(String, &'static str)> = SECRET_KEYS
        .iter()
        .map(|key| {
            (
                format!("KB_{}_FILE", key.replace('.', "__").to_uppercase()),
                *key,
            )
        })
        .collect();
    for (alias, key) in ALIASES {
        if SECRET_KEYS.contains(key) {
            vars.push((format!("{alias}_FILE"), *key));
        }
    }
    vars
}

/// The secrets read from `*_FILE` variables; a variable set both ways, or an unreadable file,
/// is a problem.
fn secrets_from_files(problems: &mut Vec<String>) -> Vec<(&'static str, String)> {
    let mut found = Vec::new();
    for (var, key) in secret_file_vars() {
        let Some(path) = std::env::var_os(&var).filter(|p| !p.is_empty()) else {
            continue;
        };
        let direct = var.trim_end_matches("_FILE");
        if std::env::var_os(direct).is_some_and(|v| !v.is_empty()) {
            problems.push(format!("set {direct} or {var}, not both"));
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let value = text.strip_suffix('\n').unwrap_or(&text);
                let value = value.strip_suffix('\r').unwrap_or(value);
                found.push((key, value.to_owned()));
            }
            Err(e) => problems.push(format!(
                "{var}: cannot read {}: {e}",
                Path::new(&path).display()
            )),
        }
    }
    found
}

impl Settings {
    /// Defaults, then `file` (or `KB_CONFIG`), then the environment (and `*_FILE` secrets).
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let file = file
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("KB_CONFIG").map(PathBuf::from));
        let mut fig = Figment::new();
        if let Some(f) = &file {
            if !f.exists() {
                return Err(ConfigError(vec![format!(
                    "config file {} does not exist",
                    f.display()
                )]));
            }
            fig = fig.merge(Toml::file(f));
        }
        fig = fig
            .merge(
                Env::prefixed("KB_")
                    .filter(|k| {
                        let var = format!("KB_{}", k.as_str());
                        k.as_str().contains("__")
                            && !secret_file_vars()
                                .iter()
                                .any(|(v, _)| v.eq_ignore_ascii_case(&var))
                    })
                    .split("__"),
            )
            .merge(
                Env::raw()
                    .only(&ALIASES.iter().map(|(e, _)| *e).collect::<Vec<_>>())
                    .map(|k| {
                        let key = ALIASES
                            .iter()
                            .find(|(e, _)| e.eq_ignore_ascii_case(k.as_str()))
                            .map(|(_, path)| *path)
                            .unwrap_or("unknown");
                        key.into()
                    }),
            );
        let mut problems = Vec::new();
        for (key, value) in secrets_from_files(&mut problems) {
            fig = fig.merge(figment::providers::Serialized::default(key, value));
        }
        if !problems.is_empty() {
            return Err(ConfigError(problems));
        }
        fig.extract::<Settings>()
            .map_err(|e| ConfigError(e.into_iter().map(|e| e.to_string()).collect()))
    }

    /// Checks the parts `needs` names (and always `[parser]`); every problem is listed.
    pub fn validate(&self, needs: &[Component]) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        for need in needs {
            problems.extend(match need {
                Component::Nats => self.nats.problems(),
                Component::Postgres => self.postgres.problems(),
                Component::Neo4j => self.neo4j.problems(),
                Component::Watcher => self.watcher.problems(),
                Component::Drive => self.drive.problems(),
                Component::Llm if self.llm.enabled => {
                    self.llm.validate().err().map(|e| e.0).unwrap_or_default()
                }
                Component::Llm => Vec::new(),
                Component::Query => self.query.problems(),
                Component::Embedder => self.embedder.problems(),
                Component::Writer => self.writer.problems(),
            });
        }
        problems.extend(self.parser.problems());
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError(problems))
        }
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closure signature
mod tests {
    use super::*;
    use crate::secret::Secret;
    use std::io::Write;

    #[test]
    fn secrets_come_from_files_named_by_file_variables() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("pg", "s3cret\n")?;
            jail.create_file("neo", "graph-pw")?;
            jail.create_file("url", "postgres://kb@db:5432/kb\n")?;
            jail.set_env("KB_POSTGRES__PASSWORD_FILE", "pg");
            jail.set_env("KB_NEO4J_PASSWORD_FILE", "neo");
            jail.set_env("KB_POSTGRES_URL_FILE", "url");
            // A setting that is itself a path keeps its meaning.
            jail.set_env("KB_DRIVE__CREDENTIALS_FILE", "/keys/sa.json");
            let s = Settings::load(None).expect("loads");
            assert_eq!(s.postgres.password.expose(), "s3cret");
            assert_eq!(s.neo4j.password.expose(), "graph-pw");
            assert_eq!(s.postgres.url.expose(), "postgres://kb@db:5432/kb");
            assert_eq!(
                s.drive.credentials_file.as_deref(),
                Some(Path::new("/keys/sa.json"))
            );

            jail.set_env("KB_NEO4J_PASSWORD", "direct");
            jail.set_env("KB_POSTGRES__PASSWORD_FILE", "missing");
            let err = Settings::load(None).expect_err("conflict").to_string();
            assert!(
                err.contains("set KB_NEO4J_PASSWORD or KB_NEO4J_PASSWORD_FILE, not both"),
                "{err}"
            );
            assert!(
                err.contains("KB_POSTGRES__PASSWORD_FILE: cannot read missing"),
                "{err}"
            );
            Ok(())
        });
    }

    // Env-based tests use figment::Jail so they cannot race with each other.
    #[test]
    fn file_then_env_layering_and_aliases() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "kb.toml",
                "[nats]\nurl = \"nats://file:4222\"\n[parser]\nchunk_tokens = 300\n[neo4j]\npassword = \"from-file\"\n",
            )?;
            jail.set_env("KB_PARSER__CHUNK_TOKENS", "400");
            jail.set_env("KB_NEO4J_PASSWORD", "12345");
            let s = Settings::load(Some(Path::new("kb.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(s.nats.url, "nats://file:4222");
            assert_eq!(s.parser.chunk_tokens, 400);
            // A numeric-looking secret still reads as a string.
            assert_eq!(s.neo4j.password.expose(), "12345");
            assert_eq!(s.watcher.name, "inbox");
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_are_rejected() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("KB_PARSER__CHUNK_TOKNES", "10");
            let err = Settings::load(None).expect_err("typo must fail");
            assert!(err.to_string().contains("chunk_toknes"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn validation_reports_all_problems_together() {
        let mut s = Settings::default();
        s.nats.url = "http://x".into();
        s.postgres.url = Secret::new("mysql://x");
        s.neo4j.uri = "http://y".into();
        let err = s
            .validate(&[Component::Nats, Component::Postgres, Component::Neo4j])
            .expect_err("three problems");
        assert_eq!(err.0.len(), 3, "{err}");
        assert!(Settings::default()
            .validate(&[Component::Nats, Component::Watcher])
            .is_ok());
    }

    #[test]
    fn missing_config_file_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut f = std::fs::File::create(dir.path().join("x.toml")).expect("create");
        writeln!(f, "[nats]").expect("write");
        let err = Settings::load(Some(&dir.path().join("missing.toml"))).expect_err("missing");
        assert!(err.to_string().contains("does not exist"));
    }

    #[test]
    fn secrets_do_not_leak_through_debug() {
        let mut s = Settings::default();
        s.neo4j.password = Secret::new("topsecret");
        s.nats.url = "nats://natstoken@127.0.0.1:4222".into();
        s.nats.password = Secret::new("natspass");
        s.postgres.url = Secret::new("postgres://kb:pgpass@db/kb");
        let debug = format!("{s:?}");
        for secret in ["topsecret", "natstoken", "natspass", "pgpass"] {
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }
        let err = Settings {
            nats: NatsSettings {
                url: "ws://natstoken@h".into(),
                ..NatsSettings::default()
            },
            ..Settings::default()
        }
        .validate(&[Component::Nats])
        .expect_err("bad scheme");
        assert!(!err.to_string().contains("natstoken"), "{err}");
    }

    #[test]
    fn new_sections_and_closed_sets_come_from_env() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("KB_WRITER__ACK_WAIT_SECS", "5");
            jail.set_env("KB_NATS__SYNC", "always");
            jail.set_env("KB_NATS__TOKEN", "12345");
            jail.set_env("KB_PARSER__ISOLATION", "process");
            jail.set_env("KB_POSTGRES__SSL_MODE", "verify-full");
            let s = Settings::load(None).map_err(|e| e.to_string())?;
            assert_eq!(s.writer.ack_wait_secs, 5);
            assert_eq!(s.writer.crash_limit, 3);
            assert_eq!(s.nats.sync, NatsSync::Always);
            assert_eq!(s.nats.sync.sync_interval(), "always");
            assert_eq!(s.nats.token.expose(), "12345");
            assert_eq!(s.parser.isolation, Isolation::Process);
            assert_eq!(s.postgres.ssl_mode, Some(SslMode::VerifyFull));
            assert!(s
                .validate(&[Component::Nats, Component::Writer, Component::Postgres])
                .is_ok());
            Ok(())
        });
        figment::Jail::expect_with(|jail| {
            jail.set_env("KB_NATS__SYNC", "sometimes");
            let err = Settings::load(None).expect_err("not a sync mode");
            assert!(err.to_string().contains("sometimes"), "{err}");
            Ok(())
        });
        let mut s = Settings::default();
        s.writer.bulk_max_secs = 0;
        assert!(
            s.validate(&[Component::Nats]).is_ok(),
            "[writer] only when asked"
        );
        assert!(s.validate(&[Component::Writer]).is_err());
    }

    #[test]
    fn drive_section_from_env_and_its_validation() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("KB_DRIVE__FOLDER_IDS", "abc_1, def-2");
            jail.set_env(
                "KB_DRIVE__CREDENTIALS_JSON",
                r#"{"type": "service_account", "x": 1}"#,
            );
            jail.set_env("KB_DRIVE__CLIENT_ID", "id-only");
            let s = Settings::load(None).map_err(|e| e.to_string())?;
            assert_eq!(s.drive.folder_ids, ["abc_1", "def-2"]);
            assert!(s.drive.credentials_json.expose().starts_with("{\"type\""));
            let err = s.validate(&[Component::Drive]).expect_err("partial oauth");
            assert_eq!(err.0.len(), 1, "{err}");
            assert!(err.0[0].contains("go together"), "{err}");
            Ok(())
        });
        let mut s = Settings::default();
        assert!(s.validate(&[Component::Drive]).is_err(), "no folder");
        s.drive.folder_ids = vec!["root_folder".into()];
        assert!(s.validate(&[Component::Drive]).is_ok());
    }
}
