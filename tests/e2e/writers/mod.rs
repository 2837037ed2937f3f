//! Helpers of the writer tests (ordering, replay, dead letters): mirror events built from the
//! contract's types, raw publishing onto mirror subjects (as a redelivery or an out-of-order
//! arrival would present them), waiting for both writers, and running `kb` with overrides.
#![allow(dead_code)]

use anyhow::Context as _;
use async_nats::jetstream;
use async_nats::HeaderMap;
use kb_e2e::Pipeline;
use kb_proto::{
    blob::Location, mirror_event::Kind, Blob, Chunk, Entity, Mention, Message, MirrorEvent,
    ParsedDocument, Relation,
};
use kb_stream::{subjects, Publisher, Topology};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The dimension the writers use by default (`embedder.dimensions`).
pub const DIMS: usize = 384;
pub const WRITERS: [&str; 2] = ["pg-writer", "graph-writer"];

pub struct Js {
    pub topo: Topology,
    pub publisher: Publisher,
}

pub async fn jetstream(p: &Pipeline) -> anyhow::Result<Js> {
    let (_client, js) = kb_stream::connect(&p.nats.url(), "writers-test").await?;
    let topo = kb_stream::topology::ensure(&js).await?;
    let publisher = Publisher::new(&topo, 256 * 1024);
    Ok(Js { topo, publisher })
}

#[allow(unused_imports)] // not every test binary names it
pub use kb_testkit::source;

/// `n` chunks whose ids and texts carry the version, entities shared between sources, so a
/// version's content is recognisable in both stores.
pub fn document(id: &str, version: u64, n: u32) -> ParsedDocument {
    let entities: Vec<Entity> = (0..6)
        .map(|i| Entity {
            entity_id: format!("topic:{i}"),
            name: format!("Topic {i}"),
            canonical_name: format!("topic {i}"),
            entity_type: "TOPIC".to_owned(),
        })
        .collect();
    let chunks: Vec<Chunk> = (0..n)
        .map(|i| Chunk {
            chunk_id: format!("{id}-v{version}-c{i}"),
            index: i,
            text: format!("{id} version {version} chunk {i}"),
            importance_score: 0.5,
            start_offset: u64::from(i) * 40,
            end_offset: u64::from(i) * 40 + 30,
            token_count: 6,
            speakers: Vec::new(),
            start_seconds: -1.0,
            end_seconds: -1.0,
            section: String::new(),
            embedding: kb_testkit::vector(
                DIMS,
                u64::from(i) * 1_000_003 + version * 7919 + id.len() as u64,
            ),
        })
        .collect();
    let mentions = chunks
        .iter()
        .enumerate()
        .map(|(i, c)| Mention {
            chunk_id: c.chunk_id.clone(),
            entity_id: entities[(i + version as usize) % 6].entity_id.clone(),
            count: 1 + (i as u32 % 3),
        })
        .collect();
    ParsedDocument {
        document_unix_ms: 0,
        source: Some(source(id, version)),
        title: format!("{id} v{version}"),
        chunks,
        relations: vec![Relation {
            source_entity_id: entities[0].entity_id.clone(),
            target_entity_id: entities[1].entity_id.clone(),
            relation_type: "CO_OCCURS".to_owned(),
            weight: version as f32,
        }],
        entities,
        mentions,
        embedding_model: "test-model".to_owned(),
        embedding_dimensions: DIMS as u32,
        parser: "test/1".to_owned(),
    }
}

/// A mirror event as the publisher encodes it, body inline.
pub fn upsert_event(doc: &ParsedDocument) -> Vec<u8> {
    MirrorEvent {
        source: doc.source.clone(),
        kind: Kind::Upsert as i32,
        body: Some(Blob {
            size: doc.encoded_len() as u64,
            location: Some(Location::Inline(doc.encode_to_vec())),
        }),
        error: String::new(),
    }
    .encode_to_vec()
}

pub fn delete_event(id: &str, version: u64) -> Vec<u8> {
    MirrorEvent {
        source: Some(source(id, version)),
        kind: Kind::Delete as i32,
        body: None,
        error: String::new(),
    }
    .encode_to_vec()
}

/// Publishes straight onto `kb.v1.mirror.<id>`, bypassing the publisher's last-writer-wins
/// gate: what a writer sees when messages arrive late, twice or out of order. Returns the
/// stream sequence.
pub async fn publish_raw(
    js: &Js,
    id: &str,
    version: u64,
    payload: Vec<u8>,
    msg_id: &str,
) -> anyhow::Result<u64> {
    let mut headers = HeaderMap::new();
    headers.insert(kb_stream::Header::SourceId.as_str(), id);
    headers.insert(
        kb_stream::Header::Version.as_str(),
        version.to_string().as_str(),
    );
    headers.insert("Nats-Msg-Id", msg_id);
    let ack = js
        .topo
        .js
        .publish_with_headers(subjects::mirror(id), headers, payload.into())
        .await?
        .await?;
    Ok(ack.sequence)
}

/// Waits until every writer has delivered and acknowledged everything up to `seq`.
pub async fn wait_writers_past(js: &Js, seq: u64, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    for w in WRITERS {
        loop {
            let done = match js.topo.mirror.consumer_info(w).await {
                Ok(i) => {
                    i.delivered.stream_sequence >= seq
                        && i.num_pending == 0
                        && i.num_ack_pending == 0
                }
                Err(_) => false,
            };
            if done {
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{w} did not get past sequence {seq}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// Runs `kb` against the pipeline with some settings overridden (e.g. another database).
pub fn kb_with(p: &Pipeline, overrides: &[(&str, &str)], args: &[&str]) -> anyhow::Result<Output> {
    let bin = kb_e2e::bin_dir().join("kb");
    let mut cmd = Command::new(&bin);
    cmd.args(args).envs(p.env()).env_remove("KB_CONFIG");
    for (k, v) in overrides {
        cmd.env(k, v);
    }
    cmd.output()
        .with_context(|| format!("cannot run {}", bin.display()))
}

pub fn json(out: &Output) -> anyhow::Result<serde_json::Value> {
    serde_json::from_slice(&out.stdout).map_err(|e| {
        anyhow::anyhow!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The stream the writers consume, for inspecting its raw messages.
pub fn mirror(js: &Js) -> &jetstream::stream::Stream {
    &js.topo.mirror
}
