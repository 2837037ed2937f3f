//! What the soak measures on the broker, and the end check: the pipeline quiet and both stores
//! holding exactly the folder's files, each parsed afresh.

use futures::TryStreamExt;
use kb_graph::GraphStore;
use kb_pg::PgStore;
use kb_store::{MirrorStore, SourceSummary};
use kb_stream::{subjects, Stage};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// The streams sampled: the pipeline's, the buckets that grow with the sources, the cache.
const STREAMS: [&str; 8] = [
    "KB_SOURCE",
    "KB_PARSED",
    "KB_MIRROR",
    "KB_DLQ",
    "OBJ_kb_blobs",
    "KV_kb_watch",
    "KV_kb_progress",
    "KV_kb_embed_cache",
];

#[derive(Debug, Clone, Default)]
pub struct Broker {
    /// (stream, messages, bytes); absent streams are left out.
    pub streams: Vec<(&'static str, u64, u64)>,
    /// Bodies in `kb_blobs`.
    pub blobs: u64,
    /// Bytes JetStream holds for the account.
    pub store_bytes: u64,
}

impl Broker {
    pub fn brief(&self) -> String {
        let mut parts: Vec<String> = self
            .streams
            .iter()
            .map(|(n, m, b)| {
                let short = n.trim_start_matches("KB_").trim_start_matches("KV_kb_");
                format!("{short} {m}/{:.1}M", crate::mib(*b))
            })
            .collect();
        parts.push(format!("bodies {}", self.blobs));
        parts.join(" ")
    }

    pub fn figures(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .streams
            .iter()
            .flat_map(|(n, m, b)| {
                let key = n.to_ascii_lowercase();
                [format!("{key}_messages={m}"), format!("{key}_bytes={b}")]
            })
            .collect();
        out.push(format!("blobs={}", self.blobs));
        out.push(format!("broker_store_bytes={}", self.store_bytes));
        out
    }
}

pub async fn broker(js: &async_nats::jetstream::Context) -> anyhow::Result<Broker> {
    let mut out = Broker::default();
    for name in STREAMS {
        if let Ok(mut s) = js.get_stream(name).await {
            let info = s.info().await?;
            out.streams
                .push((name, info.state.messages, info.state.bytes));
        }
    }
    if let Ok(store) = js.get_object_store(subjects::BLOB_BUCKET).await {
        let list: Vec<_> = store.list().await?.try_collect().await?;
        out.blobs = list.iter().filter(|o| !o.deleted).count() as u64;
    }
    out.store_bytes = js.query_account().await?.storage;
    Ok(out)
}

/// Waits until no consumer has work and both stores equal the folder; the differences left
/// at the deadline otherwise.
pub async fn settle(
    js: &async_nats::jetstream::Context,
    stores: &kb_bench_retrieval::fresh_stores::Stores,
    folder: &Path,
    within: Duration,
) -> anyhow::Result<()> {
    let expected = expected(folder)?;
    let pg = PgStore::connect(&stores.pg_url, 384, 2).await?;
    let graph = GraphStore::connect(&stores.graph).await?;
    let deadline = Instant::now() + within;
    loop {
        let mut problems = Vec::new();
        for (stream, consumer) in [
            (subjects::SOURCE_STREAM, Stage::Parser.as_str()),
            (subjects::PARSED_STREAM, Stage::Embedder.as_str()),
            (subjects::MIRROR_STREAM, Stage::PgWriter.as_str()),
            (subjects::MIRROR_STREAM, Stage::GraphWriter.as_str()),
        ] {
            let info = js.get_stream(stream).await?.consumer_info(consumer).await?;
            if info.num_pending > 0 || info.num_ack_pending > 0 {
                problems.push(format!(
                    "{consumer}: {} waiting, {} in flight",
                    info.num_pending, info.num_ack_pending
                ));
            }
        }
        for (name, have) in [
            ("postgres", pg.summaries().await?),
            ("graph", graph.summaries().await?),
        ] {
            problems.extend(differences(name, &expected, &have));
        }
        if problems.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            anyhow::bail!(
                "not settled after {within:?}: {} problems, first: {:?}",
                problems.len(),
                problems.iter().take(8).collect::<Vec<_>>()
            );
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

fn differences(
    store: &str,
    expected: &BTreeMap<String, (String, SourceSummary)>,
    have: &[SourceSummary],
) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen = 0;
    for s in have {
        match expected.get(&s.source_id) {
            // The version is the watcher's count of changes: any.
            Some((_, e))
                if *s
                    == (SourceSummary {
                        version: s.version,
                        ..e.clone()
                    }) =>
            {
                seen += 1
            }
            Some((rel, _)) => out.push(format!("{store}: {rel} differs ({})", s.status)),
            None => out.push(format!("{store}: {} is not in the folder", s.source_id)),
        }
    }
    if seen != expected.len() {
        out.push(format!("{store}: {seen} of {} files match", expected.len()));
    }
    out
}

/// Every file of the folder (not hidden ones) parsed as the parser does with its defaults,
/// by the watcher's source id: (relative path, summary).
fn expected(root: &Path) -> anyhow::Result<BTreeMap<String, (String, SourceSummary)>> {
    let opts = kb_parse::ParseOptions::default();
    let mut out = BTreeMap::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                dirs.push(path);
                continue;
            }
            let rel = path
                .strip_prefix(root)?
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            let id = kb_core::ids::source_id("folder:inbox", &rel);
            let source = kb_proto::SourceRef {
                source_id: id.clone(),
                version: 1,
                origin: "folder:inbox".into(),
                path: rel.clone(),
                ..Default::default()
            };
            let doc = kb_parse::parse(&source, &std::fs::read(&path)?, &opts)
                .map_err(|e| anyhow::anyhow!("{rel} does not parse: {e}"))?;
            let mentioned: std::collections::BTreeSet<&str> =
                doc.mentions.iter().map(|m| m.entity_id.as_str()).collect();
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
            out.insert(id, (rel, summary));
        }
    }
    Ok(out)
}
