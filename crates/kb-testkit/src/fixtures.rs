//! Documents of the stream contract for tests, the same in every crate: a source reference,
//! a parsed document whose content names its id and version, and deterministic vectors.
//! Tests that need other values change the returned struct.

use kb_proto::{Chunk, Entity, Mention, ParsedDocument, Relation, SourceRef};

/// Topics the chunks of a [`document`] mention.
const TOPICS: usize = 6;

/// A source `id` at `version`: origin `test`, path `<id>.txt`, `text/plain`, content hash
/// `hash-<id>-<version>`; modified time and size grow with the version.
pub fn source(id: &str, version: u64) -> SourceRef {
    SourceRef {
        source_id: id.to_owned(),
        version,
        origin: "test".to_owned(),
        path: format!("{id}.txt"),
        content_hash: format!("hash-{id}-{version}"),
        media_type: "text/plain".to_owned(),
        modified_unix_ms: 1_700_000_000_000 + version as i64,
        size: 100 * version,
        link: String::new(),
    }
}

/// `dimensions` deterministic pseudo-random values in [-1, 1) (xorshift): the same seed gives
/// the same vector, different seeds different ones.
pub fn vector(dimensions: usize, seed: u64) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..dimensions)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x >> 40) as f32 / (1u64 << 23) as f32) - 1.0
        })
        .collect()
}

/// The embedding of chunk `index` of `id` at `version`: distinct for every chunk of every
/// version of every document.
pub fn chunk_vector(id: &str, version: u64, index: u32, dimensions: usize) -> Vec<f32> {
    let id_hash = id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    vector(
        dimensions,
        id_hash ^ (u64::from(index) + 7919u64.wrapping_mul(version)),
    )
}

/// Topic `i` (`topic:<i>`, type `TOPIC`).
pub fn entity(i: usize) -> Entity {
    Entity {
        entity_id: format!("topic:{i}"),
        name: format!("Topic {i}"),
        canonical_name: format!("topic {i}"),
        entity_type: "TOPIC".to_owned(),
    }
}

/// `id` at `version` as the embedder publishes it: `chunks` chunks whose ids
/// (`<id>-v<version>-c<i>`) and texts carry the version, each with a [`chunk_vector`] of
/// `dimensions` (none when 0) and mentioning two topics (twice and once); the topics it
/// mentions, and a `CO_OCCURS` relation per pair named by one of its first three chunks.
pub fn document(id: &str, version: u64, chunks: u32, dimensions: usize) -> ParsedDocument {
    let chunk_list: Vec<Chunk> = (0..chunks)
        .map(|i| Chunk {
            chunk_id: format!("{id}-v{version}-c{i}"),
            index: i,
            text: format!(
                "chunk {i} of {id}, version {version}: the board discussed topic {}",
                i as usize % TOPICS
            ),
            importance_score: 0.5,
            start_offset: u64::from(i) * 100,
            end_offset: u64::from(i) * 100 + 99,
            token_count: 12,
            speakers: Vec::new(),
            start_seconds: -1.0,
            end_seconds: -1.0,
            section: String::new(),
            embedding: chunk_vector(id, version, i, dimensions),
        })
        .collect();
    let pair = |i: usize| (i % TOPICS, (i + TOPICS / 2) % TOPICS);
    let mentions = chunk_list
        .iter()
        .enumerate()
        .flat_map(|(i, c)| {
            let (a, b) = pair(i);
            [(a, 2), (b, 1)].map(|(topic, count)| Mention {
                chunk_id: c.chunk_id.clone(),
                entity_id: entity(topic).entity_id,
                count,
            })
        })
        .collect();
    let mut topics: Vec<usize> = (0..chunk_list.len())
        .flat_map(|i| <[usize; 2]>::from(pair(i)))
        .collect();
    topics.sort_unstable();
    topics.dedup();
    let relations = (0..chunk_list.len().min(3))
        .map(|i| {
            let (a, b) = pair(i);
            Relation {
                source_entity_id: entity(a).entity_id,
                target_entity_id: entity(b).entity_id,
                relation_type: "CO_OCCURS".to_owned(),
                weight: 0.5,
            }
        })
        .collect();
    ParsedDocument {
        source: Some(source(id, version)),
        title: format!("{id} v{version}"),
        chunks: chunk_list,
        entities: topics.into_iter().map(entity).collect(),
        mentions,
        relations,
        embedding_model: "test-model".to_owned(),
        embedding_dimensions: dimensions as u32,
        parser: "test/1".to_owned(),
        document_unix_ms: 0,
    }
}

/// Entity `id` of `entity_type`, named `id` in upper case (canonical name `id`).
pub fn named_entity(id: &str, entity_type: &str) -> Entity {
    Entity {
        entity_id: id.to_owned(),
        name: id.to_uppercase(),
        canonical_name: id.to_owned(),
        entity_type: entity_type.to_owned(),
    }
}

/// A `relation_type` relation from entity `from` to entity `to`.
pub fn relation(from: &str, to: &str, relation_type: &str, weight: f32) -> Relation {
    Relation {
        source_entity_id: from.to_owned(),
        target_entity_id: to.to_owned(),
        relation_type: relation_type.to_owned(),
        weight,
    }
}

/// A [`document`] (4 dimensions) about named things instead of numbered topics: every chunk
/// mentions each of `entities` (chunk i, i + 1 times), which are [`named_entity`]s of type
/// `TOPIC`; no relations (a test adds its own with [`relation`]).
pub fn document_about(id: &str, version: u64, chunks: u32, entities: &[&str]) -> ParsedDocument {
    let mut doc = document(id, version, chunks, 4);
    doc.mentions = doc
        .chunks
        .iter()
        .flat_map(|c| {
            entities.iter().map(move |e| Mention {
                chunk_id: c.chunk_id.clone(),
                entity_id: (*e).to_owned(),
                count: c.index + 1,
            })
        })
        .collect();
    doc.entities = entities.iter().map(|e| named_entity(e, "TOPIC")).collect();
    doc.relations = Vec::new();
    doc
}

/// The wall clock in unix milliseconds, as the stores stamp `deleted_at` and progress.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn vectors_are_deterministic_distinct_and_in_range() {
        assert_eq!(vector(8, 1), vector(8, 1));
        assert_ne!(vector(8, 1), vector(8, 2));
        assert!(vector(384, 7).iter().all(|x| (-1.0..1.0).contains(x)));
        assert_ne!(chunk_vector("a", 1, 0, 4), chunk_vector("a", 2, 0, 4));
        assert_ne!(chunk_vector("a", 1, 0, 4), chunk_vector("a", 1, 1, 4));
        assert_ne!(chunk_vector("a", 1, 0, 4), chunk_vector("b", 1, 0, 4));
    }

    #[test]
    fn a_document_refers_only_to_what_it_holds() {
        for n in [0, 1, 2, 7, 40] {
            let doc = document("s1", 3, n, 4);
            assert_eq!(doc.chunks.len(), n as usize);
            assert_eq!(doc.source.as_ref().map(|s| s.version), Some(3));
            let chunks: HashSet<&str> = doc.chunks.iter().map(|c| c.chunk_id.as_str()).collect();
            let entities: HashSet<&str> =
                doc.entities.iter().map(|e| e.entity_id.as_str()).collect();
            assert_eq!(chunks.len(), n as usize, "chunk ids are distinct");
            assert_eq!(doc.mentions.len(), 2 * n as usize);
            let mentioned: HashSet<&str> =
                doc.mentions.iter().map(|m| m.entity_id.as_str()).collect();
            assert_eq!(mentioned, entities, "every entity is mentioned, no other");
            assert!(doc
                .mentions
                .iter()
                .all(|m| chunks.contains(m.chunk_id.as_str())));
            assert!(doc.relations.iter().all(|r| {
                entities.contains(r.source_entity_id.as_str())
                    && entities.contains(r.target_entity_id.as_str())
            }));
            assert!(doc.chunks.iter().all(|c| c.embedding.len() == 4));
        }
        assert!(document("s1", 1, 2, 0).chunks[0].embedding.is_empty());
        let about = document_about("s1", 2, 3, &["alice", "bob"]);
        assert_eq!(about.mentions.len(), 6);
        assert_eq!(about.entities[1].name, "BOB");
        assert!(about.relations.is_empty());
        assert_ne!(
            document("s1", 1, 1, 4).chunks,
            document("s1", 2, 1, 4).chunks
        );
    }
}
