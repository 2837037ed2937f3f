//! The pipeline stages: `[parser]`, `[embedder]` and `[writer]` (both writers).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

use crate::secret::Secret;

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
    /// Chunks one document may have; more fail with `too_large`.
    pub max_chunks: usize,
    /// Where a parse runs: `process` (a worker process a crash or a runaway parse cannot take
    /// the stage down with) or `thread` (in the stage process).
    pub isolation: Isolation,
    /// Address-space limit of one worker process.
    pub worker_memory_mb: u64,
    /// The worker executable; unset = this program (`kb-parser parse-worker`).
    pub worker_bin: Option<PathBuf>,
    /// How long the broker waits for an ack before handing a document out again.
    pub ack_wait_secs: u64,
    /// Deaths of the parser on one document before it is dead-lettered as `crashed`.
    pub crash_limit: u32,
}

/// Where the parser runs a parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Isolation {
    Process,
    Thread,
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
            max_chunks: 20_000,
            isolation: Isolation::Thread,
            worker_memory_mb: 2048,
            worker_bin: None,
            ack_wait_secs: 60,
            crash_limit: 3,
        }
    }
}

impl ParserSettings {
    /// Validation problems of this section.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.chunk_tokens < 16 || self.overlap_tokens >= self.chunk_tokens {
            p.push(
                "parser.chunk_tokens must be >= 16 and larger than parser.overlap_tokens".into(),
            );
        }
        if self.timeout_secs == 0 || self.max_pages == 0 || self.max_inflated_bytes == 0 {
            p.push(
                "parser.timeout_secs, parser.max_pages and parser.max_inflated_bytes must be at least 1"
                    .into(),
            );
        }
        if self.max_chunks == 0 || self.ack_wait_secs == 0 || self.crash_limit == 0 {
            p.push(
                "parser.max_chunks, parser.ack_wait_secs and parser.crash_limit must be at least 1"
                    .into(),
            );
        }
        if self.worker_memory_mb < 256 {
            p.push("parser.worker_memory_mb must be at least 256".into());
        }
        p
    }
}

/// Where embeddings come from (`embedder.provider`); `kb_embed::load_embedder` builds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EmbedProvider {
    /// The offline model (`embedder.model_dir`).
    #[default]
    Local,
    /// Mistral's API (needs a key).
    Mistral,
    /// Any OpenAI-compatible `/v1/embeddings` (needs `embedder.model`).
    Openai,
    /// Ollama's `/api/embed` (needs `embedder.model`).
    Ollama,
}

impl EmbedProvider {
    pub const ALL: [EmbedProvider; 4] = [
        EmbedProvider::Local,
        EmbedProvider::Mistral,
        EmbedProvider::Openai,
        EmbedProvider::Ollama,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EmbedProvider::Local => "local",
            EmbedProvider::Mistral => "mistral",
            EmbedProvider::Openai => "openai",
            EmbedProvider::Ollama => "ollama",
        }
    }

    /// A remote service, reached over HTTP.
    pub fn is_remote(self) -> bool {
        self != EmbedProvider::Local
    }
}

impl fmt::Display for EmbedProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EmbedProvider {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "embedder.provider {s:?} is not known (known: local, mistral, openai, ollama)"
                )
            })
    }
}

impl<'de> Deserialize<'de> for EmbedProvider {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmbedderSettings {
    pub provider: EmbedProvider,
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
    /// Size cap of the cache bucket (the oldest entries go first); 0 = unlimited.
    pub cache_max_bytes: i64,
    /// How long the broker waits for an ack before redelivering to another worker (long
    /// documents send in-progress acks meanwhile).
    pub ack_wait_secs: u64,
    /// Deaths of the embedder on one document (a crash, an abort, an OOM kill) before the
    /// document is dead-lettered as `crashed` instead of handed out again.
    pub crash_limit: u32,
}

impl Default for EmbedderSettings {
    fn default() -> Self {
        Self {
            provider: EmbedProvider::Local,
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
            cache_max_bytes: 1024 * 1024 * 1024,
            ack_wait_secs: 60,
            crash_limit: 3,
        }
    }
}

impl EmbedderSettings {
    /// Validation problems of this section.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        match self.provider {
            EmbedProvider::Local => {}
            EmbedProvider::Openai | EmbedProvider::Ollama if self.model.trim().is_empty() => p
                .push(format!(
                    "embedder.model must name the model for provider {}",
                    self.provider
                )),
            EmbedProvider::Openai | EmbedProvider::Ollama => {}
            EmbedProvider::Mistral if self.api_key.is_empty() && self.api_key_file.is_none() => p.push(
                "provider mistral needs embedder.api_key (KB_EMBEDDER__API_KEY) or embedder.api_key_file"
                    .into(),
            ),
            EmbedProvider::Mistral => {}
        }
        if self.batch_size == 0 || self.concurrency == 0 || self.max_in_flight == 0 {
            p.push(
                "embedder.batch_size, embedder.concurrency and embedder.max_in_flight must be at least 1"
                    .into(),
            );
        }
        if self.dimensions == 0 {
            p.push("embedder.dimensions must be at least 1".into());
        }
        if self.request_timeout_secs == 0 || self.ack_wait_secs == 0 {
            p.push(
                "embedder.request_timeout_secs and embedder.ack_wait_secs must be at least 1"
                    .into(),
            );
        }
        if self.cache_max_bytes < 0 {
            p.push("embedder.cache_max_bytes must be 0 (unlimited) or more".into());
        }
        if self.crash_limit == 0 {
            p.push("embedder.crash_limit must be at least 1".into());
        }
        p
    }
}

/// Both writers (`kb-pg-writer`, `kb-graph-writer`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WriterSettings {
    /// How long the broker waits for an ack before redelivering (a killed writer's messages
    /// come back after this).
    pub ack_wait_secs: u64,
    /// In-process retries of a store error, in total time, before the message is nak'ed.
    pub retry_for_secs: u64,
    /// Deaths of the writer on one document before it is dead-lettered as `crashed`.
    pub crash_limit: u32,
    /// Consecutive apply timeouts of one document, while the store answers, before it is
    /// dead-lettered as `timeout`.
    pub max_timeouts_per_document: u32,
    /// Messages waiting for a writer on an empty store for it to use bulk mode.
    pub bulk_min_backlog: u64,
    /// Bulk mode ends after this at the latest (the index is then built).
    pub bulk_max_secs: u64,
}

impl Default for WriterSettings {
    fn default() -> Self {
        Self {
            ack_wait_secs: 30,
            retry_for_secs: 20,
            crash_limit: 3,
            max_timeouts_per_document: 5,
            bulk_min_backlog: 100,
            bulk_max_secs: 3600,
        }
    }
}

impl WriterSettings {
    /// Validation problems of this section.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        for (key, value) in [
            ("ack_wait_secs", self.ack_wait_secs),
            ("crash_limit", u64::from(self.crash_limit)),
            (
                "max_timeouts_per_document",
                u64::from(self.max_timeouts_per_document),
            ),
            ("bulk_min_backlog", self.bulk_min_backlog),
            ("bulk_max_secs", self.bulk_max_secs),
        ] {
            if value == 0 {
                p.push(format!("writer.{key} must be at least 1"));
            }
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert!(ParserSettings::default().problems().is_empty());
        assert!(EmbedderSettings::default().problems().is_empty());
        assert!(WriterSettings::default().problems().is_empty());
    }

    #[test]
    fn each_section_reports_its_own_problems() {
        let parser = ParserSettings {
            max_chunks: 0,
            worker_memory_mb: 10,
            ..ParserSettings::default()
        };
        assert_eq!(parser.problems().len(), 2, "{:?}", parser.problems());
        let embedder = EmbedderSettings {
            crash_limit: 0,
            provider: EmbedProvider::Openai,
            ..EmbedderSettings::default()
        };
        assert_eq!(embedder.problems().len(), 2, "{:?}", embedder.problems());
        let unknown = serde_json::from_str::<EmbedProvider>("\"magic\"").map_err(|e| e.to_string());
        assert!(unknown.is_err_and(|e| e.contains("\"magic\" is not known")));
        for p in EmbedProvider::ALL {
            assert_eq!(p.as_str().parse(), Ok(p));
        }
        let writer = WriterSettings {
            ack_wait_secs: 0,
            crash_limit: 0,
            retry_for_secs: 0,
            ..WriterSettings::default()
        };
        let p = writer.problems();
        assert_eq!(
            p.len(),
            2,
            "retry_for_secs = 0 is allowed (nak at once): {p:?}"
        );
    }
}
