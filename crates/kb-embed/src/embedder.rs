//! The provider trait the embedder service and the CLI code against.

use crate::EmbedError;

/// A source of text embeddings. Object safe: services hold an `Arc<dyn Embedder>`.
#[async_trait::async_trait]
pub trait Embedder: Send + Sync {
    /// Model id stored beside every vector, e.g. `"all-minilm-l6-v2"`.
    fn model(&self) -> &str;

    /// Length of every vector this provider returns.
    fn dimensions(&self) -> usize;

    /// Inputs per `embed` call the provider is built for; callers split larger work.
    fn max_batch(&self) -> usize;

    /// One vector per input, in input order.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError>;
}
