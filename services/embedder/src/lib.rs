//! The embedder stage: takes parsed documents from `KB_PARSED` (a work queue: any number of
//! embedder processes share the durable consumer `embedder` and split the work), adds an
//! embedding to every chunk, and publishes the document to the mirror stream — unless the mirror
//! already holds a newer version of the source (last-writer-wins at publish time).

use kb_core::service::Context;
use kb_core::Settings;
use kb_embed::{EmbedError, EmbedErrorKind, Embedder, LocalModel, LocalModelConfig};
use kb_proto::{mirror_event::Kind, Message, ParsedDocument, ParsedEvent};
use kb_stream::consume::{self, ConsumerSpec, Delivery, Handler, HandlerError, Outcome};
use kb_stream::progress::{now_ms, Progress, ProgressRecord};
use kb_stream::{subjects, MirrorPublish, Publisher};
use std::sync::Arc;
use std::time::Duration;

pub fn consumer_spec(concurrency: usize) -> ConsumerSpec {
    ConsumerSpec {
        stage: subjects::EMBEDDER,
        filter_subject: subjects::PARSED_ALL.to_string(),
        // Long documents take a while: in-progress acks every ack_wait/3 keep them alive.
        ack_wait: Duration::from_secs(60),
        max_deliver: 20,
        backoff: vec![
            Duration::from_secs(60),
            Duration::from_secs(120),
            Duration::from_secs(300),
        ],
        concurrency,
        max_ack_pending: 64,
    }
}

pub struct EmbedStage {
    embedder: Arc<dyn Embedder>,
    publisher: Publisher,
    progress: Progress,
}

fn to_handler_error(e: EmbedError) -> HandlerError {
    match e.kind {
        EmbedErrorKind::Transient => HandlerError::transient(e.to_string()),
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

    /// Fills every chunk's embedding, in batches the provider accepts.
    pub async fn embed_document(&self, doc: &mut ParsedDocument) -> Result<(), EmbedError> {
        let batch = self.embedder.max_batch().max(1);
        let dims = self.embedder.dimensions();
        for group in doc.chunks.chunks_mut(batch) {
            let texts: Vec<String> = group.iter().map(|c| c.text.clone()).collect();
            let vectors = self.embedder.embed(&texts).await?;
            if vectors.len() != group.len() || vectors.iter().any(|v| v.len() != dims) {
                return Err(EmbedError::permanent(format!(
                    "provider returned {} vectors for {} inputs (expected {dims} dimensions each)",
                    vectors.len(),
                    group.len()
                )));
            }
            for (chunk, v) in group.iter_mut().zip(vectors) {
                chunk.embedding = v;
            }
        }
        doc.embedding_model = self.embedder.model().to_string();
        doc.embedding_dimensions = dims as u32;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Handler for EmbedStage {
    async fn handle(&self, d: &Delivery) -> Result<Outcome, HandlerError> {
        let ev = ParsedEvent::decode(d.payload.as_ref()).map_err(|e| {
            HandlerError::permanent("decode", format!("undecodable parsed event: {e}"))
        })?;
        let source = ev
            .source
            .clone()
            .filter(|s| !s.source_id.is_empty() && s.version > 0)
            .ok_or_else(|| {
                HandlerError::permanent("decode", "parsed event without source id or version")
            })?;
        let version = source.version;
        if self.publisher.mirror_version(&source.source_id).await? >= version {
            self.publisher.blobs().discard(ev.body.as_ref()).await;
            return Ok(Outcome {
                label: "superseded",
                version,
            });
        }
        let body = ev
            .body
            .as_ref()
            .ok_or_else(|| HandlerError::permanent("decode", "parsed event without body"))?;
        let bytes = self
            .publisher
            .blobs()
            .fetch(body)
            .await
            .map_err(|e| HandlerError::from(e).with_source(Some(&source)))?;
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
        let rec = ProgressRecord {
            version,
            status: label.into(),
            error: None,
            at_unix_ms: now_ms(),
            path: Some(source.path.clone()),
        };
        if let Err(e) = self
            .progress
            .record(subjects::EMBEDDER, &source.source_id, &rec)
            .await
        {
            tracing::warn!(error = %e, "cannot record progress");
        }
        self.publisher.blobs().discard(ev.body.as_ref()).await;
        Ok(Outcome { label, version })
    }
}

/// The configured embedding provider.
pub fn load_embedder(settings: &Settings) -> anyhow::Result<Arc<dyn Embedder>> {
    let e = &settings.embedder;
    let model = LocalModel::load(&LocalModelConfig {
        model_dir: e.model_dir.clone(),
        onnxruntime_lib: e.onnxruntime_lib.clone(),
        threads: e.threads,
        batch_size: e.batch_size,
    })?;
    Ok(Arc::new(model))
}

/// Runs the embedder service until shutdown.
pub async fn run(settings: Settings, ctx: Context) -> anyhow::Result<()> {
    let embedder = load_embedder(&settings)?;
    if embedder.dimensions() != settings.embedder.dimensions {
        anyhow::bail!(
            "model {} produces {} dimensions but embedder.dimensions is {}: set KB_EMBEDDER__DIMENSIONS={} for every service (changing the model means re-embedding: see docs/ARCHITECTURE.md)",
            embedder.model(),
            embedder.dimensions(),
            settings.embedder.dimensions,
            embedder.dimensions()
        );
    }
    tracing::info!(
        model = embedder.model(),
        dimensions = embedder.dimensions(),
        "embedding model loaded"
    );
    let (_client, js) = kb_stream::connect(&settings.nats.url, "kb-embedder").await?;
    let topo = kb_stream::topology::ensure(&js).await?;
    let publisher = Publisher::new(&topo, settings.nats.inline_max_bytes);
    let stage = Arc::new(EmbedStage::new(
        embedder,
        publisher.clone(),
        Progress::new(topo.progress.clone()),
    ));
    ctx.health.set_ready(true);
    consume::run(
        &topo.parsed,
        consumer_spec(settings.embedder.concurrency),
        stage,
        publisher,
        ctx.shutdown.clone(),
    )
    .await?;
    Ok(())
}
