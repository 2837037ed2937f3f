//! Last-writer-wins by version: redelivery, out-of-order arrival and deletes converge.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod common;

use common::fresh;
use kb_store::{Applied, Change, MirrorStore};
use kb_testkit::fixtures::{document_about, relation, source};

#[tokio::test]
async fn redelivery_changes_nothing() {
    let g = fresh().await;
    let mut doc = document_about("doc-r", 2, 5, &["alice", "bob"]);
    doc.relations = vec![relation("alice", "bob", "CO_OCCURS", 0.5)];
    assert_eq!(
        g.store.apply(Change::Upsert(&doc)).await.unwrap(),
        Applied::Written
    );
    let (nodes, rels) = (g.node_total().await, g.relationship_total().await);
    let summaries = g.store.summaries().await.unwrap();

    for _ in 0..3 {
        assert_eq!(
            g.store.apply(Change::Upsert(&doc)).await.unwrap(),
            Applied::Stale { current: 2 }
        );
    }
    assert_eq!(g.node_total().await, nodes);
    assert_eq!(g.relationship_total().await, rels);
    assert_eq!(g.store.summaries().await.unwrap(), summaries);
    // 1 source + 5 chunks + 2 entities; 5 HAS_CHUNK + 4 NEXT + 10 MENTIONS + 1 relation.
    assert_eq!((nodes, rels), (8, 20));
}

#[tokio::test]
async fn a_newer_version_replaces_the_old_content() {
    let g = fresh().await;
    let mut v1 = document_about("doc-n", 1, 6, &["alice", "bob"]);
    v1.relations = vec![relation("alice", "bob", "CO_OCCURS", 0.5)];
    g.store.apply(Change::Upsert(&v1)).await.unwrap();

    // Same entities, fewer chunks, a different relation: nothing of v1 may linger.
    let mut v2 = document_about("doc-n", 2, 3, &["alice", "carol"]);
    v2.relations = vec![relation("alice", "carol", "BELONGS_TO", 0.7)];
    assert_eq!(
        g.store.apply(Change::Upsert(&v2)).await.unwrap(),
        Applied::Written
    );

    assert_eq!(g.count("MATCH (c:Chunk) RETURN count(c) AS n").await, 3);
    assert_eq!(
        g.count("MATCH (:Chunk)-[r:NEXT]->(:Chunk) RETURN count(r) AS n")
            .await,
        2
    );
    assert_eq!(
        g.strings("MATCH (e:Entity) RETURN e.entity_id AS id", "id")
            .await,
        vec!["alice", "carol"],
        "bob is mentioned by nothing any more"
    );
    assert_eq!(
        g.count("MATCH (:Entity)-[r]->(:Entity) RETURN count(r) AS n")
            .await,
        1
    );
    assert_eq!(
        g.count("MATCH (:Entity)-[r:BELONGS_TO]->(:Entity) RETURN count(r) AS n")
            .await,
        1
    );
    assert_eq!(g.count("MATCH (s:Source) RETURN s.version AS n").await, 2);
    assert_eq!(g.count("MATCH (s:Source) RETURN count(s) AS n").await, 1);
}

#[tokio::test]
async fn an_older_version_arriving_late_is_ignored() {
    let g = fresh().await;
    let v3 = document_about("doc-o", 3, 2, &["alice"]);
    let v2 = document_about("doc-o", 2, 4, &["bob"]);
    g.store.apply(Change::Upsert(&v3)).await.unwrap();
    assert_eq!(
        g.store.apply(Change::Upsert(&v2)).await.unwrap(),
        Applied::Stale { current: 3 }
    );
    assert_eq!(
        g.store
            .apply(Change::Failed(&source("doc-o", 1), "late failure"))
            .await
            .unwrap(),
        Applied::Stale { current: 3 }
    );
    assert_eq!(
        g.store
            .apply(Change::Delete(&source("doc-o", 3)))
            .await
            .unwrap(),
        Applied::Stale { current: 3 }
    );
    assert_eq!(g.count("MATCH (c:Chunk) RETURN count(c) AS n").await, 2);
    assert_eq!(
        g.strings("MATCH (e:Entity) RETURN e.entity_id AS id", "id")
            .await,
        vec!["alice"]
    );
    assert_eq!(
        g.count("MATCH (s:Source {status: 'ok'}) RETURN s.version AS n")
            .await,
        3
    );
}

#[tokio::test]
async fn a_tombstone_beats_an_older_upsert_and_yields_to_a_newer_one() {
    let g = fresh().await;
    let v1 = document_about("doc-t", 1, 3, &["alice"]);
    g.store.apply(Change::Upsert(&v1)).await.unwrap();
    assert_eq!(
        g.store
            .apply(Change::Delete(&source("doc-t", 5)))
            .await
            .unwrap(),
        Applied::Deleted
    );
    assert_eq!(
        g.count("MATCH (t:Tombstone {source_id: 'doc-t'}) RETURN t.version AS n")
            .await,
        5
    );

    // An older upsert arriving after the delete (e.g. from a slow embedder) stays dead.
    let v4 = document_about("doc-t", 4, 3, &["alice"]);
    assert_eq!(
        g.store.apply(Change::Upsert(&v4)).await.unwrap(),
        Applied::Stale { current: 5 }
    );
    assert_eq!(g.count("MATCH (s:Source) RETURN count(s) AS n").await, 0);
    assert_eq!(g.count("MATCH (c:Chunk) RETURN count(c) AS n").await, 0);
    assert_eq!(g.count("MATCH (e:Entity) RETURN count(e) AS n").await, 0);
    assert!(g.store.summaries().await.unwrap().is_empty());
    // Redelivered delete: still stale, still one tombstone.
    assert_eq!(
        g.store
            .apply(Change::Delete(&source("doc-t", 5)))
            .await
            .unwrap(),
        Applied::Stale { current: 5 }
    );
    assert_eq!(g.count("MATCH (t:Tombstone) RETURN count(t) AS n").await, 1);

    // The file comes back: a newer version revives it and the tombstone goes.
    let v6 = document_about("doc-t", 6, 2, &["alice"]);
    assert_eq!(
        g.store.apply(Change::Upsert(&v6)).await.unwrap(),
        Applied::Written
    );
    assert_eq!(g.count("MATCH (t:Tombstone) RETURN count(t) AS n").await, 0);
    assert_eq!(g.count("MATCH (c:Chunk) RETURN count(c) AS n").await, 2);
    let summaries = g.store.summaries().await.unwrap();
    assert_eq!((summaries.len(), summaries[0].version), (1, 6));

    // And deleting a source the graph never saw still records the tombstone.
    assert_eq!(
        g.store
            .apply(Change::Delete(&source("never-seen", 2)))
            .await
            .unwrap(),
        Applied::Deleted
    );
    let v1 = document_about("never-seen", 1, 1, &[]);
    assert_eq!(
        g.store.apply(Change::Upsert(&v1)).await.unwrap(),
        Applied::Stale { current: 2 }
    );
}

#[tokio::test]
async fn a_failure_mark_yields_to_the_content_of_the_same_version_only() {
    let g = fresh().await;
    let doc = document_about("doc-f", 3, 4, &["alice", "bob"]);
    // A writer that gave up on v3 marks it failed; a retry of v3 then goes in.
    let mark = Change::Failed(&source("doc-f", 3), "graph-writer gave up (timeout)");
    assert_eq!(g.store.apply(mark).await.unwrap(), Applied::MarkedFailed);
    assert_eq!(
        g.store.apply(mark).await.unwrap(),
        Applied::Stale { current: 3 }
    );
    assert_eq!(
        g.store.apply(Change::Upsert(&doc)).await.unwrap(),
        Applied::Written
    );
    let s = g.store.summaries().await.unwrap();
    assert_eq!(
        (s[0].status.as_str(), s[0].version, s[0].chunks),
        ("ok", 3, 4)
    );
    // Content is never replaced by a failure of the same version, nor a failure by an older
    // version.
    assert_eq!(
        g.store.apply(mark).await.unwrap(),
        Applied::Stale { current: 3 }
    );
    g.store
        .apply(Change::Failed(&source("doc-f", 4), "x"))
        .await
        .unwrap();
    let older = document_about("doc-f", 3, 4, &["alice"]);
    assert_eq!(
        g.store.apply(Change::Upsert(&older)).await.unwrap(),
        Applied::Stale { current: 4 }
    );
    // A deletion of the failed version goes in too.
    assert_eq!(
        g.store
            .apply(Change::Delete(&source("doc-f", 4)))
            .await
            .unwrap(),
        Applied::Deleted
    );
}
