//! One sync of the Drive source: a full listing when there is no cursor for these roots, else
//! the changes feed from the saved page token, page by page. The token is saved after its page
//! is applied; applying a page again is harmless (every decision compares with the state).

use super::reconcile::Outcome;
use super::state::Cursor;
use super::{drive_error, DriveSource, Failure, SyncReport};
use crate::error::{WatchError, WatchErrorKind};
use futures::StreamExt;
use kb_drive::{Change, File, Scope};
use std::collections::{BTreeSet, HashSet, VecDeque};

/// Files fetched at once; bounds memory to this many bodies.
const CONCURRENCY: usize = 4;

impl SyncReport {
    /// Files a result into the report. Errors the broker or Drive may recover from abort the
    /// sync (it is redone from the same point); others are reported for this file.
    fn record(&mut self, path: String, r: Result<Outcome, WatchError>) -> Result<(), WatchError> {
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
    /// Brings the mirror up to date with Drive: everything on the first run (or after the
    /// roots changed), the changes since the saved page token afterwards.
    pub async fn sync(&self) -> Result<SyncReport, WatchError> {
        let mut report = SyncReport::default();
        let mut scope = Scope::new(self.roots.clone());
        match self.store.cursor().await? {
            Some(c) if c.value.roots == self.roots => {
                for (id, f) in self.store.folders().await? {
                    scope.insert(&id, &f.name, f.parent.as_deref());
                }
                // Entries cut off from a root (a crash between folder writes) are relisted
                // when their folder next changes; they must not count as in scope meanwhile.
                scope.prune_detached();
                self.follow_changes(c.value.page_token, c.revision, &mut scope, &mut report)
                    .await?;
            }
            previous => {
                // Taken before listing, so nothing changed during the listing is missed.
                let token = self.client.start_page_token().await.map_err(drive_error)?;
                self.full_listing(&mut scope, &mut report).await?;
                let cursor = Cursor {
                    roots: self.roots.clone(),
                    page_token: token,
                };
                self.store
                    .put_cursor(&cursor, previous.map(|p| p.revision))
                    .await?;
                report.full_listing = true;
            }
        }
        Ok(report)
    }

    /// `kb ingest --drive`: lists `folder_ids` recursively and publishes what is new or
    /// changed, sharing the file state with the watcher; no tombstones, no cursor.
    pub async fn ingest(&self, folder_ids: &[String]) -> Result<SyncReport, WatchError> {
        let mut report = SyncReport::default();
        let mut scope = Scope::new(folder_ids.iter().cloned());
        let mut seen = HashSet::new();
        for root in folder_ids {
            let meta = self.root_folder(root).await?;
            scope.insert(root, &meta.name, None);
            self.list_subtree(root, &mut scope, &mut report, &mut seen, false)
                .await?;
        }
        Ok(report)
    }

    /// A root's metadata; a root that cannot be read is an error, never "everything deleted".
    async fn root_folder(&self, id: &str) -> Result<File, WatchError> {
        let meta = self.client.get_file(id).await.map_err(|e| {
            WatchError::with(
                WatchErrorKind::Io,
                format!("cannot read the watched Drive folder {id}"),
                e,
            )
        })?;
        if !meta.is_folder() {
            return Err(WatchError::new(
                WatchErrorKind::Invalid,
                format!("Drive item {id} ({}) is not a folder", meta.name),
            ));
        }
        Ok(meta)
    }

    async fn full_listing(
        &self,
        scope: &mut Scope,
        report: &mut SyncReport,
    ) -> Result<(), WatchError> {
        let known = self.store.files().await?;
        let stored_folders = self.store.folders().await?;
        let mut seen = HashSet::new();
        for root in &self.roots {
            let meta = self.root_folder(root).await?;
            if meta.trashed {
                tracing::warn!(folder_id = %root, "the watched Drive folder is in the trash");
                continue;
            }
            scope.insert(root, &meta.name, None);
            if let Some(f) = scope.folder(root).cloned() {
                self.store.put_folder(root, &f).await?;
            }
            self.list_subtree(root, scope, report, &mut seen, true)
                .await?;
        }
        for (sid, e) in known {
            if e.value.deleted || seen.contains(&sid) {
                continue;
            }
            match self.tombstone(&e.value.file_id).await {
                Ok(Some(p)) => report.deleted.push(p),
                Ok(None) => {}
                Err(err) => report.record(e.value.path.clone(), Err(err))?,
            }
        }
        for id in stored_folders.keys().filter(|id| !scope.contains(id)) {
            self.store.delete_folder(id).await?;
        }
        Ok(())
    }

    /// Lists `folder` and every folder below it, recording folders in `scope` (and, when
    /// `persist`, in KV) and reconciling every file found; their source ids go into `seen`.
    async fn list_subtree(
        &self,
        folder: &str,
        scope: &mut Scope,
        report: &mut SyncReport,
        seen: &mut HashSet<String>,
        persist: bool,
    ) -> Result<(), WatchError> {
        let mut queue = VecDeque::from([folder.to_string()]);
        let mut visited = HashSet::new();
        while let Some(dir) = queue.pop_front() {
            // An item with several parents must not be walked twice.
            if !visited.insert(dir.clone()) {
                continue;
            }
            let mut token: Option<String> = None;
            loop {
                let page = self
                    .client
                    .list_children(&dir, token.as_deref())
                    .await
                    .map_err(drive_error)?;
                let mut jobs = Vec::new();
                for f in page.files.into_iter().filter(|f| !f.trashed) {
                    if f.is_folder() {
                        scope.insert(&f.id, &f.name, Some(&dir));
                        if persist {
                            if let Some(entry) = scope.folder(&f.id).cloned() {
                                self.store.put_folder(&f.id, &entry).await?;
                            }
                        }
                        queue.push_back(f.id);
                    } else if let Some(path) = scope.path_in(&dir, &f.name) {
                        seen.insert(self.source_id(&f.id));
                        jobs.push((f, dir.clone(), path));
                    }
                }
                let results: Vec<(String, Result<Outcome, WatchError>)> =
                    futures::stream::iter(jobs)
                        .map(|(f, parent, path)| async move {
                            let r = self.reconcile(&f, &parent, &path).await;
                            (path, r)
                        })
                        .buffer_unordered(CONCURRENCY)
                        .collect()
                        .await;
                for (path, r) in results {
                    report.record(path, r)?;
                }
                match page.next_page_token {
                    Some(t) if !t.is_empty() => token = Some(t),
                    _ => break,
                }
            }
        }
        Ok(())
    }

    async fn follow_changes(
        &self,
        mut token: String,
        mut revision: u64,
        scope: &mut Scope,
        report: &mut SyncReport,
    ) -> Result<(), WatchError> {
        loop {
            let page = self
                .client
                .list_changes(&token)
                .await
                .map_err(drive_error)?;
            for change in &page.changes {
                report.changes += 1;
                self.apply_change(change, scope, report).await?;
            }
            let (next, last) = match (page.next_page_token, page.new_start_page_token) {
                (Some(next), _) => (next, false),
                (None, Some(start)) => (start, true),
                // The client refuses such pages; kept total rather than trusted.
                (None, None) => return Ok(()),
            };
            if next != token {
                let cursor = Cursor {
                    roots: self.roots.clone(),
                    page_token: next.clone(),
                };
                revision = self.store.put_cursor(&cursor, Some(revision)).await?;
            }
            token = next;
            if last {
                return Ok(());
            }
        }
    }

    async fn apply_change(
        &self,
        change: &Change,
        scope: &mut Scope,
        report: &mut SyncReport,
    ) -> Result<(), WatchError> {
        if change.change_type == "drive" {
            return Ok(());
        }
        let file = change.file.as_ref().filter(|_| !change.removed);
        let Some(id) = change.file_id.as_deref().or(file.map(|f| f.id.as_str())) else {
            return Ok(());
        };
        match file {
            None if scope.contains(id) => self.folder_left(id, scope, report).await,
            None => {
                if let Some(p) = self.tombstone(id).await? {
                    report.deleted.push(p);
                }
                Ok(())
            }
            Some(f) if f.is_folder() => self.folder_changed(f, scope, report).await,
            Some(f) => self.file_changed(f, scope, report).await,
        }
    }

    async fn file_changed(
        &self,
        f: &File,
        scope: &Scope,
        report: &mut SyncReport,
    ) -> Result<(), WatchError> {
        let place = scope
            .parent_in_scope(f)
            .filter(|_| !f.trashed)
            .and_then(|parent| Some((parent, scope.path_in(parent, &f.name)?)));
        match place {
            Some((parent, path)) => {
                let r = self.reconcile(f, parent, &path).await;
                report.record(path, r)
            }
            // Trashed, or moved out of scope (or never in it): gone from the mirror.
            None => {
                if let Some(p) = self.tombstone(&f.id).await? {
                    report.deleted.push(p);
                }
                Ok(())
            }
        }
    }

    async fn folder_changed(
        &self,
        f: &File,
        scope: &mut Scope,
        report: &mut SyncReport,
    ) -> Result<(), WatchError> {
        if !scope.folder_belongs(f) {
            if scope.contains(&f.id) {
                return self.folder_left(&f.id, scope, report).await;
            }
            return Ok(());
        }
        let parent = if scope.is_root(&f.id) {
            None
        } else {
            scope.parent_in_scope(f).map(str::to_string)
        };
        let before = scope.folder(&f.id).cloned();
        scope.insert(&f.id, &f.name, parent.as_deref());
        let now = scope.folder(&f.id).cloned();
        if before == now {
            return Ok(());
        }
        // New in scope, renamed or moved: every path below it may be new.
        if let Some(entry) = now {
            self.store.put_folder(&f.id, &entry).await?;
        }
        let mut seen = HashSet::new();
        self.list_subtree(&f.id, scope, report, &mut seen, true)
            .await
    }

    /// A folder left the scope (trashed, deleted, moved out): every file below it goes.
    async fn folder_left(
        &self,
        id: &str,
        scope: &mut Scope,
        report: &mut SyncReport,
    ) -> Result<(), WatchError> {
        let gone: BTreeSet<String> = scope.remove_subtree(id);
        for (_, e) in self.store.files().await? {
            if e.value.deleted || !gone.contains(&e.value.parent) {
                continue;
            }
            match self.tombstone(&e.value.file_id).await {
                Ok(Some(p)) => report.deleted.push(p),
                Ok(None) => {}
                Err(err) => report.record(e.value.path.clone(), Err(err))?,
            }
        }
        // Folder entries go last: a crash before this point redoes the tombstones.
        for g in &gone {
            self.store.delete_folder(g).await?;
        }
        Ok(())
    }
}
