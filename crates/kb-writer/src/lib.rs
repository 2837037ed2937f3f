//! One writer per store reads the mirror stream with its own durable consumer and applies each
//! event to its store, last-writer-wins by version. It acks only after the store committed, it
//! retries a store outage on its own without blocking the other writer, and it dead-letters what
//! can never be applied. `pg-writer` and `graph-writer` are this loop with a different store.
//!
//! The same decoding and [`MirrorStore::apply`] path also serves [`replay`], which rebuilds a
//! store from the mirror stream with an ephemeral consumer, and [`bulk`], which lets a writer
//! that starts on an empty store with a backlog fill it in bulk mode.

pub mod bulk;
mod decode;
pub mod replay;

pub use decode::{decode_mirror_event, MirrorChange};
pub use replay::{replay, ReplayError, ReplayEvent, ReplayFrom, ReplayOptions, ReplayReport};

use backon::{ExponentialBuilder, Retryable};
use kb_core::service::Context;
use kb_store::{Applied, Change, MirrorStore, StoreErrorKind};
use kb_stream::consume::{self, ConsumerSpec, Delivery, Handler, HandlerError, Outcome};
use kb_stream::progress::Progress;
use kb_stream::{subjects, Publisher, StreamErrorKind, Topology};
use std::sync::Arc;
use std::time::Duration;

/// How long a writer retries a transient store error in-process before handing the message
/// back to JetStream (nak with delay); the in-progress acks keep it alive meanwhile.
pub const RETRY_FOR: Duration = Duration::from_secs(20);

/// Redelivery after a missed ack (a writer that crashed or hangs); in-progress acks keep a
/// long write alive, so this bounds only how long a crash delays its messages.
pub const ACK_WAIT: Duration = Duration::from_secs(30);

/// The durable consumer of a writer: never gives up (a store may be down for hours), keeps
/// messages alive while a large document is written, and redelivers after a crash.
///
/// The backoff is flat (one step, equal to `ack_wait`) on purpose: the server measures a nak's
/// delay against the backoff step of the next delivery, so an escalating backoff such as
/// 60 s, 120 s, 300 s stretches the writer's own nak delays (1, 2, 4 … 60 s) by up to four
/// minutes each (measured: a 2 s nak redelivered after 62 s). Writers back off by nak delay.
pub fn consumer_spec(stage: &'static str, concurrency: usize) -> ConsumerSpec {
    ConsumerSpec {
        stage,
        filter_subject: subjects::MIRROR_ALL.to_string(),
        ack_wait: ACK_WAIT,
        max_deliver: -1,
        backoff: vec![ACK_WAIT],
        concurrency,
        max_ack_pending: 256,
    }
}

/// How a writer service runs.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// Documents applied at once by this process.
    pub concurrency: usize,
    /// In-process retry window for transient store errors.
    pub retry_for: Duration,
    /// Fill an empty store in bulk mode when at least this many mirror messages wait for the
    /// writer at start (0 = never). See [`bulk`].
    pub bulk_min_backlog: u64,
}

impl WriterOptions {
    pub fn new(concurrency: usize) -> Self {
        Self {
            concurrency,
            retry_for: RETRY_FOR,
            bulk_min_backlog: bulk::DEFAULT_MIN_BACKLOG,
        }
    }
}

/// The result of applying one mirror event to a store, shared by the writer and replay.
pub(crate) async fn apply_change<S: MirrorStore + ?Sized>(
    store: &S,
    change: &MirrorChange,
    retry_for: Duration,
    stage: &str,
) -> Result<Applied, kb_store::StoreError> {
    let change = match change {
        MirrorChange::Upsert(doc) => Change::Upsert(doc),
        MirrorChange::Delete(s) => Change::Delete(s),
        MirrorChange::Failed(s, reason) => Change::Failed(s, reason),
    };
    let attempt = || async { store.apply(change).await };
    attempt
        .retry(
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(200))
                .with_max_delay(Duration::from_secs(5))
                .with_total_delay(Some(retry_for))
                .without_max_times(),
        )
        .when(|e| e.is_transient())
        .notify(|e, after| tracing::warn!(stage, error = %e, ?after, "store unavailable, retrying"))
        .await
}

pub struct Writer<S: MirrorStore> {
    stage: &'static str,
    store: Arc<S>,
    publisher: Publisher,
    progress: Progress,
    /// How long to retry a transient store error in-process before handing the message back.
    retry_for: Duration,
}

impl<S: MirrorStore + 'static> Writer<S> {
    pub fn new(stage: &'static str, store: S, topo: &Topology, publisher: Publisher) -> Self {
        Self::shared(stage, Arc::new(store), topo, publisher, RETRY_FOR)
    }

    fn shared(
        stage: &'static str,
        store: Arc<S>,
        topo: &Topology,
        publisher: Publisher,
        retry_for: Duration,
    ) -> Self {
        Self {
            stage,
            store,
            publisher,
            progress: Progress::new(topo.progress.clone()),
            retry_for,
        }
    }

    async fn apply(&self, change: &MirrorChange) -> Result<Applied, HandlerError> {
        apply_change(&*self.store, change, self.retry_for, self.stage)
            .await
            .map_err(|e| match e.kind {
                StoreErrorKind::Transient => HandlerError::transient(e.to_string()),
                StoreErrorKind::Config => {
                    HandlerError::transient(format!("store misconfigured: {e}"))
                }
                StoreErrorKind::Permanent => {
                    HandlerError::permanent("store_rejected", e.to_string())
                }
            })
            .map_err(|e| e.with_source(Some(change.source())))
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
                let source = decode::source_of(&d.payload);
                return Err(HandlerError::from(e).with_source(source.as_ref()));
            }
            Err(e) => {
                let source = decode::source_of(&d.payload);
                return Err(HandlerError::from(e).with_source(source.as_ref()));
            }
        };
        let source = change.source().clone();
        let applied = self.apply(&change).await?;
        let error = match &change {
            MirrorChange::Failed(_, reason) => Some(reason.clone()),
            _ => None,
        };
        let label = match applied {
            Applied::Written => "written",
            Applied::Deleted => "deleted",
            Applied::MarkedFailed => "failed",
            Applied::Stale { .. } => "stale",
        };
        // Progress is advisory (it feeds `kb ingest`/`kb status`); the store is the truth.
        self.progress
            .finished(self.stage, &source, label, error)
            .await;
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
    run_with(
        stage,
        store,
        nats_url,
        inline_max,
        WriterOptions::new(concurrency),
        ctx,
    )
    .await
}

/// [`run`] with explicit options.
pub async fn run_with<S: MirrorStore + 'static>(
    stage: &'static str,
    store: S,
    nats_url: &str,
    inline_max: usize,
    options: WriterOptions,
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
    let store = Arc::new(store);
    let spec = consumer_spec(stage, options.concurrency);
    let bulk = bulk::maybe_begin(&*store, &topo.mirror, stage, options.bulk_min_backlog).await;
    let finisher = bulk.then(|| {
        tokio::spawn(bulk::finish_when_caught_up(
            store.clone(),
            topo.mirror.clone(),
            stage,
            ctx.shutdown.clone(),
        ))
    });
    let writer = Arc::new(Writer::shared(
        stage,
        store,
        &topo,
        publisher.clone(),
        options.retry_for,
    ));
    ctx.health.set_ready(true);
    let result = consume::run(&topo.mirror, spec, writer, publisher, ctx.shutdown.clone()).await;
    if let Some(f) = finisher {
        f.abort();
    }
    result?;
    Ok(())
}
