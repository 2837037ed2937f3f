//! What the watcher knows about each file, in the JetStream KV bucket `kb_watch` (key
//! `<origin name>.<source_id>`), so any watcher process, after any crash, picks up where the last
//! one stopped. Every write is a compare-and-set on the entry's revision: two writers can never
//! both record the same version.

use crate::error::{WatchError, WatchErrorKind};
use async_nats::jetstream::consumer::{pull, DeliverPolicy};
use async_nats::jetstream::kv::{self, CreateErrorKind, Operation, UpdateErrorKind};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;

/// The JSON value of one entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileState {
    /// Relative to the watched folder, '/' separated.
    pub path: String,
    /// sha256 hex of the content last published; empty when the file was not read (too large).
    pub content_hash: String,
    /// The last version assigned to this source (upsert, failure or tombstone).
    pub version: u64,
    pub size: u64,
    pub modified_unix_ms: i64,
    pub deleted: bool,
    /// Set when the file was read within the file system's timestamp granularity of its last
    /// change: a same-size rewrite in that window keeps size and mtime, so the next scan must
    /// hash it again instead of trusting them (git's "racily clean" problem).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub recheck: bool,
}

/// An entry and the revision a compare-and-set must name.
#[derive(Debug, Clone)]
pub struct Stored {
    pub state: FileState,
    pub revision: u64,
}

/// The entries of one origin name in `kb_watch`.
#[derive(Clone)]
pub struct WatchState {
    kv: kv::Store,
    name: String,
}

/// How long one message of a full listing may take before the broker counts as unavailable.
const LIST_TIMEOUT: Duration = Duration::from_secs(15);

pub(crate) fn transient(
    what: &str,
    e: impl std::error::Error + Send + Sync + 'static,
) -> WatchError {
    WatchError::with(WatchErrorKind::Transient, what.to_string(), e)
}

fn decode(key: &str, bytes: &[u8]) -> Result<FileState, WatchError> {
    serde_json::from_slice(bytes).map_err(|e| {
        WatchError::with(
            WatchErrorKind::Corrupt,
            format!("undecodable watcher state under {key}"),
            e,
        )
    })
}

impl WatchState {
    pub fn new(kv: kv::Store, name: &str) -> Self {
        Self {
            kv,
            name: name.to_string(),
        }
    }

    fn key(&self, source_id: &str) -> String {
        format!("{}.{source_id}", self.name)
    }

    /// The current entry of one source, if any.
    pub async fn get(&self, source_id: &str) -> Result<Option<Stored>, WatchError> {
        let key = self.key(source_id);
        let entry = self
            .kv
            .entry(key.clone())
            .await
            .map_err(|e| transient("cannot read watcher state", e))?;
        match entry {
            Some(e) if e.operation == Operation::Put => Ok(Some(Stored {
                state: decode(&key, &e.value)?,
                revision: e.revision,
            })),
            _ => Ok(None),
        }
    }

    /// Every entry of this origin name, by source id, in one pass over the bucket.
    pub async fn all(&self) -> Result<HashMap<String, Stored>, WatchError> {
        let mut out = HashMap::new();
        for (sid, payload, revision) in last_values(&self.kv, &format!("{}.", self.name)).await? {
            match decode(&sid, &payload) {
                Ok(state) => {
                    out.insert(sid, Stored { state, revision });
                }
                // Reported again, as a failure of that file, when it is looked up.
                Err(e) => tracing::warn!(error = %e, "skipping watcher state entry"),
            }
        }
        Ok(out)
    }

    /// Writes `state` if the entry is still at `expected` (`None`: must not exist yet).
    /// Returns the new revision; a lost race is a `Conflict`.
    pub async fn put(
        &self,
        source_id: &str,
        state: &FileState,
        expected: Option<u64>,
    ) -> Result<u64, WatchError> {
        let key = self.key(source_id);
        let bytes = serde_json::to_vec(state).map_err(|e| {
            WatchError::with(WatchErrorKind::Corrupt, "cannot encode watcher state", e)
        })?;
        match expected {
            None => self
                .kv
                .create(&key, bytes.into())
                .await
                .map_err(|e| match e.kind() {
                    CreateErrorKind::AlreadyExists => WatchError::new(
                        WatchErrorKind::Conflict,
                        format!("{key} was created concurrently"),
                    ),
                    _ => transient("cannot write watcher state", e),
                }),
            Some(rev) => {
                self.kv
                    .update(&key, bytes.into(), rev)
                    .await
                    .map_err(|e| match e.kind() {
                        UpdateErrorKind::WrongLastRevision => WatchError::new(
                            WatchErrorKind::Conflict,
                            format!("{key} changed concurrently"),
                        ),
                        _ => transient("cannot write watcher state", e),
                    })
            }
        }
    }
}

/// The live entries whose keys start with `key_prefix` in one pass over a bucket (a consumer
/// on the last value per key, not one request per key): (rest of the key, value, revision).
pub(crate) async fn last_values(
    kv: &kv::Store,
    key_prefix: &str,
) -> Result<Vec<(String, bytes::Bytes, u64)>, WatchError> {
    let subject_prefix = format!("{}{key_prefix}", kv.prefix);
    let consumer = kv
        .stream
        .create_consumer(pull::OrderedConfig {
            filter_subject: format!("{subject_prefix}>"),
            deliver_policy: DeliverPolicy::LastPerSubject,
            ..Default::default()
        })
        .await
        .map_err(|e| transient("cannot list watcher state", e))?;
    let mut out = Vec::new();
    if consumer.cached_info().num_pending == 0 {
        return Ok(out);
    }
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| transient("cannot list watcher state", e))?;
    loop {
        let msg = match tokio::time::timeout(LIST_TIMEOUT, messages.next()).await {
            Err(elapsed) => return Err(transient("listing watcher state timed out", elapsed)),
            Ok(None) => break,
            Ok(Some(Err(e))) => return Err(transient("cannot list watcher state", e)),
            Ok(Some(Ok(msg))) => msg,
        };
        let info = msg
            .info()
            .map_err(|e| WatchError::new(WatchErrorKind::Transient, e.to_string()))?;
        let (revision, pending) = (info.stream_sequence, info.pending);
        // Deletes and purges carry a KV-Operation header; values do not.
        let is_put = msg
            .headers
            .as_ref()
            .and_then(|h| h.get("KV-Operation"))
            .is_none();
        if let Some(rest) = msg.subject.as_str().strip_prefix(&subject_prefix) {
            if is_put {
                out.push((rest.to_string(), msg.payload.clone(), revision));
            }
        }
        if pending == 0 {
            break;
        }
    }
    Ok(out)
}
