//! Bulk mode: only an empty store drops its HNSW index; writes and search work without it; the
//! end of bulk mode builds it once, and a store prepared again never stays without it.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use common::*;
use kb_store::read::{ChunkFilter, TextIndex};
use kb_store::{Applied, Change, MirrorStore};

#[tokio::test]
async fn only_an_empty_store_loads_without_the_index_which_is_built_at_the_end() {
    let (store, _) = fresh_store(8).await;
    assert!(store.has_vector_index().await.unwrap());
    assert!(store.is_empty().await.unwrap());

    assert!(store.begin_bulk().await.unwrap());
    assert!(!store.has_vector_index().await.unwrap());
    for i in 0..3u32 {
        let id = format!("s{i}");
        let doc = document_mentioning(&id, 1, "bulk", 4, &[entity("Alice", "PERSON")], 8);
        assert_eq!(
            store.apply(Change::Upsert(&doc)).await.unwrap(),
            Applied::Written
        );
    }
    // Without the index search is exact (a scan), so the chunk itself comes first.
    let probe = axis_vector(8, 2);
    let first = &store
        .nearest(&probe, &ChunkFilter::default(), 1)
        .await
        .unwrap()[0];
    assert!((first.score - 1.0).abs() < 1e-6, "{first:?}");
    // A second begin on a store that now holds data changes nothing.
    assert!(!store.begin_bulk().await.unwrap());

    store.end_bulk().await.unwrap();
    assert!(store.has_vector_index().await.unwrap());
    store.end_bulk().await.unwrap(); // idempotent
    let hits = store
        .nearest(&probe, &ChunkFilter::default(), 3)
        .await
        .unwrap();
    assert_eq!(hits.len(), 3);
    assert!((hits[0].score - 1.0).abs() < 1e-6);

    // A filled store refuses bulk mode and keeps its index.
    assert!(!store.is_empty().await.unwrap());
    assert!(!store.begin_bulk().await.unwrap());
    assert!(store.has_vector_index().await.unwrap());
}

#[tokio::test]
async fn a_store_holding_only_a_tombstone_is_not_empty() {
    let (store, _) = fresh_store(8).await;
    store
        .apply(Change::Delete(&source("gone", 3)))
        .await
        .unwrap();
    assert!(!store.is_empty().await.unwrap());
    assert!(!store.begin_bulk().await.unwrap());
    assert!(store.has_vector_index().await.unwrap());
}

#[tokio::test]
async fn prepare_rebuilds_an_index_a_stopped_bulk_load_left_out() {
    let (store, _) = fresh_store(8).await;
    assert!(store.begin_bulk().await.unwrap());
    let doc = document_mentioning("s1", 1, "x", 2, &[], 8);
    store.apply(Change::Upsert(&doc)).await.unwrap();
    // The loader stopped here; the next start prepares the store as usual.
    store.prepare().await.unwrap();
    assert!(store.has_vector_index().await.unwrap());
}
