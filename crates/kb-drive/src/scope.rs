//! Which files are watched: everything below one or more root folders. The tree of folders in
//! scope (id, name, parent) decides membership through the parents chain and gives each file a
//! readable path relative to its root.

use crate::model::File;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A folder known to be in scope. Roots have no parent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Folder {
    pub name: String,
    pub parent: Option<String>,
}

/// Longest parents chain followed; guards against cycles in damaged state.
const MAX_DEPTH: usize = 256;

#[derive(Debug, Clone, Default)]
pub struct Scope {
    roots: BTreeSet<String>,
    folders: BTreeMap<String, Folder>,
}

impl Scope {
    pub fn new(roots: impl IntoIterator<Item = String>) -> Self {
        Self {
            roots: roots.into_iter().collect(),
            folders: BTreeMap::new(),
        }
    }

    pub fn roots(&self) -> impl Iterator<Item = &str> {
        self.roots.iter().map(String::as_str)
    }

    pub fn is_root(&self, id: &str) -> bool {
        self.roots.contains(id)
    }

    /// Whether `id` is a folder in scope (an active root or a folder below one).
    pub fn contains(&self, id: &str) -> bool {
        self.folders.contains_key(id)
    }

    pub fn folder(&self, id: &str) -> Option<&Folder> {
        self.folders.get(id)
    }

    pub fn folders(&self) -> impl Iterator<Item = (&str, &Folder)> {
        self.folders.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn len(&self) -> usize {
        self.folders.len()
    }

    pub fn is_empty(&self) -> bool {
        self.folders.is_empty()
    }

    /// Records a folder. Roots are recorded without a parent.
    pub fn insert(&mut self, id: &str, name: &str, parent: Option<&str>) {
        let parent = if self.is_root(id) {
            None
        } else {
            parent.map(str::to_string)
        };
        self.folders.insert(
            id.to_string(),
            Folder {
                name: name.to_string(),
                parent,
            },
        );
    }

    /// The first of a file's parents that is in scope.
    pub fn parent_in_scope<'a>(&self, file: &'a File) -> Option<&'a str> {
        file.parents
            .iter()
            .map(String::as_str)
            .find(|p| self.contains(p))
    }

    /// Whether a (non-trashed) folder belongs in scope as it is now.
    pub fn folder_belongs(&self, folder: &File) -> bool {
        !folder.trashed && (self.is_root(&folder.id) || self.parent_in_scope(folder).is_some())
    }

    /// Path of a folder relative to its root ("" for a root), '/' separated.
    pub fn folder_path(&self, id: &str) -> Option<String> {
        let mut parts = Vec::new();
        let mut cur = id;
        for _ in 0..MAX_DEPTH {
            let f = self.folders.get(cur)?;
            match &f.parent {
                None => {
                    parts.reverse();
                    return Some(parts.join("/"));
                }
                Some(p) => {
                    parts.push(f.name.as_str());
                    cur = p;
                }
            }
        }
        None
    }

    /// `name` placed in folder `parent`: its path relative to the root.
    pub fn path_in(&self, parent: &str, name: &str) -> Option<String> {
        let dir = self.folder_path(parent)?;
        // A '/' inside a Drive name would read as a folder boundary.
        let name = name.replace('/', "_");
        Some(if dir.is_empty() {
            name
        } else {
            format!("{dir}/{name}")
        })
    }

    /// The folder and every folder below it.
    pub fn subtree(&self, id: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        if !self.contains(id) {
            return out;
        }
        out.insert(id.to_string());
        // Folders are few; repeated passes keep this simple and cycle-proof.
        loop {
            let before = out.len();
            for (fid, f) in &self.folders {
                if f.parent.as_ref().is_some_and(|p| out.contains(p)) {
                    out.insert(fid.clone());
                }
            }
            if out.len() == before {
                return out;
            }
        }
    }

    /// Removes a folder and everything below it; returns the removed ids.
    pub fn remove_subtree(&mut self, id: &str) -> BTreeSet<String> {
        let gone = self.subtree(id);
        for g in &gone {
            self.folders.remove(g);
        }
        gone
    }

    /// Drops folders whose chain no longer reaches a root (after a removal elsewhere).
    pub fn prune_detached(&mut self) -> Vec<String> {
        let detached: Vec<String> = self
            .folders
            .keys()
            .filter(|id| self.folder_path(id).is_none())
            .cloned()
            .collect();
        for d in &detached {
            self.folders.remove(d);
        }
        detached
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> Scope {
        let mut s = Scope::new(["root".to_string()]);
        s.insert("root", "Inbox", None);
        s.insert("a", "Alpha", Some("root"));
        s.insert("b", "Beta", Some("a"));
        s
    }

    #[test]
    fn paths_are_relative_to_the_root() {
        let s = scope();
        assert_eq!(s.folder_path("root").as_deref(), Some(""));
        assert_eq!(s.path_in("b", "x.txt").as_deref(), Some("Alpha/Beta/x.txt"));
        assert_eq!(s.path_in("root", "a/b.md").as_deref(), Some("a_b.md"));
        assert_eq!(s.path_in("elsewhere", "x"), None);
    }

    #[test]
    fn membership_follows_the_parents_chain() {
        let s = scope();
        let f = File {
            id: "f".into(),
            parents: vec!["other".into(), "b".into()],
            ..Default::default()
        };
        assert_eq!(s.parent_in_scope(&f), Some("b"));
        let trashed = File {
            id: "c".into(),
            parents: vec!["a".into()],
            trashed: true,
            ..Default::default()
        };
        assert!(!s.folder_belongs(&trashed));
    }

    #[test]
    fn removing_a_folder_removes_its_subtree() {
        let mut s = scope();
        let gone = s.remove_subtree("a");
        assert_eq!(gone.into_iter().collect::<Vec<_>>(), ["a", "b"]);
        assert!(s.contains("root") && !s.contains("b"));
    }

    #[test]
    fn cycles_do_not_hang() {
        let mut s = Scope::new(["root".to_string()]);
        s.insert("x", "X", Some("y"));
        s.insert("y", "Y", Some("x"));
        assert_eq!(s.folder_path("x"), None);
        assert_eq!(s.prune_detached().len(), 2);
    }
}
