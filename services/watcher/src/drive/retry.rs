//! Files that failed for a reason that may pass (a refused or unauthorised download, a
//! state that kept changing) never hold the changes feed back and are never skipped by it: each is recorded in KV (`<name>.retry.<source id>`) before the page
//! token moves past it, tried again at every sync, and after `max_file_attempts` failed
//! attempts recorded as FAILED with a dead letter (once per change of the file, like any
//! failure). Errors Drive or the broker may recover from stop the sync instead; they count no
//! attempt.

use super::reconcile::Outcome;
use super::state::{DriveStore, FileRetry};
use super::sync::Pass;
use super::{drive_error, DriveSource, Failure};
use crate::error::{WatchError, WatchErrorKind};
use crate::scan::{Published, STAGE};
use kb_core::display::clean;
use kb_drive::{DriveErrorKind, File};
use kb_proto::{DeadLetter, SourceRef};
use kb_stream::progress::now_ms;
use kb_stream::DeadLetterKind;
use std::collections::{HashMap, HashSet};

/// The attempts of one sync.
pub(crate) struct Attempts {
    /// Failed attempts before giving up; 0 when nothing is counted (`kb ingest`).
    max: u32,
    /// Files waiting for another attempt, by source id.
    waiting: HashMap<String, FileRetry>,
    /// Files decided in this sync (each counts at most one attempt per sync).
    settled: HashSet<String>,
    /// Files waiting when the sync began.
    loaded: HashSet<String>,
}

impl Attempts {
    /// Failures are reported, not counted or retried.
    pub(crate) fn off() -> Self {
        Self {
            max: 0,
            waiting: HashMap::new(),
            settled: HashSet::new(),
            loaded: HashSet::new(),
        }
    }

    pub(crate) async fn load(store: &DriveStore, max: u32) -> Result<Self, WatchError> {
        let waiting = store.retries().await?;
        Ok(Self {
            max: max.max(1),
            loaded: waiting.keys().cloned().collect(),
            waiting,
            settled: HashSet::new(),
        })
    }

    /// Files that waited for another attempt and got it in this sync.
    pub(crate) fn retried(&self) -> usize {
        self.loaded.intersection(&self.settled).count()
    }

    /// Marks `sid` decided in this sync; true the first time (when its attempt counts).
    fn settle(&mut self, sid: &str) -> bool {
        self.settled.insert(sid.to_string())
    }
}

/// The dead letter's error kind for a file given up on.
fn error_kind(e: &WatchError) -> DeadLetterKind {
    match e.kind {
        WatchErrorKind::Conflict => DeadLetterKind::Conflict,
        WatchErrorKind::Corrupt => DeadLetterKind::CorruptState,
        _ => DeadLetterKind::Unreadable,
    }
}

impl DriveSource {
    /// Files the result of reconciling `file` (in `parent` at `path`): a transient error stops
    /// the sync; another error is counted as a failed attempt (kept for the next sync, or
    /// recorded as FAILED once the attempts are used up); anything else ends its retries.
    pub(crate) async fn settle(
        &self,
        pass: &mut Pass,
        file: &File,
        parent: &str,
        path: String,
        r: Result<Outcome, WatchError>,
    ) -> Result<(), WatchError> {
        let sid = self.source_id(&file.id);
        let err = match r {
            Err(e) if e.kind == WatchErrorKind::Transient => return Err(e),
            Err(e) if pass.attempts.max > 0 => e,
            other => {
                self.done_retrying(pass, &sid).await?;
                return pass.report.record(path, other);
            }
        };
        let first = pass.attempts.settle(&sid);
        let before = pass.attempts.waiting.get(&sid).map_or(0, |r| r.attempts);
        let attempts = (before + u32::from(first)).max(1);
        let max = pass.attempts.max;
        let reason = err.to_string();
        if attempts >= max {
            let why = format!("{reason} (failed {attempts} times)");
            match Box::pin(self.give_up(file, parent, &path, error_kind(&err), why)).await {
                Ok(outcome) => {
                    tracing::warn!(path = %clean(&path), attempts, reason = %clean(&reason),
                        "Drive file recorded as failed: its attempts are used up");
                    self.done_retrying(pass, &sid).await?;
                    return pass.report.record(path, Ok(outcome));
                }
                Err(e) if e.kind == WatchErrorKind::Transient => return Err(e),
                // Not even the failure could be recorded: tried again at the next sync.
                Err(e) => {
                    let error = e.to_string();
                    tracing::warn!(path = %clean(&path), error = %clean(&error),
                        "cannot record a Drive file as failed");
                }
            }
        } else {
            tracing::warn!(path = %clean(&path), attempts, max, reason = %clean(&reason),
                "Drive file not published; tried again at the next sync");
        }
        let retry = FileRetry {
            file: file.clone(),
            parent: parent.to_string(),
            path: path.clone(),
            attempts,
            reason: reason.clone(),
        };
        self.wait_for_retry(pass, &sid, retry).await?;
        pass.report.failed.push(Failure {
            path,
            reason: format!("{reason} (attempt {attempts} of {max}; tried again at the next sync)"),
            version: None,
        });
        Ok(())
    }

    /// [`DriveSource::settle`] for a tombstone of Drive file `file_id` (known as `path`). A
    /// tombstone given up on gets a dead letter; the next relist tombstones it again.
    pub(crate) async fn settle_tombstone(
        &self,
        pass: &mut Pass,
        file_id: &str,
        path: String,
        r: Result<Option<Published>, WatchError>,
    ) -> Result<(), WatchError> {
        let sid = self.source_id(file_id);
        let err = match r {
            Ok(deleted) => {
                self.done_retrying(pass, &sid).await?;
                pass.report.deleted.extend(deleted);
                return Ok(());
            }
            Err(e) if e.kind == WatchErrorKind::Transient => return Err(e),
            Err(e) => e,
        };
        if pass.attempts.max == 0 {
            return pass.report.record(path, Err(err));
        }
        let first = pass.attempts.settle(&sid);
        let before = pass.attempts.waiting.get(&sid).map_or(0, |r| r.attempts);
        let attempts = (before + u32::from(first)).max(1);
        let reason = err.to_string();
        tracing::warn!(path = %clean(&path), attempts, reason = %clean(&reason),
            "Drive file not deleted");
        if attempts >= pass.attempts.max {
            let version = self.store.file(&sid).await.ok().flatten();
            self.publisher
                .dead_letter(&DeadLetter {
                    stage: STAGE.to_string(),
                    error_kind: error_kind(&err).as_str().to_string(),
                    reason: format!("cannot delete: {reason} (failed {attempts} times)"),
                    failed_unix_ms: now_ms(),
                    source: Some(SourceRef {
                        source_id: sid.clone(),
                        version: version.map_or(0, |e| e.value.version),
                        origin: self.origin.clone(),
                        path: path.clone(),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .await?;
            self.done_retrying(pass, &sid).await?;
        } else {
            let file = pass
                .attempts
                .waiting
                .get(&sid)
                .map(|r| r.file.clone())
                .unwrap_or_else(|| File {
                    id: file_id.to_string(),
                    ..Default::default()
                });
            let retry = FileRetry {
                file,
                parent: String::new(),
                path: path.clone(),
                attempts,
                reason: reason.clone(),
            };
            self.wait_for_retry(pass, &sid, retry).await?;
        }
        pass.report.failed.push(Failure {
            path,
            reason,
            version: None,
        });
        Ok(())
    }

    /// Tries again every file still waiting that this sync did not decide yet, as it is in
    /// Drive now.
    pub(crate) async fn retry_waiting(&self, pass: &mut Pass) -> Result<(), WatchError> {
        let due: Vec<(String, FileRetry)> = pass
            .attempts
            .waiting
            .iter()
            .filter(|(sid, _)| !pass.attempts.settled.contains(*sid))
            .map(|(sid, r)| (sid.clone(), r.clone()))
            .collect();
        for (sid, retry) in due {
            match self.client.get_file(&retry.file.id).await {
                Ok(f) if f.is_folder() => self.done_retrying(pass, &sid).await?,
                Ok(f) => self.file_changed(&f, pass).await?,
                Err(e) if e.kind == DriveErrorKind::NotFound => {
                    let r = self.tombstone(&retry.file.id).await;
                    self.settle_tombstone(pass, &retry.file.id, retry.path.clone(), r)
                        .await?;
                }
                Err(e) => {
                    let r = Err(drive_error(e));
                    self.settle(pass, &retry.file, &retry.parent, retry.path.clone(), r)
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// After a full listing: files waiting that it did not find are out of scope (their
    /// state, if any, was tombstoned): nothing left to retry.
    pub(crate) async fn forget_unlisted(&self, pass: &mut Pass) -> Result<(), WatchError> {
        let unlisted: Vec<String> = pass
            .attempts
            .waiting
            .keys()
            .filter(|sid| !pass.attempts.settled.contains(*sid))
            .cloned()
            .collect();
        for sid in unlisted {
            pass.attempts.waiting.remove(&sid);
            self.store.delete_retry(&sid).await?;
        }
        Ok(())
    }

    async fn done_retrying(&self, pass: &mut Pass, sid: &str) -> Result<(), WatchError> {
        pass.attempts.settle(sid);
        if pass.attempts.waiting.remove(sid).is_some() {
            self.store.delete_retry(sid).await?;
        }
        Ok(())
    }

    /// Records `retry` for the next sync, before the page token moves past the file.
    async fn wait_for_retry(
        &self,
        pass: &mut Pass,
        sid: &str,
        retry: FileRetry,
    ) -> Result<(), WatchError> {
        self.store.put_retry(sid, &retry).await?;
        pass.attempts.waiting.insert(sid.to_string(), retry);
        Ok(())
    }
}
