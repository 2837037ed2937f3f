//! Checks a document against the store's rules and turns it into column arrays for `UNNEST`
//! inserts, before any SQL runs, so an invalid document writes nothing.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use kb_proto::{ParsedDocument, SourceRef};
use kb_store::StoreError;
use pgvector::Vector;

/// Chunks are inserted in batches of this many rows: bounds one statement's size
/// (1,000 × 1,024 floats ≈ 4 MB) whatever the document size.
pub(crate) const CHUNK_BATCH: usize = 1000;

/// The `sources` row fields that come from a [`SourceRef`].
pub(crate) struct SourceRow<'a> {
    pub source_id: &'a str,
    pub version: i64,
    pub origin: &'a str,
    pub path: &'a str,
    pub content_hash: &'a str,
    pub media_type: &'a str,
    pub size_bytes: i64,
    /// Seconds since the epoch; `None` when the source did not say (proto default 0).
    pub modified_at: Option<f64>,
    pub link: &'a str,
    /// The content's own date (seconds since the epoch), from the parsed document.
    pub document_at: Option<f64>,
}

impl<'a> SourceRow<'a> {
    pub(crate) fn from_ref(source: &'a SourceRef) -> Result<Self, StoreError> {
        if source.source_id.is_empty() {
            return Err(StoreError::permanent("change without a source_id"));
        }
        let sid = &source.source_id;
        Ok(Self {
            source_id: sid,
            version: to_i64(source.version, "version", sid)?,
            origin: &source.origin,
            path: &source.path,
            content_hash: &source.content_hash,
            media_type: &source.media_type,
            size_bytes: to_i64(source.size, "size", sid)?,
            modified_at: (source.modified_unix_ms != 0)
                .then(|| source.modified_unix_ms as f64 / 1000.0),
            link: &source.link,
            document_at: None,
        })
    }
}

/// One batch of chunks as parallel column arrays.
#[derive(Default)]
pub(crate) struct ChunkColumns {
    pub ids: Vec<String>,
    pub indexes: Vec<i32>,
    pub texts: Vec<String>,
    pub scores: Vec<f32>,
    pub embeddings: Vec<Option<Vector>>,
    pub start_offsets: Vec<i64>,
    pub end_offsets: Vec<i64>,
    pub token_counts: Vec<i32>,
    /// JSON arrays: Postgres has no ragged arrays, so each row's list travels as one string.
    pub speakers: Vec<String>,
    pub start_seconds: Vec<Option<f64>>,
    pub end_seconds: Vec<Option<f64>>,
    pub sections: Vec<Option<String>>,
}

#[derive(Default)]
pub(crate) struct EntityColumns {
    pub ids: Vec<String>,
    pub names: Vec<String>,
    pub canonical_names: Vec<String>,
    pub types: Vec<String>,
}

#[derive(Default)]
pub(crate) struct MentionColumns {
    pub chunk_ids: Vec<String>,
    pub entity_ids: Vec<String>,
    pub counts: Vec<i32>,
}

#[derive(Default)]
pub(crate) struct RelationColumns {
    pub sources: Vec<String>,
    pub targets: Vec<String>,
    pub types: Vec<String>,
    pub weights: Vec<f32>,
}

/// A validated document, ready to write.
pub(crate) struct DocumentRows<'a> {
    pub source: SourceRow<'a>,
    pub title: &'a str,
    pub embedding_model: &'a str,
    pub parser: &'a str,
    pub chunk_batches: Vec<ChunkColumns>,
    /// Sorted by id so concurrent writers take entity locks in the same order (no deadlock).
    pub entities: EntityColumns,
    pub mentions: MentionColumns,
    pub relations: RelationColumns,
}

impl DocumentRows<'_> {
    /// Entity ids this document references (through mentions or relations).
    pub(crate) fn referenced_entities(&self) -> HashSet<&str> {
        self.entities.ids.iter().map(String::as_str).collect()
    }
}

/// Validates `doc` for a store of `dimensions`-dimensional embeddings.
///
/// Rules: unique chunk ids; every embedding empty (stored as NULL) or exactly `dimensions` long;
/// mentions point at this document's chunks and entities, once per (chunk, entity); relations
/// point at this document's entities, once per (source, target, type). Only entities that a
/// mention or relation references are kept: an unreferenced entity would be an orphan.
pub(crate) fn document_rows(
    doc: &ParsedDocument,
    dimensions: usize,
) -> Result<DocumentRows<'_>, StoreError> {
    let source_ref = doc
        .source
        .as_ref()
        .ok_or_else(|| StoreError::permanent("upsert without a source reference"))?;
    let mut source = SourceRow::from_ref(source_ref)?;
    source.document_at = (doc.document_unix_ms != 0).then(|| doc.document_unix_ms as f64 / 1000.0);
    let sid = source.source_id;
    let declared = doc.embedding_dimensions as usize;
    if declared != 0 && declared != dimensions {
        return Err(StoreError::permanent(format!(
            "source {sid}: embedding model {:?} has {declared} dimensions, the store {dimensions}",
            doc.embedding_model
        )));
    }

    let chunk_batches = chunk_columns(doc, sid, dimensions)?;
    let chunk_ids: HashSet<&str> = doc.chunks.iter().map(|c| c.chunk_id.as_str()).collect();

    let mut known = BTreeMap::new();
    for e in &doc.entities {
        if e.entity_id.is_empty() {
            return Err(StoreError::permanent(format!(
                "source {sid}: entity {:?} has no id",
                e.name
            )));
        }
        // Same id means same entity (a hash of type and canonical name): keep the first.
        known.entry(e.entity_id.as_str()).or_insert(e);
    }
    let entity_known = |id: &str, what: &str| {
        if known.contains_key(id) {
            Ok(())
        } else {
            Err(StoreError::permanent(format!(
                "source {sid}: {what} refers to entity {id} that the document does not define"
            )))
        }
    };

    let mut referenced = BTreeSet::new();
    let mut mentions = MentionColumns::default();
    let mut seen_mentions = HashSet::new();
    for m in &doc.mentions {
        if !chunk_ids.contains(m.chunk_id.as_str()) {
            return Err(StoreError::permanent(format!(
                "source {sid}: a mention refers to chunk {} that the document does not contain",
                m.chunk_id
            )));
        }
        entity_known(&m.entity_id, "a mention")?;
        if !seen_mentions.insert((m.chunk_id.as_str(), m.entity_id.as_str())) {
            return Err(StoreError::permanent(format!(
                "source {sid}: chunk {} mentions entity {} twice",
                m.chunk_id, m.entity_id
            )));
        }
        referenced.insert(m.entity_id.as_str());
        mentions.chunk_ids.push(m.chunk_id.clone());
        mentions.entity_ids.push(m.entity_id.clone());
        mentions.counts.push(to_i32(m.count, "mention count", sid)?);
    }

    let mut relations = RelationColumns::default();
    let mut seen_relations = HashSet::new();
    for r in &doc.relations {
        entity_known(&r.source_entity_id, "a relation")?;
        entity_known(&r.target_entity_id, "a relation")?;
        let key = (
            r.source_entity_id.as_str(),
            r.target_entity_id.as_str(),
            r.relation_type.as_str(),
        );
        if !seen_relations.insert(key) {
            return Err(StoreError::permanent(format!(
                "source {sid}: relation {} -[{}]-> {} appears twice",
                r.source_entity_id, r.relation_type, r.target_entity_id
            )));
        }
        referenced.insert(r.source_entity_id.as_str());
        referenced.insert(r.target_entity_id.as_str());
        relations.sources.push(r.source_entity_id.clone());
        relations.targets.push(r.target_entity_id.clone());
        relations.types.push(r.relation_type.clone());
        relations.weights.push(r.weight);
    }

    let mut entities = EntityColumns::default();
    for (id, e) in &known {
        if referenced.contains(id) {
            entities.ids.push(e.entity_id.clone());
            entities.names.push(e.name.clone());
            entities.canonical_names.push(e.canonical_name.clone());
            entities.types.push(e.entity_type.clone());
        }
    }

    Ok(DocumentRows {
        source,
        title: &doc.title,
        embedding_model: &doc.embedding_model,
        parser: &doc.parser,
        chunk_batches,
        entities,
        mentions,
        relations,
    })
}

fn chunk_columns(
    doc: &ParsedDocument,
    sid: &str,
    dimensions: usize,
) -> Result<Vec<ChunkColumns>, StoreError> {
    let mut seen = HashSet::new();
    let mut batches = Vec::with_capacity(doc.chunks.len().div_ceil(CHUNK_BATCH));
    for part in doc.chunks.chunks(CHUNK_BATCH) {
        let mut b = ChunkColumns::default();
        for c in part {
            if c.chunk_id.is_empty() || !seen.insert(c.chunk_id.as_str()) {
                return Err(StoreError::permanent(format!(
                    "source {sid}: chunk {} has an empty or duplicate chunk id {:?}",
                    c.index, c.chunk_id
                )));
            }
            let embedding = match c.embedding.len() {
                0 => None,
                n if n == dimensions => Some(Vector::from(c.embedding.clone())),
                n => {
                    return Err(StoreError::permanent(format!(
                        "source {sid}: chunk {} has a {n}-dimensional embedding, the store holds {dimensions}",
                        c.chunk_id
                    )))
                }
            };
            let speakers = serde_json::to_string(&c.speakers).map_err(|e| {
                StoreError::with(
                    kb_store::StoreErrorKind::Permanent,
                    format!("source {sid}: encoding speakers"),
                    e,
                )
            })?;
            b.ids.push(c.chunk_id.clone());
            b.indexes.push(to_i32(c.index, "chunk index", sid)?);
            b.texts.push(c.text.clone());
            b.scores.push(c.importance_score);
            b.embeddings.push(embedding);
            b.start_offsets
                .push(to_i64(c.start_offset, "start offset", sid)?);
            b.end_offsets.push(to_i64(c.end_offset, "end offset", sid)?);
            b.token_counts
                .push(to_i32(c.token_count, "token count", sid)?);
            b.speakers.push(speakers);
            // Negative means unknown in the contract.
            b.start_seconds
                .push((c.start_seconds >= 0.0).then_some(c.start_seconds));
            b.end_seconds
                .push((c.end_seconds >= 0.0).then_some(c.end_seconds));
            b.sections
                .push((!c.section.is_empty()).then(|| c.section.clone()));
        }
        batches.push(b);
    }
    Ok(batches)
}

fn to_i64(v: u64, what: &str, sid: &str) -> Result<i64, StoreError> {
    i64::try_from(v)
        .map_err(|_| StoreError::permanent(format!("source {sid}: {what} {v} is out of range")))
}

fn to_i32(v: u32, what: &str, sid: &str) -> Result<i32, StoreError> {
    i32::try_from(v)
        .map_err(|_| StoreError::permanent(format!("source {sid}: {what} {v} is out of range")))
}
