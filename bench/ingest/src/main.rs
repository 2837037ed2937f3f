//! `deploy/local/bench ingest` (`make bench-ingest`): the 60-file transcript set (20 tagged
//! copies of each text transcript of the corpus, [`data`]) through the whole pipeline — the five
//! release services, the watcher on a folder holding the set — into both stores, with the default
//! local model, then the same files through the peer a user would pick instead (CocoIndex,
//! [`peer`]) in the same run when it is installed.
//!
//! Measured, as the peer's harness measures itself:
//! - `ingest_s`: from spawning the services until both stores hold every chunk of every file
//!   (then checked: both stores equal the folder, each file parsed afresh);
//! - edit → searchable: a paragraph with a new word appended to a file, seconds until each store
//!   returns the word in that document (`DocumentStore::document`, what the query service reads);
//!   `KB_BENCH_INGEST_EDITS` edits (20), one file each, one at a time, polled every 20 ms;
//! - delete → gone: a file removed, seconds until neither store returns the document; as many;
//! - peak RSS of the five services together (each with its child processes), every 200 ms.
//!
//! Knobs: `KB_BENCH_INGEST_EDITS` (20), `KB_BENCH_INGEST_COPIES` (20; fewer for a quick check
//! of the benchmark itself, not a figure), `KB_BENCH_INGEST_TIMEOUT_SECS` (1800),
//! `KB_BENCH_PEER_PREFIX` (the peer's install; no peer run without it), `KB_BENCH_PEER_ARGS`,
//! `KB_BENCH_CORPUS`. The load average before and after is printed: the figures of a busy
//! machine are not those of a quiet one.

mod data;
mod peer;
mod rss;

use anyhow::Context;
use kb_bench_retrieval::fresh_stores::{self, knob, var};
use kb_graph::GraphStore;
use kb_pg::PgStore;
use kb_store::read::DocumentStore;
use kb_store::{MirrorStore, SourceSummary};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SERVICES: [&str; 5] = ["watcher", "parser", "embedder", "pg-writer", "graph-writer"];
/// The watcher's default folder name: source ids derive from it.
const ORIGIN: &str = "folder:inbox";
/// Polling of the live edits and deletes, as the peer's harness polls.
const POLL: Duration = Duration::from_millis(20);
/// Polling of the cold ingest: counting a whole store costs the graph server CPU the ingest
/// needs; half a second is 0.5 % of a run of 100 s.
const COLD_POLL: Duration = Duration::from_millis(500);

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(bench())
}

/// The services, killed when dropped.
struct Services(BTreeMap<&'static str, Child>);

impl Services {
    fn start(bin_dir: &Path, env: &[(String, String)], logs: &Path) -> anyhow::Result<Self> {
        let mut children = BTreeMap::new();
        for s in SERVICES {
            let bin = bin_dir.join(format!("kb-{s}"));
            let log = std::fs::File::create(logs.join(format!("{s}.log")))?;
            let child = Command::new(&bin)
                .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .env_remove("KB_CONFIG")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .with_context(|| format!("cannot start {}", bin.display()))?;
            children.insert(s, child);
        }
        Ok(Self(children))
    }

    fn check_alive(&mut self) -> anyhow::Result<()> {
        for (name, child) in &mut self.0 {
            if let Some(status) = child.try_wait()? {
                anyhow::bail!("kb-{name} exited on its own ({status})");
            }
        }
        Ok(())
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        for child in self.0.values_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Every file of the folder parsed as the parser does with its defaults, by source id:
/// (relative path, summary).
fn expected(root: &Path) -> anyhow::Result<BTreeMap<String, (String, SourceSummary)>> {
    let opts = kb_parse::ParseOptions::default();
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(root)? {
        let path = entry?.path();
        let rel = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let id = kb_core::ids::source_id(ORIGIN, &rel);
        let source = kb_proto::SourceRef {
            source_id: id.clone(),
            version: 1,
            origin: ORIGIN.into(),
            path: rel.clone(),
            ..Default::default()
        };
        let doc = kb_parse::parse(&source, &std::fs::read(&path)?, &opts)
            .map_err(|e| anyhow::anyhow!("{rel} does not parse: {e}"))?;
        let mentioned: std::collections::BTreeSet<&str> =
            doc.mentions.iter().map(|m| m.entity_id.as_str()).collect();
        let summary = SourceSummary::from_parts(
            id.clone(),
            0,
            "ok",
            doc.chunks.iter().map(|c| c.chunk_id.clone()),
            doc.mentions
                .iter()
                .map(|m| (m.chunk_id.clone(), m.entity_id.clone(), u64::from(m.count))),
            mentioned.len() as u64,
            doc.relations.len() as u64,
        );
        out.insert(id, (rel, summary));
    }
    Ok(out)
}

/// What differs between a store and the folder (the version is the watcher's: any).
fn differences(
    store: &str,
    expected: &BTreeMap<String, (String, SourceSummary)>,
    have: &[SourceSummary],
) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen = 0;
    for s in have {
        match expected.get(&s.source_id) {
            Some((_, e))
                if *s
                    == (SourceSummary {
                        version: s.version,
                        ..e.clone()
                    }) =>
            {
                seen += 1
            }
            Some((rel, _)) => out.push(format!("{store}: {rel} differs ({})", s.status)),
            None => out.push(format!("{store}: {} is not in the folder", s.source_id)),
        }
    }
    if seen != expected.len() {
        out.push(format!("{store}: {seen} of {} files match", expected.len()));
    }
    out
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

fn p50(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NAN, f64::max)
}

/// Seconds from `t0` until `done` holds for Postgres and for the graph, each on its own.
async fn until_both<P, G>(
    t0: Instant,
    timeout: Duration,
    poll: Duration,
    services: &mut Services,
    mut pg_done: P,
    mut graph_done: G,
) -> anyhow::Result<(f64, f64)>
where
    P: AsyncFnMut() -> anyhow::Result<bool>,
    G: AsyncFnMut() -> anyhow::Result<bool>,
{
    let (mut pg_s, mut graph_s) = (None, None);
    loop {
        if pg_s.is_none() && pg_done().await? {
            pg_s = Some(t0.elapsed().as_secs_f64());
        }
        if graph_s.is_none() && graph_done().await? {
            graph_s = Some(t0.elapsed().as_secs_f64());
        }
        if let (Some(p), Some(g)) = (pg_s, graph_s) {
            return Ok((p, g));
        }
        services.check_alive()?;
        anyhow::ensure!(
            t0.elapsed() < timeout,
            "not done after {timeout:?} (postgres {pg_s:?}, graph {graph_s:?})"
        );
        tokio::time::sleep(poll).await;
    }
}

/// Reads that failed while a writer replaced the document (ArcadeDB answers a read racing a
/// replacement with `EntityNotFound`): counted and printed, and the poll goes on.
static READ_ERRORS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

async fn read(
    store: &dyn DocumentStore,
    source_id: &str,
) -> Option<Option<kb_store::read::Document>> {
    match store.document(source_id).await {
        Ok(d) => Some(d),
        Err(e) => {
            READ_ERRORS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            eprintln!("read of {source_id} failed (polling on): {e}");
            None
        }
    }
}

async fn holds_word(
    store: &dyn DocumentStore,
    source_id: &str,
    word: &str,
) -> anyhow::Result<bool> {
    Ok(read(store, source_id)
        .await
        .flatten()
        .is_some_and(|d| d.chunks.iter().any(|c| c.text.contains(word))))
}

async fn gone(store: &dyn DocumentStore, source_id: &str) -> anyhow::Result<bool> {
    Ok(matches!(read(store, source_id).await, Some(None)))
}

async fn bench() -> anyhow::Result<()> {
    let edits = knob("KB_BENCH_INGEST_EDITS", 20).max(1) as usize;
    let timeout = Duration::from_secs(knob("KB_BENCH_INGEST_TIMEOUT_SECS", 1800));
    let bin_dir = PathBuf::from(var("KB_BENCH_TARGET_DIR")?);
    let nats_url = var("KB_NATS_URL")?;
    let transcripts = kb_bench_retrieval::corpus_dir().join("transcripts");

    let work = tempfile::Builder::new()
        .prefix("kb-bench-ingest-")
        .tempdir()?;
    let set = work.path().join("set60");
    let copies = knob("KB_BENCH_INGEST_COPIES", data::COPIES as u64).max(1) as usize;
    let files = data::make_set(&transcripts, &set, copies)?;
    let bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .sum();
    anyhow::ensure!(
        files.len() >= 2 * edits,
        "{} files are too few for {edits} edits and {edits} deletes of distinct files",
        files.len()
    );
    // The watched folder is a copy: the edits and deletes must not touch the set the peer reads.
    let inbox = work.path().join("inbox");
    std::fs::create_dir_all(&inbox)?;
    for f in &files {
        if let Some(name) = f.file_name() {
            std::fs::copy(f, inbox.join(name))?;
        }
    }
    let expected = expected(&inbox)?;
    let expected_chunks: u64 = expected.values().map(|(_, s)| s.chunks).sum();
    println!(
        "== set: {} files, {bytes} bytes, {expected_chunks} chunks (from {})",
        files.len(),
        transcripts.display()
    );

    let stores = fresh_stores::fresh("kb_bench_ingest").await?;
    let pg = PgStore::connect(&stores.pg_url, 384, 2).await?;
    let graph = GraphStore::connect(&stores.graph).await?;
    let logs = work.path().join("logs");
    std::fs::create_dir_all(&logs)?;
    let mut env: Vec<(String, String)> = [
        ("KB_NATS_URL", nats_url),
        ("KB_POSTGRES_URL", stores.pg_url.clone()),
        ("KB_NEO4J_URI", stores.graph.uri.clone()),
        ("KB_NEO4J_USER", stores.graph.user.clone()),
        ("KB_NEO4J_PASSWORD", stores.graph.password.clone()),
        ("KB_NEO4J__DATABASE", stores.db.to_string()),
        ("KB_WATCH_DIR", inbox.display().to_string()),
        ("RUST_LOG", "warn".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for k in ["KB_EMBEDDER__MODEL_DIR", "KB_EMBEDDER__ONNXRUNTIME_LIB"] {
        env.push((k.to_string(), var(k)?));
    }
    let model = var("KB_EMBEDDER__MODEL_DIR")?;
    println!(
        "== ours: the five release services from {}, model {model}",
        bin_dir.display()
    );

    let load_before = loadavg();
    // Cold: spawn, then poll the stores' totals until each holds every chunk.
    let t0 = Instant::now();
    let mut services = Services::start(&bin_dir, &env, &logs)?;
    let sampler = rss::Sampler::start(
        services
            .0
            .iter()
            .map(|(n, c)| (n.to_string(), c.id()))
            .collect(),
    );
    let n_files = expected.len() as u64;
    let complete = |c: kb_store::StoreCounts| {
        c.sources == n_files && c.chunks == expected_chunks && c.failed_sources == 0
    };
    let (pg_s, graph_s) = until_both(
        t0,
        timeout,
        COLD_POLL,
        &mut services,
        // Each writer creates its schema when it starts: until then a count fails, not done yet.
        async || Ok(pg.counts().await.is_ok_and(complete)),
        async || Ok(graph.counts().await.is_ok_and(complete)),
    )
    .await
    .with_context(|| format!("cold ingest (service logs in {})", logs.display()))?;
    let ingest_s = pg_s.max(graph_s);
    println!("cold ingest: postgres {pg_s:.1} s, graph {graph_s:.1} s");
    let mut problems = Vec::new();
    problems.extend(differences("postgres", &expected, &pg.summaries().await?));
    problems.extend(differences("graph", &expected, &graph.summaries().await?));

    // Live edits: one file at a time, a paragraph with a word no file holds.
    let nonce = std::process::id();
    let ids: Vec<(String, PathBuf)> = expected
        .iter()
        .map(|(id, (rel, _))| (id.clone(), inbox.join(rel)))
        .collect();
    let (mut edit_pg, mut edit_graph) = (Vec::new(), Vec::new());
    for (i, (id, path)) in ids.iter().take(edits).enumerate() {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let word = format!("kbuniqword{i}x{nonce}");
        let para = format!(
            "\n\nProject Manager  99:00\nOne more point before we close: the codeword {word} \
             marks this appended paragraph, which was added after the initial indexing run to \
             measure how fast an edit becomes searchable.\n"
        );
        let t0 = Instant::now();
        {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new().append(true).open(path)?;
            f.write_all(para.as_bytes())?;
        }
        let (p, g) = until_both(
            t0,
            Duration::from_secs(120),
            POLL,
            &mut services,
            async || holds_word(&pg, id, &word).await,
            async || holds_word(&graph, id, &word).await,
        )
        .await
        .with_context(|| format!("edit {i} (service logs in {})", logs.display()))?;
        edit_pg.push(p);
        edit_graph.push(g);
    }
    println!(
        "edit → searchable, {} edits: postgres p50 {:.3} s max {:.3} s, graph p50 {:.3} s max {:.3} s",
        edit_pg.len(),
        p50(&edit_pg),
        max(&edit_pg),
        p50(&edit_graph),
        max(&edit_graph)
    );

    // Deletes: as many other files, one at a time.
    let (mut del_pg, mut del_graph) = (Vec::new(), Vec::new());
    for (i, (id, path)) in ids.iter().rev().take(edits).enumerate() {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let t0 = Instant::now();
        std::fs::remove_file(path)?;
        let (p, g) = until_both(
            t0,
            Duration::from_secs(120),
            POLL,
            &mut services,
            async || gone(&pg, id).await,
            async || gone(&graph, id).await,
        )
        .await
        .with_context(|| format!("delete {i} (service logs in {})", logs.display()))?;
        del_pg.push(p);
        del_graph.push(g);
    }
    println!(
        "delete → gone, {} deletes: postgres p50 {:.3} s max {:.3} s, graph p50 {:.3} s max {:.3} s",
        del_pg.len(),
        p50(&del_pg),
        max(&del_pg),
        p50(&del_graph),
        max(&del_graph)
    );
    let peaks = sampler.finish();
    drop(services);
    let load_after = loadavg();
    let per_service: Vec<String> = peaks
        .per_service
        .iter()
        .map(|(k, v)| format!("{k} {v:.0}"))
        .collect();
    println!(
        "peak RSS of the services together {:.0} MiB (each at its peak: {})",
        peaks.total,
        per_service.join(", ")
    );

    // Both stores: the edit is searchable when it is in the slower one.
    let both =
        |a: &[f64], b: &[f64]| -> Vec<f64> { a.iter().zip(b).map(|(x, y)| x.max(*y)).collect() };
    let edit_both = both(&edit_pg, &edit_graph);
    let del_both = both(&del_pg, &del_graph);

    let peer = match peer::installed() {
        Ok(prefix) => Some(peer::run(&set, &prefix)?),
        Err(why) => {
            println!("== peer: not run ({why})");
            None
        }
    };

    for p in &problems {
        println!("PROBLEM: {p}");
    }
    println!("loadavg_before={load_before}");
    println!("loadavg_after={load_after}");
    println!("files={}", files.len());
    println!("set_bytes={bytes}");
    println!("chunks={expected_chunks}");
    println!("ingest_s={ingest_s:.1}");
    println!("ingest_pg_s={pg_s:.1}");
    println!("ingest_graph_s={graph_s:.1}");
    println!("chunks_per_s={:.1}", expected_chunks as f64 / ingest_s);
    println!("edits={}", edit_both.len());
    println!("edit_searchable_p50_s={:.3}", p50(&edit_both));
    println!("edit_searchable_pg_p50_s={:.3}", p50(&edit_pg));
    println!("edit_searchable_graph_p50_s={:.3}", p50(&edit_graph));
    println!("delete_gone_p50_s={:.3}", p50(&del_both));
    println!("delete_gone_pg_p50_s={:.3}", p50(&del_pg));
    println!("delete_gone_graph_p50_s={:.3}", p50(&del_graph));
    println!(
        "failed_reads_while_polling={}",
        READ_ERRORS.load(std::sync::atomic::Ordering::Relaxed)
    );
    println!("rss_mb={:.0}", peaks.total);
    for (k, v) in &peaks.per_service {
        println!("rss_mb_{}={v:.0}", k.replace('-', "_"));
    }
    match &peer {
        Some(p) => {
            println!("peer_s={:.1}", p.cold_s);
            println!("ratio_vs_peer={:.2}", p.cold_s / ingest_s);
            if let Some(c) = p.chunks {
                println!("peer_chunks={c}");
                println!("peer_chunks_per_s={:.1}", c / p.cold_s);
            }
            let opt = |v: Option<f64>, digits: usize| {
                v.map_or("none".to_string(), |v| format!("{v:.digits$}"))
            };
            println!("peer_edit_searchable_s={}", opt(p.edit_s, 3));
            println!("peer_delete_gone_s={}", opt(p.delete_s, 3));
            println!("peer_rss_mb={}", opt(p.rss_mb, 0));
            if let Some(r) = p.rss_mb {
                println!("rss_ratio_vs_peer={:.2}", peaks.total / r);
            }
            println!("peer_clean_trials={}", p.clean_trials);
        }
        None => {
            println!("peer_s=none");
            println!("ratio_vs_peer=none");
        }
    }
    println!("stores_equal_folder={}", problems.is_empty());
    if !problems.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}
