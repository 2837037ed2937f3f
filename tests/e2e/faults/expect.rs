//! What both stores must hold for a watched folder — the parse of every file in it, nothing
//! else — and the comparison that says precisely what differs.

use kb_store::{SourceSummary, StoreCounts};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The expected content of a store, derived from the files alone.
pub struct Expected {
    /// By source id; `version` is 0 here: the version is checked against the mirror stream.
    pub sources: BTreeMap<String, SourceSummary>,
    pub paths: BTreeMap<String, String>,
    pub counts: StoreCounts,
}

/// The watcher's source id for a path in the folder.
pub fn sid(rel: &str) -> String {
    kb_core::ids::source_id("folder:inbox", rel)
}

/// Every file the watcher publishes (not hidden ones), with its '/'-separated relative path.
fn files(root: &Path) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let path = entry.path();
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            if entry.file_type()?.is_dir() {
                dirs.push(path);
            } else {
                let rel = path
                    .strip_prefix(root)?
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                out.push((rel, std::fs::read(&path)?));
            }
        }
    }
    Ok(out)
}

/// Parses every file of the folder as the parser service does (default settings).
pub fn expected(root: &Path) -> anyhow::Result<Expected> {
    let opts = kb_parse::ParseOptions::default();
    let mut sources = BTreeMap::new();
    let mut paths = BTreeMap::new();
    let mut entities = BTreeSet::new();
    let mut counts = StoreCounts::default();
    for (rel, bytes) in files(root)? {
        let id = sid(&rel);
        let source = kb_proto::SourceRef {
            source_id: id.clone(),
            version: 1,
            origin: "folder:inbox".into(),
            path: rel.clone(),
            ..Default::default()
        };
        let doc = kb_parse::parse(&source, &bytes, &opts)
            .map_err(|e| anyhow::anyhow!("{rel} does not parse: {e}"))?;
        let mentioned: BTreeSet<&str> = doc.mentions.iter().map(|m| m.entity_id.as_str()).collect();
        entities.extend(mentioned.iter().map(|e| e.to_string()));
        let summary = SourceSummary::from_parts(
            id.clone(),
            0,
            "ok",
            doc.chunks.iter().map(|c| c.chunk_id.clone()),
            doc.mentions
                .iter()
                .map(|m| (m.chunk_id.clone(), m.entity_id.clone(), u64::from(m.count))),
            mentioned.len() as u64,
            doc.relations.len() as u64,
        );
        counts.sources += 1;
        counts.chunks += summary.chunks;
        counts.mentions += summary.mentions;
        counts.relations += summary.relations;
        sources.insert(id.clone(), summary);
        paths.insert(id, rel);
    }
    counts.entities = entities.len() as u64;
    counts.chunks_with_embeddings = counts.chunks;
    Ok(Expected {
        sources,
        paths,
        counts,
    })
}

impl Expected {
    fn name(&self, id: &str) -> String {
        match self.paths.get(id) {
            Some(p) => format!("{p} ({id})"),
            None => id.to_string(),
        }
    }

    /// Everything in which `actual` (one store's summaries) differs from the expectation, with
    /// `heads` the version of each source on the mirror stream; empty when it matches exactly.
    pub fn differences(
        &self,
        actual: &[SourceSummary],
        heads: &BTreeMap<String, u64>,
    ) -> Vec<String> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        for a in actual {
            seen.insert(a.source_id.as_str());
            let Some(e) = self.sources.get(&a.source_id) else {
                out.push(format!(
                    "unexpected source {} v{}",
                    self.name(&a.source_id),
                    a.version
                ));
                continue;
            };
            let head = heads.get(&a.source_id).copied().unwrap_or(0);
            let want = SourceSummary {
                version: head,
                ..e.clone()
            };
            if *a != want {
                out.push(format!(
                    "{}: have v{} {} chunks={} entities={} mentions={} relations={}, want v{head} ok chunks={} entities={} mentions={} relations={}{}{}",
                    self.name(&a.source_id),
                    a.version,
                    a.status,
                    a.chunks,
                    a.entities,
                    a.mentions,
                    a.relations,
                    e.chunks,
                    e.entities,
                    e.mentions,
                    e.relations,
                    if a.chunk_digest != e.chunk_digest { " (other chunk ids)" } else { "" },
                    if a.mention_digest != e.mention_digest { " (other mentions)" } else { "" },
                ));
            }
        }
        for id in self.sources.keys().filter(|id| !seen.contains(id.as_str())) {
            out.push(format!("missing source {}", self.name(id)));
        }
        out
    }

    /// Differences in the store's totals (orphaned entities, stray chunks or mentions).
    pub fn count_differences(&self, store: &str, have: &StoreCounts) -> Vec<String> {
        let want = &self.counts;
        let mut out = Vec::new();
        let mut cmp = |what: &str, h: u64, w: u64| {
            if h != w {
                out.push(format!("{store}: {what} {h}, want {w}"));
            }
        };
        cmp("sources", have.sources, want.sources);
        cmp("failed sources", have.failed_sources, 0);
        cmp("chunks", have.chunks, want.chunks);
        cmp(
            "chunks with embeddings",
            have.chunks_with_embeddings,
            want.chunks,
        );
        cmp("entities", have.entities, want.entities);
        cmp("mentions", have.mentions, want.mentions);
        cmp("relations", have.relations, want.relations);
        out
    }
}
