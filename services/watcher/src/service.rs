//! The long-running service: a scan at start, after every settled burst of file notifications,
//! and every `rescan_secs` as a safety net, until shutdown.

use crate::drive::{run_drive, DriveSource};
use crate::notify::Changes;
use crate::scan::{ScanReport, Scanner};
use anyhow::Context as _;
use kb_core::service::Context;
use kb_core::Settings;
use kb_stream::Publisher;
use std::time::{Duration, Instant};

/// After a failed scan (broker down), try again this soon rather than a full rescan period later.
const RETRY_AFTER_ERROR: Duration = Duration::from_secs(5);

/// The origin of a watched folder: `folder:<watcher.name>`.
pub fn origin(name: &str) -> String {
    format!("folder:{name}")
}

fn log_report(report: &ScanReport, elapsed: Duration) {
    let busy =
        !(report.published.is_empty() && report.deleted.is_empty() && report.failed.is_empty());
    for (path, reason) in &report.failed {
        tracing::warn!(%path, %reason, "file not published");
    }
    if busy {
        tracing::info!(
            published = report.published.len(),
            deleted = report.deleted.len(),
            unchanged = report.unchanged,
            failed = report.failed.len(),
            ms = elapsed.as_millis() as u64,
            "scan done"
        );
    } else {
        tracing::debug!(
            unchanged = report.unchanged,
            ms = elapsed.as_millis() as u64,
            "scan done"
        );
    }
}

/// Runs the watcher over `settings.watcher.dir` (created if missing), and over Google Drive
/// when `settings.drive.enabled`, until `ctx.shutdown`.
pub async fn run(settings: Settings, ctx: Context) -> anyhow::Result<()> {
    let cfg = &settings.watcher;
    tokio::fs::create_dir_all(&cfg.dir)
        .await
        .with_context(|| format!("cannot create the watched folder {}", cfg.dir.display()))?;
    let (_client, js) = kb_stream::connect(&settings.nats.url, "kb-watcher").await?;
    let topo = kb_stream::topology::ensure(&js).await?;
    let publisher = Publisher::new(&topo, settings.nats.inline_max_bytes);
    let drive = if settings.drive.enabled {
        // Bad credentials stop the service here, where an operator sees it.
        Some(DriveSource::from_settings(&settings.drive, &js, publisher.clone()).await?)
    } else {
        None
    };
    let scanner = Scanner::new(
        &topo,
        publisher,
        &cfg.name,
        &origin(&cfg.name),
        cfg.dir.clone(),
        cfg.max_file_bytes,
    );
    // Started before the first scan so changes made during it trigger another one.
    let changes = Changes::start(&cfg.dir);
    ctx.health.set_ready(true);
    let drive_loop = async {
        match drive {
            Some(source) => {
                let poll = Duration::from_secs(settings.drive.poll_secs.max(1));
                run_drive(source, poll, ctx.clone()).await
            }
            None => Ok(()),
        }
    };
    tokio::try_join!(folder_loop(&settings, scanner, changes, &ctx), drive_loop)?;
    Ok(())
}

async fn folder_loop(
    settings: &Settings,
    scanner: Scanner,
    mut changes: Changes,
    ctx: &Context,
) -> anyhow::Result<()> {
    let cfg = &settings.watcher;
    let rescan = Duration::from_secs(cfg.rescan_secs.max(1));
    let debounce = Duration::from_millis(cfg.debounce_ms);
    tracing::info!(dir = %cfg.dir.display(), origin = %origin(&cfg.name),
        notifications = changes.is_active(), "watching");
    loop {
        let started = Instant::now();
        // Cancelling mid-scan is safe: publish comes before the state write, so at worst the
        // next start republishes one version, which deduplication absorbs.
        let wait = tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            result = scanner.scan() => match result {
                Ok(report) => {
                    log_report(&report, started.elapsed());
                    rescan
                }
                Err(e) => {
                    tracing::warn!(error = %e, transient = e.is_transient(), "scan failed; will retry");
                    rescan.min(RETRY_AFTER_ERROR)
                }
            },
        };
        tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
            _ = changes.next_burst(debounce) => {}
        }
    }
    Ok(())
}
