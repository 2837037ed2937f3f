//! Forgetting deleted sources once `nats.tombstone_retention_secs` has passed, so that churn
//! (files created and deleted under new names) does not grow the broker for ever.
//!
//! A deleted source leaves a tombstone in five places: its mirror head (`KB_MIRROR`), its
//! source authority's state (`kb_watch`, `kb_drive`), its progress records (`kb_progress`),
//! and a tombstone row or node in each store. The tombstone is what makes an older version
//! lose, and what the next version of a re-created file is numbered after. [`collect`] forgets
//! the stream side of a tombstone only when all of these hold:
//!
//! - its message is older than the retention;
//! - every durable consumer of the mirror has acknowledged it (a writer that is behind has
//!   not applied the deletion yet: its store still holds the source);
//! - the source's authority forgot its state of the source, or had none: an authority that
//!   moved on (the file is back) keeps everything ([`Authority`]).
//!
//! Versions stay monotonic: before anything is forgotten, the **version floor** (a key in
//! `kb_watch`) is raised to the highest version among the tombstones about to be forgotten,
//! and a source without state is given its next version above both its mirror head and the
//! floor ([`crate::Publisher::highest_version`]).
//! So a re-created file gets a version above every forgotten tombstone, and a store that still
//! holds its own tombstone (the writers forget theirs on their own schedule) takes it. The
//! floor is used only to number new versions, never to judge a message stale: a version
//! numbered before the floor rose is still valid.
//!
//! Every purge is bounded by the sequence it was decided on (JetStream purge `seq`), so a
//! message or state written meanwhile survives it. Running it twice, or from two processes,
//! is harmless; a run that stops half-way leaves a tombstone the next run finishes.

use crate::error::{StreamError, StreamErrorKind};
use crate::progress::now_ms;
use crate::subjects;
use crate::topology::Topology;
use crate::wire::{mirror_kind_header, Header, Stage};
use async_nats::jetstream::consumer::pull::OrderedConfig;
use async_nats::jetstream::kv;
use futures::{StreamExt, TryStreamExt};
use kb_core::telemetry::{CollectorFailed, CollectorRan};
use kb_proto::{mirror_event, MirrorEvent, SourceRef};
use prost::Message as _;
use std::time::Duration;

/// The key of the version floor in `kb_watch`: the highest version of any forgotten source.
pub const VERSION_FLOOR_KEY: &str = "mirror-version-floor";

/// The stages that record progress per source.
const PROGRESS_STAGES: [Stage; 4] = [
    Stage::Parser,
    Stage::Embedder,
    Stage::PgWriter,
    Stage::GraphWriter,
];

/// What a source's authority (the watcher that numbers its versions) did when asked to
/// forget a deleted source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forget {
    /// Its state of the source is gone (or it never had any): the rest may go.
    Forgotten,
    /// Its state moved past the tombstone (the file is back) or cannot be judged: keep all.
    Kept,
}

/// The state that numbers a source's versions (a watched folder's, a Drive's).
#[async_trait::async_trait]
pub trait Authority: Send + Sync {
    /// Forgets `tombstone`'s source if its state still records exactly that deletion.
    async fn forget(&self, tombstone: &SourceRef) -> Result<Forget, StreamError>;
}

/// What one collection did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Tombstones past the retention.
    pub expired: u64,
    /// Of those, forgotten everywhere on the stream side.
    pub forgotten: u64,
    /// Not yet acknowledged by every durable consumer of the mirror: kept for now.
    pub unapplied: u64,
    /// The authority kept its state (the file is back, or its state is not readable here).
    pub kept: u64,
}

/// The version floor, 0 when never raised.
pub async fn version_floor(topo: &Topology) -> Result<u64, StreamError> {
    Ok(floor_entry(&topo.watch).await?.map_or(0, |(v, _)| v))
}

async fn floor_entry(watch: &kv::Store) -> Result<Option<(u64, u64)>, StreamError> {
    let entry = watch
        .entry(VERSION_FLOOR_KEY)
        .await
        .map_err(|e| StreamError::transient("cannot read the version floor", e))?;
    match entry {
        Some(e) if e.operation == kv::Operation::Put => {
            let text = String::from_utf8_lossy(&e.value);
            let v = text.trim().parse::<u64>().map_err(|err| {
                StreamError::with(
                    StreamErrorKind::Decode,
                    format!("the version floor {text:?} is not a number"),
                    err,
                )
            })?;
            Ok(Some((v, e.revision)))
        }
        _ => Ok(None),
    }
}

/// Raises the floor to at least `version` (compare-and-set; never lowers it).
pub async fn raise_floor(topo: &Topology, version: u64) -> Result<(), StreamError> {
    for _ in 0..16 {
        let current = floor_entry(&topo.watch).await?;
        if current.is_some_and(|(v, _)| v >= version) {
            return Ok(());
        }
        let value = version.to_string().into_bytes().into();
        let written = match current {
            Some((_, revision)) => topo
                .watch
                .update(VERSION_FLOOR_KEY, value, revision)
                .await
                .map(drop)
                .map_err(|e| e.kind() == kv::UpdateErrorKind::WrongLastRevision),
            None => topo
                .watch
                .create(VERSION_FLOOR_KEY, value)
                .await
                .map(drop)
                .map_err(|e| e.kind() == kv::CreateErrorKind::AlreadyExists),
        };
        match written {
            Ok(()) => return Ok(()),
            Err(true) => continue,
            Err(false) => {
                return Err(StreamError::new(
                    StreamErrorKind::Transient,
                    "cannot write the version floor",
                ))
            }
        }
    }
    Err(StreamError::new(
        StreamErrorKind::Transient,
        "the version floor kept changing",
    ))
}

/// Removes `key`'s history from `bucket` up to `revision`, leaving no delete marker behind
/// (a KV delete would keep one message per key for ever). A later revision survives.
pub async fn purge_key_up_to(
    bucket: &kv::Store,
    key: &str,
    revision: u64,
) -> Result<(), StreamError> {
    bucket
        .stream
        .purge()
        .filter(format!("{}{key}", bucket.prefix))
        .sequence(revision + 1)
        .await
        .map(drop)
        .map_err(|e| StreamError::transient(format!("cannot purge {key}"), e))
}

/// The lowest sequence every durable consumer of the mirror has acknowledged up to;
/// `u64::MAX` when there is none (nothing waits for anything).
async fn acknowledged_by_all(topo: &Topology) -> Result<u64, StreamError> {
    let failed = |e: &dyn std::fmt::Display| {
        StreamError::new(
            StreamErrorKind::Transient,
            format!("cannot list the mirror's consumers: {e}"),
        )
    };
    let infos: Vec<_> = topo
        .mirror
        .consumers()
        .try_collect()
        .await
        .map_err(|e| failed(&e))?;
    Ok(infos
        .iter()
        .filter(|c| c.config.durable_name.is_some())
        .map(|c| c.ack_floor.stream_sequence)
        .min()
        .unwrap_or(u64::MAX))
}

/// A tombstone at the head of the mirror, past the retention.
struct Expired {
    sequence: u64,
    source: SourceRef,
}

/// The mirror's tombstones published at or before `cutoff_ms` (the log keeps one message per source, so
/// every message is a head; they are in time order, so the scan stops at the first young one).
async fn expired_tombstones(topo: &Topology, cutoff_ms: i64) -> Result<Vec<Expired>, StreamError> {
    let failed = |e: &dyn std::fmt::Display| {
        StreamError::new(
            StreamErrorKind::Transient,
            format!("cannot scan the mirror: {e}"),
        )
    };
    let mut consumer = topo
        .mirror
        .create_consumer(OrderedConfig {
            headers_only: true,
            description: Some("kb-mirror tombstone retention".to_string()),
            ..Default::default()
        })
        .await
        .map_err(|e| failed(&e))?;
    let mut pending = consumer.info().await.map_err(|e| failed(&e))?.num_pending;
    let mut found: Vec<u64> = Vec::new();
    if pending == 0 {
        return Ok(Vec::new());
    }
    let mut messages = consumer.messages().await.map_err(|e| failed(&e))?;
    while pending > 0 {
        let msg = match tokio::time::timeout(Duration::from_secs(10), messages.next()).await {
            Ok(Some(Ok(m))) => m,
            Ok(Some(Err(e))) => return Err(failed(&e)),
            Ok(None) => break,
            Err(_) => return Err(failed(&"timed out")),
        };
        let Ok(info) = msg.info() else { break };
        pending = info.pending;
        let published_ms = (info.published.unix_timestamp_nanos() / 1_000_000) as i64;
        if published_ms > cutoff_ms {
            break;
        }
        let kind = msg
            .headers
            .as_ref()
            .and_then(|h| h.get(Header::Kind.as_str()))
            .map(|v| v.as_str().to_owned());
        if kind.as_deref() == Some(mirror_kind_header(mirror_event::Kind::Delete)) {
            found.push(info.stream_sequence);
        }
    }
    let mut out = Vec::with_capacity(found.len());
    for sequence in found {
        // Headers only were read; the tombstone itself (a source reference) is small.
        let m = match topo.mirror.get_raw_message(sequence).await {
            Ok(m) => m,
            // Replaced meanwhile (the file is back): not a tombstone any more.
            Err(_) => continue,
        };
        match MirrorEvent::decode(m.payload.as_ref()) {
            Ok(MirrorEvent {
                source: Some(source),
                ..
            }) if !source.source_id.is_empty() => out.push(Expired { sequence, source }),
            _ => tracing::warn!(sequence, "undecodable tombstone in the mirror; kept"),
        }
    }
    Ok(out)
}

/// Forgets the stream side of every tombstone past `retention` (see the module docs).
pub async fn collect(
    topo: &Topology,
    retention: Duration,
    authority: &dyn Authority,
) -> Result<RetentionReport, StreamError> {
    let mut report = RetentionReport::default();
    let cutoff = now_ms() - retention.as_millis() as i64;
    let applied = acknowledged_by_all(topo).await?;
    let expired = expired_tombstones(topo, cutoff).await?;
    report.expired = expired.len() as u64;
    let (candidates, unapplied): (Vec<_>, Vec<_>) =
        expired.into_iter().partition(|t| t.sequence <= applied);
    report.unapplied = unapplied.len() as u64;
    // First the floor, once for the whole batch: from here on a new version of any of these
    // sources is numbered above its tombstone.
    if let Some(highest) = candidates.iter().map(|t| t.source.version).max() {
        raise_floor(topo, highest).await?;
    }
    for t in candidates {
        let sid = t.source.source_id.as_str();
        let _ = kb_core::failpoint!("retention.before_forget", sid);
        if authority.forget(&t.source).await? == Forget::Kept {
            report.kept += 1;
            continue;
        }
        for stage in PROGRESS_STAGES {
            let key = format!("{}.{sid}", stage.as_str());
            let entry = topo
                .progress
                .entry(key.as_str())
                .await
                .map_err(|e| StreamError::transient("cannot read progress", e))?;
            let Some(entry) = entry else { continue };
            let older = serde_json::from_slice::<crate::ProgressRecord>(&entry.value)
                .map_or(true, |r| r.version <= t.source.version);
            if older {
                purge_key_up_to(&topo.progress, &key, entry.revision).await?;
            }
        }
        let _ = kb_core::failpoint!("retention.before_head", sid);
        topo.mirror
            .purge()
            .filter(subjects::mirror(sid))
            .sequence(t.sequence + 1)
            .await
            .map_err(|e| {
                StreamError::transient(format!("cannot purge the tombstone of {sid}"), e)
            })?;
        report.forgotten += 1;
        tracing::debug!(
            source_id = sid,
            version = t.source.version,
            "forgot a deleted source"
        );
    }
    Ok(report)
}

/// Runs [`collect`] every `interval` until `shutdown` (the first run after one interval); a
/// zero `retention` keeps tombstones for ever. A failed run is logged and tried again later.
pub async fn run_periodically(
    topo: Topology,
    interval: Duration,
    retention: Duration,
    authority: &dyn Authority,
    shutdown: tokio_util::sync::CancellationToken,
) {
    if retention.is_zero() {
        return;
    }
    crate::periodic::every(interval, &shutdown, || async {
        match collect(&topo, retention, authority).await {
            Ok(r) => CollectorRan {
                collector: "tombstone retention",
                counter: "kb_tombstones_forgotten_total",
                labels: &[],
                removed: r.forgotten,
                report: &r,
            }
            .emit(),
            Err(e) => CollectorFailed {
                collector: "tombstone retention",
                error: &e,
            }
            .emit(),
        }
    })
    .await;
}
