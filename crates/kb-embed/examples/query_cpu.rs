//! CPU per query embedding under concurrent callers, as the query service embeds questions.
//!
//! `cargo run --release -p kb-embed --example query_cpu -- [QUERIES_JSON ...]`
//! Embeds every `"query"` of the given `.queries.json` files (default: a few built-in
//! questions) one text per call, from `CALLERS` tasks at once (4), `ROUNDS` times (20),
//! and prints wall time, calls/s and this process's CPU ms per call (from `/proc/self/stat`).
//! Env: `KB_STACK_DIR`, `KB_EMBEDDER__MODEL_DIR` (a variant), `THREADS` (0 = one per core),
//! `CALLERS`, `ROUNDS`.

use std::sync::Arc;
use std::time::Instant;

use kb_embed::{Embedder, LocalModel, LocalModelConfig};

const BUILT_IN: [&str; 6] = [
    "What did the team decide about the budget for the remote control?",
    "Who presented the market research findings?",
    "Which battery options were discussed?",
    "What did the industrial designer say about the case?",
    "When is the next meeting?",
    "Why was the teletext button dropped?",
];

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// User + system CPU seconds of this process so far.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

fn questions(files: &[String]) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    if files.is_empty() {
        return Ok(BUILT_IN.iter().map(|q| (*q).to_owned()).collect());
    }
    let mut out = Vec::new();
    for f in files {
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(f)?)?;
        let items = v.get("queries").and_then(|q| q.as_array()).cloned();
        for item in items.unwrap_or_default() {
            if let Some(q) = item.get("query").and_then(|q| q.as_str()) {
                out.push(q.to_owned());
            }
        }
    }
    Ok(out)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let texts = Arc::new(questions(&args)?);
    let stack = std::env::var("KB_STACK_DIR").unwrap_or_else(|_| ".stack".into());
    let mut cfg = LocalModelConfig::from_stack_dir_and_env(stack);
    cfg.threads = env_usize("THREADS", 0);
    let callers = env_usize("CALLERS", 4).max(1);
    let rounds = env_usize("ROUNDS", 20).max(1);
    let model = Arc::new(LocalModel::load(&cfg)?);
    model.embed(&texts[..1]).await?;

    let cpu = cpu_seconds();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..callers {
        let (model, texts) = (model.clone(), texts.clone());
        tasks.push(tokio::spawn(async move {
            for r in 0..rounds {
                for i in 0..texts.len() {
                    let t = &texts[(i + c * 7 + r) % texts.len()];
                    model.embed(std::slice::from_ref(t)).await?;
                }
            }
            Ok::<_, kb_embed::EmbedError>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu;
    let calls = (callers * rounds * texts.len()) as f64;
    println!(
        "threads={} callers={callers} calls={calls} wall_s={wall:.2} calls_per_s={:.1} cpu_ms_per_call={:.2}",
        cfg.threads,
        calls / wall,
        cpu * 1e3 / calls
    );
    Ok(())
}
