//! Collection of bodies in `kb_blobs` that no message refers to any more.
//!
//! Orphans come from best-effort deletes that failed, crashes between storing a body and
//! publishing its message, and dead letters that expired. [`collect`] deletes a stored body
//! only when all of these hold:
//!
//! - it is older than the grace period (a body is stored before its message is published, so
//!   a young one may be about to be referenced);
//! - its name is one the pipeline makes (`<kind>/<source_id>/<version>[/<nonce>]`);
//! - no message refers to it: not the source's mirror head, not the last message on
//!   `kb.v1.source.<id>` or `kb.v1.parsed.<id>` (a work queue that keeps one message per
//!   source; the bodies of a queue that keeps more are not collected), not any dead letter of
//!   the source;
//! - and it still holds right before the delete (references and age are checked again).
//!
//! Safety rule of the whole pipeline: a new reference is only ever made to a body its
//! publisher has just stored (a dead-letter retry stores its body again under a new name), so
//! an old unreferenced body can never become referenced. Running it twice, or from two
//! processes, is harmless.

use crate::blob::ObjectName;
use crate::error::StreamError;
use crate::input::body_of;
use crate::progress::now_ms;
use crate::subjects;
use crate::topology::Topology;
use async_nats::jetstream::stream::{LastRawMessageErrorKind, Stream as JsStream};
use futures::StreamExt;
use kb_core::telemetry::{CollectorFailed, CollectorRan};
use kb_proto::{DeadLetter, Message};
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What one collection did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Stored bodies looked at.
    pub scanned: u64,
    /// Younger than the grace period: kept.
    pub young: u64,
    /// Referenced by a message: kept.
    pub referenced: u64,
    /// Names the pipeline does not make, or sources whose references could not be read: kept.
    pub skipped: u64,
    pub deleted: u64,
}

/// An object older than the grace period whose name parses.
struct Candidate {
    name: String,
    kind: String,
}

/// Age of an object in ms, `None` when unknown.
fn modified_ms(info: &async_nats::jetstream::object_store::ObjectInfo) -> Option<i64> {
    info.modified
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// Deletes the stored bodies no message refers to (see the module docs).
pub async fn collect(topo: &Topology, grace: Duration) -> Result<GcReport, StreamError> {
    let mut report = GcReport::default();
    let cutoff = now_ms() - grace.as_millis() as i64;
    // A work queue must keep one message per source, or its last one is not the only one:
    // the bodies of a queue that keeps more are not collected.
    let one_per_subject = |s: &JsStream| s.cached_info().config.max_messages_per_subject == 1;
    let (source_ok, parsed_ok) = (one_per_subject(&topo.source), one_per_subject(&topo.parsed));

    let mut by_source: BTreeMap<String, Vec<Candidate>> = BTreeMap::new();
    let mut list = topo
        .blobs
        .list()
        .await
        .map_err(|e| StreamError::transient("cannot list kb_blobs", e))?;
    while let Some(info) = list.next().await {
        let info = info.map_err(|e| StreamError::transient("cannot list kb_blobs", e))?;
        if info.deleted {
            continue;
        }
        report.scanned += 1;
        if modified_ms(&info).is_none_or(|m| m > cutoff) {
            report.young += 1;
            continue;
        }
        let Some(parsed) = ObjectName::parse(&info.name) else {
            report.skipped += 1;
            continue;
        };
        if (parsed.kind == "source" && !source_ok) || (parsed.kind == "parsed" && !parsed_ok) {
            report.skipped += 1;
            continue;
        }
        let sid = parsed.source_id.to_string();
        let kind = parsed.kind.to_string();
        by_source.entry(sid).or_default().push(Candidate {
            name: info.name,
            kind,
        });
    }

    for (sid, candidates) in by_source {
        let Ok(refs) = references(topo, &sid).await else {
            report.skipped += candidates.len() as u64;
            continue;
        };
        for c in candidates {
            if refs.contains(&c.name) {
                report.referenced += 1;
                continue;
            }
            let _ = kb_core::failpoint!("gc.before_delete", &c.name);
            // Again, right before the delete: a reference made meanwhile, or the object
            // stored again, keeps it.
            let still_old = match topo.blobs.info(&c.name).await {
                Ok(info) => !info.deleted && modified_ms(&info).is_some_and(|m| m <= cutoff),
                Err(_) => false,
            };
            let still_unreferenced = match references(topo, &sid).await {
                Ok(refs) => !refs.contains(&c.name),
                Err(_) => false,
            };
            if !(still_old && still_unreferenced) {
                report.referenced += 1;
                continue;
            }
            match topo.blobs.delete(&c.name).await {
                Ok(()) => {
                    report.deleted += 1;
                    tracing::debug!(object = %c.name, kind = %c.kind, "collected an orphan body");
                }
                Err(e) => {
                    report.skipped += 1;
                    tracing::debug!(object = %c.name, error = %e, "cannot collect an orphan body");
                }
            }
        }
    }
    Ok(report)
}

/// The last message of `subject` in `stream`, if any.
async fn last_on(
    stream: &JsStream,
    subject: &str,
) -> Result<Option<async_nats::jetstream::message::StreamMessage>, StreamError> {
    match stream.get_last_raw_message_by_subject(subject).await {
        Ok(m) => Ok(Some(m)),
        Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
        Err(e) => Err(StreamError::transient(
            format!("cannot read the last message on {subject}"),
            e,
        )),
    }
}

/// Every stored body a message of source `sid` refers to.
async fn references(topo: &Topology, sid: &str) -> Result<HashSet<String>, StreamError> {
    let mut names = HashSet::new();
    let mut add = |subject: &str, payload: &[u8]| {
        if let Some(name) = crate::blob::stored_name(body_of(subject, payload).as_ref()) {
            names.insert(name.to_string());
        }
    };
    for (stream, subject) in [
        (&topo.mirror, subjects::mirror(sid)),
        (&topo.source, subjects::source(sid)),
        (&topo.parsed, subjects::parsed(sid)),
    ] {
        if let Some(m) = last_on(stream, &subject).await? {
            add(&subject, &m.payload);
        }
    }
    for dl in dead_letters(topo, sid).await? {
        add(&dl.original_subject, &dl.original_payload);
    }
    Ok(names)
}

/// Every dead letter of source `sid`, of any stage.
async fn dead_letters(topo: &Topology, sid: &str) -> Result<Vec<DeadLetter>, StreamError> {
    use async_nats::jetstream::consumer::pull::OrderedConfig;
    let failed = |e: &dyn std::fmt::Display| {
        StreamError::new(
            crate::StreamErrorKind::Transient,
            format!("cannot read the dead letters of {sid}: {e}"),
        )
    };
    let mut consumer = topo
        .dlq
        .create_consumer(OrderedConfig {
            filter_subject: format!("kb.v1.dlq.*.{sid}"),
            description: Some("kb-mirror blob gc".to_string()),
            ..Default::default()
        })
        .await
        .map_err(|e| failed(&e))?;
    let mut pending = consumer.info().await.map_err(|e| failed(&e))?.num_pending;
    let mut out = Vec::new();
    if pending == 0 {
        return Ok(out);
    }
    let mut messages = consumer.messages().await.map_err(|e| failed(&e))?;
    while pending > 0 {
        let next = tokio::time::timeout(Duration::from_secs(10), messages.next()).await;
        let msg = match next {
            Ok(Some(Ok(m))) => m,
            Ok(Some(Err(e))) => return Err(failed(&e)),
            // Fewer than announced (deleted meanwhile); or no answer: do not guess.
            Ok(None) => break,
            Err(_) => return Err(failed(&"timed out")),
        };
        pending = msg.info().map(|i| i.pending).unwrap_or(0);
        if let Ok(dl) = DeadLetter::decode(msg.payload.as_ref()) {
            out.push(dl);
        }
    }
    Ok(out)
}

/// Runs [`collect`] every `interval` until `shutdown` (the first run after one interval).
/// A failed run is logged and tried again at the next.
pub async fn run_periodically(
    topo: Topology,
    interval: Duration,
    grace: Duration,
    shutdown: CancellationToken,
) {
    crate::periodic::every(interval, &shutdown, || async {
        match collect(&topo, grace).await {
            Ok(r) => CollectorRan {
                collector: "blob gc",
                counter: "kb_blob_gc_deleted_total",
                labels: &[],
                removed: r.deleted,
                report: &r,
            }
            .emit(),
            Err(e) => CollectorFailed {
                collector: "blob gc",
                error: &e,
            }
            .emit(),
        }
    })
    .await;
}
