//! The provider trait the embedder service and the CLI code against.

use crate::{EmbedError, EmbedErrorKind};

/// A source of text embeddings. Object safe: services hold an `Arc<dyn Embedder>`.
#[async_trait::async_trait]
pub trait Embedder: Send + Sync {
    /// Model id stored beside every vector, e.g. `"all-minilm-l6-v2"`.
    fn model(&self) -> &str;

    /// Length of every vector this provider returns.
    fn dimensions(&self) -> usize;

    /// Inputs per `embed` call the provider is built for; callers split larger work.
    fn max_batch(&self) -> usize;

    /// Budget of one `embed` call in (estimated, see [`crate::estimate_tokens`]) tokens summed
    /// over its inputs, when the provider has one (Mistral: 16384).
    fn max_request_tokens(&self) -> Option<usize> {
        None
    }

    /// One vector per input, in input order.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError>;
}

/// Embeds one probe text and checks the vector length against what the stores expect.
///
/// Run once at start: a model whose dimension differs from `expected` is a clear
/// [`EmbedErrorKind::Config`] error then, not a failed insert later. A probe that could not
/// reach the service is [`EmbedErrorKind::Transient`] (try again); any other failure of the
/// probe (refused key, unknown model) is `Config`.
pub async fn check_dimensions(embedder: &dyn Embedder, expected: usize) -> Result<(), EmbedError> {
    let vectors = embedder
        .embed(&["dimension probe".to_owned()])
        .await
        .map_err(|e| {
            // An unreachable service may come up (transient); anything else is the setup's fault.
            let kind = match e.kind {
                EmbedErrorKind::Transient => EmbedErrorKind::Transient,
                _ => EmbedErrorKind::Config,
            };
            EmbedError::new(
                kind,
                format!("model {} failed its start-up probe: {e}", embedder.model()),
            )
            .with_source(e)
        })?;
    let got = match vectors.as_slice() {
        [v] => v.len(),
        other => {
            return Err(EmbedError::config(format!(
                "model {} returned {} vectors for 1 probe input",
                embedder.model(),
                other.len()
            )))
        }
    };
    if got != expected || embedder.dimensions() != expected {
        return Err(EmbedError::config(format!(
            "model {} produces {got} dimensions but embedder.dimensions is {expected}: set \
             KB_EMBEDDER__DIMENSIONS={got} for every service (changing the model means \
             re-embedding: see docs/configuration.md)",
            embedder.model()
        )));
    }
    Ok(())
}
