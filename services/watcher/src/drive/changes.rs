//! Applying one entry of the Drive changes feed: a file changed, moved or left; a folder
//! entered, moved or left the scope (taking everything below it along).

use super::sync::Pass;
use super::DriveSource;
use crate::error::WatchError;
use kb_drive::{Change, File};
use std::collections::{BTreeSet, HashSet};

impl DriveSource {
    pub(crate) async fn apply_change(
        &self,
        change: &Change,
        pass: &mut Pass,
    ) -> Result<(), WatchError> {
        if change.change_type == "drive" {
            return Ok(());
        }
        let file = change.file.as_ref().filter(|_| !change.removed);
        let Some(id) = change.file_id.as_deref().or(file.map(|f| f.id.as_str())) else {
            return Ok(());
        };
        match file {
            None if pass.scope.contains(id) => self.folder_left(id, pass).await,
            None => {
                let r = self.tombstone(id).await;
                self.settle_tombstone(pass, id, id.to_string(), r).await
            }
            Some(f) if f.is_folder() => self.folder_changed(f, pass).await,
            Some(f) => self.file_changed(f, pass).await,
        }
    }

    /// A file's new metadata: reconciled where it now is in scope, tombstoned when it left.
    pub(crate) async fn file_changed(&self, f: &File, pass: &mut Pass) -> Result<(), WatchError> {
        let place = pass
            .scope
            .parent_in_scope(f)
            .filter(|_| !f.trashed)
            .and_then(|parent| Some((parent, pass.scope.path_in(parent, &f.name)?)));
        match place {
            Some((parent, path)) => {
                let r = self.reconcile(f, parent, &path).await;
                self.settle(pass, f, parent, path, r).await
            }
            // Trashed, or moved out of scope (or never in it): gone from the mirror.
            None => {
                let r = self.tombstone(&f.id).await;
                self.settle_tombstone(pass, &f.id, f.name.clone(), r).await
            }
        }
    }

    async fn folder_changed(&self, f: &File, pass: &mut Pass) -> Result<(), WatchError> {
        if !pass.scope.folder_belongs(f) {
            if pass.scope.contains(&f.id) {
                return self.folder_left(&f.id, pass).await;
            }
            return Ok(());
        }
        let parent = if pass.scope.is_root(&f.id) {
            None
        } else {
            pass.scope.parent_in_scope(f).map(str::to_string)
        };
        let before = pass.scope.folder(&f.id).cloned();
        pass.scope.insert(&f.id, &f.name, parent.as_deref());
        let now = pass.scope.folder(&f.id).cloned();
        if before == now {
            return Ok(());
        }
        // New in scope, renamed or moved: every path below it may be new.
        if let Some(entry) = now {
            self.store.put_folder(&f.id, &entry).await?;
        }
        let mut seen = HashSet::new();
        Box::pin(self.list_subtree(&f.id, pass, &mut seen, true)).await
    }

    /// A folder left the scope (trashed, deleted, moved out): every file below it goes.
    async fn folder_left(&self, id: &str, pass: &mut Pass) -> Result<(), WatchError> {
        let gone: BTreeSet<String> = pass.scope.remove_subtree(id);
        for (_, e) in self.store.files().await? {
            if e.value.is_gone() || !gone.contains(&e.value.parent) {
                continue;
            }
            let r = self.tombstone(&e.value.file_id).await;
            self.settle_tombstone(pass, &e.value.file_id, e.value.path.clone(), r)
                .await?;
        }
        // Folder entries go last: a crash before this point redoes the tombstones.
        for g in &gone {
            self.store.delete_folder(g).await?;
        }
        Ok(())
    }
}
