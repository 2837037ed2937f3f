//! Message bodies of any size: small ones inline, large ones in the JetStream object store,
//! so no document size can exceed the broker's message limit.

use crate::error::{StreamError, StreamErrorKind};
use async_nats::jetstream::object_store::{self, ObjectStore};
use kb_proto::{blob::Location, Blob};
use tokio::io::AsyncReadExt;

#[derive(Clone)]
pub struct Blobs {
    store: ObjectStore,
    inline_max: usize,
}

impl Blobs {
    pub fn new(store: ObjectStore, inline_max: usize) -> Self {
        Self { store, inline_max }
    }

    /// Inline when small, otherwise stored under `name` (which must be unique per version).
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
            .map_err(|e| StreamError::transient(format!("cannot store object {name}"), e))?;
        Ok(Blob {
            location: Some(Location::Object(name.to_string())),
            size,
        })
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
    /// a leftover object wastes space but breaks nothing.
    pub async fn discard(&self, blob: Option<&Blob>) {
        if let Some(Blob {
            location: Some(Location::Object(name)),
            ..
        }) = blob
        {
            if let Err(e) = self.store.delete(name).await {
                tracing::debug!(object = %name, error = %e, "could not delete object");
            }
        }
    }
}
