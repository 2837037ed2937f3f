//! Parser throughput per format (MB/s of input) on the shared corpus, or on given files:
//! `cargo run --release -p kb-parse --example throughput [-- FILE...]`
//! Files that fail to parse (the encrypted PDF, the image-only DOCX) are listed, not timed.

use std::collections::BTreeMap;
use std::time::Instant;

use kb_proto::SourceRef;

// the shared corpus beside the repository
const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus");

fn corpus_files() -> Vec<String> {
    let mut files = Vec::new();
    for dir in ["transcripts", "pdf", "docx"] {
        let Ok(entries) = std::fs::read_dir(format!("{CORPUS}/{dir}")) else {
            eprintln!("{CORPUS}/{dir} is missing");
            continue;
        };
        files.extend(
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| !p.to_string_lossy().ends_with(".queries.json"))
                .map(|p| p.to_string_lossy().into_owned()),
        );
    }
    files.sort();
    files
}

fn main() {
    let mut files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        files = corpus_files();
    }
    let opts = kb_parse::ParseOptions::default();
    // parser name → (bytes, seconds, files)
    let mut per_format: BTreeMap<String, (usize, f64, usize)> = BTreeMap::new();
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
        let mut parsed = None;
        for _ in 0..rounds {
            match kb_parse::parse(&source, &bytes, &opts) {
                Ok(doc) => parsed = Some((doc.parser, doc.chunks.len())),
                Err(e) => {
                    println!("{path}: {e} (not timed)");
                    break;
                }
            }
        }
        let Some((parser, chunks)) = parsed else {
            continue;
        };
        let secs = start.elapsed().as_secs_f64();
        let mb = (bytes.len() * rounds) as f64 / 1e6;
        println!(
            "{path}: {parser}, {} bytes, {chunks} chunks, {:.2} MB/s",
            bytes.len(),
            mb / secs
        );
        let e = per_format.entry(parser).or_default();
        e.0 += bytes.len() * rounds;
        e.1 += secs;
        e.2 += 1;
    }
    println!("\nper format (all files of the format together):");
    for (parser, (bytes, secs, n)) in &per_format {
        println!(
            "  {parser:<18} {n} files  {:.2} MB/s",
            *bytes as f64 / 1e6 / secs
        );
    }
}
