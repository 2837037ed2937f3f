//! Deleting a source removes what only it referenced and keeps what others still use.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod common;

use common::fresh;
use kb_store::{Applied, Change, MirrorStore};
use kb_testkit::fixtures::{document_about, named_entity, relation, source};

#[tokio::test]
async fn delete_removes_orphan_entities_and_keeps_shared_ones() {
    let g = fresh().await;
    let mut a = document_about("doc-a", 1, 3, &["shared", "only-a"]);
    a.relations = vec![
        relation("shared", "only-a", "CO_OCCURS", 0.5),
        relation("shared", "linked", "RELATED_TO", 0.5),
    ];
    // "linked" is named by a relation of doc-a only, never mentioned.
    a.entities.push(named_entity("linked", "PERSON"));
    let mut b = document_about("doc-b", 1, 2, &["shared", "only-b"]);
    b.relations = vec![relation("shared", "only-b", "CO_OCCURS", 0.5)];
    g.store.apply(Change::Upsert(&a)).await.unwrap();
    g.store.apply(Change::Upsert(&b)).await.unwrap();
    assert_eq!(g.count("MATCH (e:Entity) RETURN count(e) AS n").await, 4);

    assert_eq!(
        g.store
            .apply(Change::Delete(&source("doc-a", 2)))
            .await
            .unwrap(),
        Applied::Deleted
    );

    assert_eq!(
        g.strings("MATCH (e:Entity) RETURN e.entity_id AS id", "id")
            .await,
        vec!["only-b", "shared"]
    );
    assert_eq!(
        g.strings("MATCH (s:Source) RETURN s.source_id AS id", "id")
            .await,
        vec!["doc-b"]
    );
    assert_eq!(g.count("MATCH (c:Chunk) RETURN count(c) AS n").await, 2);
    assert_eq!(
        g.count(
            "MATCH (:Chunk)-[m:MENTIONS]->(:Entity {entity_id: 'shared'}) RETURN count(m) AS n"
        )
        .await,
        2
    );
    // doc-b's relation survives, doc-a's are gone.
    assert_eq!(
        g.strings(
            "MATCH (:Entity)-[r]->(:Entity) RETURN r.source_id AS id",
            "id"
        )
        .await,
        vec!["doc-b"]
    );
    assert_eq!(
        g.count("MATCH (t:Tombstone {source_id: 'doc-a'}) RETURN t.version AS n")
            .await,
        2
    );
    let summaries = g.store.summaries().await.unwrap();
    assert_eq!(summaries.len(), 1);
    assert_eq!(
        (summaries[0].source_id.as_str(), summaries[0].relations),
        ("doc-b", 1)
    );
}

#[tokio::test]
async fn an_entity_related_by_another_source_survives_losing_its_mentions() {
    let g = fresh().await;
    // doc-a mentions "x"; doc-b only relates "y" to "x" without mentioning "x".
    let a = document_about("doc-a", 1, 1, &["x"]);
    let mut b = document_about("doc-b", 1, 1, &["y"]);
    b.entities.push(named_entity("x", "TOPIC"));
    b.relations = vec![relation("y", "x", "DISCUSSES", 1.0)];
    g.store.apply(Change::Upsert(&a)).await.unwrap();
    g.store.apply(Change::Upsert(&b)).await.unwrap();

    g.store
        .apply(Change::Delete(&source("doc-a", 2)))
        .await
        .unwrap();

    assert_eq!(
        g.strings("MATCH (e:Entity) RETURN e.entity_id AS id", "id")
            .await,
        vec!["x", "y"]
    );
    assert_eq!(
        g.count("MATCH (:Entity)-[r:DISCUSSES]->(:Entity) RETURN count(r) AS n")
            .await,
        1
    );

    // Once doc-b goes too, nothing is left but tombstones.
    g.store
        .apply(Change::Delete(&source("doc-b", 2)))
        .await
        .unwrap();
    assert_eq!(
        g.count("MATCH (x) WHERE NOT x:Tombstone RETURN count(x) AS n")
            .await,
        0
    );
    assert_eq!(g.count("MATCH (t:Tombstone) RETURN count(t) AS n").await, 2);
}

#[tokio::test]
async fn tombstones_past_the_retention_are_purged_and_younger_ones_kept() {
    let g = fresh().await;
    g.store
        .apply(Change::Delete(&source("old", 2)))
        .await
        .unwrap();
    let between = kb_testkit::now_ms() + 1;
    // deleted_at is the writer's clock in ms: the next one is later.
    while kb_testkit::now_ms() <= between {
        tokio::task::yield_now().await;
    }
    g.store
        .apply(Change::Delete(&source("new", 4)))
        .await
        .unwrap();
    assert_eq!(g.store.purge_tombstones(between).await.unwrap(), 1);
    assert_eq!(
        g.count("MATCH (t:Tombstone {source_id: 'new'}) RETURN count(t) AS n")
            .await,
        1
    );
    assert_eq!(g.count("MATCH (t:Tombstone) RETURN count(t) AS n").await, 1);
    let back = document_about("old", 3, 1, &[]);
    assert_eq!(
        g.store.apply(Change::Upsert(&back)).await.unwrap(),
        Applied::Written
    );
}
