//! Publishing for every stage. Each message carries `Nats-Msg-Id` (`<stage>:<source>:<version>:<kind>`)
//! so a publisher that retries after a crash cannot duplicate it, plus the source id and version
//! as headers. The mirror stream additionally enforces last-writer-wins at publish time, so it
//! stays an exact compacted changelog even when parallel embedders finish out of order.
//!
//! Bodies are stored per attempt ([`crate::blob::object_name`]) and deleted only when provably
//! unreferenced: our own body when the broker refused or deduplicated our message, and the
//! replaced mirror head's body once our message took its place. Anything else is left to the
//! GC ([`crate::gc`]), which checks references before deleting.

use crate::blob::{stored_name, Blobs};
use crate::error::{StreamError, StreamErrorKind};
use crate::subjects;
use crate::topology::Topology;
use crate::wire::Header;
use async_nats::jetstream::context::{PublishAckFuture, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::publish::PublishAck;
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use kb_proto::{
    mirror_event::Kind, DeadLetter, Message, MirrorEvent, ParsedDocument, ParsedEvent, SourceEvent,
    SourceRef,
};
use kb_store::Change;
use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

/// What happened to a mirror publish ([`Publisher::mirror`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mirrored {
    /// Our message is the source's newest state.
    Published,
    /// The mirror already holds this or a newer version of the source; nothing was published.
    Superseded { current: u64 },
    /// An earlier attempt with the same message id (same stage, source, version and kind) is
    /// already in the log; ours was dropped by deduplication. Counted as superseded.
    Duplicate,
}

#[derive(Clone)]
pub struct Publisher {
    topo: Topology,
    blobs: Blobs,
    /// Streams this process found full (alert raised), so the alert is cleared once a publish
    /// goes through again.
    full: Arc<Mutex<HashSet<&'static str>>>,
}

struct Head {
    sequence: u64,
    version: u64,
    body: Option<kb_proto::Blob>,
}

/// The mirror event kind of a change.
fn kind_of(change: &Change<'_>) -> Kind {
    match change {
        Change::Upsert(_) => Kind::Upsert,
        Change::Delete(_) => Kind::Delete,
        Change::Failed(..) => Kind::Failed,
    }
}

/// The stream a pipeline subject lands in (for alerts).
fn stream_of(subject: &str) -> &'static str {
    match subject.split('.').nth(2) {
        Some("source") => subjects::SOURCE_STREAM,
        Some("parsed") => subjects::PARSED_STREAM,
        Some("mirror") => subjects::MIRROR_STREAM,
        Some("dlq") => subjects::DLQ_STREAM,
        _ => "other",
    }
}

/// The dead letter's message id when it has no original message (the watcher's): one per
/// stage, source, version and kind.
pub fn dead_letter_id(dl: &DeadLetter, source_id: &str) -> String {
    let version = dl.source.as_ref().map(|s| s.version).unwrap_or(0);
    format!("dlq:{}:{source_id}:{version}:{}", dl.stage, dl.error_kind)
}

/// The dead letter's message id for a consumed message: one per stage and stream message, so
/// a redelivery that fails again (its term was lost) does not store a second one.
pub fn dead_letter_id_for(stage: &str, stream: &str, stream_sequence: u64) -> String {
    format!("dlq:{stage}:{stream}:{stream_sequence}")
}

impl Publisher {
    pub fn new(topo: &Topology, inline_max: usize) -> Self {
        Self {
            topo: topo.clone(),
            blobs: Blobs::new(topo.blobs.clone(), inline_max),
            full: Arc::default(),
        }
    }

    pub fn blobs(&self) -> &Blobs {
        &self.blobs
    }

    pub fn topology(&self) -> &Topology {
        &self.topo
    }

    fn message(payload: Vec<u8>, stage: &str, source: &SourceRef, kind: &str) -> PublishMessage {
        PublishMessage::build()
            .payload(payload.into())
            .message_id(format!(
                "{stage}:{}:{}:{kind}",
                source.source_id, source.version
            ))
            .header(Header::SourceId.as_str(), source.source_id.as_str())
            .header(
                Header::Version.as_str(),
                source.version.to_string().as_str(),
            )
            .header(Header::Kind.as_str(), kind)
    }

    /// Publishes and waits for the broker's acknowledgement. A full stream or a broker without
    /// JetStream raises the alert `broker.<stream>.full` (cleared by this process's next
    /// successful publish to that stream) and is a `Full` / `BrokerDown` error.
    async fn send(
        &self,
        subject: String,
        msg: PublishMessage,
    ) -> Result<PublishAck, async_nats::jetstream::context::PublishError> {
        let stream = stream_of(&subject);
        let ack: Result<PublishAckFuture, _> = self.topo.js.send_publish(subject, msg).await;
        let result = match ack {
            Ok(f) => f.await,
            Err(e) => Err(e),
        };
        match &result {
            Ok(_) => self.broker_ok(stream).await,
            Err(e) => {
                if let Some(kind) = crate::error::broker_refusal(e) {
                    self.broker_refused(stream, kind, &e.to_string()).await;
                }
            }
        }
        result
    }

    async fn broker_refused(&self, stream: &'static str, kind: StreamErrorKind, error: &str) {
        metrics::gauge!("kb_broker_full", "stream" => stream).set(1.0);
        let first = self
            .full
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(stream);
        let (alert, what) = match kind {
            StreamErrorKind::BrokerDown => ("jetstream_disabled", "JetStream does not answer"),
            _ => ("full", "the broker refuses to store"),
        };
        let message = format!(
            "{what} ({stream}: {error}); {}",
            kind.hint().unwrap_or_default()
        );
        if first {
            tracing::error!(stream, error, "{message}");
        }
        if let Err(e) = crate::alerts::raise(
            &self.topo.alerts,
            "broker",
            stream,
            alert,
            &message,
            serde_json::Value::Null,
        )
        .await
        {
            tracing::debug!(error = %e, "cannot raise the broker alert");
        }
    }

    async fn broker_ok(&self, stream: &'static str) {
        let was_full = self
            .full
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(stream);
        if was_full {
            metrics::gauge!("kb_broker_full", "stream" => stream).set(0.0);
            tracing::info!(stream, "the broker stores again");
            for alert in ["full", "jetstream_disabled"] {
                if let Err(e) =
                    crate::alerts::clear(&self.topo.alerts, "broker", stream, alert).await
                {
                    tracing::debug!(error = %e, "cannot clear the broker alert");
                }
            }
        }
    }

    /// Stores a body under a fresh per-attempt name; a full object store raises the alert
    /// `broker.kb_blobs.full` like a full stream does.
    async fn store_body(
        &self,
        kind: &str,
        source_id: &str,
        version: u64,
        bytes: Vec<u8>,
    ) -> Result<kb_proto::Blob, StreamError> {
        const BLOBS: &str = "kb_blobs";
        let stored = bytes.len() > self.blobs.inline_max();
        match self.blobs.wrap_new(kind, source_id, version, bytes).await {
            Ok(b) => {
                if stored {
                    self.broker_ok(BLOBS).await;
                }
                Ok(b)
            }
            Err(e) => {
                if matches!(e.kind, StreamErrorKind::Full | StreamErrorKind::BrokerDown) {
                    self.broker_refused(BLOBS, e.kind, &e.to_string()).await;
                }
                Err(e)
            }
        }
    }

    /// Publishes a message whose body we just stored: on a duplicate (an earlier attempt's
    /// message is in the stream) or a refusal our body is referenced by nothing and goes.
    /// On an ambiguous failure (a lost acknowledgement) it stays: the message may be stored.
    async fn send_with_body(
        &self,
        subject: String,
        msg: PublishMessage,
        body: &kb_proto::Blob,
        what: &str,
    ) -> Result<(), StreamError> {
        match self.send(subject, msg).await {
            Ok(ack) => {
                if ack.duplicate {
                    self.blobs.discard(Some(body)).await;
                }
                Ok(())
            }
            Err(e) => {
                let e = StreamError::write(format!("cannot publish {what}"), e);
                if matches!(e.kind, StreamErrorKind::Full | StreamErrorKind::BrokerDown) {
                    self.blobs.discard(Some(body)).await;
                }
                Err(e)
            }
        }
    }

    /// watcher -> parser: the raw bytes of one version of a source.
    pub async fn source(&self, source: &SourceRef, bytes: Vec<u8>) -> Result<(), StreamError> {
        let body = self
            .store_body("source", &source.source_id, source.version, bytes)
            .await?;
        self.source_event(source, body, "upsert").await
    }

    /// watcher (or a dead-letter retry) -> parser: a source event with a body already stored
    /// under a name of its own. `kind` goes into the message id (`upsert`, `retry`).
    pub async fn source_event(
        &self,
        source: &SourceRef,
        body: kb_proto::Blob,
        kind: &str,
    ) -> Result<(), StreamError> {
        let ev = SourceEvent {
            source: Some(source.clone()),
            body: Some(body.clone()),
        };
        let msg = Self::message(ev.encode_to_vec(), "source", source, kind);
        self.send_with_body(
            subjects::source(&source.source_id),
            msg,
            &body,
            "source event",
        )
        .await
    }

    /// parser -> embedder.
    pub async fn parsed(&self, doc: &ParsedDocument) -> Result<(), StreamError> {
        let source = doc.source.clone().unwrap_or_default();
        let body = self
            .store_body(
                "parsed",
                &source.source_id,
                source.version,
                doc.encode_to_vec(),
            )
            .await?;
        self.parsed_event(&source, body, "upsert").await
    }

    /// parser (or a dead-letter retry) -> embedder, with a body already stored.
    pub async fn parsed_event(
        &self,
        source: &SourceRef,
        body: kb_proto::Blob,
        kind: &str,
    ) -> Result<(), StreamError> {
        let ev = ParsedEvent {
            source: Some(source.clone()),
            body: Some(body.clone()),
        };
        let msg = Self::message(ev.encode_to_vec(), "parsed", source, kind);
        self.send_with_body(
            subjects::parsed(&source.source_id),
            msg,
            &body,
            "parsed document",
        )
        .await
    }

    /// The latest mirror message of a source, if any.
    async fn mirror_head(&self, source_id: &str) -> Result<Option<Head>, StreamError> {
        match self
            .topo
            .mirror
            .get_last_raw_message_by_subject(&subjects::mirror(source_id))
            .await
        {
            Ok(m) => {
                let ev = MirrorEvent::decode(m.payload.as_ref()).ok();
                let version = m
                    .headers
                    .get(Header::Version.as_str())
                    .and_then(|v| v.as_str().parse::<u64>().ok())
                    .or_else(|| {
                        ev.as_ref()
                            .and_then(|e| e.source.as_ref())
                            .map(|s| s.version)
                    })
                    .unwrap_or(0);
                Ok(Some(Head {
                    sequence: m.sequence,
                    version,
                    body: ev.and_then(|e| e.body),
                }))
            }
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(e) => Err(StreamError::transient("cannot read the mirror head", e)),
        }
    }

    /// The version the mirror holds for a source, 0 when none.
    pub async fn mirror_version(&self, source_id: &str) -> Result<u64, StreamError> {
        Ok(self
            .mirror_head(source_id)
            .await?
            .map(|h| h.version)
            .unwrap_or(0))
    }

    /// The version a new version of a source without state must be numbered above: its
    /// mirror head's, or the version floor of forgotten tombstones if that is higher
    /// ([`crate::retention`]). Only for numbering: staleness is judged by the head alone.
    pub async fn highest_version(&self, source_id: &str) -> Result<u64, StreamError> {
        let head = self.mirror_version(source_id).await?;
        Ok(head.max(crate::retention::version_floor(&self.topo).await?))
    }

    /// The body object the mirror's newest message of a source refers to, if stored.
    pub async fn mirror_body(&self, source_id: &str) -> Result<Option<String>, StreamError> {
        Ok(self
            .mirror_head(source_id)
            .await?
            .and_then(|h| stored_name(h.body.as_ref()).map(str::to_string)))
    }

    /// Publishes the new state of a source to the mirror stream unless it already holds this
    /// or a newer version. Optimistic concurrency on the subject's last sequence makes the
    /// check and the publish one atomic step, so an older version can never overwrite a newer
    /// one.
    pub async fn mirror(&self, change: Change<'_>) -> Result<Mirrored, StreamError> {
        let source = change.source().cloned().unwrap_or_default();
        if source.source_id.is_empty() || source.version == 0 {
            return Err(StreamError::new(
                StreamErrorKind::Decode,
                "a mirror event needs a source id and a version",
            ));
        }
        let (sid, version) = (source.source_id.as_str(), source.version);
        let mut head = self.mirror_head(sid).await?;
        if let Some(h) = &head {
            if h.version >= version {
                return Ok(Mirrored::Superseded { current: h.version });
            }
        }
        let kind = kind_of(&change);
        let (body, error) = match change {
            Change::Upsert(doc) => (
                Some(
                    self.store_body("mirror", sid, version, doc.encode_to_vec())
                        .await?,
                ),
                "",
            ),
            Change::Delete(_) => (None, ""),
            Change::Failed(_, reason) => (None, reason),
        };
        let ev = MirrorEvent {
            source: Some(source.clone()),
            kind: kind as i32,
            body: body.clone(),
            error: error.to_string(),
        };
        let payload = ev.encode_to_vec();
        let kind_name = crate::wire::mirror_kind_header(kind);
        // Our body is stored, our message not yet sent: the window of two publishers.
        let _ = kb_core::failpoint!("mirror.before_send", sid);
        for _ in 0..16 {
            let expected = head.as_ref().map(|h| h.sequence).unwrap_or(0);
            let msg = Self::message(payload.clone(), "mirror", &source, kind_name)
                .expected_last_subject_sequence(expected);
            match self.send(subjects::mirror(sid), msg).await {
                Ok(ack) if ack.duplicate => {
                    // An earlier attempt's message (with its own body) is the log's record.
                    self.blobs.discard(body.as_ref()).await;
                    return Ok(Mirrored::Duplicate);
                }
                Ok(_) => {
                    // The previous state's stored body is no longer the log's record (one
                    // message per subject: the old message is gone).
                    if let Some(old) = head {
                        if stored_name(old.body.as_ref()) != stored_name(body.as_ref()) {
                            self.blobs.discard(old.body.as_ref()).await;
                        }
                    }
                    return Ok(Mirrored::Published);
                }
                Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {
                    // Someone published in between: look again.
                    head = self.mirror_head(sid).await?;
                    if let Some(h) = &head {
                        if h.version >= version {
                            // Refused: our body is referenced by nothing.
                            self.blobs.discard(body.as_ref()).await;
                            return Ok(Mirrored::Superseded { current: h.version });
                        }
                    }
                }
                Err(e) => {
                    let e = StreamError::write("cannot publish to the mirror stream", e);
                    if matches!(e.kind, StreamErrorKind::Full | StreamErrorKind::BrokerDown) {
                        self.blobs.discard(body.as_ref()).await;
                    }
                    return Err(e);
                }
            }
        }
        Err(StreamError::new(
            StreamErrorKind::Transient,
            format!("mirror publish for {sid} kept conflicting"),
        ))
    }

    /// A permanent failure, with the reason and the original message, for operators. Its
    /// message id is one per stage, source, version and kind ([`dead_letter_id`]); the consume
    /// loop uses [`Publisher::dead_letter_with_id`] with one per stream message.
    pub async fn dead_letter(&self, dl: &DeadLetter) -> Result<(), StreamError> {
        let sid = Self::dead_letter_source(dl);
        self.dead_letter_with_id(dl, &dead_letter_id(dl, &sid))
            .await
    }

    /// [`Publisher::dead_letter`] with message id `msg_id` (deduplicated within the stream's
    /// duplicate window, so a retried dead letter is stored once).
    pub async fn dead_letter_with_id(
        &self,
        dl: &DeadLetter,
        msg_id: &str,
    ) -> Result<(), StreamError> {
        let sid = Self::dead_letter_source(dl);
        let msg = PublishMessage::build()
            .payload(dl.encode_to_vec().into())
            .message_id(msg_id)
            .header(Header::SourceId.as_str(), sid.as_str())
            .header(Header::ErrorKind.as_str(), dl.error_kind.as_str());
        self.send(subjects::dead_letter(&dl.stage, &sid), msg)
            .await
            .map(drop)
            .map_err(|e| StreamError::write("cannot publish dead letter", e))
    }

    /// An undecodable message has no SourceRef, but its subject still names the source.
    fn dead_letter_source(dl: &DeadLetter) -> String {
        match &dl.source {
            Some(s) if !s.source_id.is_empty() => s.source_id.clone(),
            _ => subjects::source_id_of(&dl.original_subject).to_string(),
        }
    }
}
