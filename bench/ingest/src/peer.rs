//! The CocoIndex peer (`../shared/peers/cocoindex`) on the same files in the same run, through
//! its own harness as shipped: `PEER_OUTAGE=0 run.sh DATA PREFIX -- --trials 1 --min-clean 1
//! --max-trials 2 --embed-mode none` (a cold live index into Postgres alone, one live edit, one
//! delete, peak RSS). It runs only when `KB_BENCH_PEER_PREFIX` names a folder its `setup.sh` has
//! installed (a large download, done by hand, never by CI or `make test`). `PEER_PG_PORT` is
//! passed through (a Postgres whose pgvector suits the CPU, see the harness's README).
//! `KB_BENCH_PEER_ARGS` appends arguments of the harness's `bench.py` after those (the last of a
//! repeated option wins), e.g. `--quiet-wait 60` on a machine that is never quiet: the harness
//! otherwise waits up to 900 s for other processes to use under 0.3 cores before its trial.

use anyhow::{bail, Context};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The peer's figures this benchmark compares with.
#[derive(Debug)]
pub struct PeerFigures {
    pub cold_s: f64,
    pub edit_s: Option<f64>,
    pub delete_s: Option<f64>,
    pub rss_mb: Option<f64>,
    pub chunks: Option<f64>,
    /// Which trials the harness found clean (others used < 0.3 cores), or "none".
    pub clean_trials: String,
}

/// `KB_BENCH_PEER_HARNESS`, else the shared harness beside the repository.
fn harness_dir() -> PathBuf {
    std::env::var_os("KB_BENCH_PEER_HARNESS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/peers/cocoindex")
        })
}

/// The installed peer's prefix, or why there is none.
pub fn installed() -> Result<PathBuf, String> {
    let Some(prefix) = std::env::var_os("KB_BENCH_PEER_PREFIX").map(PathBuf::from) else {
        return Err("KB_BENCH_PEER_PREFIX is not set".into());
    };
    if !prefix.join("venv/bin/python").exists() {
        return Err(format!(
            "{} holds no peer install (run {}/setup.sh {} first)",
            prefix.display(),
            harness_dir().display(),
            prefix.display()
        ));
    }
    Ok(prefix)
}

pub fn run(data: &Path, prefix: &Path) -> anyhow::Result<PeerFigures> {
    let run_sh = harness_dir().join("run.sh");
    let extra: Vec<String> = std::env::var("KB_BENCH_PEER_ARGS")
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    println!(
        "== peer: PEER_OUTAGE=0 {} {} {} -- --trials 1 --min-clean 1 --max-trials 2 --embed-mode none {}",
        run_sh.display(),
        data.display(),
        prefix.display(),
        extra.join(" ")
    );
    let out = Command::new(&run_sh)
        .arg(data)
        .arg(prefix)
        .args([
            "--",
            "--trials",
            "1",
            "--min-clean",
            "1",
            "--max-trials",
            "2",
            "--embed-mode",
            "none",
        ])
        .args(&extra)
        .env("PEER_OUTAGE", "0")
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run {}", run_sh.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("the peer harness failed ({}): {stdout}", out.status);
    }
    let kv: BTreeMap<&str, &str> = stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    let clean_trials = kv
        .get("clean_trials")
        .copied()
        .unwrap_or("none")
        .to_string();
    let trials: usize = kv.get("trials").and_then(|v| v.parse().ok()).unwrap_or(1);
    // Its median over clean trials when it printed one; else the first clean trial; else the last.
    let trial = clean_trials
        .split(',')
        .find_map(|t| t.parse::<usize>().ok())
        .unwrap_or(trials);
    let figure = |key: &str| -> Option<f64> {
        kv.get(format!("{key}_median").as_str())
            .or_else(|| kv.get(format!("{key}_t{trial}").as_str()))
            .and_then(|v| v.parse().ok())
    };
    let cold_s = figure("cold_all_rows_s")
        .with_context(|| format!("the peer printed no cold_all_rows_s: {stdout}"))?;
    Ok(PeerFigures {
        cold_s,
        edit_s: figure("live_edit_latency_s"),
        delete_s: figure("live_delete_latency_s"),
        // The larger of its own maxrss and the sampled process tree (ours is sampled as trees).
        rss_mb: match (figure("peak_rss_mb"), figure("peak_rss_tree_sampled_mb")) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        },
        chunks: kv.get("chunks_indexed").and_then(|v| v.parse().ok()),
        clean_trials,
    })
}
