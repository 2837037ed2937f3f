//! One writer per store reads the mirror stream with its own durable consumer and applies each
//! event to its store, last-writer-wins by version. It acks only after the store committed, it
//! retries a store outage on its own without blocking the other writer, and it dead-letters what
//! can never be applied. `pg-writer` and `graph-writer` are this loop with a different store.
//!
//! **Bounded in time.** Every apply runs within the store's deadline
//! ([`MirrorStore::apply_deadline`]), and the in-process retries of one message stop after
//! `writer.retry_for_secs` in total (not only their sleeps), after which the message is handed
//! back to JetStream (nak with delay). A store that stops answering therefore yields an error
//! and a retry within a bounded time, never a writer stuck on one message.
//!
//! **A document that keeps timing out** while the store answers
//! (`writer.max_timeouts_per_document` apply timeouts in a row, each followed by a probe the
//! store answered within 2 s) is the document's problem, not the store's: it is dead-lettered
//! as `timeout`, and marked failed in this writer's store. A probe the store does not answer
//! starts the count again.
//!
//! **Giving up** on a message (any permanent error) marks its source failed at that version in
//! this writer's store and records progress `failed`, so `kb ingest` ends with "failed"
//! ([`Writer::give_up`]). The failure mark yields to a retry of the same version.
//!
//! The same decoding and [`MirrorStore::apply`] path also serves [`replay`], which rebuilds a
//! store from the mirror stream with an ephemeral consumer, and [`bulk`], which lets a writer
//! that starts on an empty store with a backlog fill it in bulk mode.
//!
//! Failpoint (tests): `writer.apply`, keyed `<stage>/<source id>` (e.g. `pg-writer/ab12…`),
//! inside the apply deadline.

pub mod bulk;
pub mod replay;

/// The writers' names ([`Stage::PgWriter`], [`Stage::GraphWriter`]).
pub use kb_stream::Stage;
pub use replay::{replay, ReplayError, ReplayEvent, ReplayFrom, ReplayOptions, ReplayReport};

use kb_core::failpoint::Flow;
use kb_core::service::Context;
use kb_core::settings::WriterSettings;
use kb_proto::SourceRef;
use kb_store::{Applied, Change, MirrorStore, StoreError, StoreErrorExt as _};
use kb_stream::consume::{self, ConsumerSpec, Delivery, Done, GiveUp, Handler, HandlerError};
use kb_stream::input;
use kb_stream::progress::Progress;
use kb_stream::{
    subjects, DeadLetterKind, NatsTarget, ProgressStatus, Publisher, StreamErrorKind, Topology,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Beyond the store's own apply deadline, how long the writer waits before it gives up on an
/// attempt itself: a store that enforces its deadline reports first, and closes what hung.
pub const DEADLINE_GRACE: Duration = Duration::from_secs(1);

/// First and longest pause between in-process retries.
const RETRY_MIN_DELAY: Duration = Duration::from_millis(200);
const RETRY_MAX_DELAY: Duration = Duration::from_secs(5);

/// The durable consumer of a writer: never gives up (a store may be down for hours), keeps
/// messages alive while a large document is written, and redelivers after a crash, after
/// `ack_wait` (`writer.ack_wait_secs`).
///
/// The backoff is flat (one step, equal to `ack_wait`) on purpose: the server measures a nak's
/// delay against the backoff step of the next delivery, so an escalating backoff such as
/// 60 s, 120 s, 300 s stretches the writer's own nak delays (1, 2, 4 … 60 s) by up to four
/// minutes each (measured: a 2 s nak redelivered after 62 s). Writers back off by nak delay.
pub fn consumer_spec(stage: Stage, options: &WriterOptions) -> ConsumerSpec {
    ConsumerSpec {
        stage,
        filter_subject: subjects::MIRROR_ALL.to_string(),
        ack_wait: options.ack_wait,
        max_deliver: -1,
        backoff: vec![options.ack_wait],
        concurrency: options.concurrency,
        max_ack_pending: 256,
    }
}

/// How a writer service runs; [`WriterOptions::from_settings`] reads `[writer]`.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// Documents applied at once by this process.
    pub concurrency: usize,
    /// In-process retry window for transient store errors, in total time
    /// (`writer.retry_for_secs`); past it the message is nak'ed with delay.
    pub retry_for: Duration,
    /// Fill an empty store in bulk mode when at least this many mirror messages wait for the
    /// writer at start (0 = never). See [`bulk`].
    pub bulk_min_backlog: u64,
    /// Bulk mode ends after this at the latest, even if the backlog is not written yet.
    pub bulk_max: Duration,
    /// Redelivery after a missed ack.
    pub ack_wait: Duration,
    /// Apply timeouts of one document in a row, while the store answers a probe, before it is
    /// dead-lettered as `timeout`.
    pub max_timeouts_per_document: u32,
    /// Deaths of the writer on one document before the consume loop dead-letters it as
    /// `crashed` (`writer.crash_limit`; the loop's crash journal enforces it).
    pub crash_limit: u32,
}

impl WriterOptions {
    /// The `[writer]` defaults.
    pub fn new(concurrency: usize) -> Self {
        Self::from_settings(&WriterSettings::default(), concurrency)
    }

    pub fn from_settings(settings: &WriterSettings, concurrency: usize) -> Self {
        Self {
            concurrency,
            retry_for: Duration::from_secs(settings.retry_for_secs),
            bulk_min_backlog: settings.bulk_min_backlog,
            bulk_max: Duration::from_secs(settings.bulk_max_secs),
            ack_wait: Duration::from_secs(settings.ack_wait_secs.max(1)),
            max_timeouts_per_document: settings.max_timeouts_per_document.max(1),
            crash_limit: settings.crash_limit,
        }
    }
}

/// How applying a change with retries ended badly.
#[derive(Debug)]
pub(crate) enum ApplyError {
    /// The store's error (the last one, for transient errors that outlasted the retries).
    Store(StoreError),
    /// The document timed out this many times in a row while the store answered a probe.
    Poison { timeouts: u32, last: StoreError },
}

impl std::fmt::Display for ApplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApplyError::Store(e) => write!(f, "{e}"),
            ApplyError::Poison { timeouts, last } => write!(
                f,
                "the apply timed out {timeouts} times in a row while the store answered a \
                 probe: this document cannot be written within its deadline ({last})"
            ),
        }
    }
}

/// Consecutive apply timeouts per document (source id and version), each followed by a probe
/// the store answered, in this process.
///
/// In memory on purpose: losing the counts with the process only means more retries, and a
/// document is blamed only when the store answers a probe at the same time.
#[derive(Debug)]
pub(crate) struct Timeouts {
    max: u32,
    counts: Mutex<HashMap<(String, u64), u32>>,
}

/// More documents than this timing out at once is an outage, not poison: start counting anew.
const MAX_TRACKED: usize = 10_000;

impl Timeouts {
    pub(crate) fn new(max: u32) -> Self {
        Self {
            max: max.max(1),
            counts: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, u64), u32>> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts one more timeout of `key`; returns the count so far.
    fn record(&self, key: (String, u64)) -> u32 {
        let mut counts = self.lock();
        if counts.len() >= MAX_TRACKED && !counts.contains_key(&key) {
            counts.clear();
        }
        let n = counts.entry(key).or_default();
        *n += 1;
        *n
    }

    fn forget(&self, key: &(String, u64)) {
        self.lock().remove(key);
    }
}

fn key_of(change: &Change<'_>) -> (String, u64) {
    match change.source() {
        Some(s) => (s.source_id.clone(), s.version),
        None => (String::new(), 0),
    }
}

/// One attempt, within the store's deadline plus [`DEADLINE_GRACE`].
pub(crate) async fn attempt<S: MirrorStore + ?Sized>(
    store: &S,
    change: Change<'_>,
    stage: &str,
) -> Result<Applied, StoreError> {
    let limit = store.apply_deadline(&change);
    let sid = change.source().map(|s| s.source_id.as_str()).unwrap_or("");
    let run = async {
        if let Flow::Err(msg) = kb_core::failpoint!("writer.apply", &format!("{stage}/{sid}")) {
            return Err(StoreError::transient(format!(
                "failpoint writer.apply: {msg}"
            )));
        }
        store.apply(change).await
    };
    match tokio::time::timeout(limit.saturating_add(DEADLINE_GRACE), run).await {
        Ok(result) => result,
        Err(_) => Err(StoreError::timeout(format!(
            "{stage}: apply of {sid} v{} did not finish within {limit:?}",
            change.version()
        ))),
    }
}

/// Applies `change`, retrying transient errors in-process until `retry_for` has passed in
/// total: no attempt starts after that, so one message holds the writer for at most
/// `retry_for` plus one apply deadline. With `timeouts`, a document that timed out too often in
/// a row, the store answering a probe after each time, ends as [`ApplyError::Poison`].
pub(crate) async fn apply_with_retries<S: MirrorStore + ?Sized>(
    store: &S,
    change: Change<'_>,
    retry_for: Duration,
    stage: &str,
    timeouts: Option<&Timeouts>,
) -> Result<Applied, ApplyError> {
    let started = Instant::now();
    let mut delay = RETRY_MIN_DELAY;
    loop {
        let err = match attempt(store, change, stage).await {
            Ok(applied) => {
                if let Some(t) = timeouts {
                    t.forget(&key_of(&change));
                }
                return Ok(applied);
            }
            Err(e) => e,
        };
        if !err.is_transient() {
            if let Some(t) = timeouts {
                t.forget(&key_of(&change));
            }
            return Err(ApplyError::Store(err));
        }
        if let (true, Some(t)) = (err.is_timeout(), timeouts) {
            // A timeout counts against the document only if the store answers right after
            // it; one it does not answer breaks the run (the store is the problem).
            let key = key_of(&change);
            match store.probe().await {
                Ok(()) => {
                    let n = t.record(key.clone());
                    if n >= t.max {
                        t.forget(&key);
                        return Err(ApplyError::Poison {
                            timeouts: n,
                            last: err,
                        });
                    }
                }
                Err(e) => {
                    t.forget(&key);
                    tracing::warn!(
                        stage,
                        source_id = %key.0,
                        error = %e,
                        "the store does not answer either: not blaming the document"
                    );
                }
            }
        }
        if started.elapsed().saturating_add(delay) >= retry_for {
            return Err(ApplyError::Store(err));
        }
        tracing::warn!(stage, error = %err, after = ?delay, "store unavailable, retrying");
        tokio::time::sleep(delay).await;
        delay = delay.saturating_mul(2).min(RETRY_MAX_DELAY);
    }
}

pub struct Writer<S: MirrorStore> {
    stage: Stage,
    store: Arc<S>,
    publisher: Publisher,
    progress: Progress,
    /// How long to retry a transient store error in-process before handing the message back.
    retry_for: Duration,
    timeouts: Timeouts,
}

impl<S: MirrorStore + 'static> Writer<S> {
    pub fn new(stage: Stage, store: S, topo: &Topology, publisher: Publisher) -> Self {
        Self::shared(
            stage,
            Arc::new(store),
            topo,
            publisher,
            &WriterOptions::new(1),
        )
    }

    fn shared(
        stage: Stage,
        store: Arc<S>,
        topo: &Topology,
        publisher: Publisher,
        options: &WriterOptions,
    ) -> Self {
        Self {
            stage,
            store,
            publisher,
            progress: Progress::new(topo.progress.clone()),
            retry_for: options.retry_for,
            timeouts: Timeouts::new(options.max_timeouts_per_document),
        }
    }

    async fn apply(&self, change: Change<'_>) -> Result<Applied, HandlerError> {
        apply_with_retries(
            &*self.store,
            change,
            self.retry_for,
            self.stage.as_str(),
            Some(&self.timeouts),
        )
        .await
        .map_err(|e| match &e {
            ApplyError::Poison { .. } => {
                HandlerError::permanent(DeadLetterKind::Timeout, e.to_string())
            }
            ApplyError::Store(s) => HandlerError::from_error(s, DeadLetterKind::StoreRejected),
        })
        .map_err(|e| e.with_source(change.source()))
    }

    /// Decodes and applies one message; the loop records its progress after the ack.
    async fn write(&self, d: &Delivery) -> Result<Done, HandlerError> {
        let update = match input::decode_mirror(&d.payload, self.publisher.blobs()).await {
            Ok(u) => u,
            Err(e) if e.kind == StreamErrorKind::NotFound => {
                // A body is deleted only once a newer state replaced it in the log.
                let source = d.source();
                let (sid, version) = (
                    d.source_id.as_str(),
                    source.as_ref().map_or(0, |s| s.version),
                );
                let current = self
                    .publisher
                    .mirror_version(sid)
                    .await
                    .map_err(HandlerError::from)?;
                if current > version {
                    return Ok(Done::new(ProgressStatus::Stale, version));
                }
                return Err(HandlerError::from(e).with_source(source.as_ref()));
            }
            Err(e) => {
                return Err(HandlerError::from(e).with_source(d.source().as_ref()));
            }
        };
        // The envelope's source (decode_mirror sets it on an upsert's document too).
        let Some(source) = update.source() else {
            return Err(HandlerError::permanent(
                DeadLetterKind::Decode,
                "mirror event without source",
            ));
        };
        let applied = self.apply(update.change()).await?;
        let status = match applied {
            Applied::Written => ProgressStatus::Written,
            Applied::Deleted => ProgressStatus::Deleted,
            Applied::MarkedFailed => ProgressStatus::Failed,
            Applied::Stale { .. } => ProgressStatus::Stale,
        };
        // Progress is advisory (it feeds `kb ingest`/`kb status`); the store is the truth.
        Ok(Done {
            progress: Some((source.clone(), update.failure().map(str::to_owned))),
            ..Done::new(status, source.version)
        })
    }

    /// What the writer does before a version of `source` is dead-lettered (`error_kind`,
    /// `reason`): it marks the source failed at that version in its own store and records
    /// progress `failed`, so the failure shows in this store and `kb ingest` ends. Best effort
    /// and bounded (one apply within the store's deadline): the dead letter keeps the message
    /// either way. Idempotent.
    ///
    /// The consume loop calls it (through [`Handler::on_give_up`]) for every give-up: a
    /// permanent error the writer returned, and the ones the loop decides on its own (a
    /// panic, retries exhausted, a writer that died on the document `crash_limit` times).
    pub async fn give_up(&self, source: &SourceRef, error_kind: &DeadLetterKind, reason: &str) {
        if source.source_id.is_empty() || source.version == 0 {
            return;
        }
        let why = format!("{} gave up ({error_kind}): {reason}", self.stage);
        let mark = Change::Failed(source, &why);
        let limit = self
            .store
            .apply_deadline(&mark)
            .saturating_add(DEADLINE_GRACE);
        let marked = tokio::time::timeout(limit, self.store.apply(mark))
            .await
            .unwrap_or_else(|_| Err(StoreError::timeout("marking the source failed")));
        match marked {
            Ok(Applied::Stale { current }) => {
                tracing::info!(
                    stage = %self.stage,
                    source_id = %source.source_id,
                    version = source.version,
                    current,
                    "gave up on a version the store already holds a newer one of"
                );
                return;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(
                stage = %self.stage,
                source_id = %source.source_id,
                error = %e,
                "cannot mark the source failed in the store; the dead letter keeps it"
            ),
        }
        self.progress
            .finished(self.stage, source, ProgressStatus::Failed, Some(why))
            .await;
    }
}

#[async_trait::async_trait]
impl<S: MirrorStore + 'static> Handler for Writer<S> {
    async fn process(&self, d: &Delivery) -> Result<Done, HandlerError> {
        self.write(d).await
    }

    /// Every give-up, whoever decided it, marks the version failed here first.
    async fn on_give_up(&self, _d: &Delivery, g: &GiveUp) -> Result<(), HandlerError> {
        if let Some(source) = &g.source {
            self.give_up(source, &g.kind, &g.reason).await;
        }
        Ok(())
    }
}

/// Runs a writer service: prepares the store, then consumes until shutdown. `nats` is the
/// `[nats]` settings (or a bare URL).
pub async fn run<S: MirrorStore + 'static, T: NatsTarget + ?Sized>(
    stage: Stage,
    store: S,
    nats: &T,
    inline_max: usize,
    concurrency: usize,
    ctx: Context,
) -> anyhow::Result<()> {
    run_with(
        stage,
        store,
        nats,
        inline_max,
        WriterOptions::new(concurrency),
        ctx,
    )
    .await
}

/// [`run`] with explicit options.
pub async fn run_with<S: MirrorStore + 'static, T: NatsTarget + ?Sized>(
    stage: Stage,
    store: S,
    nats: &T,
    inline_max: usize,
    options: WriterOptions,
    ctx: Context,
) -> anyhow::Result<()> {
    use backon::{ExponentialBuilder, Retryable};
    let (client, js) = kb_stream::connect(nats, stage.as_str()).await?;
    kb_stream::watch_connection(&ctx.health, client);
    // Its settings' stream limits and replicas: whichever service starts first creates them.
    let topo = kb_stream::topology::ensure_with(&js, &nats.nats_settings()).await?;
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
        .notify(|e, after| tracing::warn!(%stage, error = %e, ?after, "store not ready"))
        .await?;
    let store = Arc::new(store);
    let spec = consumer_spec(stage, &options);
    let bulk = bulk::maybe_begin(&*store, &topo.mirror, stage, options.bulk_min_backlog).await;
    let finisher = bulk.map(|bulk| {
        tokio::spawn(bulk::finish_when_caught_up(
            store.clone(),
            topo.mirror.clone(),
            stage,
            bulk,
            options.bulk_max,
            ctx.shutdown.clone(),
        ))
    });
    let settings = nats.nats_settings();
    let purger = tokio::spawn(purge_tombstones_periodically(
        store.clone(),
        stage,
        Duration::from_secs(settings.blob_gc_interval_secs),
        Duration::from_secs(settings.tombstone_retention_secs),
        ctx.shutdown.clone(),
    ));
    let writer = Arc::new(Writer::shared(
        stage,
        store,
        &topo,
        publisher.clone(),
        &options,
    ));
    ctx.health.set_ready(true);
    let result = consume::run(&topo.mirror, spec, writer, publisher, ctx.shutdown.clone()).await;
    if let Some(f) = finisher {
        f.abort();
    }
    purger.abort();
    result?;
    Ok(())
}

/// Forgets the store's tombstones older than `retention` every `interval` (0 = keep them for
/// ever). The stream side forgets its own ([`kb_stream::retention`]) and numbers new versions
/// above every forgotten one, so a tombstone that outlived its retention here does no harm.
async fn purge_tombstones_periodically<S: MirrorStore>(
    store: Arc<S>,
    stage: Stage,
    interval: Duration,
    retention: Duration,
    shutdown: tokio_util::sync::CancellationToken,
) {
    if retention.is_zero() {
        return;
    }
    kb_stream::periodic::every(interval, &shutdown, || async {
        let before = kb_stream::progress::now_ms() - retention.as_millis() as i64;
        let collector = "store tombstones";
        match store.purge_tombstones(before).await {
            Ok(n) => kb_core::telemetry::CollectorRan {
                collector,
                counter: "kb_store_tombstones_purged_total",
                labels: &[("stage", stage.as_str())],
                removed: n,
                report: &n,
            }
            .emit(),
            Err(e) => kb_core::telemetry::CollectorFailed {
                collector,
                error: &e,
            }
            .emit(),
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_writer_settings_reach_the_options_and_the_consumer() {
        let settings = WriterSettings {
            ack_wait_secs: 5,
            retry_for_secs: 7,
            crash_limit: 2,
            max_timeouts_per_document: 4,
            bulk_min_backlog: 50,
            bulk_max_secs: 90,
        };
        let o = WriterOptions::from_settings(&settings, 3);
        assert_eq!(o.concurrency, 3);
        assert_eq!(o.retry_for, Duration::from_secs(7));
        assert_eq!(o.ack_wait, Duration::from_secs(5));
        assert_eq!(o.bulk_max, Duration::from_secs(90));
        assert_eq!(
            (
                o.bulk_min_backlog,
                o.max_timeouts_per_document,
                o.crash_limit
            ),
            (50, 4, 2)
        );
        let spec = consumer_spec(Stage::PgWriter, &o);
        assert_eq!(spec.ack_wait, Duration::from_secs(5));
        assert_eq!(spec.backoff, vec![Duration::from_secs(5)]);
        assert_eq!((spec.max_deliver, spec.concurrency), (-1, 3));
        let defaults = WriterOptions::new(4);
        assert_eq!(defaults.retry_for, Duration::from_secs(20));
        assert_eq!(defaults.ack_wait, Duration::from_secs(30));
    }

    #[test]
    fn timeouts_are_counted_per_document_version() {
        let t = Timeouts::new(3);
        let a = ("a".to_string(), 1);
        assert_eq!(t.record(a.clone()), 1);
        assert_eq!(t.record(a.clone()), 2);
        assert_eq!(t.record(("a".to_string(), 2)), 1, "another version");
        t.forget(&a);
        assert_eq!(t.record(a), 1);
    }
}
