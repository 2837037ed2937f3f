//! The long-running service: a scan at start, after every settled burst of file notifications,
//! and every `rescan_secs` as a safety net, until shutdown; beside it the blob garbage
//! collector ([`kb_stream::gc`]) and the tombstone retention ([`kb_stream::retention`]), both
//! every `nats.blob_gc_interval_secs`.

use crate::drive::{run_drive, DriveSource};
use crate::error::WatchError;
use crate::notify::Changes;
use crate::scan::{Policy, ScanReport, Scanner};
use anyhow::Context as _;
use kb_core::display::clean;
use kb_core::service::Context;
use kb_core::Settings;
use kb_stream::Publisher;
use std::future::Future;
use std::time::{Duration, Instant};

/// After a failed pass (the broker or Drive down), try again this soon at the latest.
const RETRY_AFTER_ERROR: Duration = Duration::from_secs(5);

/// The origin of a watched folder: `folder:<watcher.name>`.
pub fn origin(name: &str) -> String {
    format!("folder:{name}")
}

fn log_report(report: &ScanReport, elapsed: Duration) {
    let busy =
        !(report.published.is_empty() && report.deleted.is_empty() && report.failed.is_empty());
    for (path, reason) in &report.failed {
        tracing::warn!(path = %clean(path), reason = %clean(reason), "file not published");
    }
    if busy {
        tracing::info!(
            published = report.published.len(),
            deleted = report.deleted.len(),
            held = report.held.len(),
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
    let (client, js) = kb_stream::connect(&settings.nats, "kb-watcher").await?;
    kb_stream::watch_connection(&ctx.health, client);
    // Its settings' stream limits and replicas: whichever service starts first creates them.
    let topo = kb_stream::topology::ensure_with(&js, &settings.nats).await?;
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
    )
    .with_policy(Policy::from(cfg));
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
    // Orphaned bodies (a crash between storing and publishing, failed deletes) are collected
    // here: one watcher per deployment is enough, and two are harmless.
    let gc = async {
        kb_stream::gc::run_periodically(
            topo.clone(),
            Duration::from_secs(settings.nats.blob_gc_interval_secs),
            Duration::from_secs(settings.nats.blob_gc_grace_secs),
            ctx.shutdown.clone(),
        )
        .await;
        Ok::<(), anyhow::Error>(())
    };
    // Deleted sources past `nats.tombstone_retention_secs`: the watcher numbers their versions,
    // so it is the one that may forget them.
    let authority = crate::retention::StateAuthority::new(&js, topo.watch.clone()).await;
    let retention = async {
        kb_stream::retention::run_periodically(
            topo.clone(),
            Duration::from_secs(settings.nats.blob_gc_interval_secs),
            Duration::from_secs(settings.nats.tombstone_retention_secs),
            &authority,
            ctx.shutdown.clone(),
        )
        .await;
        Ok::<(), anyhow::Error>(())
    };
    tokio::try_join!(
        folder_loop(&settings, scanner, changes, &ctx),
        drive_loop,
        gc,
        retention
    )?;
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
    // Cancelling mid-scan is safe: a version is reserved before its publish and confirmed
    // after, so at worst the next scan publishes the same change again under it (absorbed by
    // deduplication), or the next version if the file changed meanwhile.
    let wake = Some((&mut changes, debounce));
    repeat(ctx, "scan", rescan, || scanner.scan(), log_report, wake).await;
    Ok(())
}

/// Runs `pass` at start, then every `period` and, given `changes` (and their quiet time),
/// after every settled burst of them, until shutdown; logs each report with `log`. After a failed pass (the broker or Drive down) the
/// next comes within [`RETRY_AFTER_ERROR`] rather than a whole period later. `what` names the
/// pass in logs. Shared by the folder and the Drive source.
pub(crate) async fn repeat<T, F>(
    ctx: &Context,
    what: &str,
    period: Duration,
    mut pass: impl FnMut() -> F,
    log: fn(&T, Duration),
    mut changes: Option<(&mut Changes, Duration)>,
) where
    F: Future<Output = Result<T, WatchError>>,
{
    loop {
        let started = Instant::now();
        let wait = tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            result = pass() => match result {
                Ok(report) => {
                    log(&report, started.elapsed());
                    period
                }
                Err(e) => {
                    tracing::warn!(error = %clean(&e.to_string()), transient = e.is_transient(), "{what} failed; will retry");
                    period.min(RETRY_AFTER_ERROR)
                }
            },
        };
        let burst = async {
            match changes.as_mut() {
                Some((changes, quiet)) => changes.next_burst(*quiet).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
            _ = burst => {}
        }
    }
}
