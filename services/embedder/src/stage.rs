//! The handler: one parsed document in, the same document with an embedding on every chunk
//! out to the mirror stream. A document given up (a permanent provider error, retries
//! exhausted, a panic, an embedder that died on it `embedder.crash_limit` times) is recorded
//! as FAILED in both stores and in progress, besides its dead letter.

use std::sync::Arc;

use kb_embed::{EmbedError, Embedder};
use kb_proto::{Message, ParsedDocument, ParsedEvent};
use kb_store::Change;
use kb_stream::consume::{Delivery, Done, GiveUp, Handler, HandlerError};
use kb_stream::input::{self, Input};
use kb_stream::Progress;
use kb_stream::{DeadLetterKind, Mirrored, OutcomeLabel, ProgressStatus, Publisher, Stage};

pub struct EmbedStage {
    embedder: Arc<dyn Embedder>,
    publisher: Publisher,
    progress: Progress,
}

/// The shared conversion ([`HandlerError::from_error`]): transient naks with the provider's
/// delay, permanent dead-letters as `embedding_failed`, and a misconfiguration (cannot happen
/// after the start-up probe, but the model may change under us) retries, so an operator's fix
/// lets the message through.
pub fn to_handler_error(e: EmbedError) -> HandlerError {
    HandlerError::from_error(&e, DeadLetterKind::EmbeddingFailed)
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
    async fn process(&self, d: &Delivery) -> Result<Done, HandlerError> {
        input::on_fresh::<ParsedEvent, _>(&self.publisher, d, |input| self.embed_parsed(input))
            .await
    }

    /// Both stores record the failure (a FAILED mirror event at the version given up, unless
    /// the mirror moved past it), and progress says `failed`, so `kb ingest` names it.
    async fn on_give_up(&self, _d: &Delivery, g: &GiveUp) -> Result<(), HandlerError> {
        // An undecodable message names no version: its dead letter is all there is.
        let Some(source) = &g.source else {
            return Ok(());
        };
        let reason = if source.path.is_empty() {
            g.reason.clone()
        } else {
            format!("{}: {}", source.path, g.reason)
        };
        self.publisher
            .mirror(Change::Failed(source, &reason))
            .await?;
        self.progress
            .finished(
                Stage::Embedder,
                source,
                ProgressStatus::Failed,
                Some(reason),
            )
            .await;
        Ok(())
    }
}

impl EmbedStage {
    /// Embeds a parsed version the mirror has not moved past, and publishes it to the mirror.
    /// Its input body goes once the message is acked.
    async fn embed_parsed(&self, input: Input) -> Result<Done, HandlerError> {
        let (source, body, bytes) = (input.source, input.body, input.bytes);
        let version = source.version;
        let mut doc = ParsedDocument::decode(bytes.as_slice()).map_err(|e| {
            HandlerError::permanent(
                DeadLetterKind::Decode,
                format!("undecodable parsed document: {e}"),
            )
            .with_source(Some(&source))
        })?;
        doc.source = Some(source.clone());
        self.embed_document(&mut doc)
            .await
            .map_err(|e| to_handler_error(e).with_source(Some(&source)))?;
        let label = match self.publisher.mirror(Change::Upsert(&doc)).await? {
            Mirrored::Published => OutcomeLabel::EMBEDDED,
            Mirrored::Superseded { .. } | Mirrored::Duplicate => OutcomeLabel::SUPERSEDED,
        };
        Ok(Done::new(label, version)
            .with_progress(&source)
            .discarding(Some(body)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kb_stream::consume::HandlerErrorKind;
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
                error_kind: DeadLetterKind::EmbeddingFailed
            }
        );
        assert!(p.reason.contains("401"));
        assert!(matches!(
            to_handler_error(EmbedError::config("x")).kind,
            HandlerErrorKind::Transient { .. }
        ));
    }
}
