//! The benchmark's chunks: every corpus file kb-parse reads, parsed as the parser stage does.

use std::path::Path;

use kb_parse::ParseOptions;
use kb_proto::{ParsedDocument, SourceRef};

pub struct Corpus {
    pub docs: Vec<ParsedDocument>,
}

impl Corpus {
    pub fn texts(&self) -> Vec<String> {
        self.docs
            .iter()
            .flat_map(|d| d.chunks.iter().map(|c| c.text.clone()))
            .collect()
    }
}

pub fn load(dir: &Path) -> anyhow::Result<Corpus> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| anyhow::anyhow!("cannot read the corpus {}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e != "json"))
        .collect();
    files.sort();
    let mut docs = Vec::new();
    for path in files {
        let bytes = std::fs::read(&path)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let source = SourceRef {
            source_id: kb_core::ids::source_id("bench:corpus", &name),
            version: 1,
            origin: "bench:corpus".into(),
            path: name.clone(),
            ..Default::default()
        };
        // Formats this build cannot read are left out, as the pipeline would dead-letter them.
        match kb_parse::parse(&source, &bytes, &ParseOptions::default()) {
            Ok(doc) if !doc.chunks.is_empty() => docs.push(doc),
            Ok(_) => {}
            Err(e) => println!("  skipping {name}: {e}"),
        }
    }
    anyhow::ensure!(
        !docs.is_empty(),
        "no readable documents in {}",
        dir.display()
    );
    Ok(Corpus { docs })
}
