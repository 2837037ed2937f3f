//! `make bench-embed`: how fast the embedder is, and how it scales.
//!
//! 1. The corpus transcripts, parsed with kb-parse into the pipeline's real chunks.
//! 2. The local model (ONNX Runtime): chunks/s and p50/p99 latency of a call of 8 chunks.
//! 3. The same model from the same local weights in Python sentence-transformers on the same
//!    chunks (installed into a venv outside the repo, reused between runs; skipped in CI or
//!    when it cannot be installed), and the cosine between the two vectors of every chunk.
//! 4. 1, 2 and 4 embedder worker processes sharing the durable consumer, against a local fake
//!    provider with a fixed latency per request: throughput and speed-up. Then one worker with
//!    the local model through the same path.
//!
//! The last lines are `key=value` figures. `kb-bench-embed worker` is one embedder process
//! (what step 4 starts; settings from the environment).

mod corpus;
mod local;
mod python;
mod scaling;

use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    if std::env::args().nth(1).as_deref() == Some("worker") {
        return scaling::worker_main();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(bench())
}

/// Repository root (the bench runs from anywhere).
fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn stack_dir() -> PathBuf {
    match std::env::var_os("KB_STACK_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => repo_root().join(".stack"),
    }
}

async fn bench() -> anyhow::Result<()> {
    let mut figures: Vec<(String, String)> = Vec::new();
    let corpus_dir = match std::env::var_os("KB_BENCH_CORPUS") {
        Some(d) => PathBuf::from(d),
        None => repo_root().join("../shared/corpus/transcripts"),
    };
    let corpus = corpus::load(&corpus_dir)?;
    let texts = corpus.texts();
    println!(
        "== corpus: {} documents, {} chunks from {}",
        corpus.docs.len(),
        texts.len(),
        corpus_dir.display()
    );
    figures.push(("chunks".into(), texts.len().to_string()));

    println!(
        "\n== local model (ONNX Runtime), calls of {} chunks",
        local::BATCH
    );
    let local = local::measure(&stack_dir(), &texts).await?;
    println!(
        "{}: {:.1} chunks/s, p50 {:.0} ms, p99 {:.0} ms per call ({} threads)",
        local.model, local.chunks_per_s, local.p50_ms, local.p99_ms, local.threads
    );
    figures.push(("local_model".into(), local.model.clone()));
    figures.push((
        "local_chunks_per_s".into(),
        format!("{:.1}", local.chunks_per_s),
    ));
    figures.push(("local_p50_ms".into(), format!("{:.0}", local.p50_ms)));
    figures.push(("local_p99_ms".into(), format!("{:.0}", local.p99_ms)));

    println!("\n== Python sentence-transformers, same weights, same chunks");
    match python::measure(&stack_dir(), &texts, local.threads) {
        Ok(py) => {
            let (min, mean) = local::cosines(&local.vectors, &py.vectors);
            println!(
                "{:.1} chunks/s, p50 {:.0} ms, p99 {:.0} ms per call; cosine to the local vectors: min {min:.5}, mean {mean:.5}",
                py.chunks_per_s, py.p50_ms, py.p99_ms
            );
            figures.push((
                "python_chunks_per_s".into(),
                format!("{:.1}", py.chunks_per_s),
            ));
            figures.push(("python_p50_ms".into(), format!("{:.0}", py.p50_ms)));
            figures.push(("python_p99_ms".into(), format!("{:.0}", py.p99_ms)));
            figures.push((
                "ratio_vs_python".into(),
                format!("{:.2}", local.chunks_per_s / py.chunks_per_s),
            ));
            figures.push(("cosine_min".into(), format!("{min:.5}")));
            // Python runs the fp32 weights: the same vectors from fp32, close ones from int8
            // (its install check asks 0.97 per sentence of the fp32 reference).
            let floor = if local.model.ends_with("-int8") {
                0.95
            } else {
                0.99
            };
            figures.push(("vectors_match".into(), (min > floor).to_string()));
            if min <= floor {
                println!(
                    "MISMATCH: the two runtimes disagree on some chunk (cosine {min:.5} <= {floor})"
                );
            }
        }
        Err(skip) => {
            println!("python: skipped ({skip:#})");
            for k in ["python_chunks_per_s", "ratio_vs_python", "vectors_match"] {
                figures.push((k.into(), "skipped".into()));
            }
        }
    }

    println!(
        "\n== embedder workers against a fake provider ({} ms per request, {} inputs per request, {} in flight per worker)",
        scaling::FAKE_LATENCY.as_millis(),
        scaling::INPUTS_PER_REQUEST,
        scaling::IN_FLIGHT
    );
    let runs = scaling::measure(&corpus).await?;
    let one = runs
        .iter()
        .find(|r| r.workers == 1)
        .map_or(0.0, |r| r.chunks_per_s);
    for r in &runs {
        println!(
            "{} worker(s): {} documents, {} chunks in {:.2} s: {:.1} chunks/s, speed-up {:.2}",
            r.workers,
            r.documents,
            r.chunks,
            r.seconds,
            r.chunks_per_s,
            r.chunks_per_s / one
        );
        figures.push((
            format!("fake_{}_workers_chunks_per_s", r.workers),
            format!("{:.1}", r.chunks_per_s),
        ));
        if r.workers > 1 {
            figures.push((
                format!("scaling_{}_workers", r.workers),
                format!("{:.2}", r.chunks_per_s / one),
            ));
        }
    }

    println!("\n== one embedder worker with the local model, through the broker");
    let pipeline_local = scaling::measure_local(&corpus).await?;
    println!(
        "{} documents, {} chunks in {:.2} s: {:.1} chunks/s",
        pipeline_local.documents,
        pipeline_local.chunks,
        pipeline_local.seconds,
        pipeline_local.chunks_per_s
    );
    figures.push((
        "pipeline_local_chunks_per_s".into(),
        format!("{:.1}", pipeline_local.chunks_per_s),
    ));

    println!();
    for (k, v) in figures {
        println!("{k}={v}");
    }
    Ok(())
}
