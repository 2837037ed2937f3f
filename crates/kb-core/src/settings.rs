//! One typed settings struct for every component, layered: built-in defaults, then an optional
//! TOML file, then environment variables. Validated at start, all problems reported together.
//!
//! Environment: `KB_<SECTION>__<KEY>` (e.g. `KB_PARSER__CHUNK_TOKENS=300`), plus these stable
//! names that scripts rely on: `KB_NATS_URL`, `KB_POSTGRES_URL`, `KB_NEO4J_URI`,
//! `KB_NEO4J_USER`, `KB_NEO4J_PASSWORD`, `KB_WATCH_DIR`, `KB_MODEL_DIR`. The file is
//! `KB_CONFIG` (or the `--config` flag of a binary).

use crate::secret::Secret;
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
    pub telemetry: TelemetrySettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NatsSettings {
    pub url: String,
    /// Bodies larger than this go through the object store instead of the message.
    pub inline_max_bytes: usize,
}

impl Default for NatsSettings {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".into(),
            inline_max_bytes: 256 * 1024,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PostgresSettings {
    /// The seed's rollback switch: a disabled writer consumes nothing and catches up when enabled.
    pub enabled: bool,
    pub url: Secret,
    pub max_connections: u32,
}

impl Default for PostgresSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            url: Secret::new("postgres://postgres@127.0.0.1:5433/kb"),
            max_connections: 8,
        }
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
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WatcherSettings {
    pub dir: PathBuf,
    /// Names the folder as an origin: source ids derive from it, so keep it stable.
    pub name: String,
    /// Full rescan period, a safety net under file-system notifications.
    pub rescan_secs: u64,
    /// Quiet time after a change before a file is read (editors write in several steps).
    pub debounce_ms: u64,
    /// Larger files are reported as failed, not read.
    pub max_file_bytes: u64,
}

impl Default for WatcherSettings {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("./inbox"),
            name: "inbox".into(),
            rescan_secs: 60,
            debounce_ms: 300,
            max_file_bytes: 64 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ParserSettings {
    pub chunk_tokens: usize,
    pub overlap_tokens: usize,
    pub max_bytes: usize,
    /// Documents parsed at once by one process.
    pub concurrency: usize,
}

impl Default for ParserSettings {
    fn default() -> Self {
        Self {
            chunk_tokens: 200,
            overlap_tokens: 30,
            max_bytes: 64 * 1024 * 1024,
            concurrency: 2,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmbedderSettings {
    /// "local" (offline model, the default).
    pub provider: String,
    pub model_dir: PathBuf,
    pub onnxruntime_lib: PathBuf,
    /// Inference threads; 0 lets the runtime decide.
    pub threads: usize,
    pub batch_size: usize,
    /// Documents embedded at once by one process.
    pub concurrency: usize,
    /// The model's vector dimension. The embedder refuses to start if its model disagrees, and
    /// pg-writer sizes (and checks) the `embedding vector(N)` column with it.
    pub dimensions: usize,
}

impl Default for EmbedderSettings {
    fn default() -> Self {
        Self {
            provider: "local".into(),
            model_dir: PathBuf::from(".stack/model/all-minilm-l6-v2"),
            onnxruntime_lib: PathBuf::from(".stack/model/libonnxruntime.so"),
            threads: 0,
            batch_size: 8,
            concurrency: 1,
            dimensions: 384,
        }
    }
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

/// What a component needs from the settings; validation checks only those parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    Nats,
    Postgres,
    Neo4j,
    Watcher,
    Embedder,
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

impl Settings {
    /// Defaults, then `file` (or `KB_CONFIG`), then the environment.
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
                    .filter(|k| k.as_str().contains("__"))
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
        fig.extract::<Settings>()
            .map_err(|e| ConfigError(e.into_iter().map(|e| e.to_string()).collect()))
    }

    /// Checks the parts `needs` names; every problem is listed.
    pub fn validate(&self, needs: &[Component]) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        for need in needs {
            match need {
                Component::Nats => {
                    if !self.nats.url.starts_with("nats://") && !self.nats.url.starts_with("tls://")
                    {
                        problems.push(format!(
                            "nats.url must start with nats:// or tls://, got {:?}",
                            self.nats.url
                        ));
                    }
                    if self.nats.inline_max_bytes < 1024 || self.nats.inline_max_bytes > 900 * 1024
                    {
                        problems
                            .push("nats.inline_max_bytes must be between 1 KiB and 900 KiB".into());
                    }
                }
                Component::Postgres => {
                    let url = self.postgres.url.expose();
                    if !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
                        problems.push("postgres.url (KB_POSTGRES_URL) must be a postgres:// or postgresql:// URL".into());
                    }
                    if self.postgres.max_connections == 0 {
                        problems.push("postgres.max_connections must be at least 1".into());
                    }
                }
                Component::Neo4j => {
                    let ok = [
                        "bolt://",
                        "bolt+s://",
                        "bolt+ssc://",
                        "neo4j://",
                        "neo4j+s://",
                        "neo4j+ssc://",
                    ]
                    .iter()
                    .any(|s| self.neo4j.uri.starts_with(s));
                    if !ok {
                        problems.push(format!(
                            "neo4j.uri (KB_NEO4J_URI) must be a bolt:// or neo4j:// URI, got {:?}",
                            self.neo4j.uri
                        ));
                    }
                    if self.neo4j.user.is_empty() {
                        problems.push("neo4j.user (KB_NEO4J_USER) is empty".into());
                    }
                    if self.neo4j.max_connections == 0 {
                        problems.push("neo4j.max_connections must be at least 1".into());
                    }
                }
                Component::Watcher => {
                    if !crate::ids::is_valid_token(&self.watcher.name) {
                        problems.push("watcher.name must be letters, digits, '-' or '_'".into());
                    }
                    if self.watcher.rescan_secs == 0 {
                        problems.push("watcher.rescan_secs must be at least 1".into());
                    }
                }
                Component::Embedder => {
                    if self.embedder.provider != "local" {
                        problems.push(format!(
                            "embedder.provider {:?} is not known (known: local)",
                            self.embedder.provider
                        ));
                    }
                    if self.embedder.batch_size == 0 || self.embedder.concurrency == 0 {
                        problems.push(
                            "embedder.batch_size and embedder.concurrency must be at least 1"
                                .into(),
                        );
                    }
                }
            }
        }
        if self.parser.chunk_tokens < 16 || self.parser.overlap_tokens >= self.parser.chunk_tokens {
            problems.push(
                "parser.chunk_tokens must be >= 16 and larger than parser.overlap_tokens".into(),
            );
        }
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
    use std::io::Write;

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
        assert!(!format!("{s:?}").contains("topsecret"));
    }
}
