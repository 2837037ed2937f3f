//! Applying changes: read-back, last-writer-wins, idempotence, deletes and orphaned entities.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use common::*;
use kb_store::{Applied, Change, MirrorStore, SourceSummary, StoreErrorKind};

const DIMS: usize = 4;

#[tokio::test]
async fn upsert_then_read_back() {
    let (store, _) = fresh_store(DIMS).await;
    let alice = entity("Alice", "PERSON");
    let unep = entity("UNEP", "ORGANIZATION");
    let mut c0 = chunk("s1", 0, "Alice opened the call.", axis_vector(DIMS, 0));
    c0.speakers = vec!["Bob \"B\" Smith".into(), "Alice".into()];
    c0.start_seconds = 0.0;
    c0.end_seconds = 12.5;
    c0.section = "Intro > Call".into();
    c0.importance_score = 0.9;
    let c1 = chunk("s1", 1, "UNEP presented the plan.", axis_vector(DIMS, 1));
    let mut doc = document(source("s1", 3), vec![c0.clone(), c1.clone()], DIMS);
    doc.entities = vec![alice.clone(), unep.clone()];
    doc.mentions = vec![
        mention(&c0, &alice, 2),
        mention(&c1, &unep, 1),
        mention(&c1, &alice, 1),
    ];
    doc.relations = vec![relation(&alice, &unep, "CO_OCCURS", 0.5)];

    assert_eq!(
        store.apply(Change::Upsert(&doc)).await.unwrap(),
        Applied::Written
    );

    let (version, status, title, path, model, modified_ms): (
        i64,
        String,
        String,
        String,
        String,
        i64,
    ) = sqlx::query_as(
        "SELECT version, status, title, path, embedding_model,
                    (extract(epoch FROM modified_at) * 1000)::int8
             FROM sources WHERE source_id = 's1'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(
        (
            version,
            status.as_str(),
            title.as_str(),
            path.as_str(),
            model.as_str()
        ),
        (3, "ok", "Title of s1", "s1.md", "test-model")
    );
    assert_eq!(modified_ms, 1_700_000_000_003);

    type ChunkRow = (
        String,
        i32,
        String,
        f32,
        i32,
        Vec<String>,
        Option<f64>,
        Option<f64>,
        Option<String>,
    );
    let rows: Vec<ChunkRow> = sqlx::query_as(
        "SELECT chunk_id, chunk_index, text, importance_score, vector_dims(embedding), speakers,
                start_seconds, end_seconds, section
         FROM chunks WHERE source_id = 's1' ORDER BY chunk_index",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].0, c0.chunk_id);
    assert_eq!(rows[0].2, c0.text);
    assert_eq!(rows[0].3, 0.9);
    assert_eq!(rows[0].4, DIMS as i32);
    assert_eq!(
        rows[0].5, c0.speakers,
        "speakers keep their order and quoting"
    );
    assert_eq!((rows[0].6, rows[0].7), (Some(0.0), Some(12.5)));
    assert_eq!(rows[0].8.as_deref(), Some("Intro > Call"));
    assert_eq!(
        (rows[1].1, rows[1].6, rows[1].8.as_deref()),
        (1, None, None)
    );

    let stored: Vec<f32> = sqlx::query_scalar::<_, pgvector::Vector>(
        "SELECT embedding FROM chunks WHERE chunk_id = $1",
    )
    .bind(&c1.chunk_id)
    .fetch_one(store.pool())
    .await
    .unwrap()
    .to_vec();
    assert_eq!(stored, c1.embedding);

    assert_eq!(
        entity_ids(&store).await,
        vec!["ORGANIZATION:unep", "PERSON:alice"]
    );
    let expected = SourceSummary::from_parts(
        "s1",
        3,
        "ok",
        vec![c0.chunk_id.clone(), c1.chunk_id.clone()],
        doc.mentions
            .iter()
            .map(|m| (m.chunk_id.clone(), m.entity_id.clone(), u64::from(m.count))),
        2,
        1,
    );
    assert_eq!(store.summaries().await.unwrap(), vec![expected]);
    let counts = store.counts().await.unwrap();
    assert_eq!(
        (
            counts.sources,
            counts.chunks,
            counts.chunks_with_embeddings,
            counts.entities,
            counts.mentions,
            counts.relations
        ),
        (1, 2, 2, 2, 3, 1)
    );
}

#[tokio::test]
async fn an_older_version_after_a_newer_one_is_stale() {
    let (store, _) = fresh_store(DIMS).await;
    let v2 = document_mentioning("s1", 2, "new", 2, &[], DIMS);
    let v1 = document_mentioning("s1", 1, "old", 3, &[], DIMS);
    assert_eq!(
        store.apply(Change::Upsert(&v2)).await.unwrap(),
        Applied::Written
    );
    assert_eq!(
        store.apply(Change::Upsert(&v1)).await.unwrap(),
        Applied::Stale { current: 2 }
    );
    assert_eq!(
        chunk_texts(&store, "s1").await,
        vec!["new chunk 0 of s1", "new chunk 1 of s1"]
    );
}

#[tokio::test]
async fn redelivery_of_the_same_version_changes_nothing() {
    let (store, _) = fresh_store(DIMS).await;
    let e = entity("Alice", "PERSON");
    let doc = document_mentioning("s1", 1, "text", 3, &[e], DIMS);
    assert_eq!(
        store.apply(Change::Upsert(&doc)).await.unwrap(),
        Applied::Written
    );
    let before = store.summaries().await.unwrap();
    let updated: String = sqlx::query_scalar("SELECT updated_at::text FROM sources")
        .fetch_one(store.pool())
        .await
        .unwrap();

    assert_eq!(
        store.apply(Change::Upsert(&doc)).await.unwrap(),
        Applied::Stale { current: 1 }
    );
    assert_eq!(store.summaries().await.unwrap(), before);
    let updated_again: String = sqlx::query_scalar("SELECT updated_at::text FROM sources")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(updated, updated_again, "a stale change must not write");
}

#[tokio::test]
async fn a_tombstone_beats_an_older_upsert_arriving_later() {
    let (store, _) = fresh_store(DIMS).await;
    let v1 = document_mentioning("s1", 1, "one", 2, &[entity("Alice", "PERSON")], DIMS);
    let v2 = document_mentioning("s1", 2, "two", 2, &[entity("Alice", "PERSON")], DIMS);
    store.apply(Change::Upsert(&v1)).await.unwrap();
    assert_eq!(
        store.apply(Change::Delete(&source("s1", 3))).await.unwrap(),
        Applied::Deleted
    );
    assert_eq!(
        store.apply(Change::Upsert(&v2)).await.unwrap(),
        Applied::Stale { current: 3 }
    );
    assert!(store.summaries().await.unwrap().is_empty());
    assert_eq!(store.counts().await.unwrap(), Default::default());
    let tomb: i64 = sqlx::query_scalar("SELECT version FROM tombstones WHERE source_id = 's1'")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(tomb, 3);

    // A delete that arrives before any upsert of the source still wins over older upserts.
    assert_eq!(
        store.apply(Change::Delete(&source("s2", 5))).await.unwrap(),
        Applied::Deleted
    );
    let s2v4 = document_mentioning("s2", 4, "late", 1, &[], DIMS);
    assert_eq!(
        store.apply(Change::Upsert(&s2v4)).await.unwrap(),
        Applied::Stale { current: 5 }
    );
}

#[tokio::test]
async fn a_newer_upsert_after_a_tombstone_resurrects_the_source() {
    let (store, _) = fresh_store(DIMS).await;
    let v1 = document_mentioning("s1", 1, "one", 2, &[], DIMS);
    store.apply(Change::Upsert(&v1)).await.unwrap();
    store.apply(Change::Delete(&source("s1", 2))).await.unwrap();
    let v3 = document_mentioning("s1", 3, "three", 1, &[entity("Bob", "PERSON")], DIMS);
    assert_eq!(
        store.apply(Change::Upsert(&v3)).await.unwrap(),
        Applied::Written
    );

    let summaries = store.summaries().await.unwrap();
    assert_eq!(summaries.len(), 1);
    assert_eq!(
        (
            summaries[0].version,
            summaries[0].chunks,
            summaries[0].entities
        ),
        (3, 1, 1)
    );
    let tombstones: i64 = sqlx::query_scalar("SELECT count(*) FROM tombstones")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(tombstones, 0);
    // The delete at version 2 is now older than the live source.
    assert_eq!(
        store.apply(Change::Delete(&source("s1", 2))).await.unwrap(),
        Applied::Stale { current: 3 }
    );
}

#[tokio::test]
async fn a_delete_removes_orphaned_entities_but_keeps_shared_ones() {
    let (store, _) = fresh_store(DIMS).await;
    let shared = entity("UNEP", "ORGANIZATION");
    let only_a = entity("Alice", "PERSON");
    let only_b = entity("Bob", "PERSON");
    let mut a = document_mentioning("a", 1, "a", 2, &[shared.clone(), only_a.clone()], DIMS);
    a.relations = vec![relation(&only_a, &shared, "CO_OCCURS", 1.0)];
    let b = document_mentioning("b", 1, "b", 2, &[shared.clone(), only_b.clone()], DIMS);
    store.apply(Change::Upsert(&a)).await.unwrap();
    store.apply(Change::Upsert(&b)).await.unwrap();
    assert_eq!(entity_ids(&store).await.len(), 3);
    let b_before = store.summaries().await.unwrap().pop().unwrap();

    assert_eq!(
        store.apply(Change::Delete(&source("a", 2))).await.unwrap(),
        Applied::Deleted
    );
    assert_eq!(
        entity_ids(&store).await,
        vec![shared.entity_id.clone(), only_b.entity_id.clone()]
    );
    assert_eq!(store.summaries().await.unwrap(), vec![b_before]);
    assert_eq!(store.counts().await.unwrap().relations, 0);

    store.apply(Change::Delete(&source("b", 2))).await.unwrap();
    assert!(entity_ids(&store).await.is_empty());
}

#[tokio::test]
async fn an_upsert_that_drops_mentions_removes_orphaned_entities() {
    let (store, _) = fresh_store(DIMS).await;
    let keep = entity("Alice", "PERSON");
    let drop = entity("Bob", "PERSON");
    let v1 = document_mentioning("s1", 1, "one", 2, &[keep.clone(), drop.clone()], DIMS);
    store.apply(Change::Upsert(&v1)).await.unwrap();
    let v2 = document_mentioning("s1", 2, "two", 2, std::slice::from_ref(&keep), DIMS);
    store.apply(Change::Upsert(&v2)).await.unwrap();
    assert_eq!(entity_ids(&store).await, vec![keep.entity_id]);
}

#[tokio::test]
async fn a_failure_replaces_the_content_and_keeps_the_reason() {
    let (store, _) = fresh_store(DIMS).await;
    let v1 = document_mentioning("s1", 1, "one", 2, &[entity("Alice", "PERSON")], DIMS);
    store.apply(Change::Upsert(&v1)).await.unwrap();
    assert_eq!(
        store
            .apply(Change::Failed(&source("s1", 2), "unparseable PDF"))
            .await
            .unwrap(),
        Applied::MarkedFailed
    );
    let (status, error): (String, String) =
        sqlx::query_as("SELECT status, error FROM sources WHERE source_id = 's1'")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(
        (status.as_str(), error.as_str()),
        ("failed", "unparseable PDF")
    );
    let summaries = store.summaries().await.unwrap();
    assert_eq!(
        (
            summaries[0].status.as_str(),
            summaries[0].version,
            summaries[0].chunks
        ),
        ("failed", 2, 0)
    );
    assert!(entity_ids(&store).await.is_empty());
    let counts = store.counts().await.unwrap();
    assert_eq!(
        (counts.sources, counts.failed_sources, counts.chunks),
        (1, 1, 0)
    );
    assert_eq!(
        store.apply(Change::Upsert(&v1)).await.unwrap(),
        Applied::Stale { current: 2 }
    );
}

#[tokio::test]
async fn an_inconsistent_document_is_permanent_and_writes_nothing() {
    let (store, _) = fresh_store(DIMS).await;
    let e = entity("Alice", "PERSON");
    let mut doc = document_mentioning("s1", 1, "one", 2, std::slice::from_ref(&e), DIMS);
    doc.mentions[0].chunk_id = "not-a-chunk".into();
    let err = store.apply(Change::Upsert(&doc)).await.unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::Permanent, "{err}");

    let mut doc = document_mentioning("s1", 1, "one", 2, &[e], DIMS);
    doc.entities.clear();
    let err = store.apply(Change::Upsert(&doc)).await.unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::Permanent, "{err}");
    assert_eq!(store.counts().await.unwrap(), Default::default());
}

#[tokio::test]
async fn concurrent_versions_of_one_source_converge_to_the_newest() {
    let (store, _) = fresh_store(DIMS).await;
    let shared = entity("UNEP", "ORGANIZATION");
    // Versions arrive in a scrambled order from parallel writers.
    let order = [7u64, 3, 10, 1, 9, 2, 8, 5, 6, 4];
    let tasks: Vec<_> = order
        .iter()
        .map(|&v| {
            let store = store.clone();
            let doc = document_mentioning(
                "s1",
                v,
                &format!("v{v}"),
                (v % 3 + 1) as u32,
                &[shared.clone(), entity(&format!("E{v}"), "TOPIC")],
                DIMS,
            );
            tokio::spawn(async move { store.apply(Change::Upsert(&doc)).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let summaries = store.summaries().await.unwrap();
    assert_eq!((summaries[0].version, summaries[0].chunks), (10, 2));
    assert!(chunk_texts(&store, "s1")
        .await
        .iter()
        .all(|t| t.starts_with("v10 ")));
    assert_eq!(
        entity_ids(&store).await,
        vec!["ORGANIZATION:unep".to_string(), "TOPIC:e10".to_string()]
    );
}

#[tokio::test]
async fn a_failure_mark_yields_to_the_content_of_the_same_version_only() {
    let (store, _) = fresh_store(DIMS).await;
    let doc = document_mentioning("s1", 3, "three", 2, &[entity("Alice", "PERSON")], DIMS);
    // A writer that gave up on v3 marks it failed; a retry of v3 then goes in.
    let mark = Change::Failed(&source("s1", 3), "pg-writer gave up (timeout)");
    assert_eq!(store.apply(mark).await.unwrap(), Applied::MarkedFailed);
    assert_eq!(
        store.apply(mark).await.unwrap(),
        Applied::Stale { current: 3 }
    );
    assert_eq!(
        store.apply(Change::Upsert(&doc)).await.unwrap(),
        Applied::Written
    );
    let s = store.summaries().await.unwrap();
    assert_eq!(
        (s[0].status.as_str(), s[0].version, s[0].chunks),
        ("ok", 3, 2)
    );
    // Content is never replaced by a failure of the same version, nor a failure by an older
    // version.
    assert_eq!(
        store.apply(mark).await.unwrap(),
        Applied::Stale { current: 3 }
    );
    store
        .apply(Change::Failed(&source("s1", 4), "x"))
        .await
        .unwrap();
    let older = document_mentioning("s1", 3, "three", 2, &[], DIMS);
    assert_eq!(
        store.apply(Change::Upsert(&older)).await.unwrap(),
        Applied::Stale { current: 4 }
    );
    // A deletion of the failed version goes in too.
    assert_eq!(
        store.apply(Change::Delete(&source("s1", 4))).await.unwrap(),
        Applied::Deleted
    );
}

#[tokio::test]
async fn tombstones_past_the_retention_are_purged_and_younger_ones_kept() {
    let (store, _) = fresh_store(DIMS).await;
    store
        .apply(Change::Delete(&source("old", 2)))
        .await
        .unwrap();
    sqlx::query("UPDATE tombstones SET deleted_at = now() - interval '2 days'")
        .execute(store.pool())
        .await
        .unwrap();
    store
        .apply(Change::Delete(&source("new", 4)))
        .await
        .unwrap();
    let a_day_ago = kb_testkit::now_ms() - 24 * 3600 * 1000;
    assert_eq!(store.purge_tombstones(a_day_ago).await.unwrap(), 1);
    let left: Vec<String> = sqlx::query_scalar("SELECT source_id FROM tombstones")
        .fetch_all(store.pool())
        .await
        .unwrap();
    assert_eq!(left, ["new"]);
    // The forgotten source takes any version again (the stream numbers new ones above it).
    let back = document_mentioning("old", 3, "back", 1, &[], DIMS);
    assert_eq!(
        store.apply(Change::Upsert(&back)).await.unwrap(),
        Applied::Written
    );
}
