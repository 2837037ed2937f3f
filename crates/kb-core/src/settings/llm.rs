//! The `[llm]` section: the optional LLM extractor of the parser (crate `kb-llm`). Off by
//! default; checked only when enabled.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::secret::Secret;
use serde::Deserialize;

/// Which API family the endpoint speaks. Both use the same chat-completions request shape;
/// the provider picks the default base URL, model, and the environment variable of the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    #[default]
    Mistral,
    /// OpenAI itself or any compatible server (vLLM, llama.cpp, Ollama, LiteLLM, ...).
    Openai,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Mistral => "mistral",
            Provider::Openai => "openai",
        }
    }

    fn default_base_url(self) -> &'static str {
        match self {
            Provider::Mistral => "https://api.mistral.ai",
            Provider::Openai => "https://api.openai.com",
        }
    }

    fn default_model(self) -> &'static str {
        match self {
            Provider::Mistral => "mistral-small-latest",
            Provider::Openai => "gpt-4o-mini",
        }
    }

    /// Environment variable read for the key when neither `api_key` nor `api_key_file` is set.
    pub fn key_env(self) -> &'static str {
        match self {
            Provider::Mistral => "MISTRAL_API_KEY",
            Provider::Openai => "OPENAI_API_KEY",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmSettings {
    /// Off by default: the local extractor needs no network and no key.
    pub enabled: bool,
    pub provider: Provider,
    /// Server root, e.g. `http://127.0.0.1:8000` (a trailing `/v1` is accepted); empty = the
    /// provider's public endpoint.
    pub base_url: String,
    /// Empty = the provider's default model.
    pub model: String,
    /// The key itself (prefer `api_key_file` or the provider's environment variable).
    pub api_key: Secret,
    /// A file holding the key (surrounding whitespace ignored).
    pub api_key_file: Option<PathBuf>,
    /// Requests in flight at once, across all documents of one extractor.
    pub max_concurrency: usize,
    /// Ceiling on estimated prompt tokens plus `max_output_tokens` per request, per document.
    pub max_tokens_per_document: usize,
    /// Whole-request timeout.
    pub timeout_secs: u64,
    /// Chunks sent together in one request.
    pub chunks_per_request: usize,
    /// `max_tokens` of each completion.
    pub max_output_tokens: u32,
    pub temperature: f32,
    /// Retries of one request on 429, 5xx, timeouts and connection errors.
    pub max_retries: usize,
    /// First backoff delay (doubling, with jitter) when the server gives no `Retry-After`.
    pub retry_base_delay_ms: u64,
    /// A longer `Retry-After` is not waited for in-process: the call fails as transient and
    /// carries the delay, so the caller can nak the message for that long.
    pub max_retry_after_secs: u64,
}

impl Default for LlmSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            provider: Provider::Mistral,
            base_url: String::new(),
            model: String::new(),
            api_key: Secret::default(),
            api_key_file: None,
            max_concurrency: 2,
            max_tokens_per_document: 200_000,
            timeout_secs: 60,
            chunks_per_request: 4,
            max_output_tokens: 1_500,
            temperature: 0.0,
            max_retries: 4,
            retry_base_delay_ms: 500,
            max_retry_after_secs: 60,
        }
    }
}

/// Every problem found in [`LlmSettings`], reported at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlmConfigError(pub Vec<String>);

impl std::fmt::Display for LlmConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join("; "))
    }
}

impl std::error::Error for LlmConfigError {}

impl LlmSettings {
    /// The base URL in use (provider default when unset), without a trailing `/`.
    pub fn effective_base_url(&self) -> &str {
        let b = self.base_url.trim().trim_end_matches('/');
        if b.is_empty() {
            self.provider.default_base_url()
        } else {
            b
        }
    }

    /// `{base}/v1/chat/completions`; a base already ending in `/v1` gets no second one.
    pub fn endpoint(&self) -> String {
        let base = self.effective_base_url();
        if base.ends_with("/v1") {
            format!("{base}/chat/completions")
        } else {
            format!("{base}/v1/chat/completions")
        }
    }

    pub fn effective_model(&self) -> &str {
        let m = self.model.trim();
        if m.is_empty() {
            self.provider.default_model()
        } else {
            m
        }
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }

    /// Checks the values (no I/O); every problem is listed, keys named as `llm.<field>`.
    pub fn validate(&self) -> Result<(), LlmConfigError> {
        let mut p = Vec::new();
        let base = self.effective_base_url();
        // checked by hand: kb-core has no URL crate
        let host = base
            .strip_prefix("https://")
            .or_else(|| base.strip_prefix("http://"))
            .and_then(|rest| rest.split(['/', '?', '#']).next())
            .filter(|h| !h.is_empty() && !h.contains(char::is_whitespace));
        if host.is_none() {
            p.push(format!(
                "llm.base_url must be an http:// or https:// URL, got {base:?}"
            ));
        }
        if !(1..=64).contains(&self.max_concurrency) {
            p.push("llm.max_concurrency must be between 1 and 64".into());
        }
        if !(1..=32).contains(&self.chunks_per_request) {
            p.push("llm.chunks_per_request must be between 1 and 32".into());
        }
        if self.max_output_tokens < 64 {
            p.push("llm.max_output_tokens must be at least 64".into());
        }
        if self.max_tokens_per_document < self.max_output_tokens as usize + 256 {
            p.push(
                "llm.max_tokens_per_document must leave room for one request: at least llm.max_output_tokens + 256"
                    .into(),
            );
        }
        if self.timeout_secs == 0 {
            p.push("llm.timeout_secs must be at least 1".into());
        }
        if !(0.0..=2.0).contains(&self.temperature) {
            p.push("llm.temperature must be between 0 and 2".into());
        }
        if self.max_retries > 20 {
            p.push("llm.max_retries must be at most 20".into());
        }
        if !self.api_key.is_empty() && self.api_key_file.is_some() {
            p.push("llm.api_key and llm.api_key_file are both set; keep one".into());
        }
        if p.is_empty() {
            Ok(())
        } else {
            Err(LlmConfigError(p))
        }
    }

    /// The API key: `api_key`, else the contents of `api_key_file`, else the provider's
    /// environment variable (looked up with `env`). Mistral needs one; an OpenAI-compatible
    /// local server may not, so an empty key sends no `Authorization` header.
    pub fn resolve_api_key(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Secret, LlmConfigError> {
        let key = if !self.api_key.is_empty() {
            self.api_key.expose().trim().to_owned()
        } else if let Some(path) = &self.api_key_file {
            read_key_file(path)?
        } else {
            env(self.provider.key_env())
                .map(|k| k.trim().to_owned())
                .unwrap_or_default()
        };
        if key.is_empty() && self.provider == Provider::Mistral {
            return Err(LlmConfigError(vec![format!(
                "llm: no API key for mistral (set llm.api_key_file or {})",
                self.provider.key_env()
            )]));
        }
        Ok(Secret::new(key))
    }
}

fn read_key_file(path: &Path) -> Result<String, LlmConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        LlmConfigError(vec![format!(
            "llm.api_key_file {} cannot be read: {e}",
            path.display()
        )])
    })?;
    let key = text.trim().to_owned();
    if key.is_empty() {
        return Err(LlmConfigError(vec![format!(
            "llm.api_key_file {} is empty",
            path.display()
        )]));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_endpoints_are_built() {
        let s = LlmSettings::default();
        assert!(s.validate().is_ok());
        assert_eq!(s.endpoint(), "https://api.mistral.ai/v1/chat/completions");
        assert_eq!(s.effective_model(), "mistral-small-latest");
        let o = LlmSettings {
            provider: Provider::Openai,
            base_url: "http://127.0.0.1:8000/v1/".into(),
            ..LlmSettings::default()
        };
        assert_eq!(o.endpoint(), "http://127.0.0.1:8000/v1/chat/completions");
        assert_eq!(o.effective_model(), "gpt-4o-mini");
    }

    #[test]
    fn validation_lists_every_problem() {
        let s = LlmSettings {
            base_url: "ftp://x".into(),
            max_concurrency: 0,
            chunks_per_request: 0,
            timeout_secs: 0,
            api_key: Secret::new("k"),
            api_key_file: Some("/k".into()),
            ..LlmSettings::default()
        };
        let err = s.validate().expect_err("five problems");
        for bad in ["http://", "https:// x", "127.0.0.1:8000"] {
            let b = LlmSettings {
                base_url: bad.into(),
                ..LlmSettings::default()
            };
            assert!(b.validate().is_err(), "{bad}");
        }
        assert_eq!(err.0.len(), 5, "{err}");
        assert!(err.0.iter().any(|p| p.contains("llm.base_url")));
        let small_budget = LlmSettings {
            max_tokens_per_document: 1000,
            ..LlmSettings::default()
        };
        assert!(small_budget.validate().is_err());
    }

    #[test]
    fn key_from_setting_then_file_then_env() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("key");
        std::fs::write(&file, "  from-file\n").unwrap();
        let env = |name: &str| (name == "MISTRAL_API_KEY").then(|| "from-env".to_owned());

        let direct = LlmSettings {
            api_key: Secret::new("direct"),
            ..LlmSettings::default()
        };
        assert_eq!(direct.resolve_api_key(env).unwrap().expose(), "direct");
        let filed = LlmSettings {
            api_key_file: Some(file),
            ..LlmSettings::default()
        };
        assert_eq!(filed.resolve_api_key(env).unwrap().expose(), "from-file");
        let plain = LlmSettings::default();
        assert_eq!(plain.resolve_api_key(env).unwrap().expose(), "from-env");
        // mistral needs a key; a compatible local server does not
        assert!(plain.resolve_api_key(|_| None).is_err());
        let local = LlmSettings {
            provider: Provider::Openai,
            ..LlmSettings::default()
        };
        assert!(local.resolve_api_key(|_| None).unwrap().is_empty());
        let missing = LlmSettings {
            api_key_file: Some(dir.path().join("nope")),
            ..LlmSettings::default()
        };
        let err = missing.resolve_api_key(env).expect_err("missing file");
        assert!(err.to_string().contains("cannot be read"), "{err}");
    }

    #[test]
    fn deserializes_from_toml_like_values_and_rejects_typos() {
        let s: LlmSettings = serde_json::from_str(
            r#"{"enabled": true, "provider": "openai", "base_url": "http://h:1", "model": "m"}"#,
        )
        .unwrap();
        assert_eq!(s.provider, Provider::Openai);
        assert!(s.enabled);
        assert!(serde_json::from_str::<LlmSettings>(r#"{"modle": "m"}"#).is_err());
        assert!(serde_json::from_str::<LlmSettings>(r#"{"provider": "acme"}"#).is_err());
        // the key never shows in debug output
        let k = LlmSettings {
            api_key: Secret::new("sk-123"),
            ..LlmSettings::default()
        };
        assert!(!format!("{k:?}").contains("sk-123"));
    }
}
