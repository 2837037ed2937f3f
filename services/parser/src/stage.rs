//! The handler: one source version in, its `ParsedDocument` out to `kb.v1.parsed.<source>`.
//! A document given up (a parse failure, a panic, a worker or a parser that died on it
//! `parser.crash_limit` times, retries exhausted) is recorded as FAILED in both stores and in
//! progress by [`Handler::on_give_up`], besides its dead letter. The input body goes only
//! after the ack (the loop's tail), so a lost ack finds it again.

use std::sync::Arc;

use kb_llm::{LlmError, LlmExtractor};
use kb_proto::{ParsedDocument, SourceEvent};
use kb_stream::consume::{Delivery, Done, GiveUp, Handler, HandlerError};
use kb_stream::input::{self, Input};
use kb_stream::{Change, DeadLetterKind, OutcomeLabel, Progress, ProgressStatus, Publisher, Stage};

use crate::runner::{RunFailure, Runner};

/// Deliveries of one document that may wait for a transient LLM failure; the last one goes on
/// with the local extraction, so the optional extractor never dead-letters a document.
const LLM_ATTEMPTS: u64 = 3;

pub struct Parser {
    publisher: Publisher,
    progress: Progress,
    runner: Runner,
    llm: Option<LlmExtractor>,
}

impl Parser {
    pub fn new(publisher: Publisher, progress: Progress, runner: Runner) -> Self {
        Self {
            publisher,
            progress,
            runner,
            llm: None,
        }
    }

    /// Enriches every parsed document with this LLM extractor.
    pub fn with_llm(mut self, llm: Option<LlmExtractor>) -> Self {
        self.llm = llm;
        self
    }

    /// Adds the LLM extraction to `doc` when the extractor is on. `Err` only for a transient
    /// failure worth another delivery; any other failure leaves `doc` as the local extractor
    /// made it.
    async fn enrich(&self, doc: &mut ParsedDocument, deliveries: u64) -> Result<(), HandlerError> {
        let Some(llm) = &self.llm else {
            return Ok(());
        };
        let sid = doc
            .source
            .as_ref()
            .map(|s| s.source_id.clone())
            .unwrap_or_default();
        match llm.enrich(doc).await {
            Ok(e) => {
                tracing::info!(
                    source_id = %sid,
                    entities_added = e.merge.entities_added,
                    relations_added = e.merge.relations_added,
                    complete = e.complete,
                    budget_exceeded = e.budget_exceeded,
                    "llm extraction merged"
                );
                Ok(())
            }
            Err(e) if e.is_transient() && deliveries < LLM_ATTEMPTS => {
                tracing::warn!(source_id = %sid, error = %e, deliveries, "llm extraction failed; retrying the document later");
                Err(llm_retry(&e))
            }
            Err(e) => {
                metrics::counter!("kb_llm_documents_local_only_total").increment(1);
                tracing::warn!(source_id = %sid, error = %e, kind = %e.class(), "llm extraction failed; keeping the local extraction");
                Ok(())
            }
        }
    }

    /// Parses a source version the mirror has not moved past, and publishes the result.
    async fn parse_source(&self, input: Input, deliveries: u64) -> Result<Done, HandlerError> {
        let (source, body, bytes) = (input.source, input.body, input.bytes);
        let mut doc = match self.runner.parse(&source, Arc::new(bytes)).await {
            Ok(doc) => doc,
            // The reason names the file: the dead letter and the FAILED record say the same.
            Err(RunFailure::Document(f)) => {
                return Err(HandlerError::permanent(
                    f.kind,
                    format!("{}: {}", source.path, f.reason),
                )
                .with_source(Some(&source)))
            }
            Err(RunFailure::Start(e)) => {
                return Err(HandlerError::transient(e).with_source(Some(&source)))
            }
        };
        self.enrich(&mut doc, deliveries)
            .await
            .map_err(|e| e.with_source(Some(&source)))?;
        self.publisher.parsed(&doc).await?;
        Ok(Done::new(OutcomeLabel::PARSED, source.version)
            .with_progress(&source)
            .discarding(Some(body)))
    }
}

#[async_trait::async_trait]
impl Handler for Parser {
    async fn process(&self, d: &Delivery) -> Result<Done, HandlerError> {
        let parse = |input| self.parse_source(input, d.deliveries);
        input::on_fresh::<SourceEvent, _>(&self.publisher, d, parse).await
    }

    /// Both stores record the failure (a FAILED mirror event at the version given up, unless
    /// the mirror moved past it), and progress says `failed`, so `kb ingest` names it; the
    /// dead letter keeps the original for a retry.
    async fn on_give_up(&self, _d: &Delivery, g: &GiveUp) -> Result<(), HandlerError> {
        // An undecodable message names no version: its dead letter is all there is.
        let Some(source) = &g.source else {
            return Ok(());
        };
        let named = format!("{}: ", source.path);
        let reason = if source.path.is_empty() || g.reason.starts_with(&named) {
            g.reason.clone()
        } else {
            format!("{named}{}", g.reason)
        };
        // Superseded or a duplicate: the mirror holds a newer state, or this failure already.
        self.publisher
            .mirror(Change::Failed(source, &reason))
            .await?;
        self.progress
            .finished(Stage::Parser, source, ProgressStatus::Failed, Some(reason))
            .await;
        Ok(())
    }
}

/// A transient LLM failure, retried after the server's delay (the class decides, as for
/// every error; a permanent one never reaches here: the document goes on without the LLM).
fn llm_retry(e: &LlmError) -> HandlerError {
    let mut h = HandlerError::from_error(e, DeadLetterKind::RetriesExhausted);
    h.reason = format!("llm extraction: {}", h.reason);
    h
}
