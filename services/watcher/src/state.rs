//! What the watcher knows about each file, in the JetStream KV bucket `kb_watch` (key
//! `<origin name>.<source_id>`), so any watcher process, after any crash, picks up where the last
//! one stopped. Every write is a compare-and-set on the entry's revision: two writers can never
//! both reserve the same version.

use crate::error::WatchError;
use crate::json_kv::{self, Entry};
use async_nats::jetstream::kv;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

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
    /// `version` is reserved for this state (content, failure or deletion) but its publish is
    /// not confirmed: the next scan publishes it again under the same version if nothing
    /// changed, or else takes the version after it. A version is reserved here before anything
    /// is published under it, so it can never name two contents.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pending: bool,
}

/// An entry and the revision a compare-and-set must name.
#[derive(Debug, Clone)]
pub struct Stored {
    pub state: FileState,
    pub revision: u64,
}

impl From<Entry<FileState>> for Stored {
    fn from(e: Entry<FileState>) -> Self {
        Self {
            state: e.value,
            revision: e.revision,
        }
    }
}

/// The entries of one origin name in `kb_watch`.
#[derive(Clone)]
pub struct WatchState {
    kv: kv::Store,
    name: String,
}

/// How errors name these entries.
const WHAT: &str = "watcher state";

impl WatchState {
    pub fn new(kv: kv::Store, name: &str) -> Self {
        Self {
            kv,
            name: name.to_string(),
        }
    }

    /// The bucket (`kb_watch`), for entries beside the state ([`crate::hold`]).
    pub(crate) fn kv(&self) -> &kv::Store {
        &self.kv
    }

    fn key(&self, source_id: &str) -> String {
        format!("{}.{source_id}", self.name)
    }

    /// The current entry of one source, if any.
    pub async fn get(&self, source_id: &str) -> Result<Option<Stored>, WatchError> {
        let entry = json_kv::get(&self.kv, WHAT, self.key(source_id)).await?;
        Ok(entry.map(Stored::from))
    }

    /// Every entry of this origin name, by source id, in one pass over the bucket.
    pub async fn all(&self) -> Result<HashMap<String, Stored>, WatchError> {
        let entries = json_kv::all(&self.kv, WHAT, &format!("{}.", self.name)).await?;
        Ok(entries
            .into_iter()
            .map(|(sid, e)| (sid, e.into()))
            .collect())
    }

    /// Writes `state` if the entry is still at `expected` (`None`: must not exist yet).
    /// Returns the new revision; a lost race is a `Conflict`.
    pub async fn put(
        &self,
        source_id: &str,
        state: &FileState,
        expected: Option<u64>,
    ) -> Result<u64, WatchError> {
        json_kv::put_cas(&self.kv, WHAT, &self.key(source_id), state, expected).await
    }
}
