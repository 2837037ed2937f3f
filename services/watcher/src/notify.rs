//! File-system notifications, reduced to "something changed, scan soon". A scan reconciles the
//! whole folder anyway, so events only need to say when, not what; bursts (an editor saving in
//! several steps, a folder copied in) are merged by waiting for a quiet period.

use crate::walk::is_ignored_path;
use notify::event::{AccessKind, AccessMode, EventKind};
use notify::{Event, RecommendedWatcher, RecursiveMode, Watcher};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Change signals from the folder; inert when notifications are unavailable.
pub struct Changes {
    rx: Option<mpsc::Receiver<()>>,
    // Kept alive for as long as events are wanted; dropping it stops the notifications.
    _watcher: Option<RecommendedWatcher>,
}

/// Whether an event may mean a file was created, changed, moved or deleted. Our own reads open
/// files too, so plain accesses must not count (they would trigger scans forever).
fn is_relevant(event: &Event, root: &Path) -> bool {
    if event.need_rescan() {
        return true;
    }
    match event.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => {}
        EventKind::Access(_) => return false,
        _ => {}
    }
    if event.paths.is_empty() {
        return true;
    }
    event.paths.iter().any(|p| match p.strip_prefix(root) {
        Ok(rel) => !is_ignored_path(rel),
        Err(_) => true,
    })
}

impl Changes {
    /// Watches `root` recursively. When the platform refuses (e.g. inotify limits), logs a
    /// warning and returns an inert source: the periodic rescan still finds every change.
    pub fn start(root: &Path) -> Self {
        let (tx, rx) = mpsc::channel::<()>(1);
        let watch_root: PathBuf =
            std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
        let filter_root = watch_root.clone();
        let handler = move |res: notify::Result<Event>| {
            let relevant = match res {
                Ok(event) => is_relevant(&event, &filter_root),
                Err(e) => {
                    // Events may have been lost (e.g. queue overflow): scan to be sure.
                    tracing::debug!(error = %e, "file notification error");
                    true
                }
            };
            if relevant {
                // A full channel already holds a pending signal, which is all that is needed.
                let _ = tx.try_send(());
            }
        };
        let watcher = notify::recommended_watcher(handler).and_then(|mut w| {
            w.watch(&watch_root, RecursiveMode::Recursive)?;
            Ok(w)
        });
        match watcher {
            Ok(w) => {
                tracing::info!(dir = %watch_root.display(), "watching for file notifications");
                Self {
                    rx: Some(rx),
                    _watcher: Some(w),
                }
            }
            Err(e) => {
                tracing::warn!(dir = %root.display(), error = %e,
                    "file notifications unavailable; relying on the periodic rescan");
                Self {
                    rx: None,
                    _watcher: None,
                }
            }
        }
    }

    /// True when notifications are being received.
    pub fn is_active(&self) -> bool {
        self.rx.is_some()
    }

    /// Waits for changes, then until none came for `quiet` (at most `max(10 × quiet, 1 s)` in
    /// all, so a folder that never settles is still scanned). Never returns when inactive.
    pub async fn next_burst(&mut self, quiet: Duration) {
        let Some(rx) = self.rx.as_mut() else {
            return std::future::pending().await;
        };
        if rx.recv().await.is_none() {
            self.stopped();
            return std::future::pending().await;
        }
        let deadline = Instant::now() + (quiet * 10).max(Duration::from_secs(1));
        loop {
            match tokio::time::timeout(quiet, rx.recv()).await {
                Err(_) => return,
                Ok(None) => {
                    self.stopped();
                    return;
                }
                Ok(Some(())) if Instant::now() >= deadline => return,
                Ok(Some(())) => {}
            }
        }
    }

    fn stopped(&mut self) {
        tracing::warn!("file notifications stopped; relying on the periodic rescan");
        self.rx = None;
        self._watcher = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, ModifyKind};

    fn event(kind: EventKind, path: &str) -> Event {
        Event::new(kind).add_path(PathBuf::from(path))
    }

    #[test]
    fn reads_and_temp_files_do_not_trigger_scans() {
        let root = Path::new("/in");
        assert!(is_relevant(
            &event(EventKind::Create(CreateKind::File), "/in/a.md"),
            root
        ));
        assert!(is_relevant(
            &event(EventKind::Modify(ModifyKind::Any), "/in/x/b.md"),
            root
        ));
        assert!(is_relevant(
            &event(
                EventKind::Access(AccessKind::Close(AccessMode::Write)),
                "/in/a.md"
            ),
            root
        ));
        assert!(!is_relevant(
            &event(
                EventKind::Access(AccessKind::Open(AccessMode::Any)),
                "/in/a.md"
            ),
            root
        ));
        assert!(!is_relevant(
            &event(EventKind::Create(CreateKind::File), "/in/.a.md.swp"),
            root
        ));
        assert!(!is_relevant(
            &event(EventKind::Modify(ModifyKind::Any), "/in/.git/index"),
            root
        ));
    }
}
