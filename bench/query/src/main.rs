//! kb-bench-query (`make bench-query`): the read side, measured.
//!
//! On the `bench` stack instance (`deploy/local/bench query`, which builds every release
//! binary and exports the instance's `KB_*` variables):
//!
//! 1. the corpus transcripts go through the real pipeline (`kb ingest`, as in
//!    `make bench-retrieval`);
//! 2. **quality**: every corpus question through the real engine (`kb_query::Backend`),
//!    corpus-wide, in each mode (hybrid, vector, keyword, graph): recall@5, recall@10 and
//!    MRR@10 by the corpus rule (a top-k chunk holds 60+ characters of a relevant turn);
//! 3. **latency over HTTP** on the corpus store: the release `kb-query` on a loopback port, a
//!    closed-loop load of 1, 8 and 32 clients per mode (each client sends the questions
//!    round-robin in its own shuffled order; warm-up, then a measured window). The query
//!    embedding cache is off (`KB_QUERY__EMBEDDING_CACHE=0`), so every request is embedded by
//!    the local model;
//! 4. the raw baseline: the vector retriever's ANN query through `pgbench` at the same client
//!    counts, with the questions' real vectors;
//! 5. a **generated store** of 2,000 documents × 10 chunks derived from the corpus (recombined
//!    turns, perturbed real embeddings, the corpus's entities and relations), filled into fresh
//!    databases through the writers' store code; then 3 and 4 again on it.
//!
//! Options: `--seconds N` (measured window per cell, 10), `--warmup N` (2), `--docs N` (2000),
//! `--chunks N` (10), `--clients 1,8,32`, `--modes hybrid,vector,keyword,graph` (the latency
//! cells), `--generated-only` (no latency cells on the corpus store: a quicker look at the goal
//! cell), `--quality-only` (stop after the quality table). Prints tables, then `key=value` lines last.

mod cpu;
mod gen;
mod load;
mod profile;
mod quality;
mod raw;
mod server;
mod stats;
mod store;

use anyhow::Context;
use kb_bench_retrieval::{corpus, corpus_dir, pipeline};
use kb_core::Settings;
use kb_query::Mode;
use quality::MODES;
use std::path::Path;
use std::time::{Duration, Instant};

/// The goals of the issue.
const QUALITY_MARGIN: f64 = 0.05;
const P99_GOAL_MS: f64 = 200.0;
const GOAL_CLIENTS: usize = 8;

struct Args {
    window: Duration,
    warmup: Duration,
    docs: usize,
    chunks: usize,
    clients: Vec<usize>,
    modes: Vec<Mode>,
    generated_only: bool,
    quality_only: bool,
}

impl Args {
    fn parse() -> anyhow::Result<Self> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let value = |name: &str| -> anyhow::Result<Option<&str>> {
            match args.iter().position(|a| a == name) {
                Some(i) => Ok(Some(
                    args.get(i + 1)
                        .with_context(|| format!("{name} needs a value"))?
                        .as_str(),
                )),
                None => Ok(None),
            }
        };
        let number = |name: &str, default: u64| -> anyhow::Result<u64> {
            value(name)?.map_or(Ok(default), |v| {
                v.parse().with_context(|| format!("{name} {v:?}"))
            })
        };
        let clients = match value("--clients")? {
            Some(v) => v
                .split(',')
                .map(|c| c.trim().parse::<usize>())
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("--clients {v:?}"))?,
            None => vec![1, 8, 32],
        };
        let modes = match value("--modes")? {
            Some(v) => v
                .split(',')
                .map(|m| m.trim().parse::<Mode>().map_err(anyhow::Error::msg))
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("--modes {v:?}"))?,
            None => MODES.to_vec(),
        };
        Ok(Self {
            modes,
            generated_only: args.iter().any(|a| a == "--generated-only"),
            quality_only: args.iter().any(|a| a == "--quality-only"),
            window: Duration::from_secs(number("--seconds", 10)?),
            warmup: Duration::from_secs(number("--warmup", 2)?),
            docs: usize::try_from(number("--docs", 2000)?)?,
            chunks: usize::try_from(number("--chunks", 10)?)?,
            clients,
        })
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// The 1-minute load average (what `uptime` shows first).
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

struct Figures(Vec<(String, String)>);

impl Figures {
    fn add(&mut self, key: impl Into<String>, value: impl ToString) {
        self.0.push((key.into(), value.to_string()));
    }
}

/// The HTTP matrix and the raw baseline on one store; figures keyed with `prefix`.
#[allow(clippy::too_many_arguments)]
async fn latency(
    label: &str,
    prefix: &str,
    server: &server::QueryServer,
    postgres_url: &str,
    questions: &[String],
    vectors: &[Vec<f32>],
    depth: usize,
    args: &Args,
    figures: &mut Figures,
) -> anyhow::Result<Vec<load::Cell>> {
    println!(
        "\n== kb-query over HTTP, {label}: {} s per cell after {} s warm-up, every query embedded \
         by the local model (load average {})",
        args.window.as_secs(),
        args.warmup.as_secs(),
        loadavg()
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(60))
        .build()?;
    // every question once in every mode, unmeasured
    let t = Instant::now();
    for &mode in &args.modes {
        load::prime(&client, &server.base, &load::bodies(questions, mode)?).await?;
    }
    println!(
        "(warmed up with every question once per mode in {:.1} s)",
        t.elapsed().as_secs_f64()
    );
    let meter = cpu::Meter::new(Some(server.pid()));
    if !meter.found() {
        eprintln!("warning: the bench instance's Postgres or ArcadeDB process was not found: no CPU split");
    }
    println!(
        "{:<10} {:>7} {:>9} {:>9} {:>9} {:>9} {:>7} {:>9}",
        "mode", "clients", "requests", "p50 ms", "p99 ms", "q/s", "errors", "degraded"
    );
    let mut cells = Vec::new();
    for &mode in &args.modes {
        let bodies = load::bodies(questions, mode)?;
        for &c in &args.clients {
            let cell = load::cell(
                &meter,
                &client,
                &server.base,
                bodies.clone(),
                mode,
                c,
                args.warmup,
                args.window,
            )
            .await?;
            println!(
                "{:<10} {:>7} {:>9} {:>9.1} {:>9.1} {:>9.1} {:>7} {:>9}",
                mode.as_str(),
                c,
                cell.requests,
                cell.p50_ms,
                cell.p99_ms,
                cell.qps,
                cell.errors,
                cell.degraded
            );
            let m = mode.as_str();
            figures.add(
                format!("{prefix}p50_ms_{m}_c{c}"),
                format!("{:.1}", cell.p50_ms),
            );
            figures.add(
                format!("{prefix}p99_ms_{m}_c{c}"),
                format!("{:.1}", cell.p99_ms),
            );
            figures.add(format!("{prefix}qps_{m}_c{c}"), format!("{:.1}", cell.qps));
            cells.push(cell);
        }
    }
    println!(
        "\nCPU per answered request, ms, in the measured window ({} logical cores):",
        cores()
    );
    println!(
        "{:<10} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>11}",
        "mode",
        "clients",
        "kb-query",
        "postgres",
        "graph",
        "load gen",
        "other",
        "total",
        "busy cores"
    );
    for c in &cells {
        let n = c.requests.max(1) as f64;
        let per = |s: f64| s * 1e3 / n;
        let total = c.cpu.machine;
        println!(
            "{:<10} {:>7} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>11.2}",
            c.mode.as_str(),
            c.clients,
            per(c.cpu.query),
            per(c.cpu.postgres),
            per(c.cpu.graph),
            per(c.cpu.bench),
            per(c.cpu.other()),
            per(total),
            if c.seconds > 0.0 {
                total / c.seconds
            } else {
                0.0
            }
        );
        if c.mode == Mode::Hybrid && c.clients == GOAL_CLIENTS {
            let m = format!("{prefix}cpu_ms_hybrid_c{GOAL_CLIENTS}");
            figures.add(format!("{m}_query"), format!("{:.1}", per(c.cpu.query)));
            figures.add(
                format!("{m}_postgres"),
                format!("{:.1}", per(c.cpu.postgres)),
            );
            figures.add(format!("{m}_graph"), format!("{:.1}", per(c.cpu.graph)));
            figures.add(format!("{m}_other"), format!("{:.1}", per(c.cpu.other())));
        }
    }
    let machine: f64 = cells.iter().map(|c| c.cpu.machine).sum();
    let other: f64 = cells.iter().map(|c| c.cpu.other()).sum();
    let share = if machine > 0.0 { other / machine } else { 0.0 };
    println!(
        "other processes on the machine: {:.1}% of the CPU used in the measured windows{}",
        share * 100.0,
        if share > 0.05 {
            " — NOT a quiet machine: these figures are too high"
        } else {
            ""
        }
    );
    figures.add(format!("{prefix}other_cpu_share"), format!("{share:.3}"));
    println!();
    let raw = raw::measure(
        postgres_url,
        vectors,
        depth,
        &args.clients,
        args.warmup,
        args.window,
    )
    .await?;
    for r in &raw {
        println!(
            "{:<10} {:>7} {:>9} {:>9.1} {:>9.1} {:>9.1} {:>7} {:>9}",
            "raw ANN", r.clients, r.transactions, r.p50_ms, r.p99_ms, r.qps, "-", "-"
        );
        let c = r.clients;
        figures.add(
            format!("{prefix}raw_p50_ms_c{c}"),
            format!("{:.2}", r.p50_ms),
        );
        figures.add(
            format!("{prefix}raw_p99_ms_c{c}"),
            format!("{:.2}", r.p99_ms),
        );
        figures.add(format!("{prefix}raw_qps_c{c}"), format!("{:.1}", r.qps));
    }
    println!(
        "(raw ANN: the vector retriever's query at hybrid depth, LIMIT {depth}, through pgbench \
         with the questions' vectors; no HTTP, no embedding)"
    );
    Ok(cells)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let began = Instant::now();
    let args = Args::parse()?;
    let mut figures = Figures(Vec::new());
    println!("load average at start: {}", loadavg());
    let corpus_path = corpus_dir();
    let transcripts = corpus::transcripts(&corpus_path.join("transcripts"))?;
    let questions: Vec<String> = transcripts
        .iter()
        .flat_map(|t| t.queries.iter().map(|q| q.query.clone()))
        .collect();

    println!("\n== ingest of the corpus transcripts through the pipeline");
    let ingested = pipeline::ingest(&transcripts).await?;
    println!(
        "{} documents, {} chunks in {:.1} s",
        ingested.documents, ingested.chunks, ingested.seconds
    );
    figures.add("corpus_chunks", ingested.chunks);

    // ---- quality per mode
    let settings = Settings::load(None)?;
    let t = Instant::now();
    let modes = quality::measure(&settings, &transcripts).await?;
    println!(
        "\n== retrieval quality per mode: {} questions, searched corpus-wide, k = 10 ({:.1} s)",
        questions.len(),
        t.elapsed().as_secs_f64()
    );
    print!(
        "{:<8} {:>8} {:>9} {:>7} {:>6} |",
        "mode", "recall@5", "recall@10", "MRR@10", "empty"
    );
    for tr in &transcripts {
        print!(" {:>11}", tr.name);
    }
    println!("   (recall@10 per meeting)");
    for m in &modes {
        print!(
            "{:<8} {:>8.3} {:>9.3} {:>7.3} {:>6} |",
            m.mode.as_str(),
            m.recall.at5,
            m.recall.at10,
            m.mrr,
            m.empty
        );
        for r in &m.per_meeting {
            print!(" {r:>11.2}");
        }
        println!();
        let name = m.mode.as_str();
        figures.add(format!("recall5_{name}"), format!("{:.3}", m.recall.at5));
        figures.add(format!("recall10_{name}"), format!("{:.3}", m.recall.at10));
        figures.add(format!("mrr_{name}"), format!("{:.3}", m.mrr));
    }
    let hybrid = modes
        .iter()
        .find(|m| m.mode == Mode::Hybrid)
        .map_or(0.0, |m| m.recall.at10);
    let (best_mode, best) = modes
        .iter()
        .filter(|m| m.mode != Mode::Hybrid)
        .map(|m| (m.mode.as_str(), m.recall.at10))
        .fold(("none", 0.0f64), |a, b| if b.1 > a.1 { b } else { a });
    let quality_met = hybrid >= best + QUALITY_MARGIN - 1e-9;
    println!(
        "goal: hybrid recall@10 {hybrid:.3} ≥ best single mode ({best_mode} {best:.3}) + {QUALITY_MARGIN}: {}",
        if quality_met { "met" } else { "NOT met" }
    );
    figures.add("recall10_best_single", format!("{best:.3}"));
    figures.add("goal_quality_met", quality_met);
    if args.quality_only {
        println!();
        for (k, v) in figures.0 {
            println!("{k}={v}");
        }
        return Ok(());
    }

    // the questions' vectors, for the raw baseline
    let embedder = kb_embed::load_embedder(&settings)?;
    let vectors = embedder.embed(&questions).await?;
    drop(embedder);
    let depth = settings.query.depth.max(10);

    let bin = pipeline::bin_dir();
    let logs = tempfile::Builder::new()
        .prefix("kb-bench-query-")
        .tempdir()?
        .keep();
    println!("(service logs in {})", logs.display());

    // ---- latency on the corpus store
    let corpus_url = settings.postgres.url.expose().to_owned();
    if !args.generated_only {
        let server = server::QueryServer::start(&bin, &logs, "corpus", &[]).await?;
        latency(
            &format!("corpus store ({} chunks)", ingested.chunks),
            "corpus_",
            &server,
            &corpus_url,
            &questions,
            &vectors,
            depth,
            &args,
            &mut figures,
        )
        .await?;
    }

    // ---- the generated store
    let t = Instant::now();
    let corpus = gen::Corpus::load(&ingested.pool).await?;
    let shape = gen::Shape {
        docs: args.docs,
        chunks_per_doc: args.chunks,
        noise: 0.25,
    };
    let docs: Vec<_> = (0..shape.docs)
        .map(|d| corpus.document(&shape, d))
        .collect();
    let generated_s = t.elapsed().as_secs_f64();
    println!(
        "\n== generated store: {} documents × {} chunks from the corpus's {} documents / {} \
         chunks ({:.1} s to generate)",
        shape.docs,
        shape.chunks_per_doc,
        corpus.documents(),
        corpus.chunks(),
        generated_s
    );
    let filled = store::fill(&corpus_url, corpus.dims, &docs).await?;
    drop(docs);
    println!(
        "filled through PgStore and GraphStore at once in {:.1} s: Postgres {:.1} s rows + {:.1} s \
         HNSW index, graph {:.1} s; {} chunks, {} entities, {} mentions",
        filled.wall_s,
        filled.pg_load_s,
        filled.pg_index_s,
        filled.graph_s,
        filled.chunks,
        filled.entities,
        filled.mentions
    );
    figures.add("store_chunks", filled.chunks);
    figures.add("fill_s", format!("{:.1}", filled.wall_s));
    figures.add("fill_pg_rows_s", format!("{:.1}", filled.pg_load_s));
    figures.add("fill_pg_index_s", format!("{:.1}", filled.pg_index_s));
    figures.add("fill_graph_s", format!("{:.1}", filled.graph_s));

    let cells = {
        let env = [
            ("KB_POSTGRES_URL", filled.pg_url.clone()),
            ("KB_NEO4J_URI", filled.graph.uri.clone()),
            ("KB_NEO4J_USER", filled.graph.user.clone()),
            ("KB_NEO4J_PASSWORD", filled.graph.password.clone()),
            ("KB_NEO4J__DATABASE", store::DB.to_owned()),
        ];
        let server = server::QueryServer::start(&bin, &logs, "generated", &env).await?;
        latency(
            &format!("generated store ({} chunks)", filled.chunks),
            "",
            &server,
            &filled.pg_url,
            &questions,
            &vectors,
            depth,
            &args,
            &mut figures,
        )
        .await?
    };
    let t = Instant::now();
    let steps = profile::measure(&settings, &filled.pg_url, &filled.graph, &questions).await?;
    println!(
        "\n== where a hybrid query's time goes on the generated store: each step alone, one \
         question at a time, in process ({:.1} s)",
        t.elapsed().as_secs_f64()
    );
    println!(
        "{:<34} {:>8} {:>8} {:>8} {:>8}",
        "step", "p50 ms", "p99 ms", "mean ms", "rows"
    );
    for s in &steps {
        println!(
            "{:<34} {:>8.1} {:>8.1} {:>8.1} {:>8.1}",
            s.name, s.p50_ms, s.p99_ms, s.mean_ms, s.rows
        );
    }
    for (key, s) in ["embed", "vector", "keyword", "graph", "graph_on_pg"]
        .iter()
        .zip(steps.iter().filter(|s| !s.name.starts_with(' ')))
    {
        figures.add(format!("step_p50_ms_{key}"), format!("{:.1}", s.p50_ms));
        figures.add(format!("step_p99_ms_{key}"), format!("{:.1}", s.p99_ms));
    }

    let goal_cell = cells
        .iter()
        .find(|c| c.mode == Mode::Hybrid && c.clients == GOAL_CLIENTS);
    if let Some(c) = goal_cell {
        let met = c.p99_ms <= P99_GOAL_MS && c.errors == 0;
        println!(
            "goal: p99 hybrid at {GOAL_CLIENTS} clients on the {}-chunk store {:.1} ms ≤ {P99_GOAL_MS} ms: {}",
            filled.chunks,
            c.p99_ms,
            if met { "met" } else { "NOT met" }
        );
        figures.add("goal_latency_met", met);
    }
    let errors: usize = cells.iter().map(|c| c.errors).sum();
    let degraded: usize = cells.iter().map(|c| c.degraded).sum();
    figures.add("http_errors", errors);
    figures.add("degraded_answers", degraded);
    figures.add("bench_s", format!("{:.0}", began.elapsed().as_secs_f64()));
    figures.add("loadavg_end", loadavg());
    report_path(&logs);

    println!();
    for (k, v) in figures.0 {
        println!("{k}={v}");
    }
    Ok(())
}

fn report_path(logs: &Path) {
    println!("\n(kb-query logs: {})", logs.display());
}
