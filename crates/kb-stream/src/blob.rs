//! Message bodies of any size: small ones inline, large ones in the JetStream object store,
//! so no document size can exceed the broker's message limit.
//!
//! A stored body is named per attempt, `<kind>/<source_id>/<version>/<nonce>` ([`object_name`]):
//! two publishers of one version (a redelivery while the first still works, a duplicate parse)
//! never overwrite each other's body, so a message always finds the bytes it was published
//! with. A body is deleted only when provably unreferenced (see `Publisher` and the consume
//! loop); whatever is left behind is collected by [`crate::gc`].

use crate::error::{StreamError, StreamErrorKind};
use async_nats::jetstream::object_store::{self, ObjectStore};
use kb_proto::{blob::Location, Blob};
use tokio::io::AsyncReadExt;

#[derive(Clone)]
pub struct Blobs {
    store: ObjectStore,
    inline_max: usize,
}

/// A fresh object name for one attempt at publishing `kind` (`source`, `parsed`, `mirror`) of
/// a source's version: 64 random bits make it unique to this attempt.
pub fn object_name(kind: &str, source_id: &str, version: u64) -> String {
    format!(
        "{kind}/{source_id}/{version}/{:016x}",
        rand::random::<u64>()
    )
}

/// What an object name says. Names written before per-attempt names (`<kind>/<id>/<version>`)
/// have no nonce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectName<'a> {
    pub kind: &'a str,
    pub source_id: &'a str,
    pub version: u64,
    pub nonce: Option<&'a str>,
}

impl<'a> ObjectName<'a> {
    /// `None` for a name the pipeline did not make.
    pub fn parse(name: &'a str) -> Option<Self> {
        let mut parts = name.split('/');
        let kind = parts.next().filter(|k| !k.is_empty())?;
        let source_id = parts.next().filter(|s| !s.is_empty())?;
        let version = parts.next()?.parse().ok()?;
        let nonce = parts.next();
        if parts.next().is_some() || nonce.is_some_and(str::is_empty) {
            return None;
        }
        Some(Self {
            kind,
            source_id,
            version,
            nonce,
        })
    }
}

/// The object a body lives in, `None` when it is inline (or absent).
pub fn stored_name(blob: Option<&Blob>) -> Option<&str> {
    match blob?.location.as_ref()? {
        Location::Object(name) => Some(name),
        Location::Inline(_) => None,
    }
}

impl Blobs {
    pub fn new(store: ObjectStore, inline_max: usize) -> Self {
        Self { store, inline_max }
    }

    pub fn store(&self) -> &ObjectStore {
        &self.store
    }

    /// Bodies up to this size travel inline.
    pub fn inline_max(&self) -> usize {
        self.inline_max
    }

    /// Inline when small, otherwise stored under `name`, which must be new: an existing object
    /// of that name is replaced (use [`Blobs::wrap_new`] for bodies of messages).
    pub async fn wrap(&self, name: &str, bytes: Vec<u8>) -> Result<Blob, StreamError> {
        let size = bytes.len() as u64;
        if bytes.len() <= self.inline_max {
            return Ok(Blob {
                location: Some(Location::Inline(bytes)),
                size,
            });
        }
        self.store
            .put(name, &mut bytes.as_slice())
            .await
            .map_err(|e| StreamError::write(format!("cannot store object {name}"), e))?;
        Ok(Blob {
            location: Some(Location::Object(name.to_string())),
            size,
        })
    }

    /// [`Blobs::wrap`] under a fresh per-attempt name ([`object_name`]).
    pub async fn wrap_new(
        &self,
        kind: &str,
        source_id: &str,
        version: u64,
        bytes: Vec<u8>,
    ) -> Result<Blob, StreamError> {
        if bytes.len() <= self.inline_max {
            return self.wrap("", bytes).await;
        }
        self.wrap(&object_name(kind, source_id, version), bytes)
            .await
    }

    /// The body's bytes. A stored object that is gone yields `NotFound`.
    pub async fn fetch(&self, blob: &Blob) -> Result<Vec<u8>, StreamError> {
        match &blob.location {
            Some(Location::Inline(bytes)) => Ok(bytes.clone()),
            Some(Location::Object(name)) => {
                let mut object = self.store.get(name).await.map_err(|e| match e.kind() {
                    object_store::GetErrorKind::NotFound => StreamError::with(
                        StreamErrorKind::NotFound,
                        format!("object {name} is gone"),
                        e,
                    ),
                    _ => StreamError::transient(format!("cannot read object {name}"), e),
                })?;
                let mut out = Vec::with_capacity(blob.size as usize);
                object
                    .read_to_end(&mut out)
                    .await
                    .map_err(|e| StreamError::transient(format!("cannot read object {name}"), e))?;
                Ok(out)
            }
            None => Err(StreamError::new(
                StreamErrorKind::Decode,
                "message has no body",
            )),
        }
    }

    /// Deletes a stored body once nothing needs it; inline bodies need nothing. Best effort:
    /// a leftover object wastes space until the GC collects it, but breaks nothing.
    pub async fn discard(&self, blob: Option<&Blob>) {
        if let Some(name) = stored_name(blob) {
            self.discard_name(name).await;
        }
    }

    /// [`Blobs::discard`] by object name.
    pub async fn discard_name(&self, name: &str) {
        if let Err(e) = self.store.delete(name).await {
            tracing::debug!(object = %name, error = %e, "could not delete object");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_per_attempt_and_parse_back() {
        let a = object_name("mirror", "abc", 7);
        let b = object_name("mirror", "abc", 7);
        assert_ne!(a, b, "two attempts never share a name");
        let parsed = ObjectName::parse(&a);
        assert_eq!(parsed.as_ref().map(|n| n.kind), Some("mirror"));
        assert_eq!(parsed.as_ref().map(|n| n.source_id), Some("abc"));
        assert_eq!(parsed.as_ref().map(|n| n.version), Some(7));
        assert_eq!(parsed.and_then(|n| n.nonce).map(str::len), Some(16));
        let old = ObjectName::parse("source/abc/3");
        assert_eq!(old.as_ref().map(|n| n.version), Some(3));
        assert_eq!(old.and_then(|n| n.nonce), None);
        for bad in [
            "",
            "source",
            "source/abc",
            "source/abc/x",
            "a/b/1/n/extra",
            "a/b/1/",
        ] {
            assert_eq!(ObjectName::parse(bad), None, "{bad}");
        }
    }
}
