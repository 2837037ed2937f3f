//! Runs the real services (release builds, the `bench` stack instance from the environment)
//! and `kb ingest` of the transcripts; the services stop when this is dropped.

use crate::corpus::Transcript;
use anyhow::{bail, Context};
use serde::Deserialize;
use sqlx::PgPool;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

const SERVICES: [&str; 4] = ["parser", "embedder", "pg-writer", "graph-writer"];

pub struct Ingested {
    pub documents: usize,
    pub chunks: i64,
    pub seconds: f64,
    pub pool: PgPool,
    /// Source id per ingested document.
    pub source_ids: HashMap<PathBuf, String>,
}

impl Ingested {
    pub fn docs_per_s(&self) -> f64 {
        self.documents as f64 / self.seconds
    }
    pub fn chunks_per_s(&self) -> f64 {
        self.chunks as f64 / self.seconds
    }
}

/// Children killed on drop, so a failed run leaves no process behind.
struct Services(Vec<Child>);

impl Drop for Services {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[derive(Deserialize)]
struct IngestFile {
    path: PathBuf,
    source_id: String,
    status: String,
}

#[derive(Deserialize)]
struct IngestReport {
    files: Vec<IngestFile>,
}

/// Where the release binaries are: `KB_BENCH_TARGET_DIR` (set by `deploy/local/bench`), else
/// the workspace's `target/release`.
pub fn bin_dir() -> PathBuf {
    std::env::var_os("KB_BENCH_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/release"))
}

fn spawn(bin: &Path, logs: &Path, name: &str) -> anyhow::Result<Child> {
    let log = std::fs::File::create(logs.join(format!("{name}.log")))?;
    Command::new(bin.join(format!("kb-{name}")))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| {
            format!(
                "cannot start kb-{name} from {} (built by deploy/local/bench?)",
                bin.display()
            )
        })
}

pub async fn ingest(transcripts: &[Transcript]) -> anyhow::Result<Ingested> {
    let url = std::env::var("KB_POSTGRES_URL").context(
        "KB_POSTGRES_URL is not set: run through `make bench-retrieval` (deploy/local/bench)",
    )?;
    let bin = bin_dir();
    let logs = tempfile::Builder::new()
        .prefix("kb-bench-retrieval-")
        .tempdir()?
        .keep();
    let mut services = Services(Vec::new());
    for s in SERVICES {
        services.0.push(spawn(&bin, &logs, s)?);
    }
    let started = Instant::now();
    let out = Command::new(bin.join("kb"))
        .arg("ingest")
        .args(transcripts.iter().map(|t| &t.document))
        .arg("--json")
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run kb ingest")?;
    let seconds = started.elapsed().as_secs_f64();
    drop(services);
    let report: IngestReport = serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "kb ingest printed no report (service logs in {})",
            logs.display()
        )
    })?;
    let failed: Vec<_> = report
        .files
        .iter()
        .filter(|f| f.status != "ok")
        .map(|f| f.path.display().to_string())
        .collect();
    if !failed.is_empty() || !out.status.success() {
        bail!(
            "kb ingest failed for {failed:?} (service logs in {})",
            logs.display()
        );
    }
    let pool = PgPool::connect(&url).await?;
    let ids: Vec<String> = report.files.iter().map(|f| f.source_id.clone()).collect();
    let (chunks,): (i64,) = sqlx::query_as("SELECT count(*) FROM chunks WHERE source_id = ANY($1)")
        .bind(&ids)
        .fetch_one(&pool)
        .await?;
    let source_ids = report
        .files
        .into_iter()
        .map(|f| {
            // `kb ingest` reports paths relative to `/`
            let path = Path::new("/").join(&f.path);
            (std::fs::canonicalize(&path).unwrap_or(path), f.source_id)
        })
        .collect();
    Ok(Ingested {
        documents: ids.len(),
        chunks,
        seconds,
        pool,
        source_ids,
    })
}
