//! What users query: the seed's Phase 5 verification, vector search, and a large document.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use kb_store::read::{ChunkFilter, TextIndex};
use std::time::Instant;

use common::*;
use kb_pg::PgStore;
use kb_store::{Applied, Change, MirrorStore};

#[tokio::test]
async fn the_seed_phase5_sql_reports_full_embedding_coverage() {
    let (store, _) = fresh_store(4).await;

    // On an empty store the seed's percentage divides by zero: reported as no percentage.
    let empty = store.phase5().await.unwrap();
    assert_eq!(empty.percentage, None);
    assert_eq!(empty.total_chunks, 0);
    assert!(empty.sample_search.is_empty());

    let people = [entity("Alice", "PERSON"), entity("Bob", "PERSON")];
    let a = document_mentioning("a", 1, "alpha", 4, &people, 4);
    let b = document_mentioning("b", 1, "beta", 3, &people[..1], 4);
    store.apply(Change::Upsert(&a)).await.unwrap();
    store.apply(Change::Upsert(&b)).await.unwrap();

    let report = store.phase5().await.unwrap();
    assert_eq!(
        report.table_counts,
        vec![
            ("sources".to_string(), 2),
            ("chunks".to_string(), 7),
            ("entities".to_string(), 2),
            ("chunk_mentions".to_string(), 11),
        ]
    );
    assert_eq!((report.total_chunks, report.chunks_with_embeddings), (7, 7));
    assert_eq!(report.percentage, Some(100.0));
    assert_eq!(report.sample_search.len(), 5);
    let (preview, importance, similarity) = &report.sample_search[0];
    assert!(preview.ends_with("..."), "{preview}");
    assert_eq!(*importance, Some(0.5));
    assert!(
        (similarity - 1.0).abs() < 1e-6,
        "the sample finds itself first: {similarity}"
    );
    assert!(report.sample_search.windows(2).all(|w| w[0].2 >= w[1].2));

    // A chunk without an embedding shows in the seed's percentage.
    let mut c = document_mentioning("c", 1, "gamma", 1, &[], 4);
    c.chunks[0].embedding.clear();
    store.apply(Change::Upsert(&c)).await.unwrap();
    let report = store.phase5().await.unwrap();
    assert_eq!((report.total_chunks, report.chunks_with_embeddings), (8, 7));
    assert_eq!(report.percentage, Some(87.5));
}

#[tokio::test]
async fn search_returns_the_nearest_chunk_first() {
    const DIMS: usize = 8;
    let (store, _) = fresh_store(DIMS).await;
    let a = document_mentioning("a", 1, "alpha", 4, &[], DIMS);
    let b = document_mentioning("b", 1, "beta", 4, &[], DIMS);
    store.apply(Change::Upsert(&a)).await.unwrap();
    store.apply(Change::Upsert(&b)).await.unwrap();

    // Close to b's chunk 2 (axis 2, a little of axis 3), far from everything on other axes.
    let mut query = axis_vector(DIMS, 2);
    query[3] += 0.01;
    let hits = store
        .nearest(&query, &ChunkFilter::default(), 3)
        .await
        .unwrap();
    assert_eq!(hits.len(), 3);
    // a and b chunk 2 have the same vector: both come first, then a neighbour.
    let first_two: Vec<_> = hits[..2].iter().map(|h| h.chunk_id.as_str()).collect();
    assert!(
        first_two.contains(&"a-c2") && first_two.contains(&"b-c2"),
        "{hits:?}"
    );
    assert!(
        hits[0].score > 0.99 && hits[0].score >= hits[1].score && hits[1].score > hits[2].score
    );
    let b2 = hits.iter().find(|h| h.chunk_id == "b-c2").unwrap();
    assert_eq!(
        (
            b2.source.source_id.as_str(),
            b2.source.path.as_str(),
            b2.chunk_index
        ),
        ("b", "b.md", 2)
    );
    assert_eq!(b2.text, "beta chunk 2 of b");

    // After b is deleted its chunks are no longer found.
    store.apply(Change::Delete(&source("b", 2))).await.unwrap();
    let hits = store
        .nearest(&query, &ChunkFilter::default(), 3)
        .await
        .unwrap();
    assert_eq!(hits[0].chunk_id, "a-c2");
    assert!(hits.iter().all(|h| h.source.source_id == "a"));

    // Wrong query dimension is the caller's error.
    assert!(store
        .nearest(&[1.0; 3], &ChunkFilter::default(), 3)
        .await
        .is_err());
}

/// Vector search settings come with the session (one round trip): a filter that only far
/// chunks pass still finds them, and a k beyond the session's ef_search still gets k rows
/// (the iterative scan reads on in both cases).
#[tokio::test]
async fn vector_search_reads_past_ef_search_for_filters_and_large_k() {
    const DIMS: usize = 8;
    let (_prepared, url) = fresh_store(DIMS).await;
    // A table this small would otherwise be read through another index and sorted: exact,
    // whatever the settings, so nothing would be tested. Without a sort, only HNSW orders.
    let sep = if url.contains('?') { '&' } else { '?' };
    let url = format!("{url}{sep}options[enable_seqscan]=off&options[enable_sort]=off");
    let store = PgStore::connect(&url, DIMS, 2).await.unwrap();
    // 200 chunks in "near/" around the query, 5 in "far/" pointing away from it.
    let near_chunks: Vec<_> = (0..200u32)
        .map(|i| {
            let mut v = pseudo_random_vector(DIMS, u64::from(i));
            v[0] += 8.0;
            chunk("near", i, &format!("near {i}"), v)
        })
        .collect();
    let mut near = document(source("near", 1), near_chunks, DIMS);
    near.source.as_mut().unwrap().path = "near/doc.md".to_owned();
    let far_chunks: Vec<_> = (0..5u32)
        .map(|i| {
            let mut v = pseudo_random_vector(DIMS, 1_000 + u64::from(i));
            v[0] -= 8.0;
            chunk("far", i, &format!("far {i}"), v)
        })
        .collect();
    let mut far = document(source("far", 1), far_chunks, DIMS);
    far.source.as_mut().unwrap().path = "far/doc.md".to_owned();
    store.apply(Change::Upsert(&near)).await.unwrap();
    store.apply(Change::Upsert(&far)).await.unwrap();
    assert!(store.has_vector_index().await.unwrap());

    let query = axis_vector(DIMS, 0);
    let only_far = ChunkFilter {
        path_prefix: Some("far/".to_owned()),
        ..ChunkFilter::default()
    };
    let hits = store.nearest(&query, &only_far, 5).await.unwrap();
    assert_eq!(hits.len(), 5, "{hits:?}");
    assert!(hits.iter().all(|h| h.source.path == "far/doc.md"));

    let hits = store
        .nearest(&query, &ChunkFilter::default(), 100)
        .await
        .unwrap();
    assert_eq!(hits.len(), 100);
    assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
    assert!(hits.iter().all(|h| h.source.path == "near/doc.md"));
}

#[tokio::test]
async fn a_document_of_3000_chunks_of_1024_dimensions_applies() {
    const DIMS: usize = 1024;
    const N: u32 = 3000;
    let (store, _) = fresh_store(DIMS).await;
    let topics: Vec<_> = (0..50)
        .map(|i| entity(&format!("Topic {i}"), "TOPIC"))
        .collect();
    // Pseudo-random vectors: the worst case for the HNSW index, which dominates the time.
    let build = |version: u64| {
        let chunks: Vec<_> = (0..N)
            .map(|i| {
                chunk(
                    "big",
                    i,
                    &format!("chunk {i} of a long transcript, version {version}"),
                    pseudo_random_vector(DIMS, u64::from(i) + 1000 * version),
                )
            })
            .collect();
        let mentions = chunks
            .iter()
            .enumerate()
            .flat_map(|(i, c)| {
                [
                    mention(c, &topics[i % 50], 2),
                    mention(c, &topics[(i + 7) % 50], 1),
                ]
            })
            .collect();
        let mut doc = document(source("big", version), chunks, DIMS);
        doc.entities = topics.clone();
        doc.mentions = mentions;
        doc
    };

    let doc = build(1);
    let started = Instant::now();
    assert_eq!(
        store.apply(Change::Upsert(&doc)).await.unwrap(),
        Applied::Written
    );
    println!(
        "3000 chunks x 1024 dims: upsert took {:.2?}",
        started.elapsed()
    );
    let started = Instant::now();
    assert_eq!(
        store.apply(Change::Upsert(&doc)).await.unwrap(),
        Applied::Stale { current: 1 }
    );
    println!("redelivery (stale): {:.2?}", started.elapsed());

    let counts = store.counts().await.unwrap();
    assert_eq!(
        (
            counts.chunks,
            counts.chunks_with_embeddings,
            counts.mentions,
            counts.entities
        ),
        (3000, 3000, 6000, 50)
    );
    let report = store.phase5().await.unwrap();
    assert_eq!(report.percentage, Some(100.0));

    let target = &doc.chunks[1234];
    let started = Instant::now();
    let hits = store
        .nearest(&target.embedding, &ChunkFilter::default(), 10)
        .await
        .unwrap();
    println!("search over 3000 chunks: {:.2?}", started.elapsed());
    assert_eq!(hits[0].chunk_id, target.chunk_id);
    assert!(hits[0].score > 0.999);
}
