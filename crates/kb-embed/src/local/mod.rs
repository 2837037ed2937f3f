//! The local model: all-MiniLM-L6-v2 as ONNX on ONNX Runtime, no network, no API key.
//!
//! `deploy/local/model/install` (run by `deploy/local/stack install`) builds the model
//! directory from registry packages; this module only reads it.

mod encoder;
mod manifest;
mod pooling;
mod runtime;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use encoder::Encoder;
use manifest::Manifest;

use crate::{EmbedError, Embedder};

/// Appended to every setup error: the one command that installs what is missing.
pub(crate) const INSTALL_HINT: &str = "install it with `deploy/local/stack install`";

/// Folder name of the default model under `<stack>/model/` (fp32).
pub const DEFAULT_MODEL_DIR_NAME: &str = "all-minilm-l6-v2";
/// Folder name of the int8 variant: 1.7× less CPU per query, the same corpus recall@10, but
/// its vectors move a little with what they are batched with (docs/benchmarks.md).
pub const INT8_MODEL_DIR_NAME: &str = "all-minilm-l6-v2-int8";
/// File name of the ONNX Runtime library under `<stack>/model/`.
pub const ONNXRUNTIME_LIB_NAME: &str = "libonnxruntime.so";

/// Where the local model and its runtime live, and how hard to run them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalModelConfig {
    /// Folder with `model.onnx`, `tokenizer.json` and `kb-model.json`.
    pub model_dir: PathBuf,
    /// The ONNX Runtime shared library (`libonnxruntime.so`).
    pub onnxruntime_lib: PathBuf,
    /// Threads for one inference; 0 means one per available core.
    pub threads: usize,
    /// Texts per forward pass; larger calls are split into batches of this size.
    pub batch_size: usize,
}

impl LocalModelConfig {
    /// The layout `deploy/local/model/install` leaves under a stack dir (`.stack` by default).
    pub fn from_stack_dir(stack_dir: impl AsRef<Path>) -> Self {
        let model_root = stack_dir.as_ref().join("model");
        Self {
            model_dir: model_root.join(DEFAULT_MODEL_DIR_NAME),
            onnxruntime_lib: model_root.join(ONNXRUNTIME_LIB_NAME),
            threads: 0,
            batch_size: 8,
        }
    }

    /// [`LocalModelConfig::from_stack_dir`] with the model folder of `KB_EMBEDDER__MODEL_DIR`
    /// when set (the variant `deploy/local/stack env` names), for tools measuring a variant.
    pub fn from_stack_dir_and_env(stack_dir: impl AsRef<Path>) -> Self {
        let mut cfg = Self::from_stack_dir(stack_dir);
        if let Some(dir) = std::env::var_os("KB_EMBEDDER__MODEL_DIR").filter(|d| !d.is_empty()) {
            cfg.model_dir = dir.into();
        }
        cfg
    }
}

/// The local embedding model, ready to use; cheap to share behind an `Arc`.
pub struct LocalModel {
    name: String,
    dimensions: usize,
    max_batch: usize,
    encoder: Arc<Encoder>,
}

impl LocalModel {
    /// Loads ONNX Runtime and the model, then embeds one probe text to prove they work.
    ///
    /// Every failure is a `Config` error naming the file and the install command.
    /// Blocking (reads ~90 MB); call it at startup or from a blocking task.
    pub fn load(cfg: &LocalModelConfig) -> Result<Self, EmbedError> {
        if cfg.batch_size == 0 {
            return Err(EmbedError::config(
                "local model batch_size must be at least 1",
            ));
        }
        if !cfg.model_dir.is_dir() {
            return Err(EmbedError::config(format!(
                "local model directory {} not found; {INSTALL_HINT}",
                cfg.model_dir.display()
            )));
        }
        let manifest = Manifest::read(&cfg.model_dir)?;
        runtime::ensure_loaded(&cfg.onnxruntime_lib)?;
        let threads = match cfg.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let encoder = Encoder::load(&cfg.model_dir, &manifest, threads, cfg.batch_size)?;
        let probe = encoder
            .embed(&["probe".to_owned()])
            .map_err(|e| EmbedError::config(format!("local model self-check failed: {e}")))?;
        if probe.first().map(Vec::len) != Some(manifest.dimensions) {
            return Err(EmbedError::config(format!(
                "local model in {} does not produce the {} dimensions its manifest declares",
                cfg.model_dir.display(),
                manifest.dimensions
            )));
        }
        tracing::info!(
            model = %manifest.name,
            dimensions = manifest.dimensions,
            max_tokens = manifest.max_tokens,
            threads,
            batch_size = cfg.batch_size,
            "local embedding model loaded"
        );
        Ok(Self {
            name: manifest.name,
            dimensions: manifest.dimensions,
            // A few forward passes per call: enough to sort by length, short enough for acks.
            max_batch: cfg.batch_size * 4,
            encoder: Arc::new(encoder),
        })
    }
}

#[async_trait::async_trait]
impl Embedder for LocalModel {
    fn model(&self) -> &str {
        &self.name
    }

    fn dimensions(&self) -> usize {
        self.dimensions
    }

    fn max_batch(&self) -> usize {
        self.max_batch
    }

    /// Runs on Tokio's blocking pool so inference never stalls the async workers.
    /// Accepts any number of inputs; `max_batch` is the advised size.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encoder = Arc::clone(&self.encoder);
        let texts = texts.to_vec();
        tokio::task::spawn_blocking(move || encoder.embed(&texts))
            .await
            .map_err(|e| {
                if e.is_cancelled() {
                    EmbedError::transient("local model task cancelled (shutting down)")
                } else {
                    EmbedError::permanent(format!("local model task panicked: {e}"))
                }
            })?
    }
}
