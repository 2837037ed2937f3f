//! What `parser.isolation = "process"` costs against `"thread"`: parses every file of a corpus
//! folder one at a time in each mode and prints the totals.
//!
//! ```text
//! cargo build --release -p kb-parser --examples
//! target/release/examples/isolation_cost target/release/kb-parser ../shared/corpus [rounds]
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kb_core::settings::{Isolation, ParserSettings};
use kb_parser::Runner;
use kb_proto::SourceRef;

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

async fn total(
    runner: &Runner,
    docs: &[(SourceRef, Arc<Vec<u8>>)],
    rounds: u32,
) -> (Duration, usize) {
    let started = Instant::now();
    let mut parsed = 0;
    for _ in 0..rounds {
        for (s, bytes) in docs {
            parsed += usize::from(runner.parse(s, bytes.clone()).await.is_ok());
        }
    }
    (started.elapsed(), parsed)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let bin = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: isolation_cost <kb-parser> <corpus> [rounds]"))?;
    let corpus = args.next().unwrap_or_else(|| "../shared/corpus".into());
    let rounds: u32 = args.next().and_then(|r| r.parse().ok()).unwrap_or(3);
    let mut paths = Vec::new();
    files(Path::new(&corpus), &mut paths);
    paths.sort();
    let mut docs = Vec::new();
    for (i, p) in paths.iter().enumerate() {
        let bytes = std::fs::read(p)?;
        let source = SourceRef {
            source_id: format!("doc{i}"),
            version: 1,
            path: p.display().to_string(),
            ..SourceRef::default()
        };
        docs.push((source, Arc::new(bytes)));
    }
    let bytes: usize = docs.iter().map(|d| d.1.len()).sum();
    let thread = Runner::new(&ParserSettings::default()).map_err(anyhow::Error::msg)?;
    let process = Runner::new(&ParserSettings {
        isolation: Isolation::Process,
        worker_bin: Some(bin.into()),
        ..ParserSettings::default()
    })
    .map_err(anyhow::Error::msg)?;
    // warm the page cache and the allocator
    total(&thread, &docs, 1).await;
    total(&process, &docs, 1).await;
    let (t, tn) = total(&thread, &docs, rounds).await;
    let (p, pn) = total(&process, &docs, rounds).await;
    let n = docs.len() as u32 * rounds;
    println!(
        "{} files, {bytes} bytes, {rounds} rounds: thread {t:?} ({tn} parsed, {:?}/doc), \
         process {p:?} ({pn} parsed, {:?}/doc): process costs {:+.1}% ({:?} more per document)",
        docs.len(),
        t / n,
        p / n,
        (p.as_secs_f64() / t.as_secs_f64() - 1.0) * 100.0,
        p.saturating_sub(t) / n,
    );
    Ok(())
}
