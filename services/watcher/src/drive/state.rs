//! What the Drive source knows, in the JetStream KV bucket `kb_drive`, so a restarted (or
//! another) watcher resumes exactly where the last one stopped. Keys, for source name `<n>`:
//!
//! - `<n>.cursor`: the roots and the changes-feed page token to read next;
//! - `<n>.folder.<drive folder id>`: a folder in scope (name, parent), for paths and moves;
//! - `<n>.file.<source_id>`: one file's published state, and the version authority of its
//!   source: a version is reserved here (compare-and-set) before anything is published as it;
//! - `<n>.retry.<source_id>`: a file that failed for a reason that may pass (a refused or
//!   unauthorised download, a state that kept changing), retried at every sync.
//!
//! Cursor and file writes are compare-and-set on the entry's revision, so two watchers never
//! both record a version or both advance the feed. Folders are derived data (relisted when in
//! doubt) and retries are written by whoever failed last; both plainly.

use crate::error::{WatchError, WatchErrorKind};
pub use crate::json_kv::Entry;
use crate::json_kv::{self, transient};
use async_nats::jetstream::{self, kv};
use kb_drive::{File, Folder};
use kb_stream::topology::{bucket_config, upsert_bucket};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

pub const DRIVE_BUCKET: &str = "kb_drive";

/// Where the changes feed is read from next, for which roots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Sorted; a different set means a full listing first.
    pub roots: Vec<String>,
    pub page_token: String,
    /// When the last full listing began (ms since the epoch); the next is due `relist_secs`
    /// after it. 0 (a cursor written before relisting existed): due now.
    #[serde(default)]
    pub listed_unix_ms: i64,
}

/// One Drive file's published state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriveFileState {
    pub file_id: String,
    /// Relative to its root folder (with the export's extension for Workspace files).
    pub path: String,
    /// The folder in scope it was found in.
    pub parent: String,
    /// The media type published (the export type for Workspace files).
    pub media_type: String,
    /// md5 / head revision / modification time when last looked at (see `File::fingerprint`).
    pub fingerprint: String,
    pub modified_unix_ms: i64,
    /// sha256 hex of the content last published; empty when not read (a failure).
    pub content_hash: String,
    /// The last version assigned to this source (upsert, failure or tombstone), reserved before
    /// it was published.
    pub version: u64,
    pub size: u64,
    pub deleted: bool,
    /// Why the current version is a failure; kept so it is not retried until the file changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// `version` is reserved for the change this entry describes, which may or may not have
    /// been published (a stop in between): the change is published (again) as that version,
    /// or a different change as a later one; it never counts as done.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pending: bool,
}

impl DriveFileState {
    /// A tombstone recorded as published: nothing left to delete.
    pub fn is_gone(&self) -> bool {
        self.deleted && !self.pending
    }

    /// Recorded as published and not a tombstone: what is in Drive may be compared with it.
    pub fn is_live(&self) -> bool {
        !self.deleted && !self.pending
    }

    /// Whether `other` publishes the same change (apart from the version): the same content at
    /// the same place, the same failure of the same revision, or a tombstone.
    pub(crate) fn same_change(&self, other: &Self) -> bool {
        if self.deleted || other.deleted {
            return self.deleted == other.deleted;
        }
        self.path == other.path
            && self.media_type == other.media_type
            && self.content_hash == other.content_hash
            && self.failure.is_some() == other.failure.is_some()
            && (self.failure.is_none() || self.fingerprint == other.fingerprint)
    }
}

/// A file whose last attempt failed for a reason that may pass; retried at every sync until
/// `drive.max_file_attempts` attempts failed, then recorded as FAILED with a dead letter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRetry {
    /// As last seen; the retry looks it up again.
    pub file: File,
    /// Where it was in scope (empty when it was being deleted).
    pub parent: String,
    pub path: String,
    /// Failed attempts so far.
    pub attempts: u32,
    /// Why the last attempt failed.
    pub reason: String,
}

#[derive(Clone)]
pub struct DriveStore {
    kv: kv::Store,
    name: String,
}

/// How errors name these entries.
const WHAT: &str = "Drive state";

impl DriveStore {
    /// Opens (creating when missing) the bucket; the entries of source `name`.
    pub async fn open(js: &jetstream::Context, name: &str) -> Result<Self, WatchError> {
        let description = "Drive source state: cursor, folders in scope, files";
        let kv = upsert_bucket(js, bucket_config(DRIVE_BUCKET, description))
            .await
            // Transient, as before: the broker may take the bucket later.
            .map_err(|e| WatchError::new(WatchErrorKind::Transient, e.to_string()))?;
        Ok(Self {
            kv,
            name: name.to_string(),
        })
    }

    fn cursor_key(&self) -> String {
        format!("{}.cursor", self.name)
    }
    fn folder_key(&self, id: &str) -> String {
        format!("{}.folder.{id}", self.name)
    }
    fn file_key(&self, sid: &str) -> String {
        format!("{}.file.{sid}", self.name)
    }
    fn retry_key(&self, sid: &str) -> String {
        format!("{}.retry.{sid}", self.name)
    }

    async fn get<T: DeserializeOwned>(&self, key: String) -> Result<Option<Entry<T>>, WatchError> {
        json_kv::get(&self.kv, WHAT, key).await
    }

    async fn put_cas<T: Serialize>(
        &self,
        key: String,
        value: &T,
        expected: Option<u64>,
    ) -> Result<u64, WatchError> {
        json_kv::put_cas(&self.kv, WHAT, &key, value, expected).await
    }

    async fn all<T: DeserializeOwned>(
        &self,
        kind: &str,
    ) -> Result<HashMap<String, Entry<T>>, WatchError> {
        json_kv::all(&self.kv, WHAT, &format!("{}.{kind}.", self.name)).await
    }

    pub async fn cursor(&self) -> Result<Option<Entry<Cursor>>, WatchError> {
        self.get(self.cursor_key()).await
    }

    pub async fn put_cursor(&self, c: &Cursor, expected: Option<u64>) -> Result<u64, WatchError> {
        self.put_cas(self.cursor_key(), c, expected).await
    }

    pub async fn file(&self, sid: &str) -> Result<Option<Entry<DriveFileState>>, WatchError> {
        self.get(self.file_key(sid)).await
    }

    pub async fn put_file(
        &self,
        sid: &str,
        state: &DriveFileState,
        expected: Option<u64>,
    ) -> Result<u64, WatchError> {
        self.put_cas(self.file_key(sid), state, expected).await
    }

    /// Every file entry, by source id.
    pub async fn files(&self) -> Result<HashMap<String, Entry<DriveFileState>>, WatchError> {
        self.all("file").await
    }

    pub async fn folders(&self) -> Result<HashMap<String, Folder>, WatchError> {
        Ok(self
            .all::<Folder>("folder")
            .await?
            .into_iter()
            .map(|(k, e)| (k, e.value))
            .collect())
    }

    pub async fn put_folder(&self, id: &str, folder: &Folder) -> Result<(), WatchError> {
        if !kb_core::ids::is_valid_token(id) {
            // Not storable as a key; the next full listing finds it again.
            tracing::warn!(folder_id = %id, "Drive folder id is not a valid key; not stored");
            return Ok(());
        }
        let bytes = json_kv::encode(WHAT, folder)?;
        self.kv
            .put(self.folder_key(id), bytes.into())
            .await
            .map_err(|e| transient("cannot write Drive state", e))?;
        Ok(())
    }

    pub async fn delete_folder(&self, id: &str) -> Result<(), WatchError> {
        if !kb_core::ids::is_valid_token(id) {
            return Ok(());
        }
        self.kv
            .delete(self.folder_key(id))
            .await
            .map_err(|e| transient("cannot write Drive state", e))
    }

    /// Every file waiting for another attempt, by source id.
    pub async fn retries(&self) -> Result<HashMap<String, FileRetry>, WatchError> {
        Ok(self
            .all::<FileRetry>("retry")
            .await?
            .into_iter()
            .map(|(k, e)| (k, e.value))
            .collect())
    }

    pub async fn put_retry(&self, sid: &str, retry: &FileRetry) -> Result<(), WatchError> {
        let bytes = json_kv::encode(WHAT, retry)?;
        self.kv
            .put(self.retry_key(sid), bytes.into())
            .await
            .map_err(|e| transient("cannot write Drive state", e))?;
        Ok(())
    }

    pub async fn delete_retry(&self, sid: &str) -> Result<(), WatchError> {
        self.kv
            .delete(self.retry_key(sid))
            .await
            .map_err(|e| transient("cannot write Drive state", e))
    }
}
