//! Reconciling the folder with what was published: new and changed files become source events
//! with the next version, files gone since become tombstones (unless a mass deletion is held:
//! [`crate::hold`]), oversized files become failures, links out of the folder are skipped.
//! Every version is reserved in the state before it is published and confirmed after
//! ([`crate::reconcile`]), so a crash in between publishes the same change again under the
//! same version (absorbed by deduplication), never other content under it.

use crate::error::{WatchError, WatchErrorKind};
use crate::hold::{self, MassDelete};
use crate::notice::Notices;
use crate::state::{Stored, WatchState};
use crate::walk::{self, FoundFile};
use futures::{StreamExt, TryStreamExt};
use kb_core::display::clean;
use kb_core::ids::source_id;
use kb_core::settings::WatcherSettings;
use kb_stream::{Publisher, Topology};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// Telemetry and dead-letter stage name.
pub const STAGE: kb_stream::Stage = kb_stream::Stage::Watcher;
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
    /// Gone files whose deletion is held (a mass deletion waiting for a confirmation).
    pub held: Vec<String>,
    /// Symbolic links leading outside the folder, not read.
    pub skipped_links: Vec<String>,
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
    /// The version and the content hash published.
    Published(Published, String),
    /// The current version and, when that version is a failure, its reason.
    Unchanged(Published, Option<String>),
    TooLarge(Published, String),
    Unreadable(String),
}

/// What a scan refuses to do without being told (from the `[watcher]` settings).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Policy {
    pub mass_delete: MassDelete,
    /// Read files that symbolic links lead to outside the folder.
    pub follow_external_symlinks: bool,
}

impl From<&WatcherSettings> for Policy {
    fn from(s: &WatcherSettings) -> Self {
        Self {
            mass_delete: MassDelete::from(s),
            follow_external_symlinks: s.follow_external_symlinks,
        }
    }
}

/// The alert kind of skipped links.
pub const LINKS_ALERT: &str = "external_links";
/// Paths an alert lists at most.
const ALERT_PATHS: usize = 50;

/// Reconciles one folder with the `kb_watch` state of one origin name.
#[derive(Clone)]
pub struct Scanner {
    pub(crate) publisher: Publisher,
    pub(crate) state: WatchState,
    /// The origin name: state keys, alerts and confirmations are under it.
    pub(crate) name: String,
    pub(crate) origin: String,
    pub(crate) root: PathBuf,
    pub(crate) max_file_bytes: u64,
    pub(crate) policy: Policy,
    notices: Notices,
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
            name: origin_name.to_string(),
            origin: origin.to_string(),
            root,
            max_file_bytes,
            policy: Policy::default(),
            notices: Notices::default(),
        }
    }

    /// The same scanner with `policy` (the default: the settings' defaults).
    pub fn with_policy(self, policy: Policy) -> Self {
        Self { policy, ..self }
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
        let follow = self.policy.follow_external_symlinks;
        let walked = tokio::task::spawn_blocking(move || walk::walk(&root, follow))
            .await
            .map_err(|e| WatchError::with(WatchErrorKind::Io, "the folder walk crashed", e))??;
        let mut report = ScanReport {
            failed: walked.errors,
            skipped_links: walked.skipped_links,
            ..Default::default()
        };
        self.report_links(&report.skipped_links).await;
        let mut seen = HashSet::new();
        let mut jobs = Vec::with_capacity(walked.files.len());
        for file in walked.files {
            let sid = source_id(&self.origin, &file.rel);
            seen.insert(sid.clone());
            let prev = known.get(&sid).cloned();
            jobs.push(async move {
                let outcome = self.reconcile(&sid, &file, prev).await;
                (sid, file.rel, outcome)
            });
        }
        let results: Vec<(String, String, Outcome)> = futures::stream::iter(jobs)
            .buffer_unordered(CONCURRENCY)
            .map(|(sid, path, r)| match r {
                Ok(o) => Ok((sid, path, o)),
                Err(e) if e.kind == WatchErrorKind::Transient => Err(e),
                Err(e) => Ok((sid, path, Outcome::Unreadable(e.to_string()))),
            })
            .try_collect()
            .await?;
        // The contents still in the folder: a gone file whose content is one of them moved.
        let mut present = HashSet::new();
        for (sid, path, outcome) in results {
            match outcome {
                Outcome::Published(p, hash) => {
                    present.insert(hash);
                    report.published.push(p)
                }
                Outcome::Unchanged(..) => {
                    if let Some(s) = known.get(&sid) {
                        present.insert(s.state.content_hash.clone());
                    }
                    report.unchanged += 1
                }
                Outcome::TooLarge(_, reason) | Outcome::Unreadable(reason) => {
                    report.failed.push((path, reason))
                }
            }
        }
        present.remove("");
        self.delete_gone(known, &seen, &present, &mut report)
            .await?;
        report.published.sort_by(|a, b| a.path.cmp(&b.path));
        report.deleted.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(report)
    }

    /// Tombstones the known sources not `seen` that are really gone, holding a mass deletion
    /// (see [`crate::hold`]) unless it is confirmed or allowed.
    async fn delete_gone(
        &self,
        known: HashMap<String, Stored>,
        seen: &HashSet<String>,
        present: &HashSet<String>,
        report: &mut ScanReport,
    ) -> Result<(), WatchError> {
        let live: Vec<&str> = known
            .values()
            .filter(|s| !s.state.deleted)
            .map(|s| s.state.path.as_str())
            .collect();
        let mut gone = Vec::new();
        let mut unconfirmed = Vec::new();
        for (sid, stored) in &known {
            if seen.contains(sid) {
                continue;
            }
            if stored.state.deleted {
                // A tombstone reserved by a scan that stopped before confirming it: decided.
                if stored.state.pending {
                    unconfirmed.push(sid);
                }
                continue;
            }
            match self.is_present(&stored.state.path).await {
                Ok(false) => gone.push(sid),
                Ok(true) => {}
                Err(e) => tracing::warn!(path = %clean(&stored.state.path), error = %e,
                    "cannot tell whether a file was deleted"),
            }
        }
        // Moves are not deletions: their content is still here.
        let (moved, deleted): (Vec<&String>, Vec<&String>) = gone
            .into_iter()
            .partition(|sid| present.contains(&known[*sid].state.content_hash));
        let deleted_paths: Vec<&str> = deleted
            .iter()
            .map(|sid| known[*sid].state.path.as_str())
            .collect();
        let (mut held, emptied) = hold::to_hold(&live, &deleted_paths, &self.policy.mass_delete);
        let confirmation = hold::pending_confirmation(self.state.kv(), &self.name).await?;
        if !held.is_empty() && confirmation.is_some() {
            tracing::warn!(
                deletions = held.len(),
                "deleting the held deletions: confirmed with `kb watcher confirm-deletes`"
            );
            held.clear();
        }
        let held: HashSet<&str> = held.into_iter().collect();
        let go = unconfirmed.into_iter().chain(moved).chain(
            deleted
                .into_iter()
                .filter(|sid| !held.contains(known[*sid].state.path.as_str())),
        );
        for sid in go {
            let stored = known[sid].clone();
            let path = stored.state.path.clone();
            match self.delete_if_gone(sid, Some(stored)).await {
                Ok(Some(p)) => report.deleted.push(p),
                Ok(None) => {}
                Err(e) if e.kind == WatchErrorKind::Transient => return Err(e),
                Err(e) => report.failed.push((path, e.to_string())),
            }
        }
        if confirmation.is_some() {
            // Used by this scan (or stale: nothing was held any more).
            hold::consume(self.state.kv(), &self.name).await?;
        }
        report.held = held.into_iter().map(str::to_string).collect();
        report.held.sort();
        self.report_held(&report.held, &emptied).await;
        Ok(())
    }

    /// Raises, updates or clears the held-deletions alert, with a log line when it changes.
    async fn report_held(&self, held: &[String], emptied: &[hold::Emptied]) {
        metrics::gauge!("kb_watcher_held_deletions", "origin" => self.origin.clone())
            .set(held.len() as f64);
        let now = (!held.is_empty()).then(|| {
            let message = hold::alert_message(
                &self.name,
                held.len(),
                emptied,
                self.policy.mass_delete.ratio,
            );
            let details = serde_json::json!({
                "held": held.len(),
                "directories": emptied.iter().map(|e| serde_json::json!({
                    "dir": clean(&e.dir), "gone": e.gone, "sources": e.sources,
                })).collect::<Vec<_>>(),
                "paths": held.iter().take(ALERT_PATHS).map(|p| clean(p)).collect::<Vec<_>>(),
            });
            (message, details)
        });
        let alerts = &self.publisher.topology().alerts;
        if self
            .notices
            .set(alerts, &self.name, hold::ALERT, now.clone())
            .await
        {
            match now {
                Some((message, _)) => tracing::error!(held = held.len(), "{message}"),
                None => tracing::info!("no deletions held"),
            }
        }
    }

    /// Raises, updates or clears the skipped-links alert, with a log line per link when the
    /// list changes.
    async fn report_links(&self, skipped: &[String]) {
        let now = (!skipped.is_empty()).then(|| {
            let shown: Vec<_> = skipped.iter().take(5).map(|p| clean(p)).collect();
            let message = format!(
                "watcher {}: {} symbolic links lead outside the watched folder and are not read                  ({}{}); to read them set watcher.follow_external_symlinks = true",
                self.name,
                skipped.len(),
                shown.join(", "),
                if skipped.len() > shown.len() { ", ..." } else { "" }
            );
            let details = serde_json::json!({
                "links": skipped.iter().take(ALERT_PATHS).map(|p| clean(p)).collect::<Vec<_>>(),
            });
            (message, details)
        });
        let alerts = &self.publisher.topology().alerts;
        if self.notices.set(alerts, &self.name, LINKS_ALERT, now).await {
            for path in skipped {
                tracing::warn!(path = %clean(path),
                    "skipping a symbolic link that leads outside the watched folder \
                     (watcher.follow_external_symlinks)");
            }
        }
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
        // The same rule as the walk's, or the next scan would delete what this publishes.
        let is_link = tokio::fs::symlink_metadata(&full)
            .await
            .is_ok_and(|m| m.file_type().is_symlink());
        let abs = if is_link {
            let target = tokio::fs::canonicalize(&full)
                .await
                .map_err(io(format!("cannot resolve {}", full.display())))?;
            if !self.policy.follow_external_symlinks && !target.starts_with(&root) {
                return Err(WatchError::new(
                    WatchErrorKind::Invalid,
                    format!(
                        "{} is a symbolic link that leads outside {} (see \
                         watcher.follow_external_symlinks)",
                        full.display(),
                        root.display()
                    ),
                ));
            }
            target
        } else {
            full
        };
        let file = FoundFile {
            rel,
            abs,
            size: meta.len(),
            modified_unix_ms: walk::modified_unix_ms(&meta),
        };
        let sid = source_id(&self.origin, &file.rel);
        let prev = self.state.get(&sid).await?;
        match self.reconcile(&sid, &file, prev).await? {
            Outcome::Published(p, _) => Ok(FileOutcome::Published(p)),
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
