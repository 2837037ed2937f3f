//! `kb dead-letters list|show ID|retry ID...|retry --all`: what failed for good, why, and
//! sending it again once the cause is fixed.
//!
//! A dead letter's ID is its sequence number in `KB_DLQ`. Retrying republishes the original
//! payload and headers to the original subject, then deletes the dead letter. On the mirror
//! stream a retry keeps last-writer-wins: if the subject already holds a newer version the old
//! message is not republished (it would roll the log back) and the dead letter, obsolete, goes.

use async_nats::jetstream::consumer::pull;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{LastRawMessageErrorKind, Stream as JsStream};
use async_nats::HeaderMap;
use futures::StreamExt;
use kb_core::{Component, Settings};
use kb_proto::{DeadLetter, Message, MirrorEvent};
use kb_stream::{subjects, Topology};
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

#[derive(Serialize)]
struct Retried {
    id: u64,
    /// `republished`, `superseded` (the mirror holds a newer version; nothing sent), `not_found`
    /// or `error`.
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

pub async fn run(settings: &Settings, action: Action) -> anyhow::Result<ExitCode> {
    settings.validate(&[Component::Nats])?;
    let (_client, js) = kb_stream::connect(&settings.nats.url, "kb-dead-letters").await?;
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
            for id in ids {
                results.push(retry(&topo, id, &mut sent).await);
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&results)?);
            } else {
                for r in &results {
                    match (&r.subject, &r.error) {
                        (_, Some(e)) => println!("{}  {}: {e}", r.id, r.outcome),
                        (Some(s), None) => println!("{}  {} to {s}", r.id, r.outcome),
                        (None, None) => println!("{}  {}", r.id, r.outcome),
                    }
                }
            }
            let ok = results
                .iter()
                .all(|r| matches!(r.outcome, "republished" | "superseded"));
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
            error_kind: "unreadable_dead_letter".to_string(),
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
            e.stage,
            e.source_id,
            e.error_kind,
            e.failed_at,
            e.deliveries,
            reason.replace('\n', " ")
        );
    }
}

fn print_full(f: &Full, payload: &[u8]) {
    let e = &f.entry;
    println!("dead letter {}", e.id);
    println!("  stage             {}", e.stage);
    println!("  source            {}", e.source_id);
    if let Some(p) = &e.path {
        println!("  path              {p}");
    }
    if let Some(v) = e.version {
        println!("  version           {v}");
    }
    println!("  error kind        {}", e.error_kind);
    println!("  failed at         {}", e.failed_at);
    println!("  deliveries        {}", e.deliveries);
    println!("  original subject  {}", e.original_subject);
    println!("  reason            {}", e.reason);
    println!("  original headers");
    for h in &f.original_headers {
        println!("    {h}");
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
        if let Some((name, value)) = line.split_once(": ") {
            if name.to_ascii_lowercase().starts_with("nats-") {
                continue;
            }
            headers.append(name, value);
        }
    }
    // Deduplicates a retry sent twice in a row, not the original.
    headers.insert("Nats-Msg-Id", format!("dlq-retry:{id}").as_str());
    headers
}

/// Originals already sent by this command: (subject, payload).
type Sent = std::collections::HashSet<(String, Vec<u8>)>;

async fn retry(topo: &Topology, id: u64, sent: &mut Sent) -> Retried {
    let result = async {
        let Some(dl) = read_one(&topo.dlq, id).await? else {
            return Ok::<_, anyhow::Error>(("not_found", None));
        };
        if dl.original_subject.is_empty() || dl.error_kind == "unreadable_dead_letter" {
            anyhow::bail!("the dead letter has no original message to send");
        }
        let subject = dl.original_subject.clone();
        let key = (subject.clone(), dl.original_payload.clone());
        let outcome = if sent.contains(&key) {
            "republished"
        } else if subject.starts_with("kb.v1.mirror.") {
            republish_mirror(topo, &dl, id).await?
        } else {
            let msg = PublishMessage::build()
                .payload(dl.original_payload.clone().into())
                .headers(retry_headers(&dl, id));
            topo.js.send_publish(subject.clone(), msg).await?.await?;
            "republished"
        };
        if outcome == "republished" {
            sent.insert(key);
        }
        // Only once the original is safely back (or obsolete) does the dead letter go.
        topo.dlq.delete_message(id).await?;
        Ok((outcome, Some(subject)))
    }
    .await;
    match result {
        Ok((outcome, subject)) => Retried {
            id,
            outcome,
            subject,
            error: None,
        },
        Err(e) => Retried {
            id,
            outcome: "error",
            subject: None,
            error: Some(format!("{e:#}")),
        },
    }
}

/// The version a mirror message carries (header first, then the payload), 0 if none.
fn mirror_version(headers: Option<&HeaderMap>, payload: &[u8]) -> u64 {
    headers
        .and_then(|h| h.get(subjects::HEADER_VERSION))
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
) -> anyhow::Result<&'static str> {
    // An undecodable message still carries the version header it was published with.
    let header_version = dl.original_headers.iter().find_map(|line| {
        let (name, value) = line.split_once(": ")?;
        name.eq_ignore_ascii_case(subjects::HEADER_VERSION)
            .then(|| value.parse::<u64>().ok())
            .flatten()
    });
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
                return Ok("superseded");
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
            Ok(_) => return Ok("republished"),
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
}
