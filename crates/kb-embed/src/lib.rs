//! Embedding providers behind one trait, the local offline model first.
//!
//! [`Embedder`] is what the embedder service and the CLI call; [`EmbedError`] tells them
//! whether to retry ([`EmbedErrorKind::Transient`]), dead-letter
//! ([`EmbedErrorKind::Permanent`]) or stop and fix the setup ([`EmbedErrorKind::Config`]).
//!
//! [`LocalModel`] is the default provider: all-MiniLM-L6-v2 (384 dimensions, mean pooled,
//! L2 normalized, 256-token window) run by ONNX Runtime from files that
//! `deploy/local/stack install` builds from registry packages. It needs no network and no key.

mod embedder;
mod error;
mod local;

pub use embedder::Embedder;
pub use error::{EmbedError, EmbedErrorKind};
pub use local::{LocalModel, LocalModelConfig, DEFAULT_MODEL_DIR_NAME, ONNXRUNTIME_LIB_NAME};
