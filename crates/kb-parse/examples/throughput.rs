//! Parser throughput on the corpus transcripts and docs:
//! `cargo run --release -p kb-parse --example throughput [-- FILE...]`

use std::time::Instant;

use kb_proto::SourceRef;

fn main() {
    let mut files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        let dir = "/work/shared/corpus/transcripts";
        let Ok(entries) = std::fs::read_dir(dir) else {
            eprintln!("no files given and {dir} is missing");
            return;
        };
        files = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "txt"))
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        files.sort();
    }
    let opts = kb_parse::ParseOptions::default();
    let mut total_bytes = 0usize;
    let mut total_secs = 0.0f64;
    for path in &files {
        let Ok(bytes) = std::fs::read(path) else {
            eprintln!("cannot read {path}");
            continue;
        };
        let source = SourceRef {
            source_id: "bench".into(),
            path: path.clone(),
            ..SourceRef::default()
        };
        // repeat small files so the timing is not noise
        let rounds = (2_000_000 / bytes.len().max(1)).clamp(3, 200);
        let start = Instant::now();
        let mut chunks = 0;
        for _ in 0..rounds {
            match kb_parse::parse(&source, &bytes, &opts) {
                Ok(doc) => chunks = doc.chunks.len(),
                Err(e) => {
                    eprintln!("{path}: {e}");
                    break;
                }
            }
        }
        let secs = start.elapsed().as_secs_f64();
        let mb = (bytes.len() * rounds) as f64 / 1e6;
        println!(
            "{path}: {} bytes, {chunks} chunks, {:.2} MB/s",
            bytes.len(),
            mb / secs
        );
        total_bytes += bytes.len() * rounds;
        total_secs += secs;
    }
    if total_secs > 0.0 {
        println!("overall: {:.2} MB/s", total_bytes as f64 / 1e6 / total_secs);
    }
}
