//! The parser stage: takes raw source events from `KB_SOURCE` (a work queue shared by all parser
//! processes), turns each into a `ParsedDocument` and publishes it to `kb.v1.parsed.<source>`.
//! A file that cannot be parsed is dead-lettered with its reason and recorded as failed in both
//! stores (a `FAILED` mirror event), and the pipeline goes on.

use kb_core::service::Context;
use kb_core::settings::ParserSettings;
use kb_core::Settings;
use kb_parse::ParseOptions;
use kb_proto::{mirror_event::Kind, Message, SourceEvent};
use kb_stream::consume::{self, ConsumerSpec, Delivery, Handler, HandlerError, Outcome};
use kb_stream::progress::{now_ms, Progress, ProgressRecord};
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
}

impl Parser {
    pub fn new(publisher: Publisher, progress: Progress, cfg: &ParserSettings) -> Self {
        let options = ParseOptions {
            max_bytes: cfg.max_bytes,
            chunk_tokens: cfg.chunk_tokens,
            overlap_tokens: cfg.overlap_tokens,
        };
        Self {
            publisher,
            progress,
            options,
            time_budget: Duration::from_secs(120),
        }
    }

    async fn record(
        &self,
        sid: &str,
        version: u64,
        status: &str,
        error: Option<String>,
        path: &str,
    ) {
        let rec = ProgressRecord {
            version,
            status: status.into(),
            error,
            at_unix_ms: now_ms(),
            path: Some(path.into()),
        };
        if let Err(e) = self.progress.record(subjects::PARSER, sid, &rec).await {
            tracing::warn!(error = %e, "cannot record progress");
        }
    }
}

#[async_trait::async_trait]
impl Handler for Parser {
    async fn handle(&self, d: &Delivery) -> Result<Outcome, HandlerError> {
        let ev = SourceEvent::decode(d.payload.as_ref()).map_err(|e| {
            HandlerError::permanent("decode", format!("undecodable source event: {e}"))
        })?;
        let source = ev
            .source
            .clone()
            .filter(|s| !s.source_id.is_empty() && s.version > 0)
            .ok_or_else(|| {
                HandlerError::permanent("decode", "source event without source id or version")
            })?;
        let version = source.version;
        // Skip work the mirror has already moved past (e.g. the file was deleted meanwhile).
        let current = self.publisher.mirror_version(&source.source_id).await?;
        if current >= version {
            self.publisher.blobs().discard(ev.body.as_ref()).await;
            return Ok(Outcome {
                label: "superseded",
                version,
            });
        }
        let body = ev
            .body
            .as_ref()
            .ok_or_else(|| HandlerError::permanent("decode", "source event without body"))?;
        let bytes = self
            .publisher
            .blobs()
            .fetch(body)
            .await
            .map_err(|e| HandlerError::from(e).with_source(Some(&source)))?;

        let (src, opts) = (source.clone(), self.options.clone());
        let parsed = tokio::time::timeout(
            self.time_budget,
            tokio::task::spawn_blocking(move || kb_parse::parse(&src, &bytes, &opts)),
        )
        .await;
        let result: Result<kb_proto::ParsedDocument, (String, String)> = match parsed {
            Err(_) => Err((
                "timeout".into(),
                format!("parsing took longer than {:?}", self.time_budget),
            )),
            Ok(Err(join)) => Err((
                "parser_crashed".into(),
                format!("the parser failed unexpectedly: {join}"),
            )),
            Ok(Ok(Err(e))) => Err((e.kind.as_str().to_string(), e.to_string())),
            Ok(Ok(Ok(doc))) => Ok(doc),
        };
        match result {
            Ok(doc) => {
                self.publisher.parsed(&doc).await?;
                self.record(&source.source_id, version, "parsed", None, &source.path)
                    .await;
                self.publisher.blobs().discard(ev.body.as_ref()).await;
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
                self.record(
                    &source.source_id,
                    version,
                    "failed",
                    Some(reason.clone()),
                    &source.path,
                )
                .await;
                Err(HandlerError::permanent(kind, reason).with_source(Some(&source)))
            }
        }
    }
}

/// Runs the parser service until shutdown.
pub async fn run(settings: Settings, ctx: Context) -> anyhow::Result<()> {
    let (_client, js) = kb_stream::connect(&settings.nats.url, "kb-parser").await?;
    let topo = kb_stream::topology::ensure(&js).await?;
    let publisher = Publisher::new(&topo, settings.nats.inline_max_bytes);
    let parser = Arc::new(Parser::new(
        publisher.clone(),
        Progress::new(topo.progress.clone()),
        &settings.parser,
    ));
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
