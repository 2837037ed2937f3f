//! Embedding providers behind one trait, and what makes them fast and cheap at scale.
//!
//! [`Embedder`] is what the embedder service and the CLI call; [`EmbedError`] tells them
//! whether to retry ([`EmbedErrorKind::Transient`]), dead-letter
//! ([`EmbedErrorKind::Permanent`]) or stop and fix the setup ([`EmbedErrorKind::Config`]).
//!
//! Providers:
//! - [`LocalModel`], the default: all-MiniLM-L6-v2 (384 dimensions, mean pooled, L2
//!   normalized, 256-token window) run by ONNX Runtime from files that
//!   `deploy/local/stack install` builds from registry packages. No network, no key.
//! - [`RemoteEmbedder`]: Mistral (`mistral-embed`), any OpenAI-compatible `/v1/embeddings`,
//!   and Ollama's `/api/embed`, over HTTPS (rustls) with typed errors.
//!
//! Layers any provider can be wrapped in, outermost first:
//! - [`CachedEmbedder`]: vectors keyed by (model, dimensions, SHA-256 of the text) in a
//!   [`VectorCache`], so no text is paid for twice;
//! - [`Dispatcher`]: packs inputs from concurrent calls (documents) into requests within the
//!   provider's input and token limits, bounds requests in flight (halved on 429, then grown
//!   back), retries transient failures with backoff, and isolates inputs a provider refuses.
//!
//! [`check_dimensions`] probes a provider once at start. [`fake`] is a local stand-in server
//! speaking each remote wire format, for tests and benchmarks.

mod cache;
mod dispatch;
mod embedder;
mod error;
pub mod fake;
mod local;
pub mod provider;
mod remote;
mod tokens;

pub use cache::{
    cache_key, decode_vector, encode_vector, CacheCounters, CachedEmbedder, MemoryCache,
    VectorCache,
};
pub use dispatch::{DispatchConfig, Dispatcher};
pub use embedder::{check_dimensions, Embedder};
pub use error::{EmbedError, EmbedErrorExt, EmbedErrorKind};
pub use local::{
    LocalModel, LocalModelConfig, DEFAULT_MODEL_DIR_NAME, INT8_MODEL_DIR_NAME, ONNXRUNTIME_LIB_NAME,
};
pub use provider::load_embedder;
pub use remote::{resolve_api_key, RemoteConfig, RemoteEmbedder, RemoteKind};
pub use tokens::estimate_tokens;
