//! The decision for one file, and the publishing it leads to: read and hash only when size or
//! mtime moved, publish the next version only when the content did, tombstone what is gone.
//! Every state write is a compare-and-set; a lost race re-reads the state and decides again.

use crate::error::{WatchError, WatchErrorKind};
use crate::media::media_type;
use crate::mirror::{next_version, publish_failure, publish_tombstone};
use crate::scan::{Outcome, Published, Scanner, STAGE};
use crate::state::{FileState, Stored};
use crate::telemetry;
use crate::walk::FoundFile;
use kb_core::ids::content_hash;
use kb_core::telemetry::ProcessingError;
use kb_proto::SourceRef;
use kb_stream::progress::now_ms;
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
                    tracing::debug!(path = %file.rel, "state changed concurrently, looking again");
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
            // Same size and mtime: trusted without reading, unless marked for a re-hash.
            if !p.deleted
                && !p.recheck
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
                    stage: STAGE,
                    source_id: sid,
                    error_kind: "unreadable",
                    transient: true,
                    reason: &format!("{}: {reason}", file.rel),
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
            // Touched, not changed: remember the new size and mtime so it is not read again.
            let next = FileState {
                size: file.size,
                modified_unix_ms: file.modified_unix_ms,
                recheck,
                ..p.state.clone()
            };
            if next != p.state {
                self.state.put(sid, &next, Some(p.revision)).await?;
            }
            return Ok(Outcome::Unchanged(
                self.published(sid, p.state.version, &p.state.path),
                None,
            ));
        }
        let started = Instant::now();
        let version = self.next_version(sid, prev).await?;
        let source = SourceRef {
            link: String::new(),
            source_id: sid.to_string(),
            version,
            origin: self.origin.clone(),
            path: file.rel.clone(),
            content_hash: hash.clone(),
            media_type: media_type(&file.rel).to_string(),
            modified_unix_ms: file.modified_unix_ms,
            size,
        };
        self.publisher.source(&source, bytes).await?;
        let next = FileState {
            path: file.rel.clone(),
            content_hash: hash,
            version,
            size: file.size,
            modified_unix_ms: file.modified_unix_ms,
            deleted: false,
            recheck,
        };
        self.state.put(sid, &next, prev.map(|p| p.revision)).await?;
        telemetry::sent(sid, version, "published", started);
        Ok(Outcome::Published(self.published(sid, version, &file.rel)))
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
        let source = SourceRef {
            link: String::new(),
            source_id: sid.to_string(),
            version: self.next_version(sid, prev).await?,
            origin: self.origin.clone(),
            path: file.rel.clone(),
            content_hash: String::new(),
            media_type: media_type(&file.rel).to_string(),
            modified_unix_ms: file.modified_unix_ms,
            size,
        };
        let version = publish_failure(&self.publisher, source, "too_large", &reason).await?;
        let next = FileState {
            path: file.rel.clone(),
            content_hash: String::new(),
            version,
            size: file.size,
            modified_unix_ms: file.modified_unix_ms,
            deleted: false,
            recheck: false,
        };
        self.state.put(sid, &next, prev.map(|p| p.revision)).await?;
        telemetry::failed(sid, version, "too_large", &file.rel, &reason, started);
        Ok(Outcome::TooLarge(
            self.published(sid, version, &file.rel),
            reason,
        ))
    }

    /// Tombstones a known source whose file is gone; `None` when it still exists or another
    /// watcher already did it.
    pub(crate) async fn delete_if_gone(
        &self,
        sid: &str,
        mut stored: Option<Stored>,
    ) -> Result<Option<Published>, WatchError> {
        for _ in 0..CAS_ATTEMPTS {
            let Some(s) = stored.take().filter(|s| !s.state.deleted) else {
                return Ok(None);
            };
            // The walk may have missed it (an unreadable directory): only a file that is
            // really gone is deleted.
            match tokio::fs::metadata(self.root.join(&s.state.path)).await {
                Ok(m) if m.is_file() => return Ok(None),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(path = %s.state.path, error = %e, "cannot tell whether a file was deleted");
                    return Ok(None);
                }
            }
            let started = Instant::now();
            let path = &s.state.path;
            let version = publish_tombstone(
                &self.publisher,
                sid,
                &self.origin,
                path,
                media_type(path),
                s.state.version,
            )
            .await?;
            let next = FileState {
                version,
                deleted: true,
                recheck: false,
                ..s.state.clone()
            };
            match self.state.put(sid, &next, Some(s.revision)).await {
                Ok(_) => {
                    telemetry::sent(sid, version, "deleted", started);
                    return Ok(Some(self.published(sid, version, &s.state.path)));
                }
                Err(e) if e.kind == WatchErrorKind::Conflict => {
                    stored = self.state.get(sid).await?;
                }
                Err(e) => return Err(e),
            }
        }
        Err(WatchError::new(
            WatchErrorKind::Conflict,
            format!("state of {sid} kept changing concurrently"),
        ))
    }
}
