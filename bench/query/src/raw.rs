//! The raw baseline: the vector retriever's own ANN query (crates/kb-pg/src/query/mod.rs
//! `nearest`: `ORDER BY embedding <=> $1 LIMIT k` joined to `sources`, the same select list,
//! with the session settings kb-pg's connections start with) run by `pgbench` with N clients,
//! one script per embedded corpus question (pgbench picks one at random for each transaction), latencies from
//! its per-transaction log. No HTTP, no embedding, no fusion: the floor under the service.

use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::stats::percentile;

/// What the vector retriever selects (crates/kb-pg/src/query/rows.rs, kept in step by hand).
const SELECT: &str = "c.chunk_id, c.chunk_index, c.text, \
     COALESCE(c.importance_score, 0)::float8 AS importance, c.speakers, c.start_seconds, \
     c.end_seconds, c.section, s.source_id, s.version, s.origin, s.path, \
     COALESCE(s.title, '') AS title, s.media_type, s.link, \
     (extract(epoch FROM s.modified_at) * 1000)::int8 AS modified_ms, \
     (extract(epoch FROM s.document_at) * 1000)::int8 AS document_ms, s.status, s.error";

pub struct RawCell {
    pub clients: usize,
    pub transactions: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub qps: f64,
}

/// `KB_BENCH_PGBENCH`, else the one beside the stack's Postgres (`KB_PG_BIN_DIR`, from
/// `deploy/local/stack env`), else `pgbench` on the PATH.
pub fn pgbench() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("KB_BENCH_PGBENCH") {
        return Ok(PathBuf::from(p));
    }
    if let Some(dir) = std::env::var_os("KB_PG_BIN_DIR") {
        let p = Path::new(&dir).join("pgbench");
        if p.is_file() {
            return Ok(p);
        }
    }
    let found = std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join("pgbench"))
                .find(|p| p.is_file())
        })
        .unwrap_or_default();
    found.context("pgbench not found (KB_BENCH_PGBENCH, the stack's Postgres, PATH)")
}

fn vector_literal(v: &[f32]) -> String {
    let parts: Vec<String> = v.iter().map(|x| format!("{x}")).collect();
    format!("'[{}]'::vector", parts.join(","))
}

/// One pgbench script per query vector.
fn write_scripts(dir: &Path, vectors: &[Vec<f32>], k: usize) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for (i, v) in vectors.iter().enumerate() {
        let lit = vector_literal(v);
        // one statement, as `nearest` runs it up to the session's ef_search (PGOPTIONS below)
        let script = format!(
            "SELECT {SELECT}, (1 - (c.embedding <=> {lit}))::float8 AS score FROM chunks c JOIN sources s ON s.source_id = c.source_id WHERE c.embedding IS NOT NULL ORDER BY c.embedding <=> {lit} LIMIT {k};\n"
        );
        let path = dir.join(format!("q{i:03}.sql"));
        std::fs::write(&path, script)?;
        out.push(path);
    }
    Ok(out)
}

fn run(
    pgbench: &Path,
    url: &str,
    scripts: &[PathBuf],
    clients: usize,
    seconds: u64,
    log_prefix: Option<&Path>,
) -> anyhow::Result<String> {
    let mut cmd = Command::new(pgbench);
    cmd.env(
        "PGOPTIONS",
        format!(
            "-c hnsw.ef_search={} -c hnsw.iterative_scan=relaxed_order",
            kb_pg::SESSION_EF_SEARCH
        ),
    )
    .arg("-n")
    .arg("-M")
    .arg("simple")
    .arg("-c")
    .arg(clients.to_string())
    .arg("-j")
    .arg(clients.min(2).to_string())
    .arg("-T")
    .arg(seconds.to_string());
    if let Some(prefix) = log_prefix {
        cmd.arg("--log")
            .arg(format!("--log-prefix={}", prefix.display()));
    }
    for s in scripts {
        cmd.arg("-f").arg(s);
    }
    let out = cmd
        .arg(url)
        .output()
        .with_context(|| format!("cannot run {}", pgbench.display()))?;
    if !out.status.success() {
        bail!(
            "pgbench failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Latencies (ms) from pgbench's per-transaction logs `PREFIX.<pid>[.<thread>]`: the third
/// field is the transaction's time in microseconds.
fn read_logs(dir: &Path, prefix: &str) -> anyhow::Result<Vec<f64>> {
    let mut ms = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !name.starts_with(&format!("{prefix}.")) {
            continue;
        }
        for line in std::fs::read_to_string(&path)?.lines() {
            if let Some(us) = line
                .split_whitespace()
                .nth(2)
                .and_then(|f| f.parse::<f64>().ok())
            {
                ms.push(us / 1e3);
            }
        }
    }
    Ok(ms)
}

/// The baseline at each client count against `url`, after a short warm-up at each.
pub async fn measure(
    url: &str,
    vectors: &[Vec<f32>],
    k: usize,
    clients: &[usize],
    warmup: Duration,
    window: Duration,
) -> anyhow::Result<Vec<RawCell>> {
    let pgbench = pgbench()?;
    let dir = tempfile::Builder::new()
        .prefix("kb-bench-query-pgbench-")
        .tempdir()?;
    let scripts = write_scripts(dir.path(), vectors, k)?;
    let mut cells = Vec::new();
    for &c in clients {
        let (pgbench, url, scripts, dir) = (
            pgbench.clone(),
            url.to_owned(),
            scripts.clone(),
            dir.path().to_path_buf(),
        );
        let cell = tokio::task::spawn_blocking(move || -> anyhow::Result<RawCell> {
            if !warmup.is_zero() {
                run(&pgbench, &url, &scripts, c, warmup.as_secs().max(1), None)?;
            }
            let prefix = format!("c{c}");
            let seconds = window.as_secs().max(1);
            run(
                &pgbench,
                &url,
                &scripts,
                c,
                seconds,
                Some(&dir.join(&prefix)),
            )?;
            let ms = read_logs(&dir, &prefix)?;
            if ms.is_empty() {
                bail!("pgbench logged no transaction");
            }
            Ok(RawCell {
                clients: c,
                transactions: ms.len(),
                p50_ms: percentile(&ms, 50.0),
                p99_ms: percentile(&ms, 99.0),
                qps: ms.len() as f64 / seconds as f64,
            })
        })
        .await??;
        cells.push(cell);
    }
    Ok(cells)
}
