//! How a transforming stage (parser, embedder) takes in one event: decoded, checked for a
//! source id and version, skipped when the mirror has already moved past that version, and its
//! body fetched. Both stages start the same way, so they share this.

use crate::consume::{Delivery, HandlerError, Outcome};
use crate::publish::Publisher;
use kb_proto::{Blob, Message, ParsedEvent, SourceEvent, SourceRef};
use std::future::Future;

/// An event a stage consumes: one version of a source and its body.
pub trait StageEvent: Message + Default {
    /// What errors call it, e.g. "source event".
    const NAME: &'static str;
    fn into_parts(self) -> (Option<SourceRef>, Option<Blob>);
}

impl StageEvent for SourceEvent {
    const NAME: &'static str = "source event";
    fn into_parts(self) -> (Option<SourceRef>, Option<Blob>) {
        (self.source, self.body)
    }
}

impl StageEvent for ParsedEvent {
    const NAME: &'static str = "parsed event";
    fn into_parts(self) -> (Option<SourceRef>, Option<Blob>) {
        (self.source, self.body)
    }
}

/// A version still worth working on.
pub struct Input {
    pub source: SourceRef,
    /// To discard once the stage's output is published.
    pub body: Blob,
    pub bytes: Vec<u8>,
}

/// Runs `work` on `d` decoded as an `E`, with its body, unless the mirror is already past its
/// version: then the outcome is "superseded" and nothing is done. Malformed events are
/// permanent `decode` failures; a failed body fetch names the source.
pub async fn on_fresh<E, F>(
    publisher: &Publisher,
    d: &Delivery,
    work: impl FnOnce(Input) -> F,
) -> Result<Outcome, HandlerError>
where
    E: StageEvent,
    F: Future<Output = Result<Outcome, HandlerError>>,
{
    let name = E::NAME;
    let (source, body) = E::decode(d.payload.as_ref())
        .map_err(|e| HandlerError::permanent("decode", format!("undecodable {name}: {e}")))?
        .into_parts();
    let source = source
        .filter(|s| !s.source_id.is_empty() && s.version > 0)
        .ok_or_else(|| {
            HandlerError::permanent("decode", format!("{name} without source id or version"))
        })?;
    let version = source.version;
    // Skip work the mirror has already moved past (e.g. the file was deleted meanwhile).
    if publisher.mirror_version(&source.source_id).await? >= version {
        publisher.blobs().discard(body.as_ref()).await;
        return Ok(Outcome {
            label: "superseded",
            version,
        });
    }
    let body =
        body.ok_or_else(|| HandlerError::permanent("decode", format!("{name} without body")))?;
    let bytes = publisher
        .blobs()
        .fetch(&body)
        .await
        .map_err(|e| HandlerError::from(e).with_source(Some(&source)))?;
    work(Input {
        source,
        body,
        bytes,
    })
    .await
}
