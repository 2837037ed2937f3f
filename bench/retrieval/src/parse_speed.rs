//! Parser throughput per detected format over every corpus file, in process (no broker).

use kb_parse::{detect, parse, ParseOptions};
use kb_proto::SourceRef;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

pub struct Row {
    pub format: String,
    pub files: usize,
    pub bytes: u64,
    pub chunks: usize,
    pub mb_per_s: f64,
}

/// Parses every file of each format repeatedly for at least `MIN_TIME`; files the parser
/// refuses (e.g. the encrypted PDF) are not counted.
const MIN_TIME: Duration = Duration::from_millis(1500);

pub fn measure(corpus: &Path) -> anyhow::Result<Vec<Row>> {
    let mut by_format: BTreeMap<String, Vec<(SourceRef, Vec<u8>)>> = BTreeMap::new();
    for sub in ["transcripts", "docx", "pdf"] {
        let Ok(dir) = std::fs::read_dir(corpus.join(sub)) else {
            continue;
        };
        for entry in dir.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "json") {
                continue;
            }
            let bytes = std::fs::read(&path)?;
            let name = path.to_string_lossy().to_string();
            let source = SourceRef {
                source_id: "bench".into(),
                version: 1,
                origin: "file".into(),
                path: name.clone(),
                ..Default::default()
            };
            let opts = ParseOptions::default();
            if parse(&source, &bytes, &opts).is_err() {
                continue;
            }
            let format = format!("{:?}", detect(&name, &bytes)).to_lowercase();
            by_format.entry(format).or_default().push((source, bytes));
        }
    }
    let opts = ParseOptions::default();
    let mut rows = Vec::new();
    for (format, files) in by_format {
        let bytes: u64 = files.iter().map(|(_, b)| b.len() as u64).sum();
        let mut chunks = 0;
        let (mut rounds, started) = (0u32, Instant::now());
        while rounds == 0 || started.elapsed() < MIN_TIME {
            chunks = 0;
            for (source, data) in &files {
                chunks += parse(source, data, &opts)
                    .map(|d| d.chunks.len())
                    .unwrap_or(0);
            }
            rounds += 1;
        }
        let secs = started.elapsed().as_secs_f64();
        let mb_per_s = bytes as f64 * f64::from(rounds) / secs / 1e6;
        rows.push(Row {
            format,
            files: files.len(),
            bytes,
            chunks,
            mb_per_s,
        });
    }
    Ok(rows)
}
