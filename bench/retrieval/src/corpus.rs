//! The corpus transcripts and their `NAME.queries.json` (format in the corpus README).

use anyhow::Context;
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Deserialize)]
pub struct Turn {
    pub index: usize,
    pub text: String,
}

#[derive(Debug, Deserialize)]
pub struct Query {
    pub query: String,
    /// Inclusive `[first, last]` turn-index ranges where the answer lies.
    pub relevant_turns: Vec<[usize; 2]>,
}

#[derive(Debug, Deserialize)]
struct QueriesFile {
    document: String,
    turns: Vec<Turn>,
    queries: Vec<Query>,
}

#[derive(Debug)]
pub struct Transcript {
    pub name: String,
    pub document: PathBuf,
    pub turns: Vec<Turn>,
    pub queries: Vec<Query>,
}

impl Transcript {
    /// The texts of the turns a query's answer lies in.
    pub fn relevant_texts(&self, q: &Query) -> Vec<&str> {
        self.turns
            .iter()
            .filter(|t| {
                q.relevant_turns
                    .iter()
                    .any(|[a, b]| (*a..=*b).contains(&t.index))
            })
            .map(|t| t.text.as_str())
            .collect()
    }
}

/// Every transcript with a queries file whose document exists, sorted by name.
pub fn transcripts(dir: &Path) -> anyhow::Result<Vec<Transcript>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".queries.json"))
        else {
            continue;
        };
        let raw =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let file: QueriesFile = serde_json::from_slice(&raw)
            .with_context(|| format!("bad queries file {}", path.display()))?;
        let document = dir.join(&file.document);
        if !document.is_file() {
            anyhow::bail!(
                "{} names {}, which does not exist",
                path.display(),
                document.display()
            );
        }
        out.push(Transcript {
            name: name.to_string(),
            document,
            turns: file.turns,
            queries: file.queries,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}
