//! Publishing one change of a Drive file as a version of its source: the version is reserved in
//! the file's state (compare-and-set) before anything is published as it, and the state records
//! the change as done only after the publish. So a version never names two contents: a stop in
//! between, a second watcher or `kb ingest --drive` beside the watcher find the reservation and
//! either publish the same change as the same version again (deduplicated) or a different
//! change as a later version.

use super::state::{DriveFileState, Entry};
use super::DriveSource;
use crate::error::{WatchError, WatchErrorKind};
use crate::scan::STAGE;
use kb_core::failpoint::Flow;
use kb_proto::{DeadLetter, SourceRef};
use kb_stream::progress::now_ms;
use kb_stream::{Change as MirrorChange, DeadLetterKind, Mirrored};

/// What a change publishes.
pub(crate) enum Change {
    /// New content to the source stream.
    Upsert(Vec<u8>),
    /// A FAILED mirror event and a dead letter.
    Failed {
        error_kind: DeadLetterKind,
        reason: String,
    },
    /// A DELETE mirror event.
    Delete,
}

impl Change {
    /// Published straight to the mirror stream (not through the parser).
    fn on_mirror(&self) -> bool {
        !matches!(self, Change::Upsert(_))
    }
}

impl DriveSource {
    /// Publishes `change` of source `sid` (described by `next`, whose version is ignored, and
    /// by `source`, whose version too) over the state `prev`, and records it. Returns the
    /// version. A `Conflict` means the state or the mirror moved meanwhile: read and decide
    /// again.
    pub(crate) async fn commit(
        &self,
        sid: &str,
        prev: Option<&Entry<DriveFileState>>,
        next: DriveFileState,
        mut source: SourceRef,
        change: Change,
    ) -> Result<u64, WatchError> {
        // State and mirror behind one another (a wiped bucket): mirror events go above both.
        // Without state, also above every forgotten tombstone (kb_stream::retention).
        let head = if prev.is_none() {
            self.publisher.highest_version(sid).await?
        } else if change.on_mirror() {
            self.publisher.mirror_version(sid).await?
        } else {
            0
        };
        let resumed = prev
            .filter(|p| p.value.pending && p.value.same_change(&next) && head <= p.value.version);
        let (version, revision) = match resumed {
            // Reserved for this very change, perhaps already published: the same version.
            Some(p) => (p.value.version, p.revision),
            None => {
                // Without state, above whatever the mirror holds (a lost or wiped bucket).
                let version = prev.map_or(0, |p| p.value.version).max(head) + 1;
                let reserved = DriveFileState {
                    version,
                    pending: true,
                    ..next.clone()
                };
                let revision = self
                    .store
                    .put_file(sid, &reserved, prev.map(|p| p.revision))
                    .await?;
                (version, revision)
            }
        };
        source.version = version;
        self.publish(&source, change, resumed.is_some()).await?;
        if let Flow::Err(msg) = kb_core::failpoint!("drive.after_publish", &source.path) {
            return Err(WatchError::new(WatchErrorKind::Transient, msg));
        }
        let done = DriveFileState {
            version,
            pending: false,
            ..next
        };
        self.store.put_file(sid, &done, Some(revision)).await?;
        Ok(version)
    }

    async fn publish(
        &self,
        source: &SourceRef,
        change: Change,
        resumed: bool,
    ) -> Result<(), WatchError> {
        let failure = match change {
            Change::Upsert(bytes) => {
                // Same version, same content: a second publish is deduplicated or harmless.
                self.publisher.source(source, bytes).await?;
                return Ok(());
            }
            Change::Failed { error_kind, reason } => Some((error_kind, reason)),
            Change::Delete => None,
        };
        let mirrored = match &failure {
            Some((_, reason)) => MirrorChange::Failed(source, reason),
            None => MirrorChange::Delete(source),
        };
        match self.publisher.mirror(mirrored).await? {
            Mirrored::Published | Mirrored::Duplicate => {}
            // Published before the stop that left the reservation.
            Mirrored::Superseded { current } if resumed && current == source.version => {}
            Mirrored::Superseded { current } => {
                return Err(WatchError::new(
                    WatchErrorKind::Conflict,
                    format!(
                        "the mirror of {} moved to version {current} meanwhile",
                        source.source_id
                    ),
                ))
            }
        }
        if let Some((error_kind, reason)) = failure {
            // One per source, version and kind: sent again after a stop, stored once.
            self.publisher
                .dead_letter(&DeadLetter {
                    stage: STAGE.to_string(),
                    error_kind: error_kind.as_str().to_string(),
                    reason,
                    failed_unix_ms: now_ms(),
                    source: Some(source.clone()),
                    ..Default::default()
                })
                .await?;
        }
        Ok(())
    }
}
