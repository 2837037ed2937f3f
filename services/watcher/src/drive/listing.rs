//! Full listings: every file below the roots (the first sync, a change of roots, a relist, or
//! a folder that moved into scope), reconciled a few at a time; known files not found are
//! tombstoned.

use super::reconcile::Outcome;
use super::sync::Pass;
use super::{drive_error, DriveSource};
use crate::error::{WatchError, WatchErrorKind};
use futures::StreamExt;
use kb_core::display::clean;
use kb_drive::File;
use std::collections::{HashSet, VecDeque};

/// Files fetched at once; bounds memory to this many bodies.
const CONCURRENCY: usize = 4;

impl DriveSource {
    /// A root's metadata; a root that cannot be read is an error, never "everything deleted".
    pub(crate) async fn root_folder(&self, id: &str) -> Result<File, WatchError> {
        let meta = self.client.get_file(id).await.map_err(|e| {
            WatchError::with(
                WatchErrorKind::Io,
                format!("cannot read the watched Drive folder {}", clean(id)),
                e,
            )
        })?;
        if !meta.is_folder() {
            return Err(WatchError::new(
                WatchErrorKind::Invalid,
                format!(
                    "Drive item {} ({}) is not a folder",
                    clean(id),
                    clean(&meta.name)
                ),
            ));
        }
        Ok(meta)
    }

    pub(crate) async fn full_listing(&self, pass: &mut Pass) -> Result<(), WatchError> {
        let known = self.store.files().await?;
        let stored_folders = self.store.folders().await?;
        let mut seen = HashSet::new();
        for root in &self.roots {
            let meta = self.root_folder(root).await?;
            if meta.trashed {
                tracing::warn!(folder_id = %clean(root), "the watched Drive folder is in the trash");
                continue;
            }
            pass.scope.insert(root, &meta.name, None);
            if let Some(f) = pass.scope.folder(root).cloned() {
                self.store.put_folder(root, &f).await?;
            }
            self.list_subtree(root, pass, &mut seen, true).await?;
        }
        for (sid, e) in known {
            if e.value.is_gone() || seen.contains(&sid) {
                continue;
            }
            let r = self.tombstone(&e.value.file_id).await;
            self.settle_tombstone(pass, &e.value.file_id, e.value.path.clone(), r)
                .await?;
        }
        for id in stored_folders.keys().filter(|id| !pass.scope.contains(id)) {
            self.store.delete_folder(id).await?;
        }
        Ok(())
    }

    /// Lists `folder` and every folder below it, recording folders in scope (and, when
    /// `persist`, in KV) and reconciling every file found; their source ids go into `seen`.
    pub(crate) async fn list_subtree(
        &self,
        folder: &str,
        pass: &mut Pass,
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
                        pass.scope.insert(&f.id, &f.name, Some(&dir));
                        if persist {
                            if let Some(entry) = pass.scope.folder(&f.id).cloned() {
                                self.store.put_folder(&f.id, &entry).await?;
                            }
                        }
                        queue.push_back(f.id);
                    } else if let Some(path) = pass.scope.path_in(&dir, &f.name) {
                        seen.insert(self.source_id(&f.id));
                        jobs.push((f, dir.clone(), path));
                    }
                }
                let results: Vec<(File, String, String, Result<Outcome, WatchError>)> =
                    futures::stream::iter(jobs)
                        .map(|(f, parent, path)| async move {
                            let r = self.reconcile(&f, &parent, &path).await;
                            (f, parent, path, r)
                        })
                        .buffer_unordered(CONCURRENCY)
                        .collect()
                        .await;
                for (f, parent, path, r) in results {
                    self.settle(pass, &f, &parent, path, r).await?;
                }
                match page.next_page_token {
                    Some(t) if !t.is_empty() => token = Some(t),
                    _ => break,
                }
            }
        }
        Ok(())
    }
}
