//! Throughput of the local model on ~200-word chunks.
//!
//! `cargo run -p kb-embed --example local_throughput -- [TEXT_FILE_OR_DIR ...]`
//! Chunks the given `.txt` files (default: a built-in paragraph) into 200-word pieces and
//! embeds up to 256 of them. Env: `KB_STACK_DIR`, `THREADS` (2), `BATCH` (8).

use std::path::{Path, PathBuf};
use std::time::Instant;

use kb_embed::{Embedder, LocalModel, LocalModelConfig};

const WORDS_PER_CHUNK: usize = 200;
const MAX_CHUNKS: usize = 256;

const SAMPLE: &str = "The project manager opened the meeting by reviewing the budget for the \
new remote control. The industrial designer argued that a curved case would cost more but \
would feel better in the hand, while the marketing expert reported that younger users wanted \
fewer buttons, speech recognition and bright colours. They agreed to drop the teletext button, \
keep the volume and channel keys large, and look again at the battery options before the next \
session.";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn text_files(args: &[String]) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for arg in args {
        let path = Path::new(arg);
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "txt"))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.to_path_buf());
        }
    }
    files
}

fn chunks(text: &str) -> Vec<String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    words
        .chunks(WORDS_PER_CHUNK)
        .filter(|c| c.len() == WORDS_PER_CHUNK)
        .map(|c| c.join(" "))
        .collect()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut texts: Vec<String> = text_files(&args)
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|t| chunks(&t))
        .take(MAX_CHUNKS)
        .collect();
    if texts.is_empty() {
        let base = SAMPLE.repeat(WORDS_PER_CHUNK / 70 + 1);
        texts = (0..64)
            .map(|i| format!("Chunk {i}. {}", chunks(&base).remove(0)))
            .collect();
    }

    let stack = std::env::var_os("KB_STACK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.stack"));
    let cfg = LocalModelConfig {
        threads: env_usize("THREADS", 2),
        batch_size: env_usize("BATCH", 8),
        ..LocalModelConfig::from_stack_dir(stack)
    };
    let started = Instant::now();
    let model = LocalModel::load(&cfg)?;
    println!("load: {:.2} s", started.elapsed().as_secs_f64());

    // Warm-up pass so allocator and thread pool start-up do not count.
    model
        .embed(&texts[..cfg.batch_size.min(texts.len())])
        .await?;
    let started = Instant::now();
    let mut done = 0;
    for call in texts.chunks(model.max_batch()) {
        done += model.embed(call).await?.len();
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{done} chunks of {WORDS_PER_CHUNK} words, threads {}, batch {}: {:.1} s, {:.1} chunks/s",
        cfg.threads,
        cfg.batch_size,
        secs,
        done as f64 / secs
    );
    Ok(())
}
