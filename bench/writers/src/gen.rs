//! A deterministic knowledge base: documents of chunks with pseudo-random vectors, entities
//! drawn from a shared pool (so documents share them, as real ones do), mentions and typed
//! relations. Same seed, same bytes.

use kb_proto::{Chunk, Entity, Mention, ParsedDocument, Relation, SourceRef};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub docs: usize,
    pub chunks_per_doc: usize,
    pub dims: usize,
    pub entity_pool: usize,
    pub mentions_per_chunk: usize,
    pub relations_per_doc: usize,
}

/// xorshift64*: fast, deterministic, good enough for test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    /// Uniform in [-1, 1).
    pub fn unit(&mut self) -> f32 {
        ((self.next() >> 40) as f32 / (1u64 << 23) as f32) - 1.0
    }
}

const WORDS: &[&str] = &[
    "budget",
    "design",
    "remote",
    "control",
    "meeting",
    "project",
    "market",
    "user",
    "battery",
    "button",
    "screen",
    "price",
    "team",
    "review",
    "plan",
    "risk",
    "release",
    "customer",
    "feature",
    "report",
    "energy",
    "solar",
    "panel",
    "board",
    "decision",
    "target",
    "quarter",
    "sales",
    "research",
    "prototype",
    "material",
    "rubber",
    "plastic",
    "chip",
    "speech",
    "voice",
    "function",
    "style",
    "colour",
    "shape",
    "the",
    "a",
    "we",
    "should",
    "could",
    "think",
    "about",
    "with",
    "for",
    "and",
    "of",
    "to",
    "in",
    "on",
    "is",
    "that",
];
const TYPES: &[&str] = &["PERSON", "ORG", "PLACE", "TOPIC"];
const RELATIONS: &[&str] = &["CO_OCCURS", "DISCUSSES", "BELONGS_TO", "MENTIONED_WITH"];

pub fn entity(i: usize) -> Entity {
    let ty = TYPES[i % TYPES.len()];
    Entity {
        entity_id: format!("{}:{i:05}", ty.to_ascii_lowercase()),
        name: format!("{} {i}", WORDS[i % WORDS.len()]),
        canonical_name: format!("{} {i}", WORDS[i % WORDS.len()]),
        entity_type: ty.to_string(),
    }
}

pub fn source_id(d: usize) -> String {
    format!("{:032x}", (d as u128 + 1) * 0x9E37_79B9_7F4A_7C15)
}

pub fn document(shape: &Shape, d: usize, version: u64) -> ParsedDocument {
    let mut rng = Rng::new(0xC0FF_EE00 ^ ((d as u64) << 20) ^ version);
    let sid = source_id(d);
    let mut chunks = Vec::with_capacity(shape.chunks_per_doc);
    let mut mentions = Vec::new();
    let mut used = BTreeSet::new();
    let mut offset = 0u64;
    for i in 0..shape.chunks_per_doc {
        let words: Vec<&str> = (0..60).map(|_| WORDS[rng.below(WORDS.len())]).collect();
        let text = words.join(" ");
        let chunk_id = format!("{sid}-{version}-{i:05}");
        let mut picked = BTreeSet::new();
        while picked.len() < shape.mentions_per_chunk.min(shape.entity_pool) {
            picked.insert(rng.below(shape.entity_pool));
        }
        for e in picked {
            used.insert(e);
            mentions.push(Mention {
                chunk_id: chunk_id.clone(),
                entity_id: entity(e).entity_id,
                count: 1 + rng.below(3) as u32,
            });
        }
        let end = offset + text.len() as u64;
        chunks.push(Chunk {
            chunk_id,
            index: i as u32,
            importance_score: (rng.below(1000) as f32) / 1000.0,
            start_offset: offset,
            end_offset: end,
            token_count: 60,
            speakers: vec![format!("Speaker {}", rng.below(4))],
            start_seconds: (i * 24) as f64,
            end_seconds: (i * 24 + 24) as f64,
            section: String::new(),
            embedding: (0..shape.dims).map(|_| rng.unit()).collect(),
            text,
        });
        offset = end + 1;
    }
    let used: Vec<usize> = used.into_iter().collect();
    let mut relations = BTreeMap::new();
    let mut tries = 0;
    while relations.len() < shape.relations_per_doc && used.len() > 1 && tries < 10_000 {
        tries += 1;
        let (a, b) = (used[rng.below(used.len())], used[rng.below(used.len())]);
        if a != b {
            let ty = RELATIONS[rng.below(RELATIONS.len())];
            relations
                .entry((a, b, ty))
                .or_insert_with(|| 0.1 + rng.below(90) as f32 / 100.0);
        }
    }
    ParsedDocument {
        document_unix_ms: 0,
        source: Some(SourceRef {
            link: String::new(),
            source_id: sid.clone(),
            version,
            origin: "bench".to_string(),
            path: format!("bench/doc-{d:05}.txt"),
            content_hash: format!("{:064x}", rng.next()),
            media_type: "text/plain".to_string(),
            modified_unix_ms: 1_750_000_000_000 + d as i64,
            size: offset,
        }),
        title: format!("Generated document {d}"),
        chunks,
        entities: used.iter().map(|e| entity(*e)).collect(),
        mentions,
        relations: relations
            .into_iter()
            .map(|((a, b, ty), weight)| Relation {
                source_entity_id: entity(a).entity_id,
                target_entity_id: entity(b).entity_id,
                relation_type: ty.to_string(),
                weight,
            })
            .collect(),
        embedding_model: "bench-model".to_string(),
        embedding_dimensions: shape.dims as u32,
        parser: "bench/1".to_string(),
    }
}

/// Row and item totals of a set of documents, as the stores count them.
#[derive(Debug, Default, Clone, Copy)]
pub struct Totals {
    pub sources: u64,
    pub chunks: u64,
    pub entities: u64,
    pub mentions: u64,
    pub relations: u64,
}

impl Totals {
    pub fn of(docs: &[ParsedDocument]) -> Self {
        let entities: BTreeSet<&str> = docs
            .iter()
            .flat_map(|d| d.entities.iter().map(|e| e.entity_id.as_str()))
            .collect();
        Self {
            sources: docs.len() as u64,
            chunks: docs.iter().map(|d| d.chunks.len() as u64).sum(),
            entities: entities.len() as u64,
            mentions: docs.iter().map(|d| d.mentions.len() as u64).sum(),
            relations: docs.iter().map(|d| d.relations.len() as u64).sum(),
        }
    }
    /// Postgres rows: sources, chunks, entities, mentions, relations.
    pub fn rows(&self) -> u64 {
        self.sources + self.chunks + self.entities + self.mentions + self.relations
    }
    /// Graph nodes and relationships: Source, Chunk, Entity; HAS_CHUNK, NEXT, MENTIONS, typed.
    pub fn graph_items(&self) -> u64 {
        let next = self.chunks.saturating_sub(self.sources);
        self.sources
            + self.chunks
            + self.entities
            + self.chunks
            + next
            + self.mentions
            + self.relations
    }
}
