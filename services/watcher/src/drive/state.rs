//! What the Drive source knows, in the JetStream KV bucket `kb_drive`, so a restarted (or
//! another) watcher resumes exactly where the last one stopped. Keys, for source name `<n>`:
//!
//! - `<n>.cursor`: the roots and the changes-feed page token to read next;
//! - `<n>.folder.<drive folder id>`: a folder in scope (name, parent), for paths and moves;
//! - `<n>.file.<source_id>`: one file's published state.
//!
//! Cursor and file writes are compare-and-set on the entry's revision, so two watchers never
//! both record a version or both advance the feed. Folders are derived data (relisted when in
//! doubt) and written plainly.

use crate::error::{WatchError, WatchErrorKind};
use crate::state::{last_values, transient};
use async_nats::jetstream::kv::{self, CreateErrorKind, Operation, UpdateErrorKind};
use async_nats::jetstream::{self, stream::StorageType};
use kb_drive::Folder;
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
    /// The last version assigned to this source (upsert, failure or tombstone).
    pub version: u64,
    pub size: u64,
    pub deleted: bool,
    /// Why the current version is a failure; kept so it is not retried until the file changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

/// A value and the revision a compare-and-set must name.
#[derive(Debug, Clone)]
pub struct Entry<T> {
    pub value: T,
    pub revision: u64,
}

#[derive(Clone)]
pub struct DriveStore {
    kv: kv::Store,
    name: String,
}

fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, WatchError> {
    serde_json::from_slice(bytes).map_err(|e| {
        WatchError::with(
            WatchErrorKind::Corrupt,
            format!("undecodable Drive state under {key}"),
            e,
        )
    })
}

impl DriveStore {
    /// Opens (creating when missing) the bucket; the entries of source `name`.
    pub async fn open(js: &jetstream::Context, name: &str) -> Result<Self, WatchError> {
        let kv = js
            .create_or_update_key_value(kv::Config {
                bucket: DRIVE_BUCKET.to_string(),
                description: "Drive source state: cursor, folders in scope, files".to_string(),
                history: 1,
                storage: StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|e| {
                WatchError::with(
                    WatchErrorKind::Transient,
                    format!("cannot create KV bucket {DRIVE_BUCKET}"),
                    e,
                )
            })?;
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

    async fn get<T: DeserializeOwned>(&self, key: String) -> Result<Option<Entry<T>>, WatchError> {
        let entry = self
            .kv
            .entry(key.clone())
            .await
            .map_err(|e| transient("cannot read Drive state", e))?;
        match entry {
            Some(e) if e.operation == Operation::Put => Ok(Some(Entry {
                value: decode(&key, &e.value)?,
                revision: e.revision,
            })),
            _ => Ok(None),
        }
    }

    /// Writes if the entry is still at `expected` (`None`: must not exist, or be deleted).
    async fn put_cas<T: Serialize>(
        &self,
        key: String,
        value: &T,
        expected: Option<u64>,
    ) -> Result<u64, WatchError> {
        let bytes = serde_json::to_vec(value).map_err(|e| {
            WatchError::with(WatchErrorKind::Corrupt, "cannot encode Drive state", e)
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
                    _ => transient("cannot write Drive state", e),
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
                        _ => transient("cannot write Drive state", e),
                    })
            }
        }
    }

    async fn all<T: DeserializeOwned>(
        &self,
        kind: &str,
    ) -> Result<HashMap<String, Entry<T>>, WatchError> {
        let prefix = format!("{}.{kind}.", self.name);
        let mut out = HashMap::new();
        for (id, payload, revision) in last_values(&self.kv, &prefix).await? {
            match decode(&format!("{prefix}{id}"), &payload) {
                Ok(value) => {
                    out.insert(id, Entry { value, revision });
                }
                Err(e) => tracing::warn!(error = %e, "skipping Drive state entry"),
            }
        }
        Ok(out)
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
        let bytes = serde_json::to_vec(folder).map_err(|e| {
            WatchError::with(WatchErrorKind::Corrupt, "cannot encode Drive state", e)
        })?;
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
}
