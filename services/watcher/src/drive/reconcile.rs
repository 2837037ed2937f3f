//! The decision for one Drive file: fetch only when its fingerprint or path moved, publish the
//! next version only when the content or the path did, record failures once per change, and
//! tombstone what left. Publishing goes through [`DriveSource::commit`] (the version reserved
//! first); every state write is a compare-and-set, and a lost race re-reads the state and
//! decides again.

use super::commit::Change;
use super::state::{DriveFileState, Entry};
use super::{drive_error, DriveSource};
use crate::error::{WatchError, WatchErrorKind};
use crate::media::media_type;
use crate::reconcile::too_large_reason;
use crate::scan::Published;
use crate::telemetry;
use kb_core::display::clean;
use kb_core::ids::content_hash;
use kb_drive::export::{exported_name, fetch_plan, Fetch};
use kb_drive::{DriveError, DriveErrorKind, File};
use kb_proto::SourceRef;
use kb_stream::progress::now_ms;
use kb_stream::DeadLetterKind;
use std::time::Instant;

/// Compare-and-set retries before a file is left for the next sync.
const CAS_ATTEMPTS: usize = 5;

/// What happened to one file.
#[derive(Debug)]
pub(crate) enum Outcome {
    Published(Published),
    /// The current version and, when it is a failure, its reason.
    Unchanged(Published, Option<String>),
    /// A FAILED version was recorded.
    Failed(Published, String),
    /// Nothing to read in it.
    Skipped(&'static str),
    /// It disappeared while being fetched; its removal arrives through the changes feed.
    Vanished,
}

/// Where a file sits and what it is published as.
struct Target<'a> {
    file: &'a File,
    parent: &'a str,
    path: String,
    media_type: String,
    fetch: Fetch,
}

impl DriveSource {
    /// Where `file` (found in folder `parent` at `path`) sits and how it is read.
    fn target<'a>(&self, file: &'a File, parent: &'a str, path: &str) -> Target<'a> {
        let fetch = fetch_plan(file, &self.formats);
        let (path, media_type) = match &fetch {
            Fetch::Skip(_) => (path.to_string(), String::new()),
            Fetch::Export(m) => (exported_name(path, m), m.clone()),
            Fetch::Download
                if file.mime_type.is_empty() || file.mime_type == "application/octet-stream" =>
            {
                (path.to_string(), media_type(path).to_string())
            }
            Fetch::Download => (path.to_string(), file.mime_type.clone()),
        };
        Target {
            file,
            parent,
            path,
            media_type,
            fetch,
        }
    }

    /// Brings the source of `file` (found in folder `parent` at `path`) up to date.
    pub(crate) async fn reconcile(
        &self,
        file: &File,
        parent: &str,
        path: &str,
    ) -> Result<Outcome, WatchError> {
        let target = self.target(file, parent, path);
        if let Fetch::Skip(why) = target.fetch {
            return Ok(Outcome::Skipped(why));
        }
        let sid = self.source_id(&file.id);
        let mut prev = self.store.file(&sid).await?;
        for _ in 0..CAS_ATTEMPTS {
            match Box::pin(self.reconcile_once(&sid, &target, prev.as_ref())).await {
                Err(e) if e.kind == WatchErrorKind::Conflict => {
                    tracing::debug!(path = %clean(&target.path), "Drive state changed concurrently, looking again");
                    prev = self.store.file(&sid).await?;
                }
                other => return other,
            }
        }
        Err(WatchError::new(
            WatchErrorKind::Conflict,
            format!("{}: state kept changing concurrently", clean(&target.path)),
        ))
    }

    fn published(&self, sid: &str, version: u64, path: &str) -> Published {
        Published {
            source_id: sid.to_string(),
            version,
            path: path.to_string(),
        }
    }

    async fn reconcile_once(
        &self,
        sid: &str,
        t: &Target<'_>,
        prev: Option<&Entry<DriveFileState>>,
    ) -> Result<Outcome, WatchError> {
        let fingerprint = t.file.fingerprint();
        // A pending reservation is never taken as done: it is published (again) below.
        let live = prev.filter(|p| p.value.is_live());
        if let Some(p) = live {
            if p.value.fingerprint == fingerprint && p.value.path == t.path {
                if p.value.parent != t.parent {
                    let next = DriveFileState {
                        parent: t.parent.to_string(),
                        ..p.value.clone()
                    };
                    self.store.put_file(sid, &next, Some(p.revision)).await?;
                }
                return Ok(Outcome::Unchanged(
                    self.published(sid, p.value.version, &t.path),
                    p.value.failure.clone(),
                ));
            }
        }
        if let Some(size) = t.file.size.filter(|&s| s > self.max_file_bytes) {
            let reason = too_large_reason(size, self.max_file_bytes);
            return self
                .fail(sid, t, prev, DeadLetterKind::TooLarge, reason)
                .await;
        }
        let fetched = match &t.fetch {
            Fetch::Export(m) => self.client.export(&t.file.id, m, self.max_file_bytes).await,
            _ => self.client.download(&t.file.id, self.max_file_bytes).await,
        };
        let bytes = match fetched {
            Ok(b) => b,
            Err(e) => {
                return match e.kind {
                    DriveErrorKind::TooLarge => {
                        let reason = e.message().to_string();
                        self.fail(sid, t, prev, DeadLetterKind::TooLarge, reason)
                            .await
                    }
                    DriveErrorKind::Invalid | DriveErrorKind::Refused
                        if e.kind == DriveErrorKind::Invalid || refused_for_good(&e) =>
                    {
                        let reason = format!("unreadable: {e}");
                        self.fail(sid, t, prev, DeadLetterKind::Unreadable, reason)
                            .await
                    }
                    DriveErrorKind::NotFound => Ok(Outcome::Vanished),
                    // Transient: the sync stops and is redone. A download refused for
                    // permissions or policy, or unauthorised, may pass without the file
                    // changing: the caller retries it at the next syncs, counting attempts.
                    _ => Err(drive_error(e)),
                };
            }
        };
        let hash = content_hash(&bytes);
        let modified = t.file.modified_unix_ms();
        if let Some(p) = live.filter(|p| p.value.content_hash == hash && p.value.path == t.path) {
            // A new revision with the same bytes: remember it so it is not fetched again.
            let next = DriveFileState {
                fingerprint,
                modified_unix_ms: modified,
                parent: t.parent.to_string(),
                ..p.value.clone()
            };
            self.store.put_file(sid, &next, Some(p.revision)).await?;
            return Ok(Outcome::Unchanged(
                self.published(sid, p.value.version, &t.path),
                None,
            ));
        }
        let started = Instant::now();
        let size = bytes.len() as u64;
        let source = SourceRef {
            link: t.file.link(),
            source_id: sid.to_string(),
            version: 0,
            origin: self.origin.clone(),
            path: t.path.clone(),
            content_hash: hash.clone(),
            media_type: t.media_type.clone(),
            modified_unix_ms: modified,
            size,
        };
        let next = DriveFileState {
            file_id: t.file.id.clone(),
            path: t.path.clone(),
            parent: t.parent.to_string(),
            media_type: t.media_type.clone(),
            fingerprint,
            modified_unix_ms: modified,
            content_hash: hash,
            version: 0,
            size,
            deleted: false,
            failure: None,
            pending: false,
        };
        // Boxed here and below: the whole sync is one future, too deep for a thread's stack.
        let version = Box::pin(self.commit(sid, prev, next, source, Change::Upsert(bytes))).await?;
        telemetry::sent(sid, version, telemetry::Sent::Published, started);
        Ok(Outcome::Published(self.published(sid, version, &t.path)))
    }

    /// A file that cannot be read: a FAILED mirror event and a dead letter, and state that
    /// keeps it from being tried again until it changes.
    async fn fail(
        &self,
        sid: &str,
        t: &Target<'_>,
        prev: Option<&Entry<DriveFileState>>,
        error_kind: DeadLetterKind,
        reason: String,
    ) -> Result<Outcome, WatchError> {
        let started = Instant::now();
        let source = SourceRef {
            link: t.file.link(),
            source_id: sid.to_string(),
            version: 0,
            origin: self.origin.clone(),
            path: t.path.clone(),
            content_hash: String::new(),
            media_type: t.media_type.clone(),
            modified_unix_ms: t.file.modified_unix_ms(),
            size: t.file.size.unwrap_or(0),
        };
        let next = DriveFileState {
            file_id: t.file.id.clone(),
            path: t.path.clone(),
            parent: t.parent.to_string(),
            media_type: t.media_type.clone(),
            fingerprint: t.file.fingerprint(),
            modified_unix_ms: source.modified_unix_ms,
            content_hash: String::new(),
            version: 0,
            size: source.size,
            deleted: false,
            failure: Some(reason.clone()),
            pending: false,
        };
        let change = Change::Failed {
            error_kind: error_kind.clone(),
            reason: reason.clone(),
        };
        let version = Box::pin(self.commit(sid, prev, next, source, change)).await?;
        telemetry::failed(sid, version, &error_kind, &clean(&t.path), &reason, started);
        Ok(Outcome::Failed(
            self.published(sid, version, &t.path),
            reason,
        ))
    }

    /// Records `file` (in `parent` at `path`) as FAILED with a dead letter after its attempts
    /// ran out; `reason` says why the last one failed.
    pub(crate) async fn give_up(
        &self,
        file: &File,
        parent: &str,
        path: &str,
        error_kind: DeadLetterKind,
        reason: String,
    ) -> Result<Outcome, WatchError> {
        let t = self.target(file, parent, path);
        let sid = self.source_id(&file.id);
        let mut prev = self.store.file(&sid).await?;
        for _ in 0..CAS_ATTEMPTS {
            match self
                .fail(&sid, &t, prev.as_ref(), error_kind.clone(), reason.clone())
                .await
            {
                Err(e) if e.kind == WatchErrorKind::Conflict => {
                    prev = self.store.file(&sid).await?;
                }
                other => return other,
            }
        }
        Err(WatchError::new(
            WatchErrorKind::Conflict,
            format!("{}: state kept changing concurrently", clean(path)),
        ))
    }

    /// Tombstones the source of Drive file `file_id` unless it is unknown or already deleted.
    pub(crate) async fn tombstone(&self, file_id: &str) -> Result<Option<Published>, WatchError> {
        let sid = self.source_id(file_id);
        let mut stored = self.store.file(&sid).await?;
        for _ in 0..CAS_ATTEMPTS {
            let Some(s) = stored.take().filter(|s| !s.value.is_gone()) else {
                return Ok(None);
            };
            let started = Instant::now();
            let source = SourceRef {
                link: String::new(),
                source_id: sid.clone(),
                version: 0,
                origin: self.origin.clone(),
                path: s.value.path.clone(),
                content_hash: String::new(),
                media_type: s.value.media_type.clone(),
                modified_unix_ms: now_ms(),
                size: 0,
            };
            let next = DriveFileState {
                deleted: true,
                failure: None,
                pending: false,
                ..s.value.clone()
            };
            match Box::pin(self.commit(&sid, Some(&s), next, source, Change::Delete)).await {
                Ok(version) => {
                    telemetry::sent(&sid, version, telemetry::Sent::Deleted, started);
                    return Ok(Some(self.published(&sid, version, &s.value.path)));
                }
                Err(e) if e.kind == WatchErrorKind::Conflict => {
                    stored = self.store.file(&sid).await?;
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

/// Refusals that hold for this revision of the file (downloads forbidden by the owner, no
/// such export): recorded as FAILED at once. Other refusals (permissions, policies) may be
/// lifted without the file changing, so they are retried.
fn refused_for_good(e: &DriveError) -> bool {
    e.status() == Some(400)
        || matches!(
            e.code(),
            Some(
                "cannotDownloadFile"
                    | "cannotDownloadAbusiveFile"
                    | "cannotExportFile"
                    | "exportSizeLimitExceeded"
                    | "fileNotDownloadable"
            )
        )
}
