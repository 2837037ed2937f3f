//! The watcher as the version authority of its sources, for [`kb_stream::retention`]: a deleted
//! source past the retention is forgotten from the folder state (`kb_watch`) or the Drive state
//! (`kb_drive`) only while that state still records exactly its deletion.

use crate::drive::DRIVE_BUCKET;
use async_nats::jetstream::{self, kv};
use kb_proto::SourceRef;
use kb_stream::retention::{purge_key_up_to, Authority, Forget};
use kb_stream::{StreamError, StreamErrorKind};
use serde::Deserialize;

/// The fields of a folder or Drive state entry that decide whether it may be forgotten.
#[derive(Deserialize)]
struct Recorded {
    version: u64,
    deleted: bool,
    #[serde(default)]
    pending: bool,
}

pub struct StateAuthority {
    watch: kv::Store,
    /// `None` when this broker has no Drive state: Drive sources are then kept.
    drive: Option<kv::Store>,
}

impl StateAuthority {
    pub async fn new(js: &jetstream::Context, watch: kv::Store) -> Self {
        Self {
            watch,
            drive: js.get_key_value(DRIVE_BUCKET).await.ok(),
        }
    }

    /// Where the state of `source` lives; `Err(())` when it lives somewhere this process
    /// cannot read (keep), `Ok(None)` when its origin keeps no state.
    fn entry_of<'a>(&'a self, source: &SourceRef) -> Result<Option<(&'a kv::Store, String)>, ()> {
        let sid = &source.source_id;
        let origin = source.origin.as_str();
        // `kb ingest` of files records its state under the name "cli" (as `kb dead-letters`).
        let folder = match origin {
            "file" => Some("cli"),
            o => o.strip_prefix("folder:"),
        };
        if let Some(name) = folder {
            return Ok(Some((&self.watch, format!("{name}.{sid}"))));
        }
        if let Some(name) = origin.strip_prefix("drive:") {
            let drive = self.drive.as_ref().ok_or(())?;
            return Ok(Some((drive, format!("{name}.file.{sid}"))));
        }
        Ok(None)
    }
}

#[async_trait::async_trait]
impl Authority for StateAuthority {
    async fn forget(&self, tombstone: &SourceRef) -> Result<Forget, StreamError> {
        let Ok(place) = self.entry_of(tombstone) else {
            return Ok(Forget::Kept);
        };
        let Some((bucket, key)) = place else {
            return Ok(Forget::Forgotten);
        };
        let entry = bucket
            .entry(key.as_str())
            .await
            .map_err(|e| StreamError::transient("cannot read the watcher state", e))?;
        let Some(entry) = entry.filter(|e| e.operation == kv::Operation::Put) else {
            return Ok(Forget::Forgotten);
        };
        let recorded: Recorded = serde_json::from_slice(&entry.value).map_err(|e| {
            StreamError::with(
                StreamErrorKind::Decode,
                format!("undecodable watcher state under {key}"),
                e,
            )
        })?;
        if !recorded.deleted || recorded.pending || recorded.version > tombstone.version {
            return Ok(Forget::Kept);
        }
        purge_key_up_to(bucket, &key, entry.revision).await?;
        Ok(Forget::Forgotten)
    }
}
