//! Rebuilding or backfilling a store from the mirror stream.
//!
//! The mirror stream is a compacted changelog (one message per source, the latest), so reading
//! it from the start and applying every event last-writer-wins yields exactly the state the
//! live writers converge to. Replay reads with an ephemeral ordered consumer, never a writer's
//! durable one, so it moves no writer's position; it applies through the same decoding and
//! [`MirrorStore::apply`] code as the writers. On an empty store it uses bulk mode
//! ([`MirrorStore::begin_bulk`]) and ends it once everything is in.

use crate::{apply_with_retries, ApplyError};
use async_nats::jetstream::consumer::{pull, DeliverPolicy};
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use kb_store::{Applied, MirrorStore, StoreError, StoreErrorKind};
use kb_stream::{input, subjects, Publisher, StreamErrorKind};
use std::time::{Duration, Instant};

/// Where in the mirror stream to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayFrom {
    /// Every source's latest state: a full rebuild.
    Start,
    /// Only sources whose latest state was published at or after this time: a backfill.
    Since(time::OffsetDateTime),
}

#[derive(Debug, Clone)]
pub struct ReplayOptions {
    pub from: ReplayFrom,
    /// Documents applied at once (the store serialises versions of one source itself).
    pub concurrency: usize,
    /// Use bulk mode when the store is empty.
    pub bulk: bool,
    /// How long to retry a transient store error before giving up the replay.
    pub retry_for: Duration,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        Self {
            from: ReplayFrom::Start,
            concurrency: 4,
            bulk: true,
            retry_for: Duration::from_secs(300),
        }
    }
}

/// A mirror message replay could not apply (it is also a dead letter of the live writers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub sequence: u64,
    pub source_id: String,
    pub error_kind: String,
    pub reason: String,
}

/// What a replay did.
#[derive(Debug, Clone, Default)]
pub struct ReplayReport {
    /// Mirror messages read.
    pub messages: u64,
    pub written: u64,
    pub deleted: u64,
    /// Sources recorded as failed (a `FAILED` mirror event).
    pub marked_failed: u64,
    /// Already in the store at this or a newer version (or superseded in the stream meanwhile).
    pub stale: u64,
    pub skipped: Vec<Skipped>,
    /// Whether the store was filled in bulk mode.
    pub bulk: bool,
    /// Time reading and applying.
    pub load: Duration,
    /// Time ending bulk mode (building the vector index); zero without bulk mode.
    pub finish: Duration,
}

/// Progress, for a progress bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayEvent {
    /// Reading starts; `total` messages are waiting (more may arrive meanwhile).
    Started { total: u64, bulk: bool },
    /// `done` of `total` messages applied.
    Applied { done: u64, total: u64 },
    /// Everything is in; bulk mode is ending (index build).
    Finishing,
}

/// How a replay failed, as a store's error: `Transient`: the broker or store went away
/// (rerunning is safe: replay is idempotent); `Config`: the store refuses as configured;
/// `Permanent`: should not happen.
pub type ReplayError = StoreError;

/// If nothing arrives for this long, check whether the stream has anything left for us.
const IDLE: Duration = Duration::from_secs(5);

enum Done {
    Applied(Applied),
    Skipped(Skipped),
    /// The body was replaced by a newer version in the stream meanwhile; it comes later.
    Superseded,
}

/// Replays the mirror stream into `store` (after `prepare`, which creates the schema).
pub async fn replay<S: MirrorStore + ?Sized>(
    publisher: &Publisher,
    store: &S,
    options: &ReplayOptions,
    on_event: impl Fn(ReplayEvent),
) -> Result<ReplayReport, ReplayError> {
    store.prepare().await?;
    let mut report = ReplayReport {
        bulk: options.bulk && store.begin_bulk().await?,
        ..Default::default()
    };
    let mirror = &publisher.topology().mirror;
    let deliver_policy = match options.from {
        ReplayFrom::Start => DeliverPolicy::All,
        ReplayFrom::Since(start_time) => DeliverPolicy::ByStartTime { start_time },
    };
    let mut consumer = mirror
        .create_consumer(pull::OrderedConfig {
            filter_subject: subjects::MIRROR_ALL.to_string(),
            deliver_policy,
            description: Some("kb replay".to_string()),
            ..Default::default()
        })
        .await
        .map_err(|e| ReplayError::transient(format!("cannot read the mirror stream: {e}")))?;
    let mut total = consumer
        .info()
        .await
        .map_err(|e| ReplayError::transient(format!("cannot read the mirror stream: {e}")))?
        .num_pending;
    on_event(ReplayEvent::Started {
        total,
        bulk: report.bulk,
    });
    let started = Instant::now();
    if total > 0 {
        let mut messages = consumer
            .messages()
            .await
            .map_err(|e| ReplayError::transient(format!("cannot read the mirror stream: {e}")))?;
        let mut inflight = FuturesUnordered::new();
        let mut reading = true;
        let mut last_seen = 0u64;
        let concurrency = options.concurrency.max(1);
        while reading || !inflight.is_empty() {
            tokio::select! {
                biased;
                Some(done) = inflight.next(), if !inflight.is_empty() => {
                    record(&mut report, done?);
                    on_event(ReplayEvent::Applied { done: report.messages, total });
                }
                next = tokio::time::timeout(IDLE, messages.next()),
                    if reading && inflight.len() < concurrency =>
                {
                    let msg = match next {
                        Ok(Some(Ok(msg))) => msg,
                        Ok(Some(Err(e))) => {
                            return Err(ReplayError::transient(format!("reading the mirror stream: {e}")))
                        }
                        Ok(None) => return Err(ReplayError::transient("the mirror stream subscription ended")),
                        Err(_) => {
                            reading = !drained(mirror, last_seen).await?;
                            continue;
                        }
                    };
                    let (sequence, pending) = match msg.info() {
                        Ok(i) => (i.stream_sequence, i.pending),
                        Err(e) => return Err(ReplayError::transient(format!("bad message metadata: {e}"))),
                    };
                    last_seen = last_seen.max(sequence);
                    total = total.max(report.messages + inflight.len() as u64 + 1 + pending);
                    reading = pending > 0;
                    inflight.push(apply_one(publisher, store, options.retry_for, msg, sequence));
                }
                else => break,
            }
        }
    }
    report.load = started.elapsed();
    if report.bulk {
        on_event(ReplayEvent::Finishing);
        let finishing = Instant::now();
        end_bulk(store, options.retry_for).await?;
        report.finish = finishing.elapsed();
    }
    Ok(report)
}

fn record(report: &mut ReplayReport, done: Done) {
    report.messages += 1;
    match done {
        Done::Applied(Applied::Written) => report.written += 1,
        Done::Applied(Applied::Deleted) => report.deleted += 1,
        Done::Applied(Applied::MarkedFailed) => report.marked_failed += 1,
        Done::Applied(Applied::Stale { .. }) | Done::Superseded => report.stale += 1,
        Done::Skipped(s) => report.skipped.push(s),
    }
}

/// True when the stream holds nothing after `last_seen` (for the `IDLE` check).
async fn drained(
    mirror: &async_nats::jetstream::stream::Stream,
    last_seen: u64,
) -> Result<bool, ReplayError> {
    let mut stream = mirror.clone();
    let info = stream
        .info()
        .await
        .map_err(|e| ReplayError::transient(format!("cannot read the mirror stream: {e}")))?;
    Ok(info.state.last_sequence <= last_seen)
}

async fn apply_one<S: MirrorStore + ?Sized>(
    publisher: &Publisher,
    store: &S,
    retry_for: Duration,
    msg: async_nats::jetstream::Message,
    sequence: u64,
) -> Result<Done, ReplayError> {
    let source_id = subjects::source_id_of(&msg.subject).to_string();
    let skip = |error_kind: &str, reason: String| {
        Done::Skipped(Skipped {
            sequence,
            source_id: source_id.clone(),
            error_kind: error_kind.to_string(),
            reason,
        })
    };
    let update = match input::decode_mirror(&msg.payload, publisher.blobs()).await {
        Ok(c) => c,
        Err(e) if e.kind == StreamErrorKind::NotFound => {
            let current = publisher
                .mirror_version(&source_id)
                .await
                .map_err(|e| ReplayError::transient(e.to_string()))?;
            let version = input::source_of(&msg.subject, &msg.payload).map_or(0, |s| s.version);
            if current > version {
                return Ok(Done::Superseded);
            }
            return Ok(skip("body_missing", e.to_string()));
        }
        Err(e) if e.kind == StreamErrorKind::Decode => return Ok(skip("decode", e.to_string())),
        Err(e) => return Err(ReplayError::transient(e.to_string())),
    };
    match apply_with_retries(store, update.change(), retry_for, "replay", None).await {
        Ok(applied) => Ok(Done::Applied(applied)),
        Err(ApplyError::Store(e)) if e.kind == StoreErrorKind::Permanent => {
            Ok(skip("store_rejected", e.to_string()))
        }
        Err(ApplyError::Store(e)) => Err(e),
        Err(e @ ApplyError::Poison { .. }) => Ok(skip("timeout", e.to_string())),
    }
}

async fn end_bulk<S: MirrorStore + ?Sized>(
    store: &S,
    retry_for: Duration,
) -> Result<(), ReplayError> {
    use backon::{ExponentialBuilder, Retryable};
    let attempt = || async { store.end_bulk().await };
    attempt
        .retry(
            ExponentialBuilder::default()
                .with_max_delay(Duration::from_secs(10))
                .with_total_delay(Some(retry_for))
                .without_max_times(),
        )
        .when(|e| e.is_transient())
        .await
}
