//! Several writers at once (parallel graph-writer consumers) converge like one writer would.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod common;

use common::fresh;
use kb_store::{Applied, Change, MirrorStore};
use kb_testkit::fixtures::document_about;

#[tokio::test]
async fn concurrent_versions_of_one_source_end_at_the_newest() {
    let g = fresh().await;
    let docs: Vec<_> = (1..=6)
        .map(|v| document_about("doc-c", v, 20, &["alice", "bob"]))
        .collect();
    let mut tasks = Vec::new();
    for doc in docs.into_iter().rev() {
        let store = g.store.clone();
        tasks.push(tokio::spawn(async move {
            store.apply(Change::Upsert(&doc)).await
        }));
    }
    let mut written = 0;
    for t in tasks {
        match t.await.unwrap().unwrap() {
            Applied::Written => written += 1,
            Applied::Stale { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(written >= 1);
    let summaries = g.store.summaries().await.unwrap();
    assert_eq!(summaries.len(), 1);
    assert_eq!(summaries[0].version, 6);
    assert_eq!(g.count("MATCH (c:Chunk) RETURN count(c) AS n").await, 20);
    assert_eq!(
        g.count("MATCH (c:Chunk) WHERE c.chunk_id STARTS WITH 'doc-c-v6-' RETURN count(c) AS n")
            .await,
        20
    );
    assert_eq!(
        g.count("MATCH (:Chunk)-[r:NEXT]->(:Chunk) RETURN count(r) AS n")
            .await,
        19
    );
    assert_eq!(
        g.count("MATCH (:Chunk)-[m:MENTIONS]->(:Entity) RETURN count(m) AS n")
            .await,
        40
    );
}

#[tokio::test]
async fn concurrent_documents_sharing_entities_do_not_duplicate_them() {
    let g = fresh().await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = g.store.clone();
        let doc = document_about(
            &format!("doc-{i}"),
            1,
            10,
            &["shared-1", "shared-2", "shared-3"],
        );
        tasks.push(tokio::spawn(async move {
            store.apply(Change::Upsert(&doc)).await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), Applied::Written);
    }
    assert_eq!(g.count("MATCH (e:Entity) RETURN count(e) AS n").await, 3);
    assert_eq!(g.count("MATCH (s:Source) RETURN count(s) AS n").await, 8);
    assert_eq!(
        g.count("MATCH (:Chunk)-[m:MENTIONS]->(:Entity) RETURN count(m) AS n")
            .await,
        8 * 10 * 3
    );
}
