//! Upserting a document builds the documented graph model, and reading it back agrees.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod common;

use common::fresh;
use kb_store::{Applied, Change, MirrorStore, StoreCounts};
use kb_testkit::fixtures::{document_about, relation, source};
use neo4rs::BoltType;

fn sid_param(sid: &str) -> Vec<(&'static str, BoltType)> {
    vec![("sid", BoltType::from(sid.to_owned()))]
}

#[tokio::test]
async fn upsert_builds_the_model() {
    let g = fresh().await;
    let mut doc = document_about("doc-a", 1, 4, &["alice", "bob", "carol"]);
    // Values to recognise in the nodes: the source's, and chunks of a recording (two
    // speakers, a start, no known end).
    doc.title = "Title of doc-a".into();
    if let Some(s) = doc.source.as_mut() {
        s.origin = "folder:test".into();
        s.path = "doc-a.md".into();
        s.media_type = "text/markdown".into();
    }
    for c in &mut doc.chunks {
        c.speakers = vec!["Ana".into(), "Bo".into()];
        c.start_seconds = f64::from(c.index) * 10.0;
    }
    doc.relations = vec![
        relation("alice", "bob", "CO_OCCURS", 0.5),
        relation("bob", "carol", "discusses", 0.25),
        relation("alice", "carol", "SOMETHING_ELSE", 1.0),
    ];
    assert_eq!(
        g.store.apply(Change::Upsert(&doc)).await.unwrap(),
        Applied::Written
    );

    let sid = sid_param("doc-a");
    let has_chunk = g
        .count_with(
            "MATCH (:Source {source_id: $sid})-[:HAS_CHUNK]->(c:Chunk) RETURN count(c) AS n",
            sid.clone(),
        )
        .await;
    assert_eq!(has_chunk, 4);
    let next = g
        .count_with("MATCH (a:Chunk {source_id: $sid})-[:NEXT]->(b:Chunk {source_id: $sid}) RETURN count(*) AS n", sid.clone())
        .await;
    assert_eq!(next, 3);
    // The NEXT chain runs from index 0 to 3 in order.
    let ordered = g
        .count_with(
            "MATCH (a:Chunk {source_id: $sid})-[:NEXT]->(b:Chunk) WHERE b.index = a.index + 1 RETURN count(*) AS n",
            sid.clone(),
        )
        .await;
    assert_eq!(ordered, 3);
    let mentions = g
        .count_with(
            "MATCH (:Chunk {source_id: $sid})-[m:MENTIONS]->(:Entity) RETURN count(m) AS n",
            sid.clone(),
        )
        .await;
    assert_eq!(mentions, 12);
    // Chunk i mentions each entity i + 1 times: 1+2+3+4 per entity.
    let mention_total = g
        .count_with("MATCH (:Chunk {source_id: $sid})-[m:MENTIONS]->(:Entity {entity_id: 'alice'}) RETURN sum(m.count) AS n", sid.clone())
        .await;
    assert_eq!(mention_total, 10);

    assert_eq!(
        g.count("MATCH (:Entity)-[r:CO_OCCURS]->(:Entity) RETURN count(r) AS n")
            .await,
        1
    );
    assert_eq!(
        g.count("MATCH (:Entity)-[r:DISCUSSES]->(:Entity) RETURN count(r) AS n")
            .await,
        1
    );
    // Outside the vocabulary: stored as RELATED_TO.
    assert_eq!(
        g.count("MATCH (:Entity {entity_id: 'alice'})-[r:RELATED_TO]->(:Entity {entity_id: 'carol'}) RETURN count(r) AS n")
            .await,
        1
    );
    assert_eq!(
        g.count("MATCH (:Entity)-[r]->(:Entity) WHERE r.source_id = 'doc-a' AND r.weight > 0 RETURN count(r) AS n")
            .await,
        3
    );

    let source_props = g
        .strings(
            "MATCH (s:Source {source_id: 'doc-a'}) UNWIND [s.title, s.status, s.origin, s.path, s.content_hash, s.media_type] AS v RETURN v",
            "v",
        )
        .await;
    assert_eq!(
        source_props,
        vec![
            "Title of doc-a",
            "doc-a.md",
            "folder:test",
            "hash-doc-a-1",
            "ok",
            "text/markdown"
        ]
    );
    assert_eq!(
        g.count("MATCH (s:Source {source_id: 'doc-a'}) RETURN s.version AS n")
            .await,
        1
    );
    // Chunk properties: unknown end time is absent, speakers are a list, no embedding stored.
    assert_eq!(
        g.count("MATCH (c:Chunk {source_id: 'doc-a'}) WHERE c.end_seconds IS NULL AND c.start_seconds >= 0 AND size(c.speakers) = 2 AND c.embedding IS NULL RETURN count(c) AS n")
            .await,
        4
    );
    assert_eq!(
        g.strings("MATCH (e:Entity) RETURN e.name AS name", "name")
            .await,
        vec!["ALICE", "BOB", "CAROL"]
    );

    let summaries = g.store.summaries().await.unwrap();
    assert_eq!(summaries.len(), 1);
    let s = &summaries[0];
    assert_eq!(
        (s.source_id.as_str(), s.version, s.status.as_str()),
        ("doc-a", 1, "ok")
    );
    assert_eq!(
        (s.chunks, s.entities, s.mentions, s.relations),
        (4, 3, 12, 3)
    );
    let expected = kb_store::SourceSummary::from_parts(
        "doc-a",
        1,
        "ok",
        doc.chunks.iter().map(|c| c.chunk_id.clone()),
        doc.mentions
            .iter()
            .map(|m| (m.chunk_id.clone(), m.entity_id.clone(), u64::from(m.count))),
        3,
        3,
    );
    assert_eq!(s, &expected);

    assert_eq!(
        g.store.counts().await.unwrap(),
        StoreCounts {
            sources: 1,
            failed_sources: 0,
            chunks: 4,
            chunks_with_embeddings: 4,
            entities: 3,
            mentions: 12,
            relations: 3,
        }
    );
}

#[tokio::test]
async fn prepare_is_idempotent_and_constraints_hold() {
    let g = fresh().await;
    g.store.prepare().await.unwrap();
    g.store.prepare().await.unwrap();
    let doc = document_about("doc-c", 1, 1, &[]);
    g.store.apply(Change::Upsert(&doc)).await.unwrap();
    // The uniqueness constraint rejects a second Source with the same id.
    let dup = g
        .raw
        .run(neo4rs::query("CREATE (:Source {source_id: 'doc-c'})"))
        .await;
    assert!(dup.is_err(), "duplicate Source was accepted");
    assert_eq!(g.count("MATCH (s:Source) RETURN count(s) AS n").await, 1);
}

#[tokio::test]
async fn failed_source_keeps_the_error_and_no_chunks() {
    let g = fresh().await;
    let doc = document_about("doc-f", 1, 3, &["alice"]);
    g.store.apply(Change::Upsert(&doc)).await.unwrap();
    let failed = source("doc-f", 2);
    assert_eq!(
        g.store
            .apply(Change::Failed(&failed, "unsupported format"))
            .await
            .unwrap(),
        Applied::MarkedFailed
    );
    assert_eq!(
        g.strings(
            "MATCH (s:Source {source_id: 'doc-f'}) RETURN s.status + ':' + s.error AS v",
            "v"
        )
        .await,
        vec!["failed:unsupported format"]
    );
    assert_eq!(g.count("MATCH (c:Chunk) RETURN count(c) AS n").await, 0);
    // Its only entity is now referenced by nothing.
    assert_eq!(g.count("MATCH (e:Entity) RETURN count(e) AS n").await, 0);

    let summaries = g.store.summaries().await.unwrap();
    assert_eq!(summaries.len(), 1);
    assert_eq!(
        (
            summaries[0].status.as_str(),
            summaries[0].version,
            summaries[0].chunks
        ),
        ("failed", 2, 0)
    );
    let counts = g.store.counts().await.unwrap();
    assert_eq!(
        (counts.sources, counts.failed_sources, counts.chunks),
        (1, 1, 0)
    );

    // A later successful parse clears the error.
    let doc = document_about("doc-f", 3, 2, &["alice"]);
    assert_eq!(
        g.store.apply(Change::Upsert(&doc)).await.unwrap(),
        Applied::Written
    );
    assert_eq!(
        g.count("MATCH (s:Source {source_id: 'doc-f'}) WHERE s.status = 'ok' AND s.error IS NULL RETURN count(s) AS n").await,
        1
    );
}
