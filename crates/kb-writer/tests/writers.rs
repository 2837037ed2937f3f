//! Both writers against real servers: the durable consumer's policy as the server holds it, a
//! document far above the message limit going through both stores by reference, and permanent
//! failures dead-lettered with the reason and the original message while the stream goes on.
#![allow(clippy::unwrap_used)] // tests: a failed step is a failed test

mod common;

use common::*;
use kb_proto::{blob::Location, Message, MirrorEvent};
use kb_store::MirrorStore;
use kb_stream::subjects;
use kb_stream::Stage;
use kb_writer::WriterOptions;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_durable_consumers_have_the_documented_policy() {
    let env = env().await;
    let (pg, _) = fresh_pg(8).await;
    let (stop, task) = spawn_writer(Stage::PgWriter, pg, env.nats.url(), WriterOptions::new(4));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let info = loop {
        if let Ok(info) = env.topo.mirror.consumer_info("pg-writer").await {
            break info;
        }
        assert!(std::time::Instant::now() < deadline, "no consumer");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let c = &info.config;
    assert_eq!(c.durable_name.as_deref(), Some("pg-writer"));
    assert_eq!(c.filter_subject, subjects::MIRROR_ALL);
    assert_eq!(c.ack_wait, Duration::from_secs(30));
    assert_eq!(c.max_deliver, -1);
    assert_eq!(c.backoff, vec![Duration::from_secs(30)]);
    assert_eq!(c.max_ack_pending, 256);
    assert_eq!(
        c.ack_policy,
        async_nats::jetstream::consumer::AckPolicy::Explicit
    );
    stop.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5000_chunk_1024_dimension_document_goes_through_both_writers_by_reference() {
    const DIMS: usize = 1024;
    const CHUNKS: u32 = 5000;
    let env = env().await;
    let (pg, _) = fresh_pg(DIMS).await;
    let graph = fresh_graph().await;
    let doc = document("big", 1, CHUNKS, DIMS);
    let encoded = doc.encoded_len();
    assert!(encoded > 20 * 1024 * 1024, "{encoded} bytes");
    publish(&env.publisher, &doc).await;

    // The mirror message itself is small: the body is a reference into the object store.
    let m = env
        .topo
        .mirror
        .get_last_raw_message_by_subject(&subjects::mirror("big"))
        .await
        .unwrap();
    assert!(m.payload.len() < 4096, "{} bytes", m.payload.len());
    let ev = MirrorEvent::decode(m.payload.as_ref()).unwrap();
    let body = ev.body.unwrap();
    assert!(matches!(body.location, Some(Location::Object(_))));
    assert_eq!(body.size, encoded as u64);

    let (stop_pg, pg_task) = spawn_writer(
        Stage::PgWriter,
        pg.clone(),
        env.nats.url(),
        WriterOptions::new(4),
    );
    let (stop_graph, graph_task) = spawn_writer(
        Stage::GraphWriter,
        graph.clone(),
        env.nats.url(),
        WriterOptions::new(1),
    );
    let full = |s: &[kb_store::SourceSummary]| s.len() == 1 && s[0].chunks == u64::from(CHUNKS);
    let in_pg = wait_for(
        &pg,
        "5000 chunks in postgres",
        Duration::from_secs(600),
        full,
    )
    .await;
    let in_graph = wait_for(
        &graph,
        "5000 chunks in the graph",
        Duration::from_secs(600),
        full,
    )
    .await;
    assert_eq!(in_pg, in_graph);
    assert_eq!(in_pg[0].mentions, 2 * u64::from(CHUNKS));
    assert_eq!(in_pg[0].relations, doc.relations.len() as u64);

    // Every vector arrived whole: compare one with what was published.
    let counts = pg.counts().await.unwrap();
    assert_eq!(counts.chunks_with_embeddings, u64::from(CHUNKS));
    let stored: pgvector::Vector =
        sqlx::query_scalar("SELECT embedding FROM chunks WHERE chunk_id = 'big-v1-c4321'")
            .fetch_one(pg.pool())
            .await
            .unwrap();
    assert_eq!(stored.to_vec(), doc.chunks[4321].embedding);

    wait_caught_up(&env.topo, "pg-writer", Duration::from_secs(60)).await;
    wait_caught_up(&env.topo, "graph-writer", Duration::from_secs(60)).await;
    assert!(dead_letters(&env.topo).await.is_empty());
    stop_pg.cancel();
    stop_graph.cancel();
    pg_task.await.unwrap().unwrap();
    graph_task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_failures_are_dead_lettered_with_the_original_and_the_stream_goes_on() {
    let env = env().await;
    let (pg, _) = fresh_pg(16).await;
    let graph = fresh_graph().await;
    let (stop_pg, pg_task) = spawn_writer(
        Stage::PgWriter,
        pg.clone(),
        env.nats.url(),
        WriterOptions::new(4),
    );
    let (stop_graph, graph_task) = spawn_writer(
        Stage::GraphWriter,
        graph.clone(),
        env.nats.url(),
        WriterOptions::new(1),
    );

    // 1. Bytes that are no mirror event at all, straight onto a mirror subject.
    let garbage = b"\xff\xfe not a protobuf".to_vec();
    env.topo
        .js
        .publish(subjects::mirror("junk"), garbage.clone().into())
        .await
        .unwrap()
        .await
        .unwrap();
    // 2. Vectors of the wrong dimension: Postgres refuses, the graph (no vectors) takes it.
    let wrong = document("wrong-dims", 1, 3, 4);
    publish(&env.publisher, &wrong).await;
    // 3. A good document after them still lands.
    let good = document("good", 1, 3, 16);
    publish(&env.publisher, &good).await;

    wait_for(&pg, "good in postgres", Duration::from_secs(120), |s| {
        s.iter().any(|x| x.source_id == "good")
    })
    .await;
    wait_for(&graph, "both in the graph", Duration::from_secs(120), |s| {
        s.len() == 2
    })
    .await;
    wait_caught_up(&env.topo, "pg-writer", Duration::from_secs(60)).await;
    wait_caught_up(&env.topo, "graph-writer", Duration::from_secs(60)).await;

    // The document Postgres refused is recorded there as failed, with the reason.
    let pg_sources: Vec<(String, String)> = pg
        .summaries()
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.source_id, s.status))
        .collect();
    assert_eq!(
        pg_sources,
        vec![
            ("good".to_string(), "ok".to_string()),
            ("wrong-dims".to_string(), "failed".to_string())
        ]
    );
    let reason: String =
        sqlx::query_scalar("SELECT error FROM sources WHERE source_id = 'wrong-dims'")
            .fetch_one(pg.pool())
            .await
            .unwrap();
    assert!(
        reason.starts_with("pg-writer gave up (store_rejected)") && reason.contains("dimension"),
        "{reason}"
    );

    let dls = dead_letters(&env.topo).await;
    let mut seen: Vec<(String, String, String)> = dls
        .iter()
        .map(|d| {
            (
                d.stage.clone(),
                d.error_kind.clone(),
                subjects::source_id_of(&d.original_subject).to_string(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("graph-writer".into(), "decode".into(), "junk".into()),
            ("pg-writer".into(), "decode".into(), "junk".into()),
            (
                "pg-writer".into(),
                "store_rejected".into(),
                "wrong-dims".into()
            ),
        ]
    );
    for d in &dls {
        assert!(!d.reason.is_empty());
        assert!(d.failed_unix_ms > 0);
        assert!(d.deliveries >= 1);
        if d.error_kind == "decode" {
            assert_eq!(
                d.original_payload, garbage,
                "the original message, byte for byte"
            );
        } else {
            assert!(d.reason.contains("dimension"), "{}", d.reason);
            let ev = MirrorEvent::decode(d.original_payload.as_slice()).unwrap();
            assert_eq!(ev.source.as_ref().map(|s| s.version), Some(1));
            assert_eq!(
                d.source.as_ref().map(|s| s.source_id.as_str()),
                Some("wrong-dims")
            );
            assert!(d
                .original_headers
                .iter()
                .any(|h| h == "Kb-Source-Id: wrong-dims"));
        }
    }
    stop_pg.cancel();
    stop_graph.cancel();
    pg_task.await.unwrap().unwrap();
    graph_task.await.unwrap().unwrap();
}
