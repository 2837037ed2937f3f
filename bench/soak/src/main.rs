//! `deploy/local/bench soak`: the whole pipeline (the five release binaries) on the `bench`
//! stack instance, under continuous edits, creations and deletions of a watched folder for a
//! while (`KB_SOAK_SECS`, 20 minutes by default). Every `KB_SOAK_SAMPLE_SECS` it prints the
//! resident memory of each service, the streams' sizes, the stored bodies, the embedding cache
//! and the broker's whole store, so growth shows. Then it stops editing, waits until the
//! pipeline is quiet, and checks that both stores hold exactly the folder (each file parsed
//! afresh, as the fault tests check). Not run in CI. The last lines are `key=value` figures;
//! it exits 1 when the stores do not match the folder.
//!
//! Knobs: `KB_SOAK_SECS` (1200), `KB_SOAK_SAMPLE_SECS` (60), `KB_SOAK_OPS_PER_SEC` (2),
//! `KB_SOAK_FILES` (200, the folder's size it hovers around), `KB_SOAK_SETTLE_SECS` (600),
//! `KB_SOAK_TOMBSTONE_RETENTION_SECS` (120). The blob GC and the tombstone retention run every
//! minute here, with a minute's grace and two minutes' retention (an hour and 30 days by
//! default), so their effect shows within the run.

mod check;
mod workload;

use anyhow::Context;
use kb_bench_retrieval::fresh_stores::{self, knob, var};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SERVICES: [&str; 5] = ["watcher", "parser", "embedder", "pg-writer", "graph-writer"];

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(soak())
}

/// The services, killed when dropped.
struct Services {
    children: BTreeMap<&'static str, Child>,
}

impl Services {
    fn start(
        bin_dir: &std::path::Path,
        env: &[(String, String)],
        logs: &std::path::Path,
    ) -> anyhow::Result<Self> {
        let mut children = BTreeMap::new();
        for s in SERVICES {
            let bin = bin_dir.join(format!("kb-{s}"));
            let log = std::fs::File::create(logs.join(format!("{s}.log")))?;
            let child = Command::new(&bin)
                .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .env_remove("KB_CONFIG")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .with_context(|| format!("cannot start {}", bin.display()))?;
            children.insert(s, child);
        }
        Ok(Self { children })
    }

    /// Resident memory of each service, MiB (from /proc).
    fn rss_mib(&mut self) -> anyhow::Result<BTreeMap<&'static str, f64>> {
        let mut out = BTreeMap::new();
        for (name, child) in &mut self.children {
            if let Some(status) = child.try_wait()? {
                anyhow::bail!("{name} exited on its own ({status})");
            }
            let text = std::fs::read_to_string(format!("/proc/{}/status", child.id()))?;
            let kb = text
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0);
            out.insert(*name, kb / 1024.0);
        }
        Ok(out)
    }

    fn stop(&mut self) {
        for child in self.children.values() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
        }
        for child in self.children.values_mut() {
            let _ = child.wait();
        }
        self.children.clear();
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        for child in self.children.values_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

async fn soak() -> anyhow::Result<()> {
    let secs = knob("KB_SOAK_SECS", 1200);
    let sample = Duration::from_secs(knob("KB_SOAK_SAMPLE_SECS", 60).max(1));
    let ops_per_sec = knob("KB_SOAK_OPS_PER_SEC", 2).max(1);
    let files = knob("KB_SOAK_FILES", 200) as usize;
    let settle = Duration::from_secs(knob("KB_SOAK_SETTLE_SECS", 600));
    let bin_dir = PathBuf::from(var("KB_BENCH_TARGET_DIR")?);
    let nats_url = var("KB_NATS_URL")?;

    let stores = fresh_stores::fresh("kb_bench_soak").await?;
    let folder = tempfile::tempdir()?;
    let logs = tempfile::Builder::new().prefix("kb-soak-logs-").tempdir()?;
    let mut work = workload::Workload::new(folder.path().to_path_buf(), 0x50a4);
    work.seed(files)?;
    let mut env: Vec<(String, String)> = [
        ("KB_NATS_URL", nats_url.clone()),
        ("KB_POSTGRES_URL", stores.pg_url.clone()),
        ("KB_NEO4J_URI", stores.graph.uri.clone()),
        ("KB_NEO4J_USER", stores.graph.user.clone()),
        ("KB_NEO4J_PASSWORD", stores.graph.password.clone()),
        ("KB_NEO4J__DATABASE", stores.db.to_string()),
        ("KB_WATCH_DIR", folder.path().display().to_string()),
        ("KB_NATS__BLOB_GC_INTERVAL_SECS", "60".into()),
        ("KB_NATS__BLOB_GC_GRACE_SECS", "60".into()),
        (
            "KB_NATS__TOMBSTONE_RETENTION_SECS",
            knob("KB_SOAK_TOMBSTONE_RETENTION_SECS", 120).to_string(),
        ),
        ("RUST_LOG", "warn".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for k in ["KB_EMBEDDER__MODEL_DIR", "KB_EMBEDDER__ONNXRUNTIME_LIB"] {
        env.push((k.to_string(), var(k)?));
    }
    println!(
        "== soak: {secs} s of {ops_per_sec} changes/s around {files} files, a sample every {} s \
         (logs in {})",
        sample.as_secs(),
        logs.path().display()
    );
    let mut services = Services::start(&bin_dir, &env, logs.path())?;
    let js = async_nats::jetstream::new(async_nats::connect(&nats_url).await?);
    let mut peak_rss: BTreeMap<&'static str, f64> = BTreeMap::new();
    let mut report = |services: &mut Services,
                      t: f64,
                      work: &workload::Workload,
                      broker: check::Broker|
     -> anyhow::Result<()> {
        let rss = services.rss_mib()?;
        for (k, v) in &rss {
            let peak = peak_rss.entry(k).or_insert(0.0);
            *peak = peak.max(*v);
        }
        let rss_text: Vec<String> = rss.iter().map(|(k, v)| format!("{k}={v:.0}")).collect();
        println!(
            "t={t:>6.0}s files={} changes={} | RSS MiB {} | {} | broker {:.1} MiB",
            work.files(),
            work.ops(),
            rss_text.join(" "),
            broker.brief(),
            mib(broker.store_bytes),
        );
        Ok(())
    };

    let started = Instant::now();
    let end = started + Duration::from_secs(secs);
    let mut next_sample = started;
    let every = Duration::from_millis(1000 / ops_per_sec);
    while Instant::now() < end {
        if Instant::now() >= next_sample {
            let broker = check::broker(&js).await?;
            report(
                &mut services,
                started.elapsed().as_secs_f64(),
                &work,
                broker,
            )?;
            next_sample += sample;
        }
        work.step()?;
        tokio::time::sleep(every).await;
    }
    let edited_for = started.elapsed();
    println!(
        "== edits stopped after {:.0} s; waiting for the pipeline to settle",
        edited_for.as_secs_f64()
    );
    let settled_at = Instant::now();
    let outcome = check::settle(&js, &stores, folder.path(), settle).await;
    let settle_s = settled_at.elapsed().as_secs_f64();
    let broker = check::broker(&js).await?;
    report(
        &mut services,
        started.elapsed().as_secs_f64(),
        &work,
        broker.clone(),
    )?;
    services.stop();

    let problems = match &outcome {
        Ok(()) => Vec::new(),
        Err(e) => vec![format!("{e:#}")],
    };
    for p in &problems {
        println!("PROBLEM: {p}");
    }
    println!("duration_s={:.0}", edited_for.as_secs_f64());
    println!("changes={}", work.ops());
    println!("files={}", work.files());
    for (k, v) in &peak_rss {
        println!("peak_rss_mib_{}={v:.0}", k.replace('-', "_"));
    }
    for line in broker.figures() {
        println!("{line}");
    }
    println!("settle_s={settle_s:.1}");
    println!("stores_equal_folder={}", problems.is_empty());
    if !problems.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}
