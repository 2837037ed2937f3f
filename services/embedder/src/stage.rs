//! The handler: one parsed document in, the same document with an embedding on every chunk
//! out to the mirror stream.

use std::sync::Arc;

use kb_embed::{EmbedError, EmbedErrorKind, Embedder};
use kb_proto::{mirror_event::Kind, Message, ParsedDocument, ParsedEvent};
use kb_stream::consume::{Delivery, Handler, HandlerError, HandlerErrorKind, Outcome};
use kb_stream::input::{self, Input};
use kb_stream::Progress;
use kb_stream::{subjects, MirrorPublish, Publisher};

pub struct EmbedStage {
    embedder: Arc<dyn Embedder>,
    publisher: Publisher,
    progress: Progress,
}

/// Transient: nak with the provider's delay when it gave one. Permanent: dead-letter with the
/// reason. Config (cannot happen after the start-up probe, but the model may change under
/// us): retry, so an operator's fix lets the message through.
pub fn to_handler_error(e: EmbedError) -> HandlerError {
    match e.kind {
        EmbedErrorKind::Transient => HandlerError {
            kind: HandlerErrorKind::Transient {
                retry_after: e.retry_after(),
            },
            reason: e.to_string(),
            source: None,
        },
        EmbedErrorKind::Permanent => HandlerError::permanent("embedding_failed", e.to_string()),
        EmbedErrorKind::Config => HandlerError::transient(format!("embedder misconfigured: {e}")),
    }
}

impl EmbedStage {
    pub fn new(embedder: Arc<dyn Embedder>, publisher: Publisher, progress: Progress) -> Self {
        Self {
            embedder,
            publisher,
            progress,
        }
    }

    /// Fills every chunk's embedding. All chunks go in one call: the layers below look them
    /// up in the cache and pack the rest, with other documents' chunks, into requests.
    pub async fn embed_document(&self, doc: &mut ParsedDocument) -> Result<(), EmbedError> {
        let dims = self.embedder.dimensions();
        let texts: Vec<String> = doc.chunks.iter().map(|c| c.text.clone()).collect();
        let vectors = self.embedder.embed(&texts).await?;
        if vectors.len() != texts.len() || vectors.iter().any(|v| v.len() != dims) {
            return Err(EmbedError::permanent(format!(
                "provider returned {} vectors for {} chunks (expected {dims} dimensions each)",
                vectors.len(),
                texts.len()
            )));
        }
        for (chunk, v) in doc.chunks.iter_mut().zip(vectors) {
            chunk.embedding = v;
        }
        doc.embedding_model = self.embedder.model().to_string();
        doc.embedding_dimensions = dims as u32;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Handler for EmbedStage {
    async fn handle(&self, d: &Delivery) -> Result<Outcome, HandlerError> {
        input::on_fresh::<ParsedEvent, _>(&self.publisher, d, |input| self.embed_parsed(input))
            .await
    }
}

impl EmbedStage {
    /// Embeds a parsed version the mirror has not moved past, and publishes it to the mirror.
    async fn embed_parsed(&self, input: Input) -> Result<Outcome, HandlerError> {
        let (source, body, bytes) = (input.source, input.body, input.bytes);
        let version = source.version;
        let mut doc = ParsedDocument::decode(bytes.as_slice()).map_err(|e| {
            HandlerError::permanent("decode", format!("undecodable parsed document: {e}"))
                .with_source(Some(&source))
        })?;
        doc.source = Some(source.clone());
        self.embed_document(&mut doc)
            .await
            .map_err(|e| to_handler_error(e).with_source(Some(&source)))?;
        let label = match self
            .publisher
            .mirror(&source, Kind::Upsert, Some(&doc), "")
            .await?
        {
            MirrorPublish::Published => "embedded",
            MirrorPublish::Superseded { .. } => "superseded",
        };
        self.progress
            .finished(subjects::EMBEDDER, &source, label, None)
            .await;
        self.publisher.blobs().discard(Some(&body)).await;
        Ok(Outcome { label, version })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn error_kinds_map_to_retry_or_dead_letter() {
        let t = to_handler_error(
            EmbedError::transient("429").with_retry_after(Duration::from_secs(90)),
        );
        assert_eq!(
            t.kind,
            HandlerErrorKind::Transient {
                retry_after: Some(Duration::from_secs(90))
            }
        );
        let p = to_handler_error(EmbedError::permanent("HTTP 401: the API key was refused"));
        assert_eq!(
            p.kind,
            HandlerErrorKind::Permanent {
                error_kind: "embedding_failed".into()
            }
        );
        assert!(p.reason.contains("401"));
        assert!(matches!(
            to_handler_error(EmbedError::config("x")).kind,
            HandlerErrorKind::Transient { .. }
        ));
    }
}
