//! Settings to a provider: the local model or a remote service, and the layers around it.

use std::sync::Arc;
use std::time::Duration;

use crate::{
    resolve_api_key, DispatchConfig, EmbedError, Embedder, LocalModel, LocalModelConfig,
    RemoteConfig, RemoteEmbedder, RemoteKind,
};
use kb_core::settings::{EmbedProvider, EmbedderSettings};
use kb_core::Settings;

/// The configured provider, bare (no batching, retries or cache): what `kb search` uses for
/// one query. Loads the local model (blocking, ~1 s) or builds the HTTP client; sends nothing
/// to a remote service.
pub fn load_embedder(settings: &Settings) -> Result<Arc<dyn Embedder>, EmbedError> {
    provider(&settings.embedder)
}

fn provider(e: &EmbedderSettings) -> Result<Arc<dyn Embedder>, EmbedError> {
    if e.provider == EmbedProvider::Local {
        let model = LocalModel::load(&LocalModelConfig {
            model_dir: e.model_dir.clone(),
            onnxruntime_lib: e.onnxruntime_lib.clone(),
            threads: e.threads,
            batch_size: e.batch_size,
        })?;
        return Ok(Arc::new(model));
    }
    Ok(Arc::new(RemoteEmbedder::new(remote_config(e)?)?))
}

/// The remote provider's configuration from the settings (defaults filled in).
pub fn remote_config(e: &EmbedderSettings) -> Result<RemoteConfig, EmbedError> {
    let kind = match e.provider {
        EmbedProvider::Mistral => RemoteKind::Mistral,
        EmbedProvider::Openai => RemoteKind::OpenAi,
        EmbedProvider::Ollama => RemoteKind::Ollama,
        EmbedProvider::Local => {
            return Err(EmbedError::config(
                "embedder.provider local is the offline model, not a remote service",
            ))
        }
    };
    let model = match e.model.trim() {
        "" => kind.default_model().unwrap_or_default(),
        m => m,
    };
    let mut cfg = RemoteConfig::new(kind, model, e.dimensions);
    if !e.base_url.trim().is_empty() {
        cfg.base_url = e.base_url.trim().to_owned();
    }
    cfg.api_key = resolve_api_key(&e.api_key, e.api_key_file.as_deref())?;
    cfg.send_dimensions = e.send_dimensions;
    if e.max_inputs_per_request > 0 {
        cfg.max_inputs = e.max_inputs_per_request;
    }
    if e.max_tokens_per_request > 0 {
        cfg.max_request_tokens = Some(e.max_tokens_per_request);
    }
    cfg.timeout = Duration::from_secs(e.request_timeout_secs.max(1));
    Ok(cfg)
}

/// Concurrency and retries of the request pipeline. The local model runs one batch at a
/// time (its threads already use every core), so it gets one request in flight.
pub fn dispatch_config(e: &EmbedderSettings) -> DispatchConfig {
    DispatchConfig {
        max_in_flight: if e.provider == EmbedProvider::Local {
            1
        } else {
            e.max_in_flight.max(1)
        },
        max_retries: e.max_retries,
        ..DispatchConfig::default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use kb_core::Secret;

    #[test]
    fn mistral_gets_its_defaults_and_the_key_from_a_file() {
        let dir = tempfile_dir();
        let key_file = dir.join("mistral.key");
        std::fs::write(&key_file, "sk-test\n").unwrap();
        let e = EmbedderSettings {
            provider: EmbedProvider::Mistral,
            dimensions: 1024,
            api_key_file: Some(key_file),
            ..EmbedderSettings::default()
        };
        let cfg = remote_config(&e).unwrap();
        assert_eq!(cfg.model, "mistral-embed");
        assert_eq!(cfg.endpoint(), "https://api.mistral.ai/v1/embeddings");
        assert_eq!(
            (cfg.max_inputs, cfg.max_request_tokens),
            (256, Some(16_384))
        );
        assert_eq!(cfg.api_key.unwrap().expose(), "sk-test");
        assert!(!format!("{:?}", remote_config(&e).unwrap()).contains("sk-test"));
    }

    #[test]
    fn overrides_apply_and_local_runs_one_request_at_a_time() {
        let e = EmbedderSettings {
            provider: EmbedProvider::Openai,
            model: "text-embedding-3-small".into(),
            base_url: "http://127.0.0.1:8000/v1".into(),
            api_key: Secret::new("k"),
            max_inputs_per_request: 16,
            max_tokens_per_request: 1000,
            max_in_flight: 6,
            ..EmbedderSettings::default()
        };
        let cfg = remote_config(&e).unwrap();
        assert_eq!(cfg.endpoint(), "http://127.0.0.1:8000/v1/embeddings");
        assert_eq!((cfg.max_inputs, cfg.max_request_tokens), (16, Some(1000)));
        assert_eq!(dispatch_config(&e).max_in_flight, 6);
        assert_eq!(
            dispatch_config(&EmbedderSettings::default()).max_in_flight,
            1
        );
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("kb-embedder-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
