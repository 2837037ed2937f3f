//! Test documents (kb_proto types) and fresh stores on the real test Postgres.
#![allow(dead_code)]

use kb_pg::PgStore;
use kb_proto::{Chunk, Entity, Mention, ParsedDocument, Relation, SourceRef};
use kb_store::MirrorStore;

/// A prepared store on a new, empty database of the test stack.
pub async fn fresh_store(dimensions: usize) -> (PgStore, String) {
    let url = kb_testkit::stack()
        .await
        .unwrap()
        .fresh_postgres()
        .await
        .unwrap();
    let store = PgStore::connect(&url, dimensions, 4).await.unwrap();
    store.prepare().await.unwrap();
    (store, url)
}

pub fn source(id: &str, version: u64) -> SourceRef {
    SourceRef {
        link: String::new(),
        source_id: id.to_owned(),
        version,
        origin: "folder:inbox".to_owned(),
        path: format!("{id}.md"),
        content_hash: format!("hash-{id}-{version}"),
        media_type: "text/markdown".to_owned(),
        modified_unix_ms: 1_700_000_000_000 + version as i64,
        size: 100 * version,
    }
}

/// A unit vector along `axis`, with a little weight on the next axis so no two are equal.
pub fn axis_vector(dimensions: usize, axis: usize) -> Vec<f32> {
    let mut v = vec![0.0; dimensions];
    v[axis % dimensions] = 1.0;
    v[(axis + 1) % dimensions] += 0.1;
    v
}

/// Deterministic pseudo-random vector (no RNG crate needed; values in [-1, 1)).
pub fn pseudo_random_vector(dimensions: usize, seed: u64) -> Vec<f32> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..dimensions)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((x >> 40) as f32 / (1u64 << 23) as f32) - 1.0
        })
        .collect()
}

pub fn chunk(source_id: &str, index: u32, text: &str, embedding: Vec<f32>) -> Chunk {
    Chunk {
        chunk_id: format!("{source_id}-c{index}"),
        index,
        text: text.to_owned(),
        importance_score: 0.5,
        start_offset: u64::from(index) * 100,
        end_offset: u64::from(index) * 100 + text.len() as u64,
        token_count: text.split_whitespace().count() as u32,
        speakers: Vec::new(),
        start_seconds: -1.0,
        end_seconds: -1.0,
        section: String::new(),
        embedding,
    }
}

pub fn entity(name: &str, entity_type: &str) -> Entity {
    Entity {
        entity_id: format!("{entity_type}:{}", name.to_lowercase()),
        name: name.to_owned(),
        canonical_name: name.to_lowercase(),
        entity_type: entity_type.to_owned(),
    }
}

pub fn mention(chunk: &Chunk, entity: &Entity, count: u32) -> Mention {
    Mention {
        chunk_id: chunk.chunk_id.clone(),
        entity_id: entity.entity_id.clone(),
        count,
    }
}

pub fn relation(from: &Entity, to: &Entity, relation_type: &str, weight: f32) -> Relation {
    Relation {
        source_entity_id: from.entity_id.clone(),
        target_entity_id: to.entity_id.clone(),
        relation_type: relation_type.to_owned(),
        weight,
    }
}

pub fn document(source: SourceRef, chunks: Vec<Chunk>, dimensions: usize) -> ParsedDocument {
    ParsedDocument {
        document_unix_ms: 0,
        title: format!("Title of {}", source.source_id),
        source: Some(source),
        chunks,
        entities: Vec::new(),
        mentions: Vec::new(),
        relations: Vec::new(),
        embedding_model: "test-model".to_owned(),
        embedding_dimensions: dimensions as u32,
        parser: "text/1".to_owned(),
    }
}

/// A document of `n` chunks whose texts carry `tag`, each chunk mentioning each of `entities`.
pub fn document_mentioning(
    id: &str,
    version: u64,
    tag: &str,
    n: u32,
    entities: &[Entity],
    dimensions: usize,
) -> ParsedDocument {
    let chunks: Vec<Chunk> = (0..n)
        .map(|i| {
            chunk(
                id,
                i,
                &format!("{tag} chunk {i} of {id}"),
                axis_vector(dimensions, i as usize),
            )
        })
        .collect();
    let mentions = chunks
        .iter()
        .flat_map(|c| entities.iter().map(move |e| mention(c, e, 1)))
        .collect();
    let mut doc = document(source(id, version), chunks, dimensions);
    doc.entities = entities.to_vec();
    doc.mentions = mentions;
    doc
}

/// Entity ids present in the store, sorted.
pub async fn entity_ids(store: &PgStore) -> Vec<String> {
    sqlx::query_scalar("SELECT entity_id FROM entities ORDER BY entity_id")
        .fetch_all(store.pool())
        .await
        .unwrap()
}

/// Texts of a source's chunks in chunk order.
pub async fn chunk_texts(store: &PgStore, source_id: &str) -> Vec<String> {
    sqlx::query_scalar("SELECT text FROM chunks WHERE source_id = $1 ORDER BY chunk_index")
        .bind(source_id)
        .fetch_all(store.pool())
        .await
        .unwrap()
}
