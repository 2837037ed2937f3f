//! How a stage takes in one event: the one decode path of the three event types (source,
//! parsed, mirror), checked for a source id and version, skipped when the mirror has already
//! moved past that version, and its body fetched.

use crate::blob::Blobs;
use crate::consume::{Delivery, Done, HandlerError};
use crate::error::{StreamError, StreamErrorKind};
use crate::publish::Publisher;
use crate::wire::{DeadLetterKind, OutcomeLabel};
use kb_proto::{
    mirror_event::Kind, Blob, Message, MirrorEvent, ParsedDocument, ParsedEvent, SourceEvent,
    SourceRef,
};
use kb_store::Change;
use std::future::Future;

/// An event of the pipeline: one version of a source, and its body.
pub trait StageEvent: Message + Default {
    /// What errors call it, e.g. "source event".
    const NAME: &'static str;
    fn source(&self) -> Option<&SourceRef>;
    fn into_parts(self) -> (Option<SourceRef>, Option<Blob>);
}

impl StageEvent for SourceEvent {
    const NAME: &'static str = "source event";
    fn source(&self) -> Option<&SourceRef> {
        self.source.as_ref()
    }
    fn into_parts(self) -> (Option<SourceRef>, Option<Blob>) {
        (self.source, self.body)
    }
}

impl StageEvent for ParsedEvent {
    const NAME: &'static str = "parsed event";
    fn source(&self) -> Option<&SourceRef> {
        self.source.as_ref()
    }
    fn into_parts(self) -> (Option<SourceRef>, Option<Blob>) {
        (self.source, self.body)
    }
}

impl StageEvent for MirrorEvent {
    const NAME: &'static str = "mirror event";
    fn source(&self) -> Option<&SourceRef> {
        self.source.as_ref()
    }
    fn into_parts(self) -> (Option<SourceRef>, Option<Blob>) {
        (self.source, self.body)
    }
}

fn invalid(message: String) -> StreamError {
    StreamError::new(StreamErrorKind::Decode, message)
}

/// Decodes `payload` as an `E` that names a source and a version; anything else is a `Decode`
/// error.
pub fn decode<E: StageEvent>(payload: &[u8]) -> Result<E, StreamError> {
    let name = E::NAME;
    let ev = E::decode(payload).map_err(|e| invalid(format!("undecodable {name}: {e}")))?;
    match ev.source() {
        Some(s) if !s.source_id.is_empty() && s.version > 0 => Ok(ev),
        _ => Err(invalid(format!("{name} without source id or version"))),
    }
}

/// The source a message on any pipeline subject names, decoded by the subject's stage;
/// `None` when it does not decode (or names none).
pub fn source_of(subject: &str, payload: &[u8]) -> Option<SourceRef> {
    let source = match subject.split('.').nth(2)? {
        "source" => SourceEvent::decode(payload).ok()?.source,
        "parsed" => ParsedEvent::decode(payload).ok()?.source,
        "mirror" => MirrorEvent::decode(payload).ok()?.source,
        _ => None,
    }?;
    (!source.source_id.is_empty()).then_some(source)
}

/// The body a message on any pipeline subject refers to, if it decodes and has one.
pub fn body_of(subject: &str, payload: &[u8]) -> Option<Blob> {
    match subject.split('.').nth(2)? {
        "source" => SourceEvent::decode(payload).ok()?.body,
        "parsed" => ParsedEvent::decode(payload).ok()?.body,
        "mirror" => MirrorEvent::decode(payload).ok()?.body,
        _ => None,
    }
}

/// A mirror event ready to apply, owning what a [`Change`] borrows.
#[derive(Debug, Clone, PartialEq)]
pub enum MirrorUpdate {
    Upsert(ParsedDocument),
    Delete(SourceRef),
    Failed(SourceRef, String),
}

impl MirrorUpdate {
    /// The change to apply to a store.
    pub fn change(&self) -> Change<'_> {
        match self {
            MirrorUpdate::Upsert(doc) => Change::Upsert(doc),
            MirrorUpdate::Delete(s) => Change::Delete(s),
            MirrorUpdate::Failed(s, reason) => Change::Failed(s, reason),
        }
    }

    pub fn source(&self) -> Option<&SourceRef> {
        match self {
            MirrorUpdate::Upsert(doc) => doc.source.as_ref(),
            MirrorUpdate::Delete(s) | MirrorUpdate::Failed(s, _) => Some(s),
        }
    }

    /// The reason of a failure.
    pub fn failure(&self) -> Option<&str> {
        match self {
            MirrorUpdate::Failed(_, reason) => Some(reason),
            _ => None,
        }
    }
}

/// A mirror event off the wire: decoded, validated, its body fetched (`NotFound` when the
/// body is gone). The envelope is authoritative for the source and version.
pub async fn decode_mirror(payload: &[u8], blobs: &Blobs) -> Result<MirrorUpdate, StreamError> {
    let ev = decode::<MirrorEvent>(payload)?;
    let kind = Kind::try_from(ev.kind).unwrap_or(Kind::Unspecified);
    let (source, body) = (ev.source.unwrap_or_default(), ev.body);
    match kind {
        Kind::Upsert => {
            let body = body.ok_or_else(|| invalid("upsert without body".into()))?;
            let bytes = blobs.fetch(&body).await?;
            let mut doc = ParsedDocument::decode(bytes.as_slice())
                .map_err(|e| StreamError::decode("undecodable document body", e))?;
            doc.source = Some(source);
            Ok(MirrorUpdate::Upsert(doc))
        }
        Kind::Delete => Ok(MirrorUpdate::Delete(source)),
        Kind::Failed => Ok(MirrorUpdate::Failed(source, ev.error)),
        Kind::Unspecified => Err(invalid(format!("unknown mirror event kind {}", ev.kind))),
    }
}

/// A version still worth working on.
pub struct Input {
    pub source: SourceRef,
    /// To discard once the stage's output is published and the message acked
    /// ([`Done::discarding`]).
    pub body: Blob,
    pub bytes: Vec<u8>,
}

/// What [`on_fresh`] returns: a handler's result.
pub trait Fresh {
    /// The mirror is already past `source`'s version: nothing to do. The input's body goes
    /// after the ack ([`Done`]).
    fn superseded(source: &SourceRef, body: Option<Blob>) -> Self;
    fn failed(e: HandlerError) -> Self;
}

impl Fresh for Result<Done, HandlerError> {
    fn superseded(source: &SourceRef, body: Option<Blob>) -> Self {
        Ok(Done::new(OutcomeLabel::SUPERSEDED, source.version).discarding(body))
    }
    fn failed(e: HandlerError) -> Self {
        Err(e)
    }
}

/// Runs `work` on `d` decoded as an `E`, with its body, unless the mirror is already past its
/// version: then the outcome is "superseded" and nothing is done. Malformed events are
/// permanent `decode` failures; a failed body fetch names the source. No body is deleted here:
/// that is the loop's, after the ack.
pub async fn on_fresh<E, F>(
    publisher: &Publisher,
    d: &Delivery,
    work: impl FnOnce(Input) -> F,
) -> F::Output
where
    E: StageEvent,
    F: Future,
    F::Output: Fresh,
{
    let name = E::NAME;
    let (source, body) = match decode::<E>(d.payload.as_ref()) {
        Ok(ev) => ev.into_parts(),
        Err(e) => return F::Output::failed(HandlerError::from(e)),
    };
    let Some(source) = source else {
        return F::Output::failed(HandlerError::permanent(
            DeadLetterKind::Decode,
            format!("{name} without source"),
        ));
    };
    // Skip work the mirror has already moved past (e.g. the file was deleted meanwhile).
    match publisher.mirror_version(&source.source_id).await {
        Ok(v) if v >= source.version => return F::Output::superseded(&source, body),
        Ok(_) => {}
        Err(e) => return F::Output::failed(HandlerError::from(e)),
    }
    let Some(body) = body else {
        return F::Output::failed(
            HandlerError::permanent(DeadLetterKind::Decode, format!("{name} without body"))
                .with_source(Some(&source)),
        );
    };
    let bytes = match publisher.blobs().fetch(&body).await {
        Ok(b) => b,
        Err(e) => return F::Output::failed(HandlerError::from(e).with_source(Some(&source))),
    };
    work(Input {
        source,
        body,
        bytes,
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_subject_names_its_source() {
        let src = SourceRef {
            source_id: "abc".into(),
            version: 3,
            ..Default::default()
        };
        let body = Blob {
            location: Some(kb_proto::blob::Location::Object("source/abc/3/00".into())),
            size: 9,
        };
        let source_ev = SourceEvent {
            source: Some(src.clone()),
            body: Some(body.clone()),
        }
        .encode_to_vec();
        let mirror_ev = MirrorEvent {
            source: Some(src.clone()),
            kind: Kind::Failed as i32,
            body: None,
            error: "x".into(),
        }
        .encode_to_vec();
        assert_eq!(source_of("kb.v1.source.abc", &source_ev), Some(src.clone()));
        assert_eq!(body_of("kb.v1.source.abc", &source_ev), Some(body));
        assert_eq!(source_of("kb.v1.mirror.abc", &mirror_ev), Some(src));
        assert_eq!(source_of("kb.v1.mirror.abc", b"\xff\xff"), None);
        assert_eq!(source_of("other", &source_ev), None);
        assert!(decode::<SourceEvent>(&SourceEvent::default().encode_to_vec()).is_err());
    }
}
