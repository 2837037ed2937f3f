//! One sync of the Drive source: a full listing when there is no cursor for these roots or a
//! relist is due, else the changes feed from the saved page token, page by page; then the
//! files waiting for another attempt. The token is saved after every file of its page is
//! recorded (published, unchanged, FAILED, or waiting for another attempt); applying a page
//! again is harmless (every decision compares with the state).

use super::reconcile::Outcome;
use super::retry::Attempts;
use super::state::Cursor;
use super::{drive_error, DriveSource, Failure, SyncReport};
use crate::error::{WatchError, WatchErrorKind};
use kb_drive::Scope;
use kb_stream::progress::now_ms;
use std::collections::HashSet;

/// What one sync (or ingest) carries along: the folders in scope, what happened so far, and
/// the attempts of files that failed before.
pub(crate) struct Pass {
    pub scope: Scope,
    pub report: SyncReport,
    pub attempts: Attempts,
}

impl SyncReport {
    /// Files a result into the report. Errors the broker or Drive may recover from abort the
    /// sync (it is redone from the same point); others are reported for this file.
    pub(crate) fn record(
        &mut self,
        path: String,
        r: Result<Outcome, WatchError>,
    ) -> Result<(), WatchError> {
        match r {
            Ok(Outcome::Published(p)) => self.published.push(p),
            Ok(Outcome::Unchanged(p, failure)) => self.unchanged.push((p, failure)),
            Ok(Outcome::Failed(p, reason)) => self.failed.push(Failure {
                path,
                reason,
                version: Some(p),
            }),
            Ok(Outcome::Skipped(why)) => self.skipped.push((path, why.to_string())),
            Ok(Outcome::Vanished) => {}
            Err(e) if e.kind == WatchErrorKind::Transient => return Err(e),
            Err(e) => self.failed.push(Failure {
                path,
                reason: e.to_string(),
                version: None,
            }),
        }
        Ok(())
    }
}

impl DriveSource {
    /// Brings the mirror up to date with Drive: everything on the first run (after the roots
    /// changed, and every `relist_secs`), the changes since the saved page token otherwise;
    /// then every file waiting for another attempt.
    pub async fn sync(&self) -> Result<SyncReport, WatchError> {
        let attempts = Attempts::load(&self.store, self.max_file_attempts).await?;
        let mut pass = Pass {
            scope: Scope::new(self.roots.clone()),
            report: SyncReport::default(),
            attempts,
        };
        let now = now_ms();
        match self.store.cursor().await? {
            Some(c) if c.value.roots == self.roots && !self.relist_due(&c.value, now) => {
                for (id, f) in self.store.folders().await? {
                    pass.scope.insert(&id, &f.name, f.parent.as_deref());
                }
                // Entries cut off from a root (a crash between folder writes) are relisted
                // when their folder next changes; they must not count as in scope meanwhile.
                pass.scope.prune_detached();
                // Boxed: a sync is a deep future, kept off the caller's stack.
                Box::pin(self.follow_changes(c.value, c.revision, &mut pass)).await?;
                Box::pin(self.retry_waiting(&mut pass)).await?;
            }
            previous => {
                // Taken before listing, so nothing changed during the listing is missed.
                let token = self.client.start_page_token().await.map_err(drive_error)?;
                Box::pin(self.full_listing(&mut pass)).await?;
                // What the listing did not find is out of scope: nothing left to retry.
                self.forget_unlisted(&mut pass).await?;
                let cursor = Cursor {
                    roots: self.roots.clone(),
                    page_token: token,
                    listed_unix_ms: now,
                };
                self.store
                    .put_cursor(&cursor, previous.map(|p| p.revision))
                    .await?;
                pass.report.full_listing = true;
            }
        }
        pass.report.retried = pass.attempts.retried();
        Ok(pass.report)
    }

    /// Whether the full listing that repairs what the changes feed missed is due.
    fn relist_due(&self, cursor: &Cursor, now: i64) -> bool {
        now.saturating_sub(cursor.listed_unix_ms) >= self.relist_ms
    }

    /// `kb ingest --drive`: lists `folder_ids` recursively and publishes what is new or
    /// changed, sharing the file state (and so the version reservations) with the watcher; no
    /// tombstones, no cursor, no attempts counted (failures are reported).
    pub async fn ingest(&self, folder_ids: &[String]) -> Result<SyncReport, WatchError> {
        let mut pass = Pass {
            scope: Scope::new(folder_ids.iter().cloned()),
            report: SyncReport::default(),
            attempts: Attempts::off(),
        };
        let mut seen = HashSet::new();
        for root in folder_ids {
            let meta = self.root_folder(root).await?;
            pass.scope.insert(root, &meta.name, None);
            Box::pin(self.list_subtree(root, &mut pass, &mut seen, false)).await?;
        }
        Ok(pass.report)
    }

    async fn follow_changes(
        &self,
        mut cursor: Cursor,
        mut revision: u64,
        pass: &mut Pass,
    ) -> Result<(), WatchError> {
        loop {
            let page = self
                .client
                .list_changes(&cursor.page_token)
                .await
                .map_err(drive_error)?;
            for change in &page.changes {
                pass.report.changes += 1;
                self.apply_change(change, pass).await?;
            }
            let (next, last) = match (page.next_page_token, page.new_start_page_token) {
                (Some(next), _) => (next, false),
                (None, Some(start)) => (start, true),
                // The client refuses such pages; kept total rather than trusted.
                (None, None) => return Ok(()),
            };
            if next != cursor.page_token {
                // Every file of the page is recorded by now, failures included.
                cursor.page_token = next;
                revision = self.store.put_cursor(&cursor, Some(revision)).await?;
            }
            if last {
                return Ok(());
            }
        }
    }
}
