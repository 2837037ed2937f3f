//! The Drive source's loop: a sync at start and every `poll_secs`, until shutdown.

use super::{DriveSource, SyncReport};
use crate::service::repeat;
use kb_core::display::clean;
use kb_core::service::Context;
use std::time::Duration;

fn log_report(report: &SyncReport, elapsed: Duration) {
    for f in &report.failed {
        // Names and reasons come from Drive: never raw on a terminal or in a log line.
        tracing::warn!(path = %clean(&f.path), reason = %clean(&f.reason), "Drive file not published");
    }
    let busy = report.full_listing
        || report.retried > 0
        || !(report.published.is_empty() && report.deleted.is_empty() && report.failed.is_empty());
    let ms = elapsed.as_millis() as u64;
    if busy {
        tracing::info!(
            full_listing = report.full_listing,
            changes = report.changes,
            published = report.published.len(),
            deleted = report.deleted.len(),
            unchanged = report.unchanged.len(),
            failed = report.failed.len(),
            retried = report.retried,
            skipped = report.skipped.len(),
            ms,
            "Drive sync done"
        );
    } else {
        tracing::debug!(changes = report.changes, ms, "Drive sync done");
    }
}

/// Syncs `source` every `poll` until `ctx.shutdown`. Cancelling mid-sync is safe: the page
/// token is saved only after every file of its page was recorded, and a version is reserved
/// before anything is published as it.
pub async fn run_drive(source: DriveSource, poll: Duration, ctx: Context) -> anyhow::Result<()> {
    tracing::info!(origin = %source.origin(), roots = ?source.roots,
        poll_s = poll.as_secs(), "watching Google Drive");
    repeat(&ctx, "Drive sync", poll, || source.sync(), log_report, None).await;
    Ok(())
}
