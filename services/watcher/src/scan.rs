//! Reconciling the folder with what was published: new and changed files become source events
//! with the next version, files gone since become tombstones, oversized files become failures.
//! Publishing always happens before the state write, so a crash in between republishes the
//! same version (absorbed by deduplication and last-writer-wins), never skips one.

use crate::error::{WatchError, WatchErrorKind};
use crate::state::WatchState;
use crate::walk::{self, FoundFile};
use futures::{StreamExt, TryStreamExt};
use kb_core::ids::source_id;
use kb_stream::{Publisher, Topology};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Telemetry and dead-letter stage name.
pub const STAGE: &str = "watcher";
/// Files handled at once; bounds memory to this many file bodies.
const CONCURRENCY: usize = 4;

/// One version of one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub source_id: String,
    pub version: u64,
    pub path: String,
}

/// What one scan did.
#[derive(Debug, Clone, Default)]
pub struct ScanReport {
    pub published: Vec<Published>,
    pub deleted: Vec<Published>,
    pub unchanged: usize,
    /// (path, reason): oversized files (reported once per change) and files that could not be
    /// read this time (retried next scan).
    pub failed: Vec<(String, String)>,
}

/// What happened to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileOutcome {
    Published(Published),
    /// Nothing new; the version the source is at.
    Unchanged(Published),
    /// The file cannot be processed (too large); the version that records the failure.
    Failed(Published, String),
}

pub(crate) enum Outcome {
    Published(Published),
    /// The current version and, when that version is a failure, its reason.
    Unchanged(Published, Option<String>),
    TooLarge(Published, String),
    Unreadable(String),
}

/// Reconciles one folder with the `kb_watch` state of one origin name.
#[derive(Clone)]
pub struct Scanner {
    pub(crate) publisher: Publisher,
    pub(crate) state: WatchState,
    pub(crate) origin: String,
    pub(crate) root: PathBuf,
    pub(crate) max_file_bytes: u64,
}

impl Scanner {
    /// `origin_name` prefixes the state keys; `origin` goes into every `SourceRef` and the ids.
    pub fn new(
        topo: &Topology,
        publisher: Publisher,
        origin_name: &str,
        origin: &str,
        root: PathBuf,
        max_file_bytes: u64,
    ) -> Self {
        Self {
            publisher,
            state: WatchState::new(topo.watch.clone(), origin_name),
            origin: origin.to_string(),
            root,
            max_file_bytes,
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn published(&self, source_id: &str, version: u64, path: &str) -> Published {
        Published {
            source_id: source_id.to_string(),
            version,
            path: path.to_string(),
        }
    }

    /// Full reconciliation of `root` (new, changed, deleted). Broker errors abort the scan
    /// (nothing is lost: the next scan redoes what is left); per-file problems are reported.
    pub async fn scan(&self) -> Result<ScanReport, WatchError> {
        let known = self.state.all().await?;
        let root = self.root.clone();
        let walked = tokio::task::spawn_blocking(move || walk::walk(&root))
            .await
            .map_err(|e| WatchError::with(WatchErrorKind::Io, "the folder walk crashed", e))??;
        let mut report = ScanReport {
            failed: walked.errors,
            ..Default::default()
        };
        let mut seen = HashSet::new();
        let mut jobs = Vec::with_capacity(walked.files.len());
        for file in walked.files {
            let sid = source_id(&self.origin, &file.rel);
            seen.insert(sid.clone());
            let prev = known.get(&sid).cloned();
            jobs.push(async move {
                let outcome = self.reconcile(&sid, &file, prev).await;
                (file.rel, outcome)
            });
        }
        let results: Vec<(String, Outcome)> = futures::stream::iter(jobs)
            .buffer_unordered(CONCURRENCY)
            .map(|(path, r)| match r {
                Ok(o) => Ok((path, o)),
                Err(e) if e.kind == WatchErrorKind::Transient => Err(e),
                Err(e) => Ok((path, Outcome::Unreadable(e.to_string()))),
            })
            .try_collect()
            .await?;
        for (path, outcome) in results {
            match outcome {
                Outcome::Published(p) => report.published.push(p),
                Outcome::Unchanged(..) => report.unchanged += 1,
                Outcome::TooLarge(_, reason) | Outcome::Unreadable(reason) => {
                    report.failed.push((path, reason))
                }
            }
        }
        for (sid, stored) in known {
            if stored.state.deleted || seen.contains(&sid) {
                continue;
            }
            let path = stored.state.path.clone();
            match self.delete_if_gone(&sid, Some(stored)).await {
                Ok(Some(p)) => report.deleted.push(p),
                Ok(None) => {}
                Err(e) if e.kind == WatchErrorKind::Transient => return Err(e),
                Err(e) => report.failed.push((path, e.to_string())),
            }
        }
        report.published.sort_by(|a, b| a.path.cmp(&b.path));
        report.deleted.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(report)
    }

    /// One file, by path (no delete detection); used by `kb ingest`. The file must be inside
    /// the root; relative paths are taken from the current directory.
    pub async fn publish_file(&self, abs_path: &Path) -> Result<FileOutcome, WatchError> {
        let io =
            |what: String| move |e: std::io::Error| WatchError::with(WatchErrorKind::Io, what, e);
        let root = tokio::fs::canonicalize(&self.root)
            .await
            .map_err(io(format!(
                "cannot read the folder {}",
                self.root.display()
            )))?;
        let abs = std::path::absolute(abs_path)
            .map_err(io(format!("cannot resolve {}", abs_path.display())))?;
        let (Some(parent), Some(name)) = (abs.parent(), abs.file_name()) else {
            return Err(WatchError::new(
                WatchErrorKind::Invalid,
                format!("{} is not a file path", abs.display()),
            ));
        };
        // Resolve the directory (symlinked roots, `..`), not the file: a link stays a link.
        let full = tokio::fs::canonicalize(parent)
            .await
            .map_err(io(format!("cannot read {}", parent.display())))?
            .join(name);
        let rel = walk::relative_path(&root, &full).ok_or_else(|| {
            WatchError::new(
                WatchErrorKind::Invalid,
                format!(
                    "{} is not a UTF-8 path inside {}",
                    full.display(),
                    root.display()
                ),
            )
        })?;
        let meta = tokio::fs::metadata(&full)
            .await
            .map_err(io(format!("cannot read {}", full.display())))?;
        if !meta.is_file() {
            return Err(WatchError::new(
                WatchErrorKind::Invalid,
                format!("{} is not a file", full.display()),
            ));
        }
        let file = FoundFile {
            rel,
            abs: full,
            size: meta.len(),
            modified_unix_ms: walk::modified_unix_ms(&meta),
        };
        let sid = source_id(&self.origin, &file.rel);
        let prev = self.state.get(&sid).await?;
        match self.reconcile(&sid, &file, prev).await? {
            Outcome::Published(p) => Ok(FileOutcome::Published(p)),
            Outcome::Unchanged(p, None) => Ok(FileOutcome::Unchanged(p)),
            Outcome::Unchanged(p, Some(reason)) | Outcome::TooLarge(p, reason) => {
                Ok(FileOutcome::Failed(p, reason))
            }
            Outcome::Unreadable(reason) => Err(WatchError::new(
                WatchErrorKind::Io,
                format!("cannot read {}: {reason}", file.abs.display()),
            )),
        }
    }
}
