//! `kb dead-letters list|show ID|retry ID...|retry --all`: what failed for good, why, and
//! sending it again once the cause is fixed.
//!
//! A dead letter's ID is its sequence number in `KB_DLQ`. Retrying sends the original message
//! again, then deletes the dead letter:
//!
//! - a stage's input (`kb.v1.source.*`, `kb.v1.parsed.*`: a parser or embedder dead letter) is
//!   sent as a **new version of the same content**: the mirror already holds the FAILED record
//!   of the old version, which would make the old one "superseded". The version is reserved
//!   with the source's version authority (the watcher's `kb_watch` entry for `folder:<n>` and
//!   `file` origins, the Drive state for `drive:<n>`), so the watcher never gives it to other
//!   content, and the body is stored again under a name of its own (the GC's rule: a new
//!   reference is only made to a body just stored). If the source changed or was deleted since,
//!   or the mirror moved past the version, the dead letter is obsolete (`superseded`);
//! - on the mirror stream a retry keeps last-writer-wins: if the subject already holds a newer
//!   version the old message is not republished (it would roll the log back) and the dead
//!   letter, obsolete, goes.

use async_nats::jetstream::consumer::pull;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{LastRawMessageErrorKind, Stream as JsStream};
use async_nats::HeaderMap;
use futures::StreamExt;
use kb_core::display::clean;
use kb_core::{Component, Settings};
use kb_proto::{
    Blob, DeadLetter, Message, MirrorEvent, ParsedDocument, ParsedEvent, SourceEvent, SourceRef,
};
use kb_stream::wire::{header_value, parse_header_line};
use kb_stream::{subjects, DeadLetterKind, Header, Publisher, Topology};
use kb_watcher::drive::{DriveFileState, DriveStore};
use kb_watcher::state::{FileState, WatchState};
use kb_watcher::WatchErrorKind;
use serde::Serialize;
use std::process::ExitCode;
use std::time::Duration;
use time::format_description::well_known::Rfc3339;

#[derive(clap::Subcommand)]
pub enum Action {
    /// One line per dead letter: ID, stage, source, error kind, time, deliveries, reason.
    List {
        /// Only this stage (parser, embedder, pg-writer, graph-writer, watcher).
        #[arg(long)]
        stage: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// One dead letter in full, with the original message's headers and payload.
    Show {
        id: u64,
        #[arg(long)]
        json: bool,
    },
    /// Republish the original message(s) to the original subject and remove the dead letter(s);
    /// identical originals (one per writer) are sent once.
    Retry {
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        ids: Vec<u64>,
        /// Every dead letter (of `--stage` if given).
        #[arg(long)]
        all: bool,
        #[arg(long, requires = "all")]
        stage: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Serialize)]
struct Entry {
    id: u64,
    stage: String,
    source_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<u64>,
    error_kind: String,
    reason: String,
    failed_at: String,
    deliveries: u64,
    original_subject: String,
}

#[derive(Serialize)]
struct Full {
    #[serde(flatten)]
    entry: Entry,
    original_headers: Vec<String>,
    original_payload_bytes: usize,
    original_payload_hex: String,
    /// The original message decoded, when it is a mirror event.
    #[serde(skip_serializing_if = "Option::is_none")]
    original_mirror_event: Option<MirrorSummary>,
}

#[derive(Serialize)]
struct MirrorSummary {
    kind: String,
    version: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    body_object: Option<String>,
    body_bytes: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    error: String,
}

/// How the retry of one dead letter ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum RetryOutcome {
    /// The original (or a new version of a stage's input) is back in its stream.
    Republished,
    /// The source moved on; nothing sent.
    Superseded,
    NotFound,
    Error,
}

impl std::fmt::Display for RetryOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RetryOutcome::Republished => "republished",
            RetryOutcome::Superseded => "superseded",
            RetryOutcome::NotFound => "not_found",
            RetryOutcome::Error => "error",
        })
    }
}

#[derive(Serialize)]
struct Retried {
    id: u64,
    outcome: RetryOutcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<String>,
    /// The version sent: a stage's input is sent as a new version of the same content.
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

pub async fn run(settings: &Settings, action: Action) -> anyhow::Result<ExitCode> {
    settings.validate(&[Component::Nats])?;
    let (_client, js) = kb_stream::connect(&settings.nats, "kb-dead-letters").await?;
    let topo = kb_stream::topology::ensure(&js).await?;
    match action {
        Action::List { stage, json } => {
            let entries: Vec<Entry> = read_all(&topo.dlq)
                .await?
                .into_iter()
                .map(|(id, dl)| entry(id, &dl))
                .filter(|e| stage.as_ref().is_none_or(|s| &e.stage == s))
                .collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&entries)?);
            } else {
                print_list(&entries);
            }
            Ok(ExitCode::SUCCESS)
        }
        Action::Show { id, json } => {
            let Some(dl) = read_one(&topo.dlq, id).await? else {
                eprintln!("no dead letter {id}");
                return Ok(ExitCode::from(1));
            };
            let full = full(id, &dl);
            if json {
                println!("{}", serde_json::to_string_pretty(&full)?);
            } else {
                print_full(&full, &dl.original_payload);
            }
            Ok(ExitCode::SUCCESS)
        }
        Action::Retry {
            ids,
            all,
            stage,
            json,
        } => {
            let ids = if all {
                read_all(&topo.dlq)
                    .await?
                    .into_iter()
                    .filter(|(_, dl)| stage.as_ref().is_none_or(|s| &dl.stage == s))
                    .map(|(id, _)| id)
                    .collect()
            } else {
                ids
            };
            // Both writers dead-letter the same mirror message: one republish reaches every
            // consumer of the subject, so identical originals are sent once.
            let mut sent = std::collections::HashSet::new();
            let mut results = Vec::new();
            let publisher = Publisher::new(&topo, settings.nats.inline_max_bytes);
            for id in ids {
                results.push(retry(&topo, &publisher, id, &mut sent).await);
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&results)?);
            } else {
                for r in &results {
                    let version = r
                        .version
                        .map(|v| format!(" as version {v}"))
                        .unwrap_or_default();
                    match (&r.subject, &r.error) {
                        (_, Some(e)) => println!("{}  {}: {}", r.id, r.outcome, clean(e)),
                        (Some(s), None) => println!("{}  {} to {s}{version}", r.id, r.outcome),
                        (None, None) => println!("{}  {}", r.id, r.outcome),
                    }
                }
            }
            let ok = results.iter().all(|r| {
                matches!(
                    r.outcome,
                    RetryOutcome::Republished | RetryOutcome::Superseded
                )
            });
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

/// Every dead letter, oldest first, read with an ephemeral consumer.
async fn read_all(dlq: &JsStream) -> anyhow::Result<Vec<(u64, DeadLetter)>> {
    let mut consumer = dlq
        .create_consumer(pull::OrderedConfig {
            filter_subject: subjects::DLQ_ALL.to_string(),
            description: Some("kb dead-letters".to_string()),
            ..Default::default()
        })
        .await?;
    let mut pending = consumer.info().await?.num_pending;
    let mut out = Vec::new();
    if pending == 0 {
        return Ok(out);
    }
    let mut messages = consumer.messages().await?;
    while pending > 0 {
        let Ok(next) = tokio::time::timeout(Duration::from_secs(10), messages.next()).await else {
            // Deleted meanwhile (retried by someone else): nothing more to read.
            break;
        };
        let Some(msg) = next else { break };
        let msg = msg?;
        let info = msg.info().map_err(|e| anyhow::anyhow!("{e}"))?;
        pending = info.pending;
        let seq = info.stream_sequence;
        out.push((seq, decode(&msg.payload, &msg.subject)));
    }
    Ok(out)
}

/// A dead letter whose payload does not decode is still listed, with what its subject says.
fn decode(payload: &[u8], subject: &str) -> DeadLetter {
    DeadLetter::decode(payload).unwrap_or_else(|e| {
        let stage = subject.split('.').nth(3).unwrap_or_default().to_string();
        DeadLetter {
            stage,
            error_kind: DeadLetterKind::UnreadableDeadLetter.as_str().to_string(),
            reason: format!("the dead letter itself does not decode: {e}"),
            ..Default::default()
        }
    })
}

async fn read_one(dlq: &JsStream, id: u64) -> anyhow::Result<Option<DeadLetter>> {
    match dlq.get_raw_message(id).await {
        Ok(m) if m.subject.starts_with("kb.v1.dlq.") => Ok(Some(decode(&m.payload, &m.subject))),
        Ok(_) => Ok(None),
        Err(e) => {
            use async_nats::jetstream::stream::RawMessageErrorKind;
            if e.kind() == RawMessageErrorKind::NoMessageFound {
                Ok(None)
            } else {
                Err(e.into())
            }
        }
    }
}

fn entry(id: u64, dl: &DeadLetter) -> Entry {
    let source_id = match &dl.source {
        Some(s) if !s.source_id.is_empty() => s.source_id.clone(),
        _ => subjects::source_id_of(&dl.original_subject).to_string(),
    };
    Entry {
        id,
        stage: dl.stage.clone(),
        source_id,
        path: dl
            .source
            .as_ref()
            .map(|s| s.path.clone())
            .filter(|p| !p.is_empty()),
        version: dl.source.as_ref().map(|s| s.version).filter(|v| *v > 0),
        error_kind: dl.error_kind.clone(),
        reason: dl.reason.clone(),
        failed_at: rfc3339_ms(dl.failed_unix_ms),
        deliveries: dl.deliveries,
        original_subject: dl.original_subject.clone(),
    }
}

fn full(id: u64, dl: &DeadLetter) -> Full {
    let mirror = dl
        .original_subject
        .starts_with("kb.v1.mirror.")
        .then(|| MirrorEvent::decode(dl.original_payload.as_slice()).ok())
        .flatten()
        .map(|ev| {
            use kb_proto::blob::Location;
            let (body_object, body_bytes) = match &ev.body {
                Some(b) => match &b.location {
                    Some(Location::Object(name)) => (Some(name.clone()), b.size),
                    _ => (None, b.size),
                },
                None => (None, 0),
            };
            MirrorSummary {
                kind: kb_proto::mirror_event::Kind::try_from(ev.kind)
                    .map(|k| k.as_str_name().to_string())
                    .unwrap_or_else(|_| format!("unknown ({})", ev.kind)),
                version: ev.source.map(|s| s.version).unwrap_or(0),
                body_object,
                body_bytes,
                error: ev.error,
            }
        });
    Full {
        entry: entry(id, dl),
        original_headers: dl.original_headers.clone(),
        original_payload_bytes: dl.original_payload.len(),
        original_payload_hex: hex::encode(&dl.original_payload),
        original_mirror_event: mirror,
    }
}

fn rfc3339_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

fn print_list(entries: &[Entry]) {
    if entries.is_empty() {
        println!("no dead letters");
        return;
    }
    println!(
        "{:>6}  {:<12}  {:<32}  {:<18}  {:<24}  {:>5}  REASON",
        "ID", "STAGE", "SOURCE", "ERROR", "TIME", "DELIV"
    );
    for e in entries {
        let reason: String = e.reason.chars().take(100).collect();
        println!(
            "{:>6}  {:<12}  {:<32}  {:<18}  {:<24}  {:>5}  {}",
            e.id,
            clean(&e.stage),
            clean(&e.source_id),
            clean(&e.error_kind),
            e.failed_at,
            e.deliveries,
            clean(&reason.replace('\n', " "))
        );
    }
}

fn print_full(f: &Full, payload: &[u8]) {
    let e = &f.entry;
    println!("dead letter {}", e.id);
    println!("  stage             {}", clean(&e.stage));
    println!("  source            {}", clean(&e.source_id));
    if let Some(p) = &e.path {
        println!("  path              {}", clean(p));
    }
    if let Some(v) = e.version {
        println!("  version           {v}");
    }
    println!("  error kind        {}", clean(&e.error_kind));
    println!("  failed at         {}", e.failed_at);
    println!("  deliveries        {}", e.deliveries);
    println!("  original subject  {}", clean(&e.original_subject));
    println!("  reason            {}", clean(&e.reason));
    println!("  original headers");
    for h in &f.original_headers {
        println!("    {}", clean(h));
    }
    match &f.original_mirror_event {
        Some(m) => println!(
            "  original message  mirror event {} v{}, body {} bytes{}{}",
            m.kind,
            m.version,
            m.body_bytes,
            m.body_object
                .as_ref()
                .map(|o| format!(" in object {o}"))
                .unwrap_or_default(),
            if m.error.is_empty() {
                String::new()
            } else {
                format!(", error: {}", m.error)
            }
        ),
        None => {
            let preview: String = String::from_utf8_lossy(&payload[..payload.len().min(200)])
                .chars()
                .map(|c| if c.is_control() { '.' } else { c })
                .collect();
            println!(
                "  original payload  {} bytes: {preview}",
                f.original_payload_bytes
            );
        }
    }
}

/// The original headers to send again: JetStream's own control headers (`Nats-*`, e.g. the
/// expected-last-sequence of the first publish) are dropped; the rest are kept.
fn retry_headers(dl: &DeadLetter, id: u64) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for line in &dl.original_headers {
        if let Some((name, value)) = parse_header_line(line) {
            if Header::is_jetstream_control(name) {
                continue;
            }
            headers.append(name, value);
        }
    }
    // Deduplicates a retry sent twice in a row, not the original.
    headers.insert(Header::MsgId.as_str(), format!("dlq-retry:{id}").as_str());
    headers
}

/// Originals already sent by this command: (subject, payload).
type Sent = std::collections::HashSet<(String, Vec<u8>)>;

async fn retry(topo: &Topology, publisher: &Publisher, id: u64, sent: &mut Sent) -> Retried {
    let result = async {
        let Some(dl) = read_one(&topo.dlq, id).await? else {
            return Ok::<_, anyhow::Error>((RetryOutcome::NotFound, None, None));
        };
        if dl.original_subject.is_empty()
            || DeadLetterKind::read(&dl.error_kind) == DeadLetterKind::UnreadableDeadLetter
        {
            anyhow::bail!("the dead letter has no original message to send");
        }
        let subject = dl.original_subject.clone();
        let key = (subject.clone(), dl.original_payload.clone());
        let (outcome, version) = if sent.contains(&key) {
            (RetryOutcome::Republished, None)
        } else if subject.starts_with("kb.v1.mirror.") {
            (republish_mirror(topo, &dl, id).await?, None)
        } else if subject.starts_with("kb.v1.source.") || subject.starts_with("kb.v1.parsed.") {
            match reissue(topo, publisher, &dl).await? {
                Some(v) => (RetryOutcome::Republished, Some(v)),
                None => (RetryOutcome::Superseded, None),
            }
        } else {
            let msg = PublishMessage::build()
                .payload(dl.original_payload.clone().into())
                .headers(retry_headers(&dl, id));
            topo.js.send_publish(subject.clone(), msg).await?.await?;
            (RetryOutcome::Republished, None)
        };
        if outcome == RetryOutcome::Republished {
            sent.insert(key);
        }
        // Only once the original is safely back (or obsolete) does the dead letter go.
        topo.dlq.delete_message(id).await?;
        Ok((outcome, Some(subject), version))
    }
    .await;
    match result {
        Ok((outcome, subject, version)) => Retried {
            id,
            outcome,
            subject,
            version,
            error: None,
        },
        Err(e) => Retried {
            id,
            outcome: RetryOutcome::Error,
            subject: None,
            version: None,
            error: Some(format!("{e:#}")),
        },
    }
}

/// A stage's input event, decoded from a dead letter's original message.
enum StageInput {
    Source(SourceRef, Blob),
    Parsed(SourceRef, Blob),
}

fn stage_input(dl: &DeadLetter) -> anyhow::Result<StageInput> {
    let payload = dl.original_payload.as_slice();
    let parts = |source: Option<SourceRef>, body: Option<Blob>| {
        let source = source
            .filter(|s| !s.source_id.is_empty() && s.version > 0)
            .ok_or_else(|| anyhow::anyhow!("the original message names no source version"))?;
        let body = body.ok_or_else(|| anyhow::anyhow!("the original message has no body"))?;
        Ok::<_, anyhow::Error>((source, body))
    };
    if dl.original_subject.starts_with("kb.v1.source.") {
        let ev = SourceEvent::decode(payload)?;
        let (s, b) = parts(ev.source, ev.body)?;
        Ok(StageInput::Source(s, b))
    } else {
        let ev = ParsedEvent::decode(payload)?;
        let (s, b) = parts(ev.source, ev.body)?;
        Ok(StageInput::Parsed(s, b))
    }
}

/// Sends a stage's input again as a new version of the same content; `None` when the source
/// moved on (the dead letter is obsolete). See the module docs.
async fn reissue(
    topo: &Topology,
    publisher: &Publisher,
    dl: &DeadLetter,
) -> anyhow::Result<Option<u64>> {
    let input = stage_input(dl)?;
    let (source, body) = match &input {
        StageInput::Source(s, b) | StageInput::Parsed(s, b) => (s, b),
    };
    let sid = source.source_id.as_str();
    let head = publisher.mirror_version(sid).await?;
    if head > source.version {
        return Ok(None);
    }
    // No head at or below the floor: the source was deleted and its tombstone forgotten
    // (kb_stream::retention); sending this again would bring the deleted file back.
    if head == 0 && source.version <= kb_stream::retention::version_floor(topo).await? {
        return Ok(None);
    }
    // The bytes first: a body that is gone cannot be sent again, and nothing is reserved.
    let bytes = publisher.blobs().fetch(body).await.map_err(|e| {
        anyhow::anyhow!(
            "the original body of {sid} v{} is gone: {e}",
            source.version
        )
    })?;
    let Some(version) = reserve_version(topo, source, head.max(source.version)).await? else {
        return Ok(None);
    };
    let renewed = SourceRef {
        version,
        ..source.clone()
    };
    match input {
        StageInput::Source(..) => {
            let body = publisher
                .blobs()
                .wrap_new("source", sid, version, bytes)
                .await?;
            publisher.source_event(&renewed, body, "retry").await?;
        }
        StageInput::Parsed(..) => {
            let mut doc = ParsedDocument::decode(bytes.as_slice())?;
            doc.source = Some(renewed.clone());
            let body = publisher
                .blobs()
                .wrap_new("parsed", sid, version, doc.encode_to_vec())
                .await?;
            publisher.parsed_event(&renewed, body, "retry").await?;
        }
    }
    Ok(Some(version))
}

/// Reserves the version after `floor` (and after the source's recorded version) with the
/// source's version authority, compare-and-set; `None` when the source changed or was deleted
/// since `source` (its newer state is, or will be, published by the watcher). Sources of no
/// known origin (tests, tools) have no authority: the version after `floor`.
async fn reserve_version(
    topo: &Topology,
    source: &SourceRef,
    floor: u64,
) -> anyhow::Result<Option<u64>> {
    let sid = source.source_id.as_str();
    // A state that recorded other content (or a deletion) has moved on.
    let same = |hash: &str, deleted: bool| {
        !deleted
            && (hash.is_empty() || source.content_hash.is_empty() || hash == source.content_hash)
    };
    let origin = source.origin.as_str();
    let folder = match origin {
        "file" => Some("cli"),
        o => o.strip_prefix("folder:"),
    };
    for _ in 0..8 {
        let written = if let Some(name) = folder {
            let state = WatchState::new(topo.watch.clone(), name);
            let Some(stored) = state.get(sid).await? else {
                return Ok(Some(floor + 1));
            };
            if !same(&stored.state.content_hash, stored.state.deleted) {
                return Ok(None);
            }
            let version = stored.state.version.max(floor) + 1;
            let next = FileState {
                version,
                ..stored.state
            };
            state
                .put(sid, &next, Some(stored.revision))
                .await
                .map(|_| version)
        } else if let Some(name) = origin.strip_prefix("drive:") {
            let store = DriveStore::open(&topo.js, name).await?;
            let Some(entry) = store.file(sid).await? else {
                return Ok(Some(floor + 1));
            };
            // A pending entry: the watcher is publishing a newer change as that version.
            if entry.value.pending || !same(&entry.value.content_hash, entry.value.deleted) {
                return Ok(None);
            }
            let version = entry.value.version.max(floor) + 1;
            let next = DriveFileState {
                version,
                ..entry.value
            };
            store
                .put_file(sid, &next, Some(entry.revision))
                .await
                .map(|_| version)
        } else {
            return Ok(Some(floor + 1));
        };
        match written {
            Ok(version) => return Ok(Some(version)),
            // The watcher wrote in between: look again.
            Err(e) if e.kind == WatchErrorKind::Conflict => continue,
            Err(e) => return Err(e.into()),
        }
    }
    anyhow::bail!("the state of source {sid} kept changing")
}

/// The version a mirror message carries (header first, then the payload), 0 if none.
fn mirror_version(headers: Option<&HeaderMap>, payload: &[u8]) -> u64 {
    headers
        .and_then(|h| h.get(Header::Version.as_str()))
        .and_then(|v| v.as_str().parse().ok())
        .or_else(|| {
            MirrorEvent::decode(payload)
                .ok()
                .and_then(|e| e.source)
                .map(|s| s.version)
        })
        .unwrap_or(0)
}

/// Republishes to a mirror subject unless it already holds a newer version, with the same
/// optimistic concurrency as the publisher, so the log never goes back to an older state.
async fn republish_mirror(
    topo: &Topology,
    dl: &DeadLetter,
    id: u64,
) -> anyhow::Result<RetryOutcome> {
    // An undecodable message still carries the version header it was published with.
    let header_version =
        header_value(&dl.original_headers, Header::Version).and_then(|v| v.parse::<u64>().ok());
    let ours = dl
        .source
        .as_ref()
        .map(|s| s.version)
        .filter(|v| *v > 0)
        .or(header_version)
        .unwrap_or_else(|| mirror_version(None, &dl.original_payload));
    for _ in 0..16 {
        let head = match topo
            .mirror
            .get_last_raw_message_by_subject(&dl.original_subject)
            .await
        {
            Ok(m) => Some((m.sequence, mirror_version(Some(&m.headers), &m.payload))),
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => None,
            Err(e) => return Err(e.into()),
        };
        if let Some((_, current)) = head {
            if current > ours {
                return Ok(RetryOutcome::Superseded);
            }
        }
        let msg = PublishMessage::build()
            .payload(dl.original_payload.clone().into())
            .headers(retry_headers(dl, id))
            .expected_last_subject_sequence(head.map(|(seq, _)| seq).unwrap_or(0));
        match topo
            .js
            .send_publish(dl.original_subject.clone(), msg)
            .await?
            .await
        {
            Ok(_) => return Ok(RetryOutcome::Republished),
            Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => continue,
            Err(e) => return Err(e.into()),
        }
    }
    anyhow::bail!("the mirror subject {} kept changing", dl.original_subject)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_drops_jetstream_control_headers_and_keeps_ours() {
        let dl = DeadLetter {
            original_headers: vec![
                "Nats-Msg-Id: mirror:abc:3:upsert".into(),
                "Nats-Expected-Last-Subject-Sequence: 17".into(),
                "Kb-Source-Id: abc".into(),
                "Kb-Version: 3".into(),
            ],
            ..Default::default()
        };
        let h = retry_headers(&dl, 42);
        assert_eq!(
            h.get("Kb-Source-Id").map(|v| v.as_str().to_string()),
            Some("abc".to_string())
        );
        assert_eq!(
            h.get("Kb-Version").map(|v| v.as_str().to_string()),
            Some("3".to_string())
        );
        assert!(h.get("Nats-Expected-Last-Subject-Sequence").is_none());
        assert_eq!(
            h.get("Nats-Msg-Id").map(|v| v.as_str().to_string()),
            Some("dlq-retry:42".to_string())
        );
    }

    #[test]
    fn an_undecodable_dead_letter_is_still_listed() {
        let dl = decode(b"\xff\xff", "kb.v1.dlq.pg-writer.abc");
        assert_eq!(dl.stage, "pg-writer");
        assert_eq!(dl.error_kind, "unreadable_dead_letter");
    }

    fn file_state(hash: &str, version: u64) -> FileState {
        FileState {
            path: "notes.md".into(),
            content_hash: hash.into(),
            version,
            size: 6,
            modified_unix_ms: 1,
            deleted: false,
            recheck: false,
            pending: false,
        }
    }

    #[tokio::test]
    async fn a_retry_reserves_the_next_version_with_the_sources_authority() -> anyhow::Result<()> {
        let nats = kb_testkit::stack().await?.nats().await?;
        let (_client, js) = kb_stream::connect(&nats.url(), "dead-letters-test").await?;
        let topo = kb_stream::topology::ensure(&js).await?;
        let state = WatchState::new(topo.watch.clone(), "inbox");
        let source = |sid: &str, hash: &str| SourceRef {
            source_id: sid.into(),
            version: 3,
            origin: "folder:inbox".into(),
            content_hash: hash.into(),
            ..Default::default()
        };
        // Unchanged since the failure: the next version, recorded where the watcher looks.
        state.put("a", &file_state("h1", 3), None).await?;
        assert_eq!(
            reserve_version(&topo, &source("a", "h1"), 3).await?,
            Some(4)
        );
        let stored = state.get("a").await?.expect("state");
        assert_eq!(stored.state.version, 4);
        assert_eq!(stored.state.content_hash, "h1");
        // Above whatever the mirror holds.
        assert_eq!(
            reserve_version(&topo, &source("a", "h1"), 9).await?,
            Some(10)
        );
        // Changed or deleted since: the watcher publishes (or published) the newer state.
        state.put("b", &file_state("h2", 5), None).await?;
        assert_eq!(reserve_version(&topo, &source("b", "h1"), 3).await?, None);
        let deleted = FileState {
            deleted: true,
            ..file_state("h1", 4)
        };
        state.put("c", &deleted, None).await?;
        assert_eq!(reserve_version(&topo, &source("c", "h1"), 3).await?, None);
        // No authority (no state, another origin): above the floor.
        assert_eq!(
            reserve_version(&topo, &source("d", "h1"), 3).await?,
            Some(4)
        );
        let other = SourceRef {
            origin: "test".into(),
            ..source("a", "h1")
        };
        assert_eq!(reserve_version(&topo, &other, 7).await?, Some(8));
        Ok(())
    }

    #[tokio::test]
    async fn an_embedder_dead_letter_is_sent_again_as_the_next_version() -> anyhow::Result<()> {
        use kb_store::Change;
        let nats = kb_testkit::stack().await?.nats().await?;
        let (_client, js) = kb_stream::connect(&nats.url(), "dead-letters-test").await?;
        let topo = kb_stream::topology::ensure(&js).await?;
        let publisher = Publisher::new(&topo, 1024);
        let mut doc = kb_testkit::document("p1", 1, 3, 0);
        doc.title = "t".repeat(4096);
        publisher.parsed(&doc).await?;
        let m = topo
            .parsed
            .get_last_raw_message_by_subject(&subjects::parsed("p1"))
            .await?;
        let source = doc.source.clone().expect("source");
        publisher.mirror(Change::Failed(&source, "refused")).await?;
        let dl = DeadLetter {
            stage: "embedder".into(),
            error_kind: "embedding_failed".into(),
            original_subject: subjects::parsed("p1"),
            original_payload: m.payload.to_vec(),
            source: Some(source.clone()),
            ..Default::default()
        };
        assert_eq!(reissue(&topo, &publisher, &dl).await?, Some(2));
        let m2 = topo
            .parsed
            .get_last_raw_message_by_subject(&subjects::parsed("p1"))
            .await?;
        let ev = ParsedEvent::decode(m2.payload.as_ref())?;
        assert_eq!(ev.source.as_ref().map(|s| s.version), Some(2));
        let body = ev.body.expect("body");
        let old = ParsedEvent::decode(m.payload.as_ref())?.body.expect("body");
        let (new_name, old_name) = (
            kb_stream::blob::stored_name(Some(&body)).expect("stored"),
            kb_stream::blob::stored_name(Some(&old)).expect("stored"),
        );
        assert_ne!(new_name, old_name, "stored again under a name of its own");
        let back = ParsedDocument::decode(publisher.blobs().fetch(&body).await?.as_slice())?;
        assert_eq!(back.source.map(|s| s.version), Some(2));
        assert_eq!(back.chunks, doc.chunks);
        // Once the mirror moved past the version, the dead letter is obsolete.
        let v3 = SourceRef {
            version: 3,
            ..source.clone()
        };
        publisher.mirror(Change::Delete(&v3)).await?;
        assert_eq!(reissue(&topo, &publisher, &dl).await?, None);
        // Still obsolete once the deletion is forgotten (kb_stream::retention): the head is
        // gone, but the version floor remembers how far the source went.
        let authority =
            kb_watcher::retention::StateAuthority::new(&topo.js, topo.watch.clone()).await;
        let r = kb_stream::retention::collect(&topo, std::time::Duration::ZERO, &authority).await?;
        assert_eq!(r.forgotten, 1, "{r:?}");
        assert_eq!(publisher.mirror_version("p1").await?, 0);
        assert_eq!(reissue(&topo, &publisher, &dl).await?, None);
        Ok(())
    }
}
