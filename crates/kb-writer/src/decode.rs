//! Mirror events off the wire: decoded and validated, with their body fetched.

use kb_proto::{mirror_event::Kind, Message, MirrorEvent, ParsedDocument, SourceRef};
use kb_store::Change;
use kb_stream::{Blobs, StreamError, StreamErrorKind};

/// A mirror event off the wire, validated, with its body fetched: what the [`Change`] handed
/// to the store borrows from. There is one change type from the stream to the stores,
/// [`Change`]; this only owns its data.
#[derive(Debug, Clone)]
pub struct Decoded {
    source: SourceRef,
    /// The document of an upsert (its `source` set from the envelope).
    doc: Option<ParsedDocument>,
    deleted: bool,
    /// The reason of a failure.
    error: String,
}

impl Decoded {
    /// The change to apply.
    pub fn change(&self) -> Change<'_> {
        match &self.doc {
            Some(doc) => Change::Upsert(doc),
            None if self.deleted => Change::Delete(&self.source),
            None => Change::Failed(&self.source, &self.error),
        }
    }

    /// The source and version the envelope names (authoritative).
    pub fn source(&self) -> &SourceRef {
        &self.source
    }

    /// The failure reason of a `FAILED` event.
    pub fn failure(&self) -> Option<&str> {
        (self.doc.is_none() && !self.deleted).then_some(self.error.as_str())
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

pub async fn decode_mirror_event(payload: &[u8], blobs: &Blobs) -> Result<Decoded, StreamError> {
    let ev = MirrorEvent::decode(payload)
        .map_err(|e| StreamError::decode("undecodable mirror event", e))?;
    let source = ev
        .source
        .ok_or_else(|| invalid("mirror event without source"))?;
    if source.source_id.is_empty() || source.version == 0 {
        return Err(invalid("mirror event without source id or version"));
    }
    let decoded = |doc, deleted, error| Decoded {
        source: source.clone(),
        doc,
        deleted,
        error,
    };
    match Kind::try_from(ev.kind).unwrap_or(Kind::Unspecified) {
        Kind::Upsert => {
            let body = ev.body.ok_or_else(|| invalid("upsert without body"))?;
            let bytes = blobs.fetch(&body).await?;
            let mut doc = ParsedDocument::decode(bytes.as_slice())
                .map_err(|e| StreamError::decode("undecodable document body", e))?;
            // The envelope is authoritative for identity and version.
            doc.source = Some(source.clone());
            Ok(decoded(Some(doc), false, String::new()))
        }
        Kind::Delete => Ok(decoded(None, true, String::new())),
        Kind::Failed => Ok(decoded(None, false, ev.error)),
        Kind::Unspecified => Err(invalid(format!("unknown mirror event kind {}", ev.kind))),
    }
}
