//! N embedder worker processes (this binary's `worker` mode: the real service) sharing the
//! durable consumer on the `bench` stack's NATS, fed parsed corpus documents; the time from
//! the first publish until the mirror stream holds every document.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use kb_core::{Component, Settings};
use kb_embed::fake::{FakeConfig, FakeFlavor, FakeProvider};
use kb_proto::ParsedDocument;
use kb_stream::{Publisher, Stage};

use crate::corpus::Corpus;

pub const FAKE_LATENCY: Duration = Duration::from_millis(200);
pub const INPUTS_PER_REQUEST: usize = 16;
pub const IN_FLIGHT: usize = 2;
const DIMS: usize = 384;
const WORKERS: [usize; 3] = [1, 2, 4];

pub struct Run {
    pub workers: usize,
    pub documents: usize,
    pub chunks: usize,
    pub seconds: f64,
    pub chunks_per_s: f64,
}

/// `kb-bench-embed worker`: one embedder service, configured by the environment.
pub fn worker_main() -> anyhow::Result<()> {
    let settings = Settings::load(None)?;
    settings.validate(&[Component::Nats, Component::Embedder])?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(kb_core::service::run(
        "kb-embedder",
        &settings.clone(),
        |ctx| kb_embedder::run(settings, ctx),
    ))
}

fn copies() -> usize {
    std::env::var("KB_BENCH_COPIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12)
}

fn nats_url() -> anyhow::Result<String> {
    std::env::var("KB_NATS_URL").context(
        "KB_NATS_URL is not set: run this through `make bench-embed` (deploy/local/bench embed)",
    )
}

fn common_env(url: &str) -> Vec<(String, String)> {
    [
        ("KB_NATS_URL", url.to_owned()),
        ("KB_EMBEDDER__DIMENSIONS", DIMS.to_string()),
        // Every run pays for every chunk: the cache would turn runs 2 and 3 into lookups.
        ("KB_EMBEDDER__CACHE", "false".into()),
        ("RUST_LOG", "warn".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

pub async fn measure(corpus: &Corpus) -> anyhow::Result<Vec<Run>> {
    let url = nats_url()?;
    let mut cfg = FakeConfig::new(FakeFlavor::OpenAi, DIMS);
    cfg.latency = FAKE_LATENCY;
    cfg.max_inputs = Some(INPUTS_PER_REQUEST);
    let fake = FakeProvider::start(cfg).await?;
    let mut env = common_env(&url);
    for (k, v) in [
        ("KB_EMBEDDER__PROVIDER", "openai".to_string()),
        ("KB_EMBEDDER__MODEL", "bench-fake".into()),
        ("KB_EMBEDDER__BASE_URL", fake.base_url()),
        (
            "KB_EMBEDDER__MAX_INPUTS_PER_REQUEST",
            INPUTS_PER_REQUEST.to_string(),
        ),
        ("KB_EMBEDDER__MAX_IN_FLIGHT", IN_FLIGHT.to_string()),
        ("KB_EMBEDDER__CONCURRENCY", "4".into()),
    ] {
        env.push((k.to_owned(), v));
    }
    let mut runs = Vec::new();
    for n in WORKERS {
        runs.push(run(n, &env, corpus, copies(), &format!("fake{n}")).await?);
    }
    Ok(runs)
}

pub async fn measure_local(corpus: &Corpus) -> anyhow::Result<Run> {
    let url = nats_url()?;
    let model = crate::stack_dir().join("model");
    let mut env = common_env(&url);
    for (k, v) in [
        ("KB_EMBEDDER__PROVIDER", "local".to_string()),
        (
            "KB_EMBEDDER__MODEL_DIR",
            model
                .join(kb_embed::DEFAULT_MODEL_DIR_NAME)
                .display()
                .to_string(),
        ),
        (
            "KB_EMBEDDER__ONNXRUNTIME_LIB",
            model
                .join(kb_embed::ONNXRUNTIME_LIB_NAME)
                .display()
                .to_string(),
        ),
        ("KB_EMBEDDER__CONCURRENCY", "2".into()),
    ] {
        env.push((k.to_owned(), v));
    }
    run(1, &env, corpus, 1, "local").await
}

struct Workers(Vec<Child>);

impl Workers {
    fn stop(&mut self) {
        for child in &mut self.0 {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        for child in &mut self.0 {
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        self.0.clear();
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn run(
    workers: usize,
    env: &[(String, String)],
    corpus: &Corpus,
    copies: usize,
    tag: &str,
) -> anyhow::Result<Run> {
    let url = nats_url()?;
    let client = async_nats::connect(&url).await?;
    let js = async_nats::jetstream::new(client);
    let topo = kb_stream::topology::ensure(&js).await?;
    let publisher = Publisher::new(&topo, 256 * 1024);

    let logs = tempfile::tempdir()?;
    let exe = std::env::current_exe()?;
    let mut procs = Workers(Vec::new());
    for i in 0..workers {
        let log = std::fs::File::create(logs.path().join(format!("worker{i}.log")))?;
        procs.0.push(
            Command::new(&exe)
                .arg("worker")
                .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .env_remove("KB_CONFIG")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()?,
        );
    }
    // Start the clock only once every worker is pulling, so start-up is not counted.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(ci) = topo.parsed.consumer_info(Stage::Embedder.as_str()).await {
            if ci.num_waiting >= workers {
                break;
            }
        }
        for (i, child) in procs.0.iter_mut().enumerate() {
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(logs.path().join(format!("worker{i}.log")))
                    .unwrap_or_default();
                anyhow::bail!("worker {i} exited ({status}):\n{log}");
            }
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "workers did not start within 120 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let mut docs: Vec<ParsedDocument> = Vec::new();
    for copy in 0..copies {
        for d in &corpus.docs {
            let mut d = d.clone();
            if let Some(s) = d.source.as_mut() {
                s.origin = format!("bench:{tag}");
                s.source_id = kb_core::ids::source_id(&s.origin, &format!("{copy}/{}", s.path));
            }
            docs.push(d);
        }
    }
    let chunks: usize = docs.iter().map(|d| d.chunks.len()).sum();
    let mut mirror = topo.mirror.clone();
    let before = mirror.info().await?.state.messages;
    let started = Instant::now();
    for d in &docs {
        publisher.parsed(d).await?;
    }
    let deadline = Instant::now() + Duration::from_secs(900);
    while mirror.info().await?.state.messages < before + docs.len() as u64 {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the workers did not finish within 900 s (logs in {})",
            logs.path().display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    procs.stop();
    Ok(Run {
        workers,
        documents: docs.len(),
        chunks,
        seconds,
        chunks_per_s: chunks as f64 / seconds,
    })
}
