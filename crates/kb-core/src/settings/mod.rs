//! One typed settings struct for every component, layered: built-in defaults, then an optional
//! TOML file, then environment variables. Validated at start, all problems reported together.
//!
//! Environment: `KB_<SECTION>__<KEY>` (e.g. `KB_PARSER__CHUNK_TOKENS=300`), plus these stable
//! names that scripts rely on: `KB_NATS_URL`, `KB_POSTGRES_URL`, `KB_NEO4J_URI`,
//! `KB_NEO4J_USER`, `KB_NEO4J_PASSWORD`, `KB_WATCH_DIR`, `KB_MODEL_DIR`. The file is
//! `KB_CONFIG` (or the `--config` flag of a binary).

mod llm;
mod query;

pub use llm::{LlmConfigError, LlmSettings, Provider as LlmProvider};
pub use query::QuerySettings;

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
    pub drive: DriveSettings,
    pub llm: LlmSettings,
    pub query: QuerySettings,
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
    /// Wall-clock budget of one document; past it the document fails with `timeout`.
    pub timeout_secs: u64,
    /// Bytes the compressed parts of one document (DOCX entries, PDF streams) may inflate to.
    pub max_inflated_bytes: usize,
    /// Pages a PDF may have.
    pub max_pages: usize,
}

impl Default for ParserSettings {
    fn default() -> Self {
        Self {
            chunk_tokens: 200,
            overlap_tokens: 30,
            max_bytes: 64 * 1024 * 1024,
            concurrency: 2,
            timeout_secs: 60,
            max_inflated_bytes: 256 * 1024 * 1024,
            max_pages: 2000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmbedderSettings {
    /// "local" (offline model, the default), "mistral", "openai" (any OpenAI-compatible
    /// `/v1/embeddings`) or "ollama".
    pub provider: String,
    pub model_dir: PathBuf,
    pub onnxruntime_lib: PathBuf,
    /// Inference threads; 0 lets the runtime decide.
    pub threads: usize,
    pub batch_size: usize,
    /// Documents embedded at once by one process (their chunks share requests).
    pub concurrency: usize,
    /// The model's vector dimension. The embedder refuses to start if its model disagrees, and
    /// pg-writer sizes (and checks) the `embedding vector(N)` column with it.
    pub dimensions: usize,
    /// Remote model name; empty = the provider's default (mistral: "mistral-embed").
    pub model: String,
    /// Remote server root; empty = the provider's default.
    pub base_url: String,
    /// Remote API key (`KB_EMBEDDER__API_KEY`); never logged.
    pub api_key: Secret,
    /// A file holding the API key, used when `api_key` is empty.
    pub api_key_file: Option<PathBuf>,
    /// Send `dimensions` in remote requests (OpenAI text-embedding-3 models shorten to it).
    pub send_dimensions: bool,
    /// Inputs per remote request; 0 = the provider's limit (mistral 256, openai 2048, ollama 64).
    pub max_inputs_per_request: usize,
    /// Estimated tokens per remote request; 0 = the provider's limit (mistral 16384).
    pub max_tokens_per_request: usize,
    /// Remote requests in flight per process (halved on 429, then grown back).
    pub max_in_flight: usize,
    /// Deadline of one remote request.
    pub request_timeout_secs: u64,
    /// In-process retries of a transient failure before the message goes back to the broker.
    pub max_retries: usize,
    /// Share embeddings through the `kb_embed_cache` JetStream KV bucket.
    pub cache: bool,
    /// Size cap of the cache bucket (oldest entries go first); 0 = unlimited.
    pub cache_max_bytes: i64,
    /// How long the broker waits for an ack before redelivering to another worker (long
    /// documents send in-progress acks meanwhile).
    pub ack_wait_secs: u64,
}

impl Default for EmbedderSettings {
    fn default() -> Self {
        Self {
            provider: "local".into(),
            model_dir: PathBuf::from(".stack/model/all-minilm-l6-v2"),
            onnxruntime_lib: PathBuf::from(".stack/model/libonnxruntime.so"),
            threads: 0,
            batch_size: 8,
            concurrency: 4,
            dimensions: 384,
            model: String::new(),
            base_url: String::new(),
            api_key: Secret::default(),
            api_key_file: None,
            send_dimensions: false,
            max_inputs_per_request: 0,
            max_tokens_per_request: 0,
            max_in_flight: 4,
            request_timeout_secs: 60,
            max_retries: 5,
            cache: true,
            cache_max_bytes: 0,
            ack_wait_secs: 60,
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

/// The watcher's Google Drive source. Credentials: a service-account key or an
/// `authorized_user` JSON (`credentials_file`, `credentials_json`, else the file named by
/// `GOOGLE_APPLICATION_CREDENTIALS`), or the OAuth installed-app trio `client_id`,
/// `client_secret`, `refresh_token`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DriveSettings {
    /// The watcher runs the Drive source only when this is on.
    pub enabled: bool,
    /// Names the source as an origin (`drive:<name>`): source ids derive from it, keep it stable.
    pub name: String,
    /// Folders (or shared drive ids) mirrored recursively; a list or one comma-separated string.
    #[serde(deserialize_with = "string_list")]
    pub folder_ids: Vec<String>,
    pub credentials_file: Option<PathBuf>,
    /// The same JSON as `credentials_file`, inline (e.g. handed in by a secret store).
    pub credentials_json: Secret,
    pub client_id: String,
    pub client_secret: Secret,
    pub refresh_token: Secret,
    /// A service account with domain-wide delegation acts as this user.
    pub subject: Option<String>,
    /// OAuth scope requested; read-only is all the watcher needs.
    pub scope: String,
    /// Drive v3 API base URL and OAuth token endpoint (empty: the key file's `token_uri`, else
    /// Google's); both configurable so tests can point them at a local server.
    pub api_url: String,
    pub token_url: String,
    /// How often the changes feed is polled.
    pub poll_secs: u64,
    /// Items per files.list / changes.list page (1..=1000).
    pub page_size: u32,
    /// Larger files are reported as failed, not downloaded.
    pub max_file_bytes: u64,
    /// Export media types of Google Docs, Sheets and Slides (what the parser reads).
    pub export_document: String,
    pub export_spreadsheet: String,
    pub export_presentation: String,
    /// Retries of one request on quota errors (403 rate limits, 429) and 5xx, backing off
    /// exponentially between these bounds.
    pub max_retries: usize,
    pub backoff_min_ms: u64,
    pub backoff_max_ms: u64,
    pub request_timeout_secs: u64,
}

impl Default for DriveSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            name: "drive".into(),
            folder_ids: Vec::new(),
            credentials_file: None,
            credentials_json: Secret::default(),
            client_id: String::new(),
            client_secret: Secret::default(),
            refresh_token: Secret::default(),
            subject: None,
            scope: "https://www.googleapis.com/auth/drive.readonly".into(),
            api_url: "https://www.googleapis.com/drive/v3".into(),
            token_url: String::new(),
            poll_secs: 30,
            page_size: 200,
            max_file_bytes: 64 * 1024 * 1024,
            export_document: "text/plain".into(),
            export_spreadsheet: "text/csv".into(),
            export_presentation: "text/plain".into(),
            max_retries: 8,
            backoff_min_ms: 500,
            backoff_max_ms: 64_000,
            request_timeout_secs: 120,
        }
    }
}

impl DriveSettings {
    /// Validation problems of this section.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !crate::ids::is_valid_token(&self.name) {
            p.push("drive.name must be letters, digits, '-' or '_'".into());
        }
        if self.folder_ids.is_empty() {
            p.push("drive.folder_ids (KB_DRIVE__FOLDER_IDS) names no folder".into());
        }
        for id in self
            .folder_ids
            .iter()
            .filter(|id| !crate::ids::is_valid_token(id))
        {
            p.push(format!("drive.folder_ids: {id:?} is not a Drive id"));
        }
        let oauth = [
            self.client_id.is_empty(),
            self.client_secret.is_empty(),
            self.refresh_token.is_empty(),
        ];
        if oauth.contains(&true) && oauth.contains(&false) {
            p.push(
                "drive.client_id, drive.client_secret and drive.refresh_token go together".into(),
            );
        }
        if self.poll_secs == 0 {
            p.push("drive.poll_secs must be at least 1".into());
        }
        if !(1..=1000).contains(&self.page_size) {
            p.push("drive.page_size must be between 1 and 1000".into());
        }
        if self.backoff_min_ms == 0 || self.backoff_max_ms < self.backoff_min_ms {
            p.push(
                "drive.backoff_min_ms must be at least 1 and at most drive.backoff_max_ms".into(),
            );
        }
        for (key, url) in [("api_url", &self.api_url), ("token_url", &self.token_url)] {
            if !url.is_empty() && !url.starts_with("https://") && !url.starts_with("http://") {
                p.push(format!("drive.{key} must be an http(s) URL, got {url:?}"));
            }
        }
        p
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
                Component::Drive => problems.extend(self.drive.problems()),
                Component::Llm if self.llm.enabled => {
                    if let Err(e) = self.llm.validate() {
                        problems.extend(e.0);
                    }
                }
                Component::Llm => {}
                Component::Query => problems.extend(self.query.problems()),
                Component::Embedder => {
                    let e = &self.embedder;
                    match e.provider.as_str() {
                        "local" => {}
                        "openai" | "ollama" if e.model.trim().is_empty() => problems.push(
                            format!("embedder.model must name the model for provider {}", e.provider),
                        ),
                        "openai" | "ollama" => {}
                        "mistral" if e.api_key.is_empty() && e.api_key_file.is_none() => {
                            problems.push("provider mistral needs embedder.api_key (KB_EMBEDDER__API_KEY) or embedder.api_key_file".into())
                        }
                        "mistral" => {}
                        other => problems.push(format!(
                            "embedder.provider {other:?} is not known (known: local, mistral, openai, ollama)"
                        )),
                    }
                    if e.batch_size == 0 || e.concurrency == 0 || e.max_in_flight == 0 {
                        problems.push(
                            "embedder.batch_size, embedder.concurrency and embedder.max_in_flight must be at least 1"
                                .into(),
                        );
                    }
                    if e.dimensions == 0 {
                        problems.push("embedder.dimensions must be at least 1".into());
                    }
                    if e.request_timeout_secs == 0 || e.ack_wait_secs == 0 {
                        problems.push(
                            "embedder.request_timeout_secs and embedder.ack_wait_secs must be at least 1"
                                .into(),
                        );
                    }
                    if e.cache_max_bytes < 0 {
                        problems
                            .push("embedder.cache_max_bytes must be 0 (unlimited) or more".into());
                    }
                }
            }
        }
        if self.parser.chunk_tokens < 16 || self.parser.overlap_tokens >= self.parser.chunk_tokens {
            problems.push(
                "parser.chunk_tokens must be >= 16 and larger than parser.overlap_tokens".into(),
            );
        }
        if self.parser.timeout_secs == 0
            || self.parser.max_pages == 0
            || self.parser.max_inflated_bytes == 0
        {
            problems.push(
                "parser.timeout_secs, parser.max_pages and parser.max_inflated_bytes must be at least 1"
                    .into(),
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
