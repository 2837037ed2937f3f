//! One writer per store reads the mirror stream with its own durable consumer and applies each
//! event to its store, last-writer-wins by version. It acks only after the store committed, it
//! retries a store outage on its own without blocking the other writer, and it dead-letters what
//! can never be applied. `pg-writer` and `graph-writer` are this loop with a different store.

mod decode;

pub use decode::{decode_mirror_event, MirrorChange};

use backon::{ExponentialBuilder, Retryable};
use kb_core::service::Context;
use kb_store::{Applied, Change, MirrorStore, StoreErrorKind};
use kb_stream::consume::{self, ConsumerSpec, Delivery, Handler, HandlerError, Outcome};
use kb_stream::progress::{now_ms, Progress, ProgressRecord};
use kb_stream::{subjects, Publisher, StreamErrorKind, Topology};
use std::sync::Arc;
use std::time::Duration;

/// The durable consumer of a writer: never gives up (a store may be down for hours), keeps
/// messages alive while a large document is written, and redelivers after a crash.
pub fn consumer_spec(stage: &'static str, concurrency: usize) -> ConsumerSpec {
    ConsumerSpec {
        stage,
        filter_subject: subjects::MIRROR_ALL.to_string(),
        ack_wait: Duration::from_secs(60),
        max_deliver: -1,
        backoff: vec![
            Duration::from_secs(60),
            Duration::from_secs(120),
            Duration::from_secs(300),
        ],
        concurrency,
        max_ack_pending: 256,
    }
}

pub struct Writer<S: MirrorStore> {
    stage: &'static str,
    store: S,
    publisher: Publisher,
    progress: Progress,
    /// How long to retry a transient store error in-process before handing the message back.
    retry_for: Duration,
}

impl<S: MirrorStore + 'static> Writer<S> {
    pub fn new(stage: &'static str, store: S, topo: &Topology, publisher: Publisher) -> Self {
        Self {
            stage,
            store,
            publisher,
            progress: Progress::new(topo.progress.clone()),
            retry_for: Duration::from_secs(20),
        }
    }

    async fn apply(&self, change: Change<'_>) -> Result<Applied, HandlerError> {
        let attempt = || async { self.store.apply(change).await };
        attempt
            .retry(
                ExponentialBuilder::default()
                    .with_min_delay(Duration::from_millis(200))
                    .with_max_delay(Duration::from_secs(5))
                    .with_total_delay(Some(self.retry_for)),
            )
            .when(|e| e.is_transient())
            .notify(|e, after| tracing::warn!(stage = self.stage, error = %e, ?after, "store unavailable, retrying"))
            .await
            .map_err(|e| match e.kind {
                StoreErrorKind::Transient => HandlerError::transient(e.to_string()),
                StoreErrorKind::Config => HandlerError::transient(format!("store misconfigured: {e}")),
                StoreErrorKind::Permanent => HandlerError::permanent("store_rejected", e.to_string()),
            })
            .map_err(|e| e.with_source(change.source()))
    }
}

#[async_trait::async_trait]
impl<S: MirrorStore + 'static> Handler for Writer<S> {
    async fn handle(&self, d: &Delivery) -> Result<Outcome, HandlerError> {
        let change = match decode_mirror_event(&d.payload, self.publisher.blobs()).await {
            Ok(c) => c,
            Err(e) if e.kind == StreamErrorKind::NotFound => {
                // A body is deleted only once a newer state replaced it in the log.
                let (sid, version) = (d.source_id.as_str(), decode::version_of(&d.payload));
                let current = self
                    .publisher
                    .mirror_version(sid)
                    .await
                    .map_err(HandlerError::from)?;
                if current > version {
                    return Ok(Outcome {
                        label: "stale",
                        version,
                    });
                }
                return Err(HandlerError::from(e));
            }
            Err(e) => return Err(HandlerError::from(e)),
        };
        let source = change.source().clone();
        let (applied, error) = match &change {
            MirrorChange::Upsert(doc) => (self.apply(Change::Upsert(doc)).await?, None),
            MirrorChange::Delete(s) => (self.apply(Change::Delete(s)).await?, None),
            MirrorChange::Failed(s, reason) => (
                self.apply(Change::Failed(s, reason)).await?,
                Some(reason.clone()),
            ),
        };
        let label = match applied {
            Applied::Written => "written",
            Applied::Deleted => "deleted",
            Applied::MarkedFailed => "failed",
            Applied::Stale { .. } => "stale",
        };
        let rec = ProgressRecord {
            version: source.version,
            status: label.to_string(),
            error,
            at_unix_ms: now_ms(),
            path: Some(source.path.clone()),
        };
        if let Err(e) = self
            .progress
            .record(self.stage, &source.source_id, &rec)
            .await
        {
            // Progress is advisory (it feeds `kb ingest`/`kb status`); the store is the truth.
            tracing::warn!(stage = self.stage, error = %e, "cannot record progress");
        }
        Ok(Outcome {
            label,
            version: source.version,
        })
    }
}

/// Runs a writer service: prepares the store, then consumes until shutdown.
pub async fn run<S: MirrorStore + 'static>(
    stage: &'static str,
    store: S,
    nats_url: &str,
    inline_max: usize,
    concurrency: usize,
    ctx: Context,
) -> anyhow::Result<()> {
    let (_client, js) = kb_stream::connect(nats_url, stage).await?;
    let topo = kb_stream::topology::ensure(&js).await?;
    let publisher = Publisher::new(&topo, inline_max);
    // The store may not be up yet: wait for it instead of crash-looping.
    let prepare = || async { store.prepare().await };
    prepare
        .retry(
            ExponentialBuilder::default()
                .with_max_delay(Duration::from_secs(10))
                .without_max_times(),
        )
        .when(|e| e.is_transient() && !ctx.shutdown.is_cancelled())
        .notify(|e, after| tracing::warn!(stage, error = %e, ?after, "store not ready"))
        .await?;
    let writer = Arc::new(Writer::new(stage, store, &topo, publisher.clone()));
    ctx.health.set_ready(true);
    consume::run(
        &topo.mirror,
        consumer_spec(stage, concurrency),
        writer,
        publisher,
        ctx.shutdown.clone(),
    )
    .await?;
    Ok(())
}
