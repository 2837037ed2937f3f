//! Prints the structure a reader finds (format, blocks), before chunking:
//! `cargo run -p kb-parse --example blocks -- FILE...`

use kb_parse::{detect, reader_for, BlockKind};

fn main() {
    for path in std::env::args().skip(1) {
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("{path}: {e}");
                continue;
            }
        };
        let format = detect(&path, &bytes);
        let start = std::time::Instant::now();
        let doc = reader_for(format).and_then(|r| r.read(&bytes));
        let took = start.elapsed();
        match doc {
            Err(e) => println!("== {path} ({format:?}, {took:?}): error {e}"),
            Ok(doc) => {
                println!(
                    "== {path} ({format:?}, {took:?}): title={:?} parser={:?} blocks={}",
                    doc.title,
                    doc.parser,
                    doc.blocks.len()
                );
                for b in &doc.blocks {
                    let tag = match &b.kind {
                        BlockKind::Heading { level } => format!("H{level}"),
                        BlockKind::Paragraph => "P".into(),
                        BlockKind::Code => "C".into(),
                        BlockKind::Table => "T".into(),
                        BlockKind::Turn {
                            speaker,
                            start_seconds,
                        } => format!("[{speaker} @{start_seconds}]"),
                    };
                    println!("{tag}: {}", doc.block_text(b));
                }
            }
        }
    }
}
