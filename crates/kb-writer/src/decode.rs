//! Mirror events off the wire: decoded and validated, with their body fetched.

use kb_proto::{mirror_event::Kind, Message, MirrorEvent, ParsedDocument, SourceRef};
use kb_stream::{Blobs, StreamError, StreamErrorKind};

/// A mirror event ready to apply.
#[derive(Debug, Clone)]
pub enum MirrorChange {
    Upsert(ParsedDocument),
    Delete(SourceRef),
    Failed(SourceRef, String),
}

impl MirrorChange {
    pub fn source(&self) -> &SourceRef {
        static EMPTY: std::sync::OnceLock<SourceRef> = std::sync::OnceLock::new();
        match self {
            MirrorChange::Upsert(doc) => doc
                .source
                .as_ref()
                .unwrap_or_else(|| EMPTY.get_or_init(SourceRef::default)),
            MirrorChange::Delete(s) | MirrorChange::Failed(s, _) => s,
        }
    }
}

fn invalid(msg: impl Into<String>) -> StreamError {
    StreamError::new(StreamErrorKind::Decode, msg)
}

/// The source an event's envelope names, even when its body cannot be read: dead letters and
/// staleness checks need it.
pub fn source_of(payload: &[u8]) -> Option<SourceRef> {
    MirrorEvent::decode(payload).ok().and_then(|e| e.source)
}

/// The version an undecodable-body message claims, for staleness checks; 0 if none.
pub fn version_of(payload: &[u8]) -> u64 {
    source_of(payload).map(|s| s.version).unwrap_or(0)
}

pub async fn decode_mirror_event(
    payload: &[u8],
    blobs: &Blobs,
) -> Result<MirrorChange, StreamError> {
    let ev = MirrorEvent::decode(payload)
        .map_err(|e| StreamError::decode("undecodable mirror event", e))?;
    let source = ev
        .source
        .ok_or_else(|| invalid("mirror event without source"))?;
    if source.source_id.is_empty() || source.version == 0 {
        return Err(invalid("mirror event without source id or version"));
    }
    match Kind::try_from(ev.kind).unwrap_or(Kind::Unspecified) {
        Kind::Upsert => {
            let body = ev.body.ok_or_else(|| invalid("upsert without body"))?;
            let bytes = blobs.fetch(&body).await?;
            let mut doc = ParsedDocument::decode(bytes.as_slice())
                .map_err(|e| StreamError::decode("undecodable document body", e))?;
            // The envelope is authoritative for identity and version.
            doc.source = Some(source);
            Ok(MirrorChange::Upsert(doc))
        }
        Kind::Delete => Ok(MirrorChange::Delete(source)),
        Kind::Failed => Ok(MirrorChange::Failed(source, ev.error)),
        Kind::Unspecified => Err(invalid(format!("unknown mirror event kind {}", ev.kind))),
    }
}
