//! Walking the watched folder: which files count (no hidden files, no editor temp files), and
//! their relative paths, sizes and modification times. Blocking; run it off the async runtime.

use crate::error::{WatchError, WatchErrorKind};
use std::fs::Metadata;
use std::path::{Component, Path, PathBuf};
use std::time::UNIX_EPOCH;
use walkdir::WalkDir;

/// A file the walk found.
#[derive(Debug, Clone)]
pub struct FoundFile {
    /// Relative to the root, '/' separated: the path the source id derives from.
    pub rel: String,
    /// What is read: the file, or the target a symbolic link was checked to lead to.
    pub abs: PathBuf,
    pub size: u64,
    pub modified_unix_ms: i64,
}

/// Everything found, plus the entries that could not be looked at (path, reason).
#[derive(Debug, Default)]
pub struct Walk {
    pub files: Vec<FoundFile>,
    pub errors: Vec<(String, String)>,
    /// Symbolic links to files outside the folder, not read (sorted relative paths).
    pub skipped_links: Vec<String>,
}

/// Hidden files and directories, and the temp files editors and office suites leave around
/// while saving (they would otherwise be published half-written and then deleted).
pub fn is_ignored(name: &str) -> bool {
    name.starts_with('.')
        || name.starts_with("~$")
        || name.ends_with('~')
        || [".swp", ".swo", ".swx", ".tmp"]
            .iter()
            .any(|ext| name.len() > ext.len() && name.to_ascii_lowercase().ends_with(ext))
}

/// True when any component of `rel` (relative to the root) is ignored.
pub fn is_ignored_path(rel: &Path) -> bool {
    rel.components().any(|c| match c {
        Component::Normal(n) => n.to_str().is_none_or(is_ignored),
        _ => false,
    })
}

/// `abs` relative to `root` with '/' separators; `None` when outside `root` or not UTF-8.
pub fn relative_path(root: &Path, abs: &Path) -> Option<String> {
    let rel = abs.strip_prefix(root).ok()?;
    let mut parts = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(n) => parts.push(n.to_str()?),
            _ => return None,
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

pub fn modified_unix_ms(meta: &Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Whether a symbolic link's target (canonical) may be read: inside the canonical root, or
/// anywhere with `follow_external`. A link to a private key elsewhere must not become
/// searchable (or be sent to a remote API) because someone linked it into the folder.
fn link_allowed(target: &Path, canonical_root: &Path, follow_external: bool) -> bool {
    follow_external || target.starts_with(canonical_root)
}

/// Whether the file last known at `rel` is still there as something a scan reads: a file, or
/// a link to one it may follow. `Ok(false)` means really gone (or no longer readable as a
/// source); an error means it cannot be told.
pub fn is_present(root: &Path, rel: &str, follow_external: bool) -> std::io::Result<bool> {
    let path = root.join(rel);
    let meta = match std::fs::symlink_metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_symlink() {
        return Ok(meta.is_file());
    }
    let target = match std::fs::canonicalize(&path) {
        Ok(t) => t,
        // Dangling.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    let root = std::fs::canonicalize(root)?;
    Ok(link_allowed(&target, &root, follow_external) && std::fs::metadata(&target)?.is_file())
}

/// Every file under `root`, recursively. Symbolic links to files count when they lead inside
/// the folder (anywhere with `follow_external`; the others are listed in
/// [`Walk::skipped_links`]); their target is what is read. Links to directories are not
/// followed (no loops, no escaping the folder).
pub fn walk(root: &Path, follow_external: bool) -> Result<Walk, WatchError> {
    match std::fs::metadata(root) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(WatchError::new(
                WatchErrorKind::Io,
                format!("{} is not a directory", root.display()),
            ))
        }
        Err(e) => {
            // Never read a missing folder as "every file was deleted".
            return Err(WatchError::with(
                WatchErrorKind::Io,
                format!("cannot read the watched folder {}", root.display()),
                e,
            ));
        }
    }
    let canonical_root = std::fs::canonicalize(root).map_err(|e| {
        WatchError::with(
            WatchErrorKind::Io,
            format!("cannot resolve the watched folder {}", root.display()),
            e,
        )
    })?;
    let mut out = Walk::default();
    let entries = WalkDir::new(root)
        .follow_links(false)
        .min_depth(1)
        .into_iter()
        // The root itself may well be hidden (e.g. a temp dir); only what is inside is filtered.
        .filter_entry(|e| e.depth() == 0 || !e.file_name().to_str().is_none_or(is_ignored));
    for entry in entries {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                let path = e
                    .path()
                    .map(|p| relative_path(root, p).unwrap_or_else(|| p.display().to_string()))
                    .unwrap_or_default();
                out.errors.push((path, e.to_string()));
                continue;
            }
        };
        let ft = entry.file_type();
        if ft.is_dir() {
            continue;
        }
        let shown = || {
            relative_path(root, entry.path()).unwrap_or_else(|| entry.path().display().to_string())
        };
        let (abs, meta) = if ft.is_symlink() {
            let target = match std::fs::canonicalize(entry.path()) {
                Ok(t) => t,
                Err(e) => {
                    out.errors.push((shown(), e.to_string()));
                    continue;
                }
            };
            let meta = std::fs::metadata(&target);
            if matches!(&meta, Ok(m) if m.is_file())
                && !link_allowed(&target, &canonical_root, follow_external)
            {
                out.skipped_links.push(shown());
                continue;
            }
            (target, meta)
        } else {
            let meta = entry.metadata().map_err(std::io::Error::from);
            (entry.path().to_path_buf(), meta)
        };
        let meta = match meta {
            Ok(m) if m.is_file() => m,
            // Links to directories, sockets, fifos.
            Ok(_) => continue,
            Err(e) => {
                out.errors.push((shown(), e.to_string()));
                continue;
            }
        };
        let Some(rel) = relative_path(root, entry.path()) else {
            out.errors.push((
                entry.path().display().to_string(),
                "path is not valid UTF-8".into(),
            ));
            continue;
        };
        out.files.push(FoundFile {
            rel,
            abs,
            size: meta.len(),
            modified_unix_ms: modified_unix_ms(&meta),
        });
    }
    out.skipped_links.sort();
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hidden_and_temp_files_are_ignored() {
        for name in [
            ".git",
            ".#notes.md",
            "notes.md~",
            ".notes.md.swp",
            "x.swp",
            "upload.TMP",
            "~$report.docx",
        ] {
            assert!(is_ignored(name), "{name}");
        }
        for name in ["notes.md", "tmp", "swp", "a~b.txt", "report.docx"] {
            assert!(!is_ignored(name), "{name}");
        }
        assert!(is_ignored_path(Path::new("a/.hidden/b.md")));
        assert!(!is_ignored_path(Path::new("a/b/c.md")));
    }

    #[test]
    fn walk_finds_nested_files_with_slash_paths_and_skips_ignored_ones() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("sub/deeper")).unwrap();
        std::fs::create_dir_all(root.join(".hidden")).unwrap();
        std::fs::write(root.join("a.md"), "a").unwrap();
        std::fs::write(root.join("sub/deeper/b.txt"), "bb").unwrap();
        std::fs::write(root.join(".hidden/c.md"), "c").unwrap();
        std::fs::write(root.join("sub/b.txt~"), "x").unwrap();
        let mut w = walk(root, false).unwrap();
        w.files.sort_by(|a, b| a.rel.cmp(&b.rel));
        let rels: Vec<_> = w.files.iter().map(|f| f.rel.as_str()).collect();
        assert_eq!(rels, ["a.md", "sub/deeper/b.txt"]);
        assert_eq!(w.files[1].size, 2);
        assert!(w.files[1].modified_unix_ms > 0);
        assert!(w.errors.is_empty());
    }

    #[test]
    fn links_outside_the_folder_are_skipped_unless_allowed_and_links_inside_kept() {
        use std::os::unix::fs::symlink;
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("id_rsa"), "secret").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/real.md"), "real").unwrap();
        symlink(root.join("sub/real.md"), root.join("inside.md")).unwrap();
        symlink("../sub/real.md", root.join("sub/relative.md")).unwrap();
        symlink(outside.path().join("id_rsa"), root.join("key.md")).unwrap();
        // A link to an inside link to the outside is outside too.
        symlink(root.join("key.md"), root.join("sub/chain.md")).unwrap();

        let w = walk(root, false).unwrap();
        let mut rels: Vec<_> = w.files.iter().map(|f| f.rel.as_str()).collect();
        rels.sort();
        assert_eq!(rels, ["inside.md", "sub/real.md", "sub/relative.md"]);
        assert_eq!(w.skipped_links, ["key.md", "sub/chain.md"]);
        assert!(w.errors.is_empty(), "{:?}", w.errors);
        assert!(is_present(root, "inside.md", false).unwrap());
        assert!(!is_present(root, "key.md", false).unwrap());
        assert!(!is_present(root, "gone.md", false).unwrap());

        let w = walk(root, true).unwrap();
        assert_eq!(w.files.len(), 5);
        assert!(w.skipped_links.is_empty());
        let key = w.files.iter().find(|f| f.rel == "key.md").unwrap();
        assert_eq!(std::fs::read(&key.abs).unwrap(), b"secret");
        assert!(is_present(root, "key.md", true).unwrap());
    }

    #[test]
    fn a_missing_root_is_an_error_not_an_empty_folder() {
        let dir = tempfile::tempdir().unwrap();
        let err = walk(&dir.path().join("gone"), false).unwrap_err();
        assert_eq!(err.kind, WatchErrorKind::Io);
    }

    #[test]
    fn relative_paths_stay_inside_the_root() {
        let root = Path::new("/data/inbox");
        assert_eq!(
            relative_path(root, Path::new("/data/inbox/x/y.md")).as_deref(),
            Some("x/y.md")
        );
        assert_eq!(relative_path(root, Path::new("/data/other/y.md")), None);
        assert_eq!(relative_path(root, root), None);
    }
}
