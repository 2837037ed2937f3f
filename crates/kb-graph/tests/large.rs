//! A 3,000-chunk document goes through in batches: written, replaced and deleted whole, fast
//! enough that the largest document the parser lets through fits its scaled apply deadline.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod common;

use std::time::Instant;

use common::fresh;
use kb_proto::{Chunk, Mention, ParsedDocument};
use kb_store::{Applied, Change, MirrorStore};
use kb_testkit::fixtures::{named_entity, relation, source};

const CHUNKS: u32 = 3_000;
const ENTITIES: u32 = 60;

/// About 200 words a chunk, each chunk naming three of 60 entities.
fn big_document(version: u64) -> ParsedDocument {
    let words = "lorem ipsum dolor sit amet consectetur adipiscing elit ".repeat(25);
    let chunks: Vec<Chunk> = (0..CHUNKS)
        .map(|i| Chunk {
            chunk_id: format!("big-v{version}-c{i}"),
            index: i,
            text: format!("{i} {words}"),
            importance_score: 0.3,
            token_count: 200,
            start_seconds: -1.0,
            end_seconds: -1.0,
            ..Default::default()
        })
        .collect();
    let mentions = chunks
        .iter()
        .flat_map(|c| {
            (0..3).map(move |k| Mention {
                chunk_id: c.chunk_id.clone(),
                entity_id: format!("e{}", (c.index + k * 7) % ENTITIES),
                count: 1 + k,
            })
        })
        .collect();
    let relations = (0..ENTITIES)
        .map(|i| {
            relation(
                &format!("e{i}"),
                &format!("e{}", (i + 1) % ENTITIES),
                "CO_OCCURS",
                0.1,
            )
        })
        .collect();
    ParsedDocument {
        source: Some(source("big", version)),
        title: "Big".into(),
        chunks,
        entities: (0..ENTITIES)
            .map(|i| named_entity(&format!("e{i}"), "TOPIC"))
            .collect(),
        mentions,
        relations,
        parser: "text/1".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_three_thousand_chunk_document_is_written_replaced_and_deleted() {
    let g = fresh().await;
    let n = i64::from(CHUNKS);

    let v1 = big_document(1);
    let started = Instant::now();
    assert_eq!(
        g.store.apply(Change::Upsert(&v1)).await.unwrap(),
        Applied::Written
    );
    let write = started.elapsed();

    assert_eq!(
        g.count("MATCH (:Source)-[:HAS_CHUNK]->(c:Chunk) RETURN count(c) AS n")
            .await,
        n
    );
    assert_eq!(
        g.count("MATCH (:Chunk)-[r:NEXT]->(:Chunk) RETURN count(r) AS n")
            .await,
        n - 1
    );
    assert_eq!(
        g.count("MATCH (:Chunk)-[m:MENTIONS]->(:Entity) RETURN count(m) AS n")
            .await,
        3 * n
    );
    assert_eq!(
        g.count("MATCH (:Entity)-[r]->(:Entity) RETURN count(r) AS n")
            .await,
        i64::from(ENTITIES)
    );

    let started = Instant::now();
    let summaries = g.store.summaries().await.unwrap();
    let summarize = started.elapsed();
    assert_eq!(summaries[0].chunks, u64::from(CHUNKS));
    assert_eq!(summaries[0].mentions, 3 * u64::from(CHUNKS));

    let started = Instant::now();
    assert_eq!(
        g.store.apply(Change::Upsert(&v1)).await.unwrap(),
        Applied::Stale { current: 1 }
    );
    let redelivery = started.elapsed();

    let v2 = big_document(2);
    let started = Instant::now();
    assert_eq!(
        g.store.apply(Change::Upsert(&v2)).await.unwrap(),
        Applied::Written
    );
    let replace = started.elapsed();
    assert_eq!(g.count("MATCH (c:Chunk) RETURN count(c) AS n").await, n);
    assert_eq!(
        g.count("MATCH (c:Chunk) WHERE c.chunk_id STARTS WITH 'big-v2-' RETURN count(c) AS n")
            .await,
        n
    );
    assert_eq!(
        g.count("MATCH (:Chunk)-[m:MENTIONS]->(:Entity) RETURN count(m) AS n")
            .await,
        3 * n
    );

    let started = Instant::now();
    assert_eq!(
        g.store
            .apply(Change::Delete(&source("big", 3)))
            .await
            .unwrap(),
        Applied::Deleted
    );
    let delete = started.elapsed();
    assert_eq!(
        g.count("MATCH (x) WHERE NOT x:Tombstone RETURN count(x) AS n")
            .await,
        0
    );

    // The apply deadline grows by 1 s per 500 chunks from `neo4j.apply_timeout_secs` (60 s):
    // the largest document the parser lets through (`parser.max_chunks`, 20 000) must fit it
    // at the rate measured here, replacing being the slowest write.
    const MAX_CHUNKS: u32 = 20_000;
    let projected = replace.mul_f64(f64::from(MAX_CHUNKS) / f64::from(CHUNKS));
    let deadline = kb_store::DEFAULT_APPLY_TIMEOUT
        + std::time::Duration::from_secs(u64::from(
            MAX_CHUNKS / kb_store::CHUNKS_PER_EXTRA_SECOND as u32,
        ));
    println!(
        "3000-chunk document ({} mentions): write {write:?}, summaries {summarize:?}, \
         redelivery {redelivery:?}, replace {replace:?}, delete {delete:?}; \
         a {MAX_CHUNKS}-chunk replace projects to {projected:?} of its {deadline:?} deadline",
        3 * CHUNKS
    );
    assert!(
        projected < deadline,
        "at this rate a {MAX_CHUNKS}-chunk document would miss its apply deadline"
    );
}
