//! The parser stage: takes raw source events from `KB_SOURCE` (a work queue shared by all parser
//! processes), turns each into a `ParsedDocument` and publishes it to `kb.v1.parsed.<source>`.
//! A file that cannot be parsed is dead-lettered with its reason and recorded as failed in both
//! stores (a `FAILED` mirror event), and the pipeline goes on. Each parse runs on a blocking
//! thread under `parser.timeout_secs` and the memory limits of the settings (inflated bytes,
//! PDF pages), so a hostile or huge file fails with `timeout`, `decompression_bomb` or
//! `too_large` instead of stalling the stage.
//!
//! With `[llm] enabled = true` the LLM extractor (crate `kb-llm`) adds its entities and
//! relations to the local extractor's. It is an enrichment, never a gate: a transient LLM
//! failure retries the document a few times (honouring `Retry-After`), after that or on a
//! permanent failure the document goes on with the local extraction and the reason is logged.

use kb_core::service::Context;
use kb_core::settings::ParserSettings;
use kb_core::Settings;
use kb_llm::{LlmError, LlmExtractor};
use kb_parse::ParseOptions;
use kb_proto::{mirror_event::Kind, ParsedDocument, SourceEvent, SourceRef};
use kb_stream::consume::{self, ConsumerSpec, Delivery, Handler, HandlerError, Outcome};
use kb_stream::input::{self, Input};
use kb_stream::Progress;
use kb_stream::{subjects, MirrorPublish, Publisher};
use std::sync::Arc;
use std::time::Duration;

pub fn consumer_spec(concurrency: usize) -> ConsumerSpec {
    ConsumerSpec {
        stage: subjects::PARSER,
        filter_subject: subjects::SOURCE_ALL.to_string(),
        ack_wait: Duration::from_secs(60),
        max_deliver: 10,
        backoff: vec![
            Duration::from_secs(60),
            Duration::from_secs(120),
            Duration::from_secs(300),
        ],
        concurrency,
        max_ack_pending: 64,
    }
}

pub struct Parser {
    publisher: Publisher,
    progress: Progress,
    options: ParseOptions,
    /// Wall-clock budget for one document; a parser stuck longer is a failed document.
    time_budget: Duration,
    llm: Option<LlmExtractor>,
}

/// Deliveries of one document that may wait for a transient LLM failure; the last one goes on
/// with the local extraction, so the optional extractor never dead-letters a document.
const LLM_ATTEMPTS: u64 = 3;

/// The parse options of the settings; the parse's own deadline is `parser.timeout_secs`.
pub fn parse_options(cfg: &ParserSettings) -> ParseOptions {
    ParseOptions {
        max_bytes: cfg.max_bytes,
        chunk_tokens: cfg.chunk_tokens,
        overlap_tokens: cfg.overlap_tokens,
        max_inflated_bytes: cfg.max_inflated_bytes,
        max_pages: cfg.max_pages,
        timeout_ms: cfg.timeout_secs.saturating_mul(1000),
    }
}

/// Why a document failed: (error kind for the dead letter, reason).
pub type ParseFailure = (String, String);

/// Margin past the parse's own deadline before the stage stops waiting for it: the parse
/// checks its deadline between steps, so it normally ends itself first.
const HARD_TIMEOUT_GRACE: Duration = Duration::from_secs(2);

/// Parses on a blocking thread within `budget` (plus a grace): a parse that does not end in
/// time is a `timeout` failure, and the caller goes on while the thread winds down; a panic
/// in a parser is `parser_crashed`. The stage never waits on a parse longer than that.
pub async fn parse_within(
    source: SourceRef,
    bytes: Vec<u8>,
    opts: ParseOptions,
    budget: Duration,
) -> Result<ParsedDocument, ParseFailure> {
    let parsed = tokio::time::timeout(
        budget + HARD_TIMEOUT_GRACE,
        tokio::task::spawn_blocking(move || kb_parse::parse(&source, &bytes, &opts)),
    )
    .await;
    match parsed {
        Err(_) => Err((
            "timeout".into(),
            format!("timeout: parsing took longer than {budget:?}"),
        )),
        Ok(Err(join)) => Err((
            "parser_crashed".into(),
            format!("the parser failed unexpectedly: {join}"),
        )),
        Ok(Ok(Err(e))) => Err((e.kind.as_str().to_string(), e.to_string())),
        Ok(Ok(Ok(doc))) => Ok(doc),
    }
}

impl Parser {
    pub fn new(publisher: Publisher, progress: Progress, cfg: &ParserSettings) -> Self {
        Self {
            publisher,
            progress,
            options: parse_options(cfg),
            time_budget: Duration::from_secs(cfg.timeout_secs.max(1)),
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
                tracing::warn!(source_id = %sid, error = %e, kind = %e.kind(), "llm extraction failed; keeping the local extraction");
                Ok(())
            }
        }
    }
}

#[async_trait::async_trait]
impl Handler for Parser {
    async fn handle(&self, d: &Delivery) -> Result<Outcome, HandlerError> {
        let parse = |input| self.parse_source(input, d.deliveries);
        input::on_fresh::<SourceEvent, _>(&self.publisher, d, parse).await
    }
}

impl Parser {
    /// Parses a source version the mirror has not moved past, and publishes the result.
    async fn parse_source(&self, input: Input, deliveries: u64) -> Result<Outcome, HandlerError> {
        let (source, body, bytes) = (input.source, input.body, input.bytes);
        let version = source.version;
        let result = parse_within(
            source.clone(),
            bytes,
            self.options.clone(),
            self.time_budget,
        )
        .await;
        match result {
            Ok(mut doc) => {
                self.enrich(&mut doc, deliveries)
                    .await
                    .map_err(|e| e.with_source(Some(&source)))?;
                self.publisher.parsed(&doc).await?;
                self.progress
                    .finished(subjects::PARSER, &source, "parsed", None)
                    .await;
                self.publisher.blobs().discard(Some(&body)).await;
                Ok(Outcome {
                    label: "parsed",
                    version,
                })
            }
            Err((kind, reason)) => {
                // Both stores record the failure; the dead letter keeps the original for a retry.
                let reason = format!("{}: {reason}", source.path);
                match self
                    .publisher
                    .mirror(&source, Kind::Failed, None, &reason)
                    .await?
                {
                    MirrorPublish::Published | MirrorPublish::Superseded { .. } => {}
                }
                self.progress
                    .finished(subjects::PARSER, &source, "failed", Some(reason.clone()))
                    .await;
                Err(HandlerError::permanent(kind, reason).with_source(Some(&source)))
            }
        }
    }
}

fn llm_retry(e: &LlmError) -> HandlerError {
    let mut h = HandlerError::transient(format!("llm extraction: {e}"));
    h.kind = kb_stream::consume::HandlerErrorKind::Transient {
        retry_after: e.retry_after(),
    };
    h
}

/// The LLM extractor when `[llm]` enables it; a bad key or setting stops the start.
pub fn llm_extractor(settings: &Settings) -> anyhow::Result<Option<LlmExtractor>> {
    if !settings.llm.enabled {
        return Ok(None);
    }
    let llm = LlmExtractor::new(settings.llm.clone())
        .map_err(|e| anyhow::anyhow!("llm extractor: {e}"))?;
    tracing::info!(model = llm.model(), "llm extractor on");
    Ok(Some(llm))
}

/// Runs the parser service until shutdown.
pub async fn run(settings: Settings, ctx: Context) -> anyhow::Result<()> {
    let (_client, js) = kb_stream::connect(&settings.nats, "kb-parser").await?;
    let topo = kb_stream::topology::ensure(&js).await?;
    let publisher = Publisher::new(&topo, settings.nats.inline_max_bytes);
    let parser = Arc::new(
        Parser::new(
            publisher.clone(),
            Progress::new(topo.progress.clone()),
            &settings.parser,
        )
        .with_llm(llm_extractor(&settings)?),
    );
    ctx.health.set_ready(true);
    consume::run(
        &topo.source,
        consumer_spec(settings.parser.concurrency),
        parser,
        publisher,
        ctx.shutdown.clone(),
    )
    .await?;
    Ok(())
}
