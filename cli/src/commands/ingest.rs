//! `kb ingest PATH...` / `kb ingest --drive FOLDER_ID`: the one-shot batch. Publishes every
//! file (or every file below the Drive folders, exported like the watcher does) through the
//! same path the watcher uses, then waits until each enabled writer has applied that version
//! (or recorded it as failed), and names the files that failed.

use crate::stores::enabled_writers;
use indicatif::{ProgressBar, ProgressStyle};
use kb_core::settings::DriveSettings;
use kb_core::{Component, ConfigError, Settings};
use kb_stream::{Progress, ProgressStatus, Publisher};
use kb_watcher::{DriveSource, FileOutcome, Published, Scanner};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Origin of files given on the command line: their absolute path identifies them.
const ORIGIN_NAME: &str = "cli";
const ORIGIN: &str = "file";

/// How one file ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum FileStatus {
    /// Every enabled writer applied the version.
    Ok,
    /// A writer recorded it as failed (or it got no version at all).
    Failed,
    /// Not every writer recorded it within the timeout.
    Timeout,
}

impl FileStatus {
    fn as_str(self) -> &'static str {
        match self {
            FileStatus::Ok => "ok",
            FileStatus::Failed => "failed",
            FileStatus::Timeout => "timeout",
        }
    }
}

#[derive(Serialize)]
struct FileReport {
    path: String,
    source_id: String,
    version: u64,
    status: FileStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// Per writer: what it recorded for this version ("written", "failed", ...), if anything.
    writers: BTreeMap<String, ProgressStatus>,
}

#[derive(Serialize)]
struct Report {
    files: Vec<FileReport>,
    ok: usize,
    failed: usize,
    timed_out: usize,
}

fn collect_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
        if meta.is_dir() {
            for entry in walkdir::WalkDir::new(p).sort_by_file_name() {
                let entry = entry?;
                let hidden = entry.file_name().to_string_lossy().starts_with('.');
                if entry.file_type().is_file() && !hidden {
                    files.push(entry.path().to_path_buf());
                }
            }
        } else {
            files.push(p.clone());
        }
    }
    files
        .iter()
        .map(|f| Ok(std::fs::canonicalize(f)?))
        .collect()
}

/// The scanner's root is `/`, so its paths are relative to it; the report shows local files'
/// paths absolute (Drive paths stay relative to their folder).
fn absolute(path: &str) -> String {
    format!("/{}", path.trim_start_matches('/'))
}

/// Drive settings for a one-shot run of `folder_ids`, checked like the watcher's.
fn drive_settings(settings: &Settings, folder_ids: &[String]) -> anyhow::Result<DriveSettings> {
    let mut s = settings.drive.clone();
    s.folder_ids = folder_ids.to_vec();
    let problems = s.problems();
    if !problems.is_empty() {
        return Err(ConfigError(problems).into());
    }
    Ok(s)
}

pub async fn run(
    settings: &Settings,
    paths: &[PathBuf],
    drive: &[String],
    timeout: u64,
    json: bool,
) -> anyhow::Result<ExitCode> {
    settings.validate(&[Component::Nats])?;
    let drive_cfg = if drive.is_empty() {
        None
    } else {
        Some(drive_settings(settings, drive)?)
    };
    let files = collect_files(paths)?;
    let (_client, js) = kb_stream::connect(&settings.nats, "kb-cli").await?;
    let topo = kb_stream::topology::ensure(&js).await?;
    let publisher = Publisher::new(&topo, settings.nats.inline_max_bytes);
    let scanner = Scanner::new(
        &topo,
        publisher.clone(),
        ORIGIN_NAME,
        ORIGIN,
        PathBuf::from("/"),
        settings.watcher.max_file_bytes,
    );
    let progress = Progress::new(topo.progress.clone());
    let writers = enabled_writers(settings);

    let bar = if json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(files.len() as u64)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {msg:10} [{bar:30}] {pos}/{len} {elapsed_precise} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message("publishing");
    let mut pending: Vec<(Published, Option<String>)> = Vec::new();
    for f in &files {
        let (mut p, error) = match scanner.publish_file(f).await? {
            FileOutcome::Published(p) | FileOutcome::Unchanged(p) => (p, None),
            FileOutcome::Failed(p, reason) => (p, Some(reason)),
        };
        p.path = absolute(&p.path);
        pending.push((p, error));
        bar.inc(1);
    }
    // Drive files that got no version at all (e.g. a download cut short): failed outright.
    let mut unpublished: Vec<FileReport> = Vec::new();
    if let Some(cfg) = &drive_cfg {
        bar.set_message("Drive");
        let source = DriveSource::from_settings(cfg, &js, publisher.clone()).await?;
        let report = source.ingest(drive).await?;
        pending.extend(report.published.into_iter().map(|p| (p, None)));
        pending.extend(report.unchanged);
        for f in report.failed {
            match f.version {
                Some(p) => pending.push((p, Some(f.reason))),
                None => unpublished.push(FileReport {
                    path: f.path,
                    source_id: String::new(),
                    version: 0,
                    status: FileStatus::Failed,
                    error: Some(f.reason),
                    writers: BTreeMap::new(),
                }),
            }
        }
        for (path, why) in report.skipped {
            tracing::info!(%path, %why, "Drive item skipped: nothing to read");
        }
        bar.set_length(pending.len() as u64);
    }

    bar.set_position(0);
    bar.set_message("applying");
    let deadline = Instant::now() + Duration::from_secs(timeout);
    let mut reports: Vec<Option<FileReport>> = pending.iter().map(|_| None).collect();
    loop {
        for (i, (p, _)) in pending.iter().enumerate() {
            if reports[i].is_some() {
                continue;
            }
            let mut seen = BTreeMap::new();
            for w in &writers {
                if let Some(rec) = progress.get(*w, &p.source_id).await? {
                    if rec.version >= p.version {
                        seen.insert(w.as_str().to_string(), (rec.status, rec.error.clone()));
                    }
                }
            }
            if seen.len() == writers.len() {
                let error = seen.values().find_map(|(s, e)| {
                    (*s == ProgressStatus::Failed).then(|| e.clone().unwrap_or_default())
                });
                reports[i] = Some(FileReport {
                    path: p.path.clone(),
                    source_id: p.source_id.clone(),
                    version: p.version,
                    status: if error.is_some() {
                        FileStatus::Failed
                    } else {
                        FileStatus::Ok
                    },
                    error,
                    writers: seen.into_iter().map(|(k, (s, _))| (k, s)).collect(),
                });
                bar.inc(1);
            }
        }
        if reports.iter().all(Option::is_some) || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    bar.finish_and_clear();

    let files: Vec<FileReport> = reports
        .into_iter()
        .zip(pending)
        .map(|(r, (p, publish_error))| {
            r.unwrap_or(FileReport {
                path: p.path,
                source_id: p.source_id,
                version: p.version,
                status: FileStatus::Timeout,
                error: publish_error.or(Some(format!(
                    "not applied by every writer within {timeout}s"
                ))),
                writers: BTreeMap::new(),
            })
        })
        .chain(unpublished)
        .collect();
    let count = |s: FileStatus| files.iter().filter(|f| f.status == s).count();
    let report = Report {
        ok: count(FileStatus::Ok),
        failed: count(FileStatus::Failed),
        timed_out: count(FileStatus::Timeout),
        files,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for f in report.files.iter().filter(|f| f.status != FileStatus::Ok) {
            println!(
                "{:8} {}  {}",
                f.status.as_str().to_uppercase(),
                kb_core::display::clean(&f.path),
                kb_core::display::clean(f.error.as_deref().unwrap_or(""))
            );
        }
        println!(
            "{} file(s): {} applied to {}, {} failed, {} timed out",
            report.files.len(),
            report.ok,
            writers
                .iter()
                .map(|w| w.as_str())
                .collect::<Vec<_>>()
                .join(" and "),
            report.failed,
            report.timed_out
        );
    }
    Ok(if report.failed + report.timed_out == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
