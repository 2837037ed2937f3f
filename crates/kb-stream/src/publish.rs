//! Publishing for every stage. Each message carries `Nats-Msg-Id` (`<stage>:<source>:<version>`)
//! so a publisher that retries after a crash cannot duplicate it, plus the source id and version
//! as headers. The mirror stream additionally enforces last-writer-wins at publish time, so it
//! stays an exact compacted changelog even when parallel embedders finish out of order.

use crate::blob::Blobs;
use crate::error::{StreamError, StreamErrorKind};
use crate::subjects::{self, HEADER_KIND, HEADER_SOURCE_ID, HEADER_VERSION};
use crate::topology::Topology;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use kb_proto::{
    mirror_event::Kind, DeadLetter, Message, MirrorEvent, ParsedDocument, ParsedEvent, SourceEvent,
    SourceRef,
};

/// What happened to a mirror publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MirrorPublish {
    Published,
    /// The mirror already holds this or a newer version of the source; nothing was published.
    Superseded {
        current: u64,
    },
}

#[derive(Clone)]
pub struct Publisher {
    topo: Topology,
    blobs: Blobs,
}

struct Head {
    sequence: u64,
    version: u64,
    body: Option<kb_proto::Blob>,
}

impl Publisher {
    pub fn new(topo: &Topology, inline_max: usize) -> Self {
        Self {
            topo: topo.clone(),
            blobs: Blobs::new(topo.blobs.clone(), inline_max),
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
            .header(HEADER_SOURCE_ID, source.source_id.as_str())
            .header(HEADER_VERSION, source.version.to_string().as_str())
            .header(HEADER_KIND, kind)
    }

    async fn send(
        &self,
        subject: String,
        msg: PublishMessage,
    ) -> Result<(), async_nats::jetstream::context::PublishError> {
        self.topo.js.send_publish(subject, msg).await?.await?;
        Ok(())
    }

    /// watcher -> parser: the raw bytes of one version of a source.
    pub async fn source(&self, source: &SourceRef, bytes: Vec<u8>) -> Result<(), StreamError> {
        let name = format!("source/{}/{}", source.source_id, source.version);
        let body = self.blobs.wrap(&name, bytes).await?;
        let ev = SourceEvent {
            source: Some(source.clone()),
            body: Some(body),
        };
        let msg = Self::message(ev.encode_to_vec(), "source", source, "upsert");
        self.send(subjects::source(&source.source_id), msg)
            .await
            .map_err(|e| StreamError::transient("cannot publish source event", e))
    }

    /// parser -> embedder.
    pub async fn parsed(&self, doc: &ParsedDocument) -> Result<(), StreamError> {
        let source = doc.source.clone().unwrap_or_default();
        let name = format!("parsed/{}/{}", source.source_id, source.version);
        let body = self.blobs.wrap(&name, doc.encode_to_vec()).await?;
        let ev = ParsedEvent {
            source: Some(source.clone()),
            body: Some(body),
        };
        let msg = Self::message(ev.encode_to_vec(), "parsed", &source, "upsert");
        self.send(subjects::parsed(&source.source_id), msg)
            .await
            .map_err(|e| StreamError::transient("cannot publish parsed document", e))
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
                    .get(HEADER_VERSION)
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

    /// Publishes the new state of a source to the mirror stream unless it already holds a newer
    /// version. Optimistic concurrency on the subject's last sequence makes the check and the
    /// publish one atomic step, so an older version can never overwrite a newer one.
    pub async fn mirror(
        &self,
        source: &SourceRef,
        kind: Kind,
        doc: Option<&ParsedDocument>,
        error: &str,
    ) -> Result<MirrorPublish, StreamError> {
        let sid = source.source_id.as_str();
        let mut head = self.mirror_head(sid).await?;
        if let Some(h) = &head {
            if h.version >= source.version {
                return Ok(MirrorPublish::Superseded { current: h.version });
            }
        }
        let body = match doc {
            Some(d) => Some(
                self.blobs
                    .wrap(
                        &format!("mirror/{sid}/{}", source.version),
                        d.encode_to_vec(),
                    )
                    .await?,
            ),
            None => None,
        };
        let ev = MirrorEvent {
            source: Some(source.clone()),
            kind: kind as i32,
            body: body.clone(),
            error: error.to_string(),
        };
        let payload = ev.encode_to_vec();
        let kind_name = kind.as_str_name().to_ascii_lowercase();
        for _ in 0..16 {
            let expected = head.as_ref().map(|h| h.sequence).unwrap_or(0);
            let msg = Self::message(payload.clone(), "mirror", source, &kind_name)
                .expected_last_subject_sequence(expected);
            match self.send(subjects::mirror(sid), msg).await {
                Ok(()) => {
                    // The previous state's stored body is no longer the log's record.
                    if let Some(old) = head {
                        self.blobs.discard(old.body.as_ref()).await;
                    }
                    return Ok(MirrorPublish::Published);
                }
                Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {
                    // Someone published in between: look again.
                    head = self.mirror_head(sid).await?;
                    if let Some(h) = &head {
                        if h.version >= source.version {
                            self.blobs.discard(body.as_ref()).await;
                            return Ok(MirrorPublish::Superseded { current: h.version });
                        }
                    }
                }
                Err(e) => {
                    return Err(StreamError::transient(
                        "cannot publish to the mirror stream",
                        e,
                    ));
                }
            }
        }
        Err(StreamError::new(
            StreamErrorKind::Transient,
            format!("mirror publish for {sid} kept conflicting"),
        ))
    }

    /// A permanent failure, with the reason and the original message, for operators.
    pub async fn dead_letter(&self, dl: &DeadLetter) -> Result<(), StreamError> {
        // An undecodable message has no SourceRef, but its subject still names the source.
        let sid = match &dl.source {
            Some(s) if !s.source_id.is_empty() => s.source_id.clone(),
            _ => subjects::source_id_of(&dl.original_subject).to_string(),
        };
        let msg = PublishMessage::build()
            .payload(dl.encode_to_vec().into())
            .header(HEADER_SOURCE_ID, sid.as_str())
            .header("Kb-Error-Kind", dl.error_kind.as_str());
        self.send(subjects::dead_letter(&dl.stage, &sid), msg)
            .await
            .map_err(|e| StreamError::transient("cannot publish dead letter", e))
    }
}
