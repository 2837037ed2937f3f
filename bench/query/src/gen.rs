//! A larger knowledge base derived from the ingested corpus, so the read side is measured on
//! realistic text, vectors and entities at 20,000+ chunks.
//!
//! Generated document `d` is based on corpus document `d mod S`; its chunk `i` derives from a
//! run of consecutive corpus chunks of that document (from a random start): the corpus chunk's
//! turns (or sentences), about a quarter of them swapped for other turns of the same
//! document, sometimes rotated; the corpus chunk's embedding slightly perturbed and
//! re-normalized (cosine ≈ 0.97 to the original); its mentions, speakers, times, section and
//! importance kept. Entities are the corpus's own (ids from `kb_parse::ids`, shared across
//! documents as real ones are); relations are the base document's between the entities the
//! generated document mentions. Same corpus and seed, same documents.

use anyhow::{bail, Context};
use kb_proto::{Chunk, Entity, Mention, ParsedDocument, Relation, SourceRef};
use pgvector::Vector;
use sqlx::PgPool;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::stats::Rng;

#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub docs: usize,
    pub chunks_per_doc: usize,
    /// Norm of the noise added to a unit embedding before re-normalizing.
    pub noise: f32,
}

struct CorpusChunk {
    chunk_id: String,
    text: String,
    importance: f32,
    embedding: Vec<f32>,
    token_count: u32,
    speakers: Vec<String>,
    start_seconds: f64,
    end_seconds: f64,
    section: String,
}

struct CorpusSource {
    source_id: String,
    path: String,
    title: String,
    media_type: String,
    embedding_model: String,
    document_ms: i64,
    modified_ms: i64,
    chunks: Vec<CorpusChunk>,
    /// Every turn (or sentence) of the document, to recombine from.
    units: Vec<String>,
}

/// The ingested corpus as Postgres holds it.
pub struct Corpus {
    sources: Vec<CorpusSource>,
    entities: HashMap<String, Entity>,
    /// chunk id → (entity id, count)
    mentions: HashMap<String, Vec<(String, u32)>>,
    /// source id → relations
    relations: HashMap<String, Vec<Relation>>,
    pub dims: usize,
}

/// id, path, title, media type, embedding model, document ms, modified ms
type SourceRow = (
    String,
    String,
    String,
    String,
    String,
    Option<i64>,
    Option<i64>,
);

type ChunkRow = (
    String,
    String,
    String,
    Option<f32>,
    Option<Vector>,
    Option<i32>,
    Vec<String>,
    Option<f64>,
    Option<f64>,
    Option<String>,
);

impl Corpus {
    pub async fn load(pool: &PgPool) -> anyhow::Result<Self> {
        let sources: Vec<SourceRow> = sqlx::query_as(
            "SELECT source_id, path, COALESCE(title, ''), media_type,
                        COALESCE(embedding_model, ''),
                        (extract(epoch FROM document_at) * 1000)::int8,
                        (extract(epoch FROM modified_at) * 1000)::int8
                 FROM sources WHERE status = 'ok' ORDER BY path",
        )
        .fetch_all(pool)
        .await
        .context("reading the corpus sources")?;
        let chunks: Vec<ChunkRow> = sqlx::query_as(
            "SELECT chunk_id, source_id, text, importance_score, embedding, token_count,
                    speakers, start_seconds, end_seconds, section
             FROM chunks ORDER BY source_id, chunk_index",
        )
        .fetch_all(pool)
        .await
        .context("reading the corpus chunks")?;
        let mut by_source: HashMap<String, Vec<CorpusChunk>> = HashMap::new();
        let mut dims = 0;
        for (id, sid, text, importance, embedding, tokens, speakers, start, end, section) in chunks
        {
            let Some(embedding) = embedding.map(Vec::from) else {
                continue;
            };
            dims = embedding.len();
            by_source.entry(sid).or_default().push(CorpusChunk {
                chunk_id: id,
                text,
                importance: importance.unwrap_or(0.0),
                embedding,
                token_count: tokens.and_then(|t| u32::try_from(t).ok()).unwrap_or(0),
                speakers,
                start_seconds: start.unwrap_or(-1.0),
                end_seconds: end.unwrap_or(-1.0),
                section: section.unwrap_or_default(),
            });
        }
        let sources: Vec<CorpusSource> = sources
            .into_iter()
            .filter_map(|(sid, path, title, media, model, doc_ms, mod_ms)| {
                let chunks = by_source.remove(&sid)?;
                let units = chunks.iter().flat_map(|c| units(&c.text)).collect();
                Some(CorpusSource {
                    source_id: sid,
                    path,
                    title,
                    media_type: media,
                    embedding_model: model,
                    document_ms: doc_ms.unwrap_or(0),
                    modified_ms: mod_ms.unwrap_or(0),
                    chunks,
                    units,
                })
            })
            .collect();
        if sources.is_empty() || dims == 0 {
            bail!("the corpus store holds no embedded chunks to derive documents from");
        }

        let entities: Vec<(String, String, String, String)> =
            sqlx::query_as("SELECT entity_id, name, canonical_name, entity_type FROM entities")
                .fetch_all(pool)
                .await?;
        let entities = entities
            .into_iter()
            .map(|(entity_id, name, canonical_name, entity_type)| {
                (
                    entity_id.clone(),
                    Entity {
                        entity_id,
                        name,
                        canonical_name,
                        entity_type,
                    },
                )
            })
            .collect();
        let rows: Vec<(String, String, i32)> =
            sqlx::query_as("SELECT chunk_id, entity_id, count FROM chunk_mentions")
                .fetch_all(pool)
                .await?;
        let mut mentions: HashMap<String, Vec<(String, u32)>> = HashMap::new();
        for (chunk, entity, count) in rows {
            mentions
                .entry(chunk)
                .or_default()
                .push((entity, u32::try_from(count).unwrap_or(1)));
        }
        let rows: Vec<(String, String, String, String, f32)> = sqlx::query_as(
            "SELECT source_id, source_entity_id, target_entity_id, relation_type, weight
             FROM entity_relations",
        )
        .fetch_all(pool)
        .await?;
        let mut relations: HashMap<String, Vec<Relation>> = HashMap::new();
        for (sid, a, b, ty, weight) in rows {
            relations.entry(sid).or_default().push(Relation {
                source_entity_id: a,
                target_entity_id: b,
                relation_type: ty,
                weight,
            });
        }
        Ok(Self {
            sources,
            entities,
            mentions,
            relations,
            dims,
        })
    }

    pub fn chunks(&self) -> usize {
        self.sources.iter().map(|s| s.chunks.len()).sum()
    }

    pub fn documents(&self) -> usize {
        self.sources.len()
    }

    /// Generated document `d` (see the module docs).
    pub fn document(&self, shape: &Shape, d: usize) -> ParsedDocument {
        let mut rng = Rng::new(0x9E37_79B9 ^ ((d as u64) << 16));
        let base = &self.sources[d % self.sources.len()];
        let stem = std::path::Path::new(&base.path)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("doc");
        let path = format!("/bench/generated/{stem}-{d:05}.txt");
        let sid = kb_core::ids::source_id("file", &path);
        let start = rng.below(base.chunks.len());
        let mut chunks = Vec::with_capacity(shape.chunks_per_doc);
        let mut mentions = Vec::new();
        let mut mentioned = BTreeSet::new();
        let mut offset = 0u64;
        for i in 0..shape.chunks_per_doc {
            let from = &base.chunks[(start + i) % base.chunks.len()];
            let text = recombine(from, &base.units, &mut rng);
            let index = u32::try_from(i).unwrap_or(u32::MAX);
            let chunk_id = kb_parse::ids::chunk_id(&sid, index, &text);
            for (entity, count) in self.mentions.get(&from.chunk_id).into_iter().flatten() {
                if self.entities.contains_key(entity) {
                    mentioned.insert(entity.clone());
                    mentions.push(Mention {
                        chunk_id: chunk_id.clone(),
                        entity_id: entity.clone(),
                        count: *count,
                    });
                }
            }
            let end = offset + text.len() as u64;
            chunks.push(Chunk {
                chunk_id,
                index,
                importance_score: from.importance,
                start_offset: offset,
                end_offset: end,
                token_count: from.token_count,
                speakers: from.speakers.clone(),
                start_seconds: from.start_seconds,
                end_seconds: from.end_seconds,
                section: from.section.clone(),
                embedding: perturb(&from.embedding, shape.noise, &mut rng),
                text,
            });
            offset = end + 1;
        }
        // one relation per (a, b, type), as the base document states it
        let relations: BTreeMap<(String, String, String), f32> = self
            .relations
            .get(&base.source_id)
            .into_iter()
            .flatten()
            .filter(|r| {
                mentioned.contains(&r.source_entity_id) && mentioned.contains(&r.target_entity_id)
            })
            .map(|r| {
                (
                    (
                        r.source_entity_id.clone(),
                        r.target_entity_id.clone(),
                        r.relation_type.clone(),
                    ),
                    r.weight,
                )
            })
            .collect();
        let content: String = chunks.iter().map(|c| c.text.as_str()).collect();
        ParsedDocument {
            source: Some(SourceRef {
                source_id: sid,
                version: 1,
                origin: "file".into(),
                path,
                content_hash: kb_core::ids::content_hash(content.as_bytes()),
                media_type: base.media_type.clone(),
                modified_unix_ms: base.modified_ms + (d as i64) * 60_000,
                size: offset,
                ..Default::default()
            }),
            title: format!("{} ({d})", base.title),
            entities: mentioned
                .iter()
                .filter_map(|id| self.entities.get(id).cloned())
                .collect(),
            mentions,
            relations: relations
                .into_iter()
                .map(|((a, b, ty), weight)| Relation {
                    source_entity_id: a,
                    target_entity_id: b,
                    relation_type: ty,
                    weight,
                })
                .collect(),
            chunks,
            embedding_model: base.embedding_model.clone(),
            embedding_dimensions: u32::try_from(self.dims).unwrap_or(0),
            parser: "bench-query/1".into(),
            document_unix_ms: base.document_ms,
        }
    }
}

/// A chunk's turns (its lines), or its sentences when it is one paragraph.
fn units(text: &str) -> Vec<String> {
    let lines: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    if lines.len() > 1 {
        return lines;
    }
    let mut out = Vec::new();
    let mut rest = text.trim();
    while let Some(i) = rest.find(". ") {
        out.push(rest[..=i].to_owned());
        rest = rest[i + 2..].trim_start();
    }
    if !rest.is_empty() {
        out.push(rest.to_owned());
    }
    out
}

/// The chunk's units, about a quarter swapped for other units of its document, sometimes
/// rotated by one.
fn recombine(from: &CorpusChunk, pool: &[String], rng: &mut Rng) -> String {
    let multiline = from.text.trim().lines().nth(1).is_some();
    let mut parts = units(&from.text);
    for p in parts.iter_mut() {
        if !pool.is_empty() && rng.chance(0.25) {
            *p = pool[rng.below(pool.len())].clone();
        }
    }
    if parts.len() > 1 && rng.chance(0.5) {
        parts.rotate_left(1);
    }
    parts.join(if multiline { "\n" } else { " " })
}

/// `v` plus noise of norm about `noise`, re-normalized.
fn perturb(v: &[f32], noise: f32, rng: &mut Rng) -> Vec<f32> {
    // a uniform [-1, 1) draw has variance 1/3
    let scale = noise * (3.0 / v.len().max(1) as f32).sqrt();
    let out: Vec<f32> = v.iter().map(|x| x + scale * rng.unit()).collect();
    let norm = out
        .iter()
        .map(|x| x * x)
        .sum::<f32>()
        .sqrt()
        .max(f32::MIN_POSITIVE);
    out.into_iter().map(|x| x / norm).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_turns_or_sentences() {
        assert_eq!(units("A: one.\nB: two.\n"), ["A: one.", "B: two."]);
        assert_eq!(units("One. Two.  Three"), ["One.", "Two.", "Three"]);
    }

    #[test]
    fn perturbed_vectors_stay_close_and_unit() {
        let mut rng = Rng::new(1);
        let v: Vec<f32> = (0..384).map(|i| if i == 0 { 1.0 } else { 0.0 }).collect();
        let p = perturb(&v, 0.25, &mut rng);
        let norm: f32 = p.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4);
        assert!(p[0] > 0.95 && p[0] < 0.995, "cosine {}", p[0]);
    }
}
