//! Real servers and in-process writers for the writer tests: a private NATS, fresh Postgres and
//! graph databases, documents built from the contract's types, and waiting helpers.
#![allow(dead_code)]

use kb_core::service::Context;
use kb_graph::{GraphConfig, GraphStore};
use kb_pg::PgStore;
use kb_proto::{Chunk, Entity, Mention, ParsedDocument, Relation, SourceRef};
use kb_store::{Change, MirrorStore, SourceSummary};
use kb_stream::{Publisher, Topology};
use kb_writer::WriterOptions;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

pub const INLINE_MAX: usize = 256 * 1024;

pub struct Env {
    pub nats: kb_testkit::NatsServer,
    pub topo: Topology,
    pub publisher: Publisher,
}

pub async fn env() -> Env {
    let nats = kb_testkit::stack().await.unwrap().nats().await.unwrap();
    let (_c, js) = kb_stream::connect(&nats.url(), "test").await.unwrap();
    let topo = kb_stream::topology::ensure(&js).await.unwrap();
    let publisher = Publisher::new(&topo, INLINE_MAX);
    Env {
        nats,
        topo,
        publisher,
    }
}

pub async fn fresh_pg(dimensions: usize) -> (PgStore, String) {
    let url = kb_testkit::stack()
        .await
        .unwrap()
        .fresh_postgres()
        .await
        .unwrap();
    (PgStore::connect(&url, dimensions, 6).await.unwrap(), url)
}

pub async fn fresh_graph() -> GraphStore {
    let db = kb_testkit::stack()
        .await
        .unwrap()
        .fresh_graph()
        .await
        .unwrap();
    GraphStore::connect(&GraphConfig {
        uri: db.uri,
        user: db.user,
        password: db.password,
        database: Some(db.database),
        max_connections: 4,
    })
    .await
    .unwrap()
}

/// A writer service running in this process until the returned token is cancelled.
pub fn spawn_writer<S: MirrorStore + 'static>(
    stage: kb_stream::Stage,
    store: S,
    nats_url: String,
    options: WriterOptions,
) -> (
    CancellationToken,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let shutdown = CancellationToken::new();
    let ctx = Context {
        name: stage.as_str(),
        shutdown: shutdown.clone(),
        health: Default::default(),
    };
    let handle = tokio::spawn(async move {
        kb_writer::run_with(stage, store, &nats_url, INLINE_MAX, options, ctx).await
    });
    (shutdown, handle)
}

pub fn source(id: &str, version: u64) -> SourceRef {
    SourceRef {
        link: String::new(),
        source_id: id.to_owned(),
        version,
        origin: "test".to_owned(),
        path: format!("{id}.txt"),
        content_hash: format!("hash-{id}-{version}"),
        media_type: "text/plain".to_owned(),
        modified_unix_ms: 1_700_000_000_000,
        size: 1000,
    }
}

/// Deterministic pseudo-random values in [-1, 1).
pub fn vector(dimensions: usize, seed: u64) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..dimensions)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x >> 40) as f32 / (1u64 << 23) as f32) - 1.0
        })
        .collect()
}

/// The embedding of chunk `i` of `id` at `version`: distinct for every chunk of every document.
pub fn chunk_vector(id: &str, version: u64, i: u32, dimensions: usize) -> Vec<f32> {
    let id_hash = id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    vector(dimensions, id_hash ^ (u64::from(i) + 7919 * version))
}

pub fn entity(i: usize) -> Entity {
    Entity {
        entity_id: format!("topic:{i}"),
        name: format!("Topic {i}"),
        canonical_name: format!("topic {i}"),
        entity_type: "TOPIC".to_owned(),
    }
}

/// `chunks` chunks of `dimensions`-dimensional vectors, each naming two of 50 entities, and a
/// few relations between them; the text carries the version so versions differ.
pub fn document(id: &str, version: u64, chunks: u32, dimensions: usize) -> ParsedDocument {
    let entities: Vec<Entity> = (0..50).map(entity).collect();
    let chunks: Vec<Chunk> = (0..chunks)
        .map(|i| Chunk {
            chunk_id: format!("{id}-v{version}-c{i}"),
            index: i,
            text: format!(
                "chunk {i} of {id}, version {version}: the board discussed topic {}",
                i % 50
            ),
            importance_score: 0.5,
            start_offset: u64::from(i) * 100,
            end_offset: u64::from(i) * 100 + 99,
            token_count: 12,
            speakers: vec!["A".to_owned()],
            start_seconds: -1.0,
            end_seconds: -1.0,
            section: String::new(),
            embedding: chunk_vector(id, version, i, dimensions),
        })
        .collect();
    let mentions = chunks
        .iter()
        .enumerate()
        .flat_map(|(i, c)| {
            [
                Mention {
                    chunk_id: c.chunk_id.clone(),
                    entity_id: entities[i % 50].entity_id.clone(),
                    count: 2,
                },
                Mention {
                    chunk_id: c.chunk_id.clone(),
                    entity_id: entities[(i + 7) % 50].entity_id.clone(),
                    count: 1,
                },
            ]
        })
        .collect();
    let relations = (0..5)
        .map(|i| Relation {
            source_entity_id: entities[i].entity_id.clone(),
            target_entity_id: entities[i + 7].entity_id.clone(),
            relation_type: "CO_OCCURS".to_owned(),
            weight: 0.5,
        })
        .collect();
    ParsedDocument {
        document_unix_ms: 0,
        source: Some(source(id, version)),
        title: format!("{id} v{version}"),
        chunks,
        entities,
        mentions,
        relations,
        embedding_model: "test-model".to_owned(),
        embedding_dimensions: dimensions as u32,
        parser: "test/1".to_owned(),
    }
}

pub async fn publish(p: &Publisher, doc: &ParsedDocument) {
    p.mirror(Change::Upsert(doc)).await.unwrap();
}

/// Polls `store` until `done` holds for its summaries.
pub async fn wait_for<S: MirrorStore>(
    store: &S,
    what: &str,
    timeout: Duration,
    done: impl Fn(&[SourceSummary]) -> bool,
) -> Vec<SourceSummary> {
    let deadline = Instant::now() + timeout;
    loop {
        let s = store.summaries().await;
        match s {
            Ok(s) if done(&s) => return s,
            s if Instant::now() > deadline => panic!("timed out waiting for {what}: {s:?}"),
            _ => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

/// The dead letters in KB_DLQ, oldest first.
pub async fn dead_letters(topo: &Topology) -> Vec<kb_proto::DeadLetter> {
    use kb_proto::Message;
    let mut dlq = topo.dlq.clone();
    let info = dlq.info().await.unwrap().clone();
    let mut out = Vec::new();
    for seq in info.state.first_sequence..=info.state.last_sequence {
        if let Ok(m) = topo.dlq.get_raw_message(seq).await {
            out.push(kb_proto::DeadLetter::decode(m.payload.as_ref()).unwrap());
        }
    }
    out
}

/// Waits until the durable consumer `stage` has acknowledged everything in the mirror stream.
pub async fn wait_caught_up(topo: &Topology, stage: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(info) = topo.mirror.consumer_info(stage).await {
            if info.num_pending == 0 && info.num_ack_pending == 0 {
                return;
            }
        }
        assert!(Instant::now() < deadline, "{stage} did not catch up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
