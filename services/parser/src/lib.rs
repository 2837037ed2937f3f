//! The parser stage: takes raw source events from `KB_SOURCE` (a work queue shared by all parser
//! processes), turns each into a `ParsedDocument` and publishes it to `kb.v1.parsed.<source>`.
//! A file that cannot be parsed is dead-lettered with its reason and recorded as failed in both
//! stores (a `FAILED` mirror event), and the pipeline goes on. Each parse runs under
//! `parser.timeout_secs` and the limits of the settings (inflated bytes, PDF pages, chunks), so
//! a hostile or huge file fails with `timeout`, `decompression_bomb` or `too_large` instead of
//! stalling the stage; where it runs (a thread, or a worker process under a memory limit) is
//! `parser.isolation` ([`runner`]). A document that panics the parser is `panicked`; one that
//! kills its worker, or the parser, `parser.crash_limit` times is `crashed`.
//!
//! With `[llm] enabled = true` the LLM extractor (crate `kb-llm`) adds its entities and
//! relations to the local extractor's. It is an enrichment, never a gate: a transient LLM
//! failure retries the document a few times (honouring `Retry-After`), after that or on a
//! permanent failure the document goes on with the local extraction and the reason is logged.

pub mod runner;
pub mod stage;
pub mod worker;

use kb_core::service::Context;
use kb_core::settings::ParserSettings;
use kb_core::Settings;
use kb_llm::LlmExtractor;
use kb_parse::ParseOptions;
use kb_stream::consume::{self, ConsumerSpec, LoopOptions};
use kb_stream::{subjects, Progress, Publisher, Stage};
use std::sync::Arc;
use std::time::Duration;

pub use runner::{ParseFailure, Runner};
pub use stage::Parser;

/// The shared durable consumer. `ack_wait` (`parser.ack_wait_secs`) is how long a dead
/// parser's documents wait before another parser gets them; live parsers send in-progress
/// acks every `ack_wait / 3`, so a long parse is not handed out twice.
pub fn consumer_spec(concurrency: usize, ack_wait: Duration) -> ConsumerSpec {
    let ack_wait = ack_wait.max(Duration::from_secs(1));
    ConsumerSpec {
        stage: Stage::Parser,
        filter_subject: subjects::SOURCE_ALL.to_string(),
        ack_wait,
        max_deliver: 10,
        backoff: vec![ack_wait, ack_wait * 2, ack_wait * 5],
        concurrency,
        max_ack_pending: 64,
    }
}

/// The parse options of the settings; the parse's own deadline is `parser.timeout_secs`.
pub fn parse_options(cfg: &ParserSettings) -> ParseOptions {
    ParseOptions {
        max_bytes: cfg.max_bytes,
        chunk_tokens: cfg.chunk_tokens,
        overlap_tokens: cfg.overlap_tokens,
        max_inflated_bytes: cfg.max_inflated_bytes,
        max_pages: cfg.max_pages,
        max_chunks: cfg.max_chunks,
        timeout_ms: cfg.timeout_secs.saturating_mul(1000),
    }
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
    let p = &settings.parser;
    let runner = Runner::new(p).map_err(|e| anyhow::anyhow!(e))?;
    tracing::info!(isolation = ?p.isolation, crash_limit = p.crash_limit, "parser");
    let (client, js) = kb_stream::connect(&settings.nats, "kb-parser").await?;
    kb_stream::watch_connection(&ctx.health, client);
    // Its settings' stream limits and replicas: whichever service starts first creates them.
    let topo = kb_stream::topology::ensure_with(&js, &settings.nats).await?;
    let publisher = Publisher::new(&topo, settings.nats.inline_max_bytes);
    let parser = Arc::new(
        Parser::new(
            publisher.clone(),
            Progress::new(topo.progress.clone()),
            runner,
        )
        .with_llm(llm_extractor(&settings)?),
    );
    ctx.health.set_ready(true);
    consume::run_with(
        &topo.source,
        consumer_spec(p.concurrency, Duration::from_secs(p.ack_wait_secs)),
        LoopOptions {
            crash_limit: p.crash_limit,
        },
        parser,
        publisher,
        ctx.shutdown.clone(),
    )
    .await?;
    Ok(())
}
