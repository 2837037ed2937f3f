//! The decision for one file, and the publishing it leads to: read and hash only when size or
//! mtime moved, publish the next version only when the content did, tombstone what is gone.
//! Every state write is a compare-and-set; a lost race re-reads the state and decides again.
//!
//! A version is reserved in the state (compare-and-set, marked `pending`) before anything is
//! published under it, and confirmed after. A stop in between leaves the reservation: the next
//! scan publishes the same change again under it (deduplicated if it had gone out) or, if the
//! file changed meanwhile, takes the next version. So a version never names two contents, and
//! a re-created file can never reuse the version of its tombstone.

use crate::error::{WatchError, WatchErrorKind};
use crate::media::media_type;
use crate::mirror::next_version;
use crate::scan::{Outcome, Published, Scanner, STAGE};
use crate::state::{FileState, Stored};
use crate::telemetry;
use crate::walk::FoundFile;
use kb_core::display::clean;
use kb_core::failpoint::Flow;
use kb_core::ids::content_hash;
use kb_core::telemetry::ProcessingError;
use kb_proto::{DeadLetter, SourceRef};
use kb_stream::progress::now_ms;
use kb_stream::{Change, DeadLetterKind, Mirrored};
use std::time::Instant;

/// Compare-and-set retries before a file is left for the next scan.
const CAS_ATTEMPTS: usize = 5;
/// File timestamps come from a coarse clock: a file read this soon after its last change may be
/// rewritten with the same size and mtime, so its state is marked for a re-hash.
const RACY_MS: i64 = 2_000;

pub(crate) fn too_large_reason(size: u64, max: u64) -> String {
    format!("too_large: {size} bytes > limit {max}")
}

impl Scanner {
    /// [`Self::reconcile_once`], re-reading the state after a lost compare-and-set.
    pub(crate) async fn reconcile(
        &self,
        sid: &str,
        file: &FoundFile,
        mut prev: Option<Stored>,
    ) -> Result<Outcome, WatchError> {
        for _ in 0..CAS_ATTEMPTS {
            match self.reconcile_once(sid, file, prev.as_ref()).await {
                Err(e) if e.kind == WatchErrorKind::Conflict => {
                    tracing::debug!(path = %clean(&file.rel), "state changed concurrently, looking again");
                    prev = self.state.get(sid).await?;
                }
                other => return other,
            }
        }
        Err(WatchError::new(
            WatchErrorKind::Conflict,
            format!("{}: state kept changing concurrently", file.rel),
        ))
    }

    async fn reconcile_once(
        &self,
        sid: &str,
        file: &FoundFile,
        prev: Option<&Stored>,
    ) -> Result<Outcome, WatchError> {
        if let Some(p) = prev.map(|p| &p.state) {
            // Same size and mtime: trusted without reading, unless marked for a re-hash or
            // its publish is unconfirmed.
            if !p.deleted
                && !p.recheck
                && !p.pending
                && p.size == file.size
                && p.modified_unix_ms == file.modified_unix_ms
            {
                let failure = p
                    .content_hash
                    .is_empty()
                    .then(|| too_large_reason(p.size, self.max_file_bytes));
                return Ok(Outcome::Unchanged(
                    self.published(sid, p.version, &p.path),
                    failure,
                ));
            }
        }
        if file.size > self.max_file_bytes {
            return self.too_large(sid, file, file.size, prev).await;
        }
        let bytes = match tokio::fs::read(&file.abs).await {
            Ok(b) => b,
            Err(e) => {
                let reason = format!("unreadable: {e}");
                ProcessingError {
                    stage: STAGE.as_str(),
                    source_id: sid,
                    error_kind: DeadLetterKind::Unreadable.as_str(),
                    transient: true,
                    reason: &format!("{}: {reason}", clean(&file.rel)),
                }
                .emit();
                return Ok(Outcome::Unreadable(reason));
            }
        };
        let size = bytes.len() as u64;
        if size > self.max_file_bytes {
            // It grew between the walk and the read.
            return self.too_large(sid, file, size, prev).await;
        }
        let hash = content_hash(&bytes);
        let recheck = now_ms() - file.modified_unix_ms < RACY_MS;
        if let Some(p) = prev.filter(|p| !p.state.deleted && p.state.content_hash == hash) {
            let next = FileState {
                size: file.size,
                modified_unix_ms: file.modified_unix_ms,
                recheck,
                ..p.state.clone()
            };
            if p.state.pending {
                // Its version was reserved for this very content by a scan that may have
                // stopped before publishing it: the same version again (a duplicate if it did).
                return self
                    .publish_content(sid, file, bytes, next, p.revision)
                    .await;
            }
            // Touched, not changed: remember the new size and mtime so it is not read again.
            if next != p.state {
                self.state.put(sid, &next, Some(p.revision)).await?;
            }
            return Ok(Outcome::Unchanged(
                self.published(sid, p.state.version, &p.state.path),
                None,
            ));
        }
        // New content: its version is reserved before anything is published under it, so a
        // stop after the publish (or another watcher) can never give it to other content.
        let reserved = FileState {
            path: file.rel.clone(),
            content_hash: hash,
            version: self.next_version(sid, prev).await?,
            size: file.size,
            modified_unix_ms: file.modified_unix_ms,
            deleted: false,
            recheck,
            pending: true,
        };
        let revision = self
            .state
            .put(sid, &reserved, prev.map(|p| p.revision))
            .await?;
        self.publish_content(sid, file, bytes, reserved, revision)
            .await
    }

    /// Publishes `bytes` as the version `reserved` holds (at `revision`), then confirms it.
    async fn publish_content(
        &self,
        sid: &str,
        file: &FoundFile,
        bytes: Vec<u8>,
        reserved: FileState,
        revision: u64,
    ) -> Result<Outcome, WatchError> {
        let started = Instant::now();
        let version = reserved.version;
        let source = SourceRef {
            link: String::new(),
            source_id: sid.to_string(),
            version,
            origin: self.origin.clone(),
            path: file.rel.clone(),
            content_hash: reserved.content_hash.clone(),
            media_type: media_type(&file.rel).to_string(),
            modified_unix_ms: file.modified_unix_ms,
            size: bytes.len() as u64,
        };
        // Reserved, not yet published.
        if let Flow::Err(msg) = kb_core::failpoint!("watcher.before_publish", &file.rel) {
            return Err(WatchError::new(WatchErrorKind::Transient, msg));
        }
        self.publisher.source(&source, bytes).await?;
        // Published, not yet confirmed: the window a stop (SIGTERM drops the scan) can hit.
        if let Flow::Err(msg) = kb_core::failpoint!("watcher.after_publish", &file.rel) {
            return Err(WatchError::new(WatchErrorKind::Transient, msg));
        }
        let hash = reserved.content_hash.clone();
        self.confirm(sid, reserved, revision).await?;
        telemetry::sent(sid, version, telemetry::Sent::Published, started);
        Ok(Outcome::Published(
            self.published(sid, version, &file.rel),
            hash,
        ))
    }

    /// Marks a reserved version published. If the entry moved on meanwhile (another watcher, a
    /// dead-letter retry), whoever moved it reserved a version above ours: nothing to confirm.
    async fn confirm(
        &self,
        sid: &str,
        reserved: FileState,
        revision: u64,
    ) -> Result<(), WatchError> {
        let done = FileState {
            pending: false,
            ..reserved
        };
        match self.state.put(sid, &done, Some(revision)).await {
            Ok(_) => Ok(()),
            Err(e) if e.kind == WatchErrorKind::Conflict => {
                tracing::debug!(source_id = sid, "state moved on after our publish");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Publishes a failure or a tombstone under the version `reserved` holds. Should the mirror
    /// already hold a newer version (a lost or wiped state bucket), the version above it is
    /// reserved first and published instead. Returns the state published and its revision.
    async fn publish_reserved(
        &self,
        sid: &str,
        mut source: SourceRef,
        failure: Option<&str>,
        mut reserved: FileState,
        mut revision: u64,
    ) -> Result<(FileState, u64), WatchError> {
        for _ in 0..CAS_ATTEMPTS {
            let change = match failure {
                Some(reason) => Change::Failed(&source, reason),
                None => Change::Delete(&source),
            };
            match self.publisher.mirror(change).await? {
                Mirrored::Published | Mirrored::Duplicate => return Ok((reserved, revision)),
                // Only ours can be there under a version reserved for it: an earlier attempt.
                Mirrored::Superseded { current } if current == source.version => {
                    return Ok((reserved, revision))
                }
                Mirrored::Superseded { current } => {
                    tracing::warn!(
                        source_id = sid,
                        state = source.version,
                        mirror = current,
                        "the mirror is ahead of the watcher state; publishing above it"
                    );
                    reserved.version = current + 1;
                    revision = self.state.put(sid, &reserved, Some(revision)).await?;
                    source.version = reserved.version;
                }
            }
        }
        Err(WatchError::new(
            WatchErrorKind::Conflict,
            format!("mirror of {sid} kept moving ahead"),
        ))
    }

    async fn next_version(&self, sid: &str, prev: Option<&Stored>) -> Result<u64, WatchError> {
        next_version(&self.publisher, sid, prev.map(|p| p.state.version)).await
    }

    /// A file too large to read: a FAILED mirror event and a dead letter, once per change.
    async fn too_large(
        &self,
        sid: &str,
        file: &FoundFile,
        size: u64,
        prev: Option<&Stored>,
    ) -> Result<Outcome, WatchError> {
        let started = Instant::now();
        let reason = too_large_reason(size, self.max_file_bytes);
        let unconfirmed =
            prev.filter(|p| p.state.pending && !p.state.deleted && p.state.content_hash.is_empty());
        let (reserved, revision) = match unconfirmed {
            // A failure reserved by a scan that may have stopped before publishing it.
            Some(p) => (p.state.clone(), p.revision),
            None => {
                let reserved = FileState {
                    path: file.rel.clone(),
                    content_hash: String::new(),
                    version: self.next_version(sid, prev).await?,
                    size: file.size,
                    modified_unix_ms: file.modified_unix_ms,
                    deleted: false,
                    recheck: false,
                    pending: true,
                };
                let revision = self
                    .state
                    .put(sid, &reserved, prev.map(|p| p.revision))
                    .await?;
                (reserved, revision)
            }
        };
        let source = SourceRef {
            link: String::new(),
            source_id: sid.to_string(),
            version: reserved.version,
            origin: self.origin.clone(),
            path: file.rel.clone(),
            content_hash: String::new(),
            media_type: media_type(&file.rel).to_string(),
            modified_unix_ms: file.modified_unix_ms,
            size,
        };
        let (reserved, revision) = self
            .publish_reserved(sid, source.clone(), Some(&reason), reserved, revision)
            .await?;
        let version = reserved.version;
        self.publisher
            .dead_letter(&DeadLetter {
                stage: STAGE.to_string(),
                error_kind: DeadLetterKind::TooLarge.as_str().to_string(),
                reason: reason.clone(),
                failed_unix_ms: now_ms(),
                source: Some(SourceRef { version, ..source }),
                ..Default::default()
            })
            .await?;
        self.confirm(
            sid,
            FileState {
                size: file.size,
                modified_unix_ms: file.modified_unix_ms,
                ..reserved
            },
            revision,
        )
        .await?;
        telemetry::failed(
            sid,
            version,
            &DeadLetterKind::TooLarge,
            &file.rel,
            &reason,
            started,
        );
        Ok(Outcome::TooLarge(
            self.published(sid, version, &file.rel),
            reason,
        ))
    }

    /// Tombstones a known source whose file is gone; `None` when it still exists or another
    /// watcher already did it. A deletion reserved earlier whose tombstone is unconfirmed is
    /// published again under its version.
    pub(crate) async fn delete_if_gone(
        &self,
        sid: &str,
        mut stored: Option<Stored>,
    ) -> Result<Option<Published>, WatchError> {
        for _ in 0..CAS_ATTEMPTS {
            let Some(s) = stored
                .take()
                .filter(|s| !s.state.deleted || s.state.pending)
            else {
                return Ok(None);
            };
            // The walk may have missed it (an unreadable directory): only a file that is
            // really gone is deleted.
            match self.is_present(&s.state.path).await {
                Ok(false) => {}
                Ok(true) => return Ok(None),
                Err(e) => {
                    tracing::warn!(path = %clean(&s.state.path), error = %e,
                        "cannot tell whether a file was deleted");
                    return Ok(None);
                }
            }
            let started = Instant::now();
            let (reserved, revision) = if s.state.deleted {
                (s.state.clone(), s.revision)
            } else {
                let reserved = FileState {
                    version: s.state.version + 1,
                    deleted: true,
                    recheck: false,
                    pending: true,
                    ..s.state.clone()
                };
                match self.state.put(sid, &reserved, Some(s.revision)).await {
                    Ok(revision) => (reserved, revision),
                    Err(e) if e.kind == WatchErrorKind::Conflict => {
                        stored = self.state.get(sid).await?;
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            };
            let path = s.state.path.as_str();
            let tombstone = SourceRef {
                link: String::new(),
                source_id: sid.to_string(),
                version: reserved.version,
                origin: self.origin.clone(),
                path: path.to_string(),
                content_hash: String::new(),
                media_type: media_type(path).to_string(),
                modified_unix_ms: now_ms(),
                size: 0,
            };
            let published = self
                .publish_reserved(sid, tombstone, None, reserved, revision)
                .await;
            let (reserved, revision) = match published {
                Ok(r) => r,
                Err(e) if e.kind == WatchErrorKind::Conflict => {
                    stored = self.state.get(sid).await?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            if let Flow::Err(msg) = kb_core::failpoint!("watcher.after_publish", path) {
                return Err(WatchError::new(WatchErrorKind::Transient, msg));
            }
            let version = reserved.version;
            self.confirm(sid, reserved, revision).await?;
            telemetry::sent(sid, version, telemetry::Sent::Deleted, started);
            return Ok(Some(self.published(sid, version, path)));
        }
        Err(WatchError::new(
            WatchErrorKind::Conflict,
            format!("state of {sid} kept changing concurrently"),
        ))
    }

    /// Whether `rel` is still something a scan reads (see [`crate::walk::is_present`]).
    pub(crate) async fn is_present(&self, rel: &str) -> std::io::Result<bool> {
        let (root, rel, follow) = (
            self.root.clone(),
            rel.to_string(),
            self.policy.follow_external_symlinks,
        );
        tokio::task::spawn_blocking(move || crate::walk::is_present(&root, &rel, follow))
            .await
            .map_err(std::io::Error::other)?
    }
}
