//! Prints what the parser makes of files: `cargo run -p kb-parse --example dump -- FILE...`

use kb_proto::SourceRef;

fn main() {
    let opts = kb_parse::ParseOptions::default();
    for path in std::env::args().skip(1) {
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("{path}: {e}");
                continue;
            }
        };
        let source = SourceRef {
            source_id: "dump".into(),
            path: path.clone(),
            ..SourceRef::default()
        };
        match kb_parse::parse(&source, &bytes, &opts) {
            Err(e) => println!("== {path}: error {e}"),
            Ok(doc) => {
                println!(
                    "== {path}: parser={} title={:?} chunks={} entities={} mentions={} relations={}",
                    doc.parser,
                    doc.title,
                    doc.chunks.len(),
                    doc.entities.len(),
                    doc.mentions.len(),
                    doc.relations.len()
                );
                for e in &doc.entities {
                    let n: u32 = doc
                        .mentions
                        .iter()
                        .filter(|m| m.entity_id == e.entity_id)
                        .map(|m| m.count)
                        .sum();
                    println!(
                        "  {:<12} {:<40} {:?} x{n}",
                        e.entity_type, e.canonical_name, e.name
                    );
                }
                let name = |id: &str| {
                    doc.entities
                        .iter()
                        .find(|e| e.entity_id == id)
                        .map_or("?".to_string(), |e| e.canonical_name.clone())
                };
                for r in doc.relations.iter().take(15) {
                    println!(
                        "  rel {} {} -> {} w={}",
                        r.relation_type,
                        name(&r.source_entity_id),
                        name(&r.target_entity_id),
                        r.weight
                    );
                }
                let mut by_score: Vec<_> = doc.chunks.iter().collect();
                by_score.sort_by(|a, b| b.importance_score.total_cmp(&a.importance_score));
                for c in by_score.iter().take(2).chain(by_score.iter().rev().take(2)) {
                    let preview: String = c.text.chars().take(160).collect();
                    println!(
                        "  chunk #{} score={:.3} tokens={} t=[{:.1},{:.1}] section={:?} speakers={:?}\n     {preview:?}",
                        c.index, c.importance_score, c.token_count, c.start_seconds, c.end_seconds, c.section, c.speakers
                    );
                }
            }
        }
    }
}
