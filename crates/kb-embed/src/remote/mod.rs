//! Remote embedding services behind [`Embedder`]: Mistral, any OpenAI-compatible
//! `/v1/embeddings` endpoint, and Ollama's `/api/embed`.
//!
//! One [`RemoteEmbedder`] sends one HTTP request per `embed` call and turns every answer into
//! vectors or a typed [`EmbedError`] (see [`http`] for the status mapping). Batching, request
//! concurrency and retries belong to [`crate::Dispatcher`], which wraps it.

mod http;
mod key;
mod wire;

use std::time::Duration;

use kb_core::Secret;

use crate::{EmbedError, Embedder};

pub use key::resolve_api_key;

/// The remote wire formats and their defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RemoteKind {
    /// Mistral's `/v1/embeddings` (OpenAI request shape; `mistral-embed`, 1024 dimensions).
    Mistral,
    /// Any OpenAI-compatible `/v1/embeddings` (OpenAI, vLLM, LiteLLM, llama.cpp server, ...).
    OpenAi,
    /// Ollama's `/api/embed`.
    Ollama,
}

impl RemoteKind {
    /// The `embedder.provider` names.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "mistral" => Some(Self::Mistral),
            "openai" => Some(Self::OpenAi),
            "ollama" => Some(Self::Ollama),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Mistral => "mistral",
            Self::OpenAi => "openai",
            Self::Ollama => "ollama",
        }
    }

    pub fn default_base_url(self) -> &'static str {
        match self {
            Self::Mistral => "https://api.mistral.ai",
            Self::OpenAi => "https://api.openai.com",
            Self::Ollama => "http://127.0.0.1:11434",
        }
    }

    /// The model used when none is configured; OpenAI-compatible servers and Ollama serve
    /// whatever the operator loaded, so they have none.
    pub fn default_model(self) -> Option<&'static str> {
        match self {
            Self::Mistral => Some("mistral-embed"),
            Self::OpenAi | Self::Ollama => None,
        }
    }

    /// Inputs one request may carry (Mistral: 256 per the design; OpenAI: 2048).
    pub fn default_max_inputs(self) -> usize {
        match self {
            Self::Mistral => 256,
            Self::OpenAi => 2048,
            // Ollama runs the batch on the operator's machine: keep requests moderate.
            Self::Ollama => 64,
        }
    }

    /// Tokens one request may carry, summed over its inputs.
    pub fn default_max_request_tokens(self) -> Option<usize> {
        match self {
            // "Too many tokens in batch. Max is 16384": mistral-embed's per-request budget.
            Self::Mistral => Some(16_384),
            Self::OpenAi => Some(300_000),
            Self::Ollama => None,
        }
    }

    /// Whether the service refuses requests without a key.
    pub fn requires_key(self) -> bool {
        matches!(self, Self::Mistral)
    }

    fn path(self) -> &'static str {
        match self {
            Self::Mistral | Self::OpenAi => "/v1/embeddings",
            Self::Ollama => "/api/embed",
        }
    }
}

/// Everything a [`RemoteEmbedder`] needs; build with [`RemoteConfig::new`], then adjust.
#[derive(Debug, Clone)]
pub struct RemoteConfig {
    pub kind: RemoteKind,
    /// Server root (`https://api.mistral.ai`); a trailing `/v1` is accepted too.
    pub base_url: String,
    pub model: String,
    /// Length of every vector; answers of another length are errors.
    pub dimensions: usize,
    pub api_key: Option<Secret>,
    /// Send `dimensions` in the request (OpenAI `text-embedding-3-*` shorten vectors to it);
    /// off by default because some compatible servers reject the field.
    pub send_dimensions: bool,
    pub max_inputs: usize,
    pub max_request_tokens: Option<usize>,
    /// Whole-request deadline; a slower answer is a transient error.
    pub timeout: Duration,
}

impl RemoteConfig {
    /// The provider's defaults for everything but the model and dimensions.
    pub fn new(kind: RemoteKind, model: impl Into<String>, dimensions: usize) -> Self {
        Self {
            kind,
            base_url: kind.default_base_url().to_owned(),
            model: model.into(),
            dimensions,
            api_key: None,
            send_dimensions: false,
            max_inputs: kind.default_max_inputs(),
            max_request_tokens: kind.default_max_request_tokens(),
            timeout: Duration::from_secs(60),
        }
    }

    /// The full endpoint URL.
    pub fn endpoint(&self) -> String {
        let base = self.base_url.trim_end_matches('/');
        let path = self.kind.path();
        match self.kind {
            // The OpenAI SDKs' convention is a base URL ending in /v1: accept both.
            RemoteKind::Mistral | RemoteKind::OpenAi if base.ends_with("/v1") => {
                format!("{base}/embeddings")
            }
            _ => format!("{base}{path}"),
        }
    }
}

/// A remote embedding model; one HTTP request per [`Embedder::embed`] call.
pub struct RemoteEmbedder {
    cfg: RemoteConfig,
    endpoint: String,
    client: reqwest::Client,
}

impl std::fmt::Debug for RemoteEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The config's Debug already hides the key.
        f.debug_struct("RemoteEmbedder")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl RemoteEmbedder {
    /// Checks the configuration and builds the HTTP client; sends nothing.
    /// Call [`crate::check_dimensions`] next to probe the service once.
    pub fn new(cfg: RemoteConfig) -> Result<Self, EmbedError> {
        let name = cfg.kind.name();
        let mut problems = Vec::new();
        if cfg.model.trim().is_empty() {
            problems.push("a model name".to_owned());
        }
        if cfg.dimensions == 0 {
            problems.push("dimensions > 0".to_owned());
        }
        if cfg.max_inputs == 0 {
            problems.push("max inputs per request > 0".to_owned());
        }
        if cfg.timeout.is_zero() {
            problems.push("a request timeout > 0".to_owned());
        }
        if cfg.kind.requires_key() && cfg.api_key.as_ref().is_none_or(Secret::is_empty) {
            problems.push("an API key (KB_EMBEDDER__API_KEY or embedder.api_key_file)".to_owned());
        }
        let endpoint = cfg.endpoint();
        match reqwest::Url::parse(&endpoint) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            _ => problems.push(format!(
                "an http(s) base_url (got {:?})",
                kb_core::secret::redact_url(&cfg.base_url)
            )),
        }
        if !problems.is_empty() {
            return Err(EmbedError::config(format!(
                "embedding provider {name} needs {}",
                problems.join(", ")
            )));
        }
        let client = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("kb-mirror/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                EmbedError::config(format!("cannot build the HTTP client: {e}")).with_source(e)
            })?;
        Ok(Self {
            cfg,
            endpoint,
            client,
        })
    }

    pub fn config(&self) -> &RemoteConfig {
        &self.cfg
    }

    fn check(&self, vectors: Vec<Vec<f32>>, inputs: usize) -> Result<Vec<Vec<f32>>, EmbedError> {
        if vectors.len() != inputs {
            return Err(EmbedError::permanent(format!(
                "{} returned {} vectors for {inputs} inputs",
                self.cfg.kind.name(),
                vectors.len()
            )));
        }
        if let Some(v) = vectors.iter().find(|v| v.len() != self.cfg.dimensions) {
            // After the start-up probe, the model changed under us: retrying cannot help.
            return Err(EmbedError::permanent(format!(
                "{} model {} returned {} dimensions, expected {} (if this is the model you \
                 want, set KB_EMBEDDER__DIMENSIONS={} for every service and re-embed)",
                self.cfg.kind.name(),
                self.cfg.model,
                v.len(),
                self.cfg.dimensions,
                v.len()
            )));
        }
        if vectors.iter().flatten().any(|x| !x.is_finite()) {
            return Err(EmbedError::permanent(format!(
                "{} returned a non-finite vector component",
                self.cfg.kind.name()
            )));
        }
        Ok(vectors)
    }
}

#[async_trait::async_trait]
impl Embedder for RemoteEmbedder {
    fn model(&self) -> &str {
        &self.cfg.model
    }

    fn dimensions(&self) -> usize {
        self.cfg.dimensions
    }

    fn max_batch(&self) -> usize {
        self.cfg.max_inputs
    }

    fn max_request_tokens(&self) -> Option<usize> {
        self.cfg.max_request_tokens
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let dims = self.cfg.send_dimensions.then_some(self.cfg.dimensions);
        let call = http::Call {
            client: &self.client,
            url: &self.endpoint,
            provider: self.cfg.kind.name(),
            key: self.cfg.api_key.as_ref(),
            timeout: self.cfg.timeout,
        };
        let vectors = match self.cfg.kind {
            RemoteKind::Mistral | RemoteKind::OpenAi => {
                let body = wire::OpenAiRequest {
                    model: &self.cfg.model,
                    input: texts,
                    // Mistral's default is float already; OpenAI's SDKs ask for base64.
                    encoding_format: (self.cfg.kind == RemoteKind::OpenAi).then_some("float"),
                    dimensions: dims,
                };
                let answer: wire::OpenAiResponse = call.post(&body).await?;
                answer.into_vectors(texts.len())?
            }
            RemoteKind::Ollama => {
                let body = wire::OllamaRequest {
                    model: &self.cfg.model,
                    input: texts,
                    dimensions: dims,
                };
                let answer: wire::OllamaResponse = call.post(&body).await?;
                answer.embeddings
            }
        };
        self.check(vectors, texts.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_accept_root_or_v1_base_urls() {
        let mut c = RemoteConfig::new(RemoteKind::OpenAi, "m", 8);
        c.base_url = "http://127.0.0.1:9/".into();
        assert_eq!(c.endpoint(), "http://127.0.0.1:9/v1/embeddings");
        c.base_url = "http://127.0.0.1:9/v1".into();
        assert_eq!(c.endpoint(), "http://127.0.0.1:9/v1/embeddings");
        let o = RemoteConfig::new(RemoteKind::Ollama, "m", 8);
        assert_eq!(o.endpoint(), "http://127.0.0.1:11434/api/embed");
    }

    #[test]
    fn mistral_defaults_and_missing_key_is_a_config_error() {
        let c = RemoteConfig::new(RemoteKind::Mistral, "mistral-embed", 1024);
        assert_eq!((c.max_inputs, c.max_request_tokens), (256, Some(16_384)));
        let err = RemoteEmbedder::new(c).unwrap_err();
        assert_eq!(err.kind, crate::EmbedErrorKind::Config);
        assert!(err.message().contains("API key"), "{err}");
    }

    #[test]
    fn bad_url_and_empty_model_are_reported_together() {
        let mut c = RemoteConfig::new(RemoteKind::OpenAi, " ", 8);
        c.base_url = "ftp://user:hunter2@x".into();
        let err = RemoteEmbedder::new(c).unwrap_err();
        assert!(err.message().contains("model name"), "{err}");
        assert!(err.message().contains("base_url"), "{err}");
        assert!(!err.message().contains("hunter2"), "{err}");
    }
}
