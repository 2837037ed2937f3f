//! Real servers and in-process writers for the writer tests: a private NATS, fresh Postgres and
//! graph databases, documents built from the contract's types, and waiting helpers.
#![allow(dead_code)]

use kb_core::service::Context;
use kb_graph::{GraphConfig, GraphStore};
use kb_pg::PgStore;
use kb_proto::ParsedDocument;
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

// The shared fixtures; each test binary uses some of them.
#[allow(unused_imports)]
pub use kb_testkit::fixtures::{chunk_vector, document, source, vector};

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
