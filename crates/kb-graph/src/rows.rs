//! Turns a parsed document into the parameter rows the UNWIND statements take, checking that
//! its parts refer to each other (a dangling reference would silently drop a MATCH row and
//! the graph would disagree with Postgres without anyone noticing).

use std::collections::{BTreeMap, HashMap, HashSet};

use kb_proto::{ParsedDocument, SourceRef};
use kb_store::StoreError;
use neo4rs::{BoltList, BoltMap, BoltString, BoltType};

use crate::vocab::RelationType;

/// The rows of one document, ready for batched UNWIND statements.
#[derive(Debug, Default)]
pub(crate) struct DocumentRows {
    /// `{chunk_id, props}`
    pub chunks: Vec<BoltType>,
    /// `{from, to}` between consecutive chunks.
    pub next: Vec<BoltType>,
    /// `{entity_id, props}`, sorted by id so concurrent writers lock shared nodes in one order.
    pub entities: Vec<BoltType>,
    /// `{chunk_id, entity_id, count}`, sorted by entity id for the same reason.
    pub mentions: Vec<BoltType>,
    /// `{from, to, weight}` per relationship type.
    pub relations: BTreeMap<RelationType, Vec<BoltType>>,
}

fn malformed(source_id: &str, what: String) -> StoreError {
    StoreError::permanent(format!("graph: document {source_id} is malformed: {what}"))
}

pub(crate) fn document_rows(
    doc: &ParsedDocument,
    source_id: &str,
) -> Result<DocumentRows, StoreError> {
    let mut seen_chunks = HashSet::new();
    let mut order: Vec<(u32, &str)> = Vec::with_capacity(doc.chunks.len());
    let mut chunks = Vec::with_capacity(doc.chunks.len());
    for c in &doc.chunks {
        if c.chunk_id.is_empty() || !seen_chunks.insert(c.chunk_id.as_str()) {
            return Err(malformed(
                source_id,
                format!("empty or repeated chunk id {:?}", c.chunk_id),
            ));
        }
        order.push((c.index, c.chunk_id.as_str()));
        let mut props = vec![
            ("source_id", string(source_id)),
            ("index", int(i64::from(c.index))),
            ("text", string(&c.text)),
            ("importance_score", float(f64::from(c.importance_score))),
            ("token_count", int(i64::from(c.token_count))),
            ("start_offset", int(to_i64(c.start_offset))),
            ("end_offset", int(to_i64(c.end_offset))),
            ("speakers", strings(&c.speakers)),
            ("section", string(&c.section)),
        ];
        // Negative means unknown (not a transcript): leave the property out.
        if c.start_seconds >= 0.0 {
            props.push(("start_seconds", float(c.start_seconds)));
        }
        if c.end_seconds >= 0.0 {
            props.push(("end_seconds", float(c.end_seconds)));
        }
        chunks.push(map([
            ("chunk_id", string(&c.chunk_id)),
            ("props", map(props)),
        ]));
    }

    order.sort_unstable();
    let next = order
        .windows(2)
        .map(|w| map([("from", string(w[0].1)), ("to", string(w[1].1))]))
        .collect();

    let known_entities: HashMap<&str, &kb_proto::Entity> = doc
        .entities
        .iter()
        .filter(|e| !e.entity_id.is_empty())
        .map(|e| (e.entity_id.as_str(), e))
        .collect();
    let mut referenced: HashSet<&str> = HashSet::new();

    // Repeated (chunk, entity) pairs add up: the count is how often the chunk names it.
    let mut mention_counts: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    for m in &doc.mentions {
        if !seen_chunks.contains(m.chunk_id.as_str()) {
            return Err(malformed(
                source_id,
                format!("mention of unknown chunk {:?}", m.chunk_id),
            ));
        }
        if !known_entities.contains_key(m.entity_id.as_str()) {
            return Err(malformed(
                source_id,
                format!("mention of unknown entity {:?}", m.entity_id),
            ));
        }
        referenced.insert(m.entity_id.as_str());
        *mention_counts
            .entry((m.entity_id.as_str(), m.chunk_id.as_str()))
            .or_default() += i64::from(m.count);
    }
    let mentions = mention_counts
        .into_iter()
        .map(|((e, c), n)| {
            map([
                ("chunk_id", string(c)),
                ("entity_id", string(e)),
                ("count", int(n)),
            ])
        })
        .collect();

    // One relationship per (type, from, to); the strongest weight wins, whatever the order.
    let mut weights: BTreeMap<(RelationType, &str, &str), f32> = BTreeMap::new();
    for r in &doc.relations {
        for end in [&r.source_entity_id, &r.target_entity_id] {
            if !known_entities.contains_key(end.as_str()) {
                return Err(malformed(
                    source_id,
                    format!("relation to unknown entity {end:?}"),
                ));
            }
            referenced.insert(end.as_str());
        }
        let key = (
            RelationType::from_input(&r.relation_type),
            r.source_entity_id.as_str(),
            r.target_entity_id.as_str(),
        );
        weights
            .entry(key)
            .and_modify(|w| *w = w.max(r.weight))
            .or_insert(r.weight);
    }
    let mut relations: BTreeMap<RelationType, Vec<BoltType>> = BTreeMap::new();
    for ((t, from, to), w) in weights {
        relations.entry(t).or_default().push(map([
            ("from", string(from)),
            ("to", string(to)),
            ("weight", float(f64::from(w))),
        ]));
    }

    // Only entities something points at: an Entity reaches a source only through MENTIONS or
    // a relation, so an unreferenced one would be an orphan from the start.
    let mut ids: Vec<&str> = referenced.into_iter().collect();
    ids.sort_unstable();
    let entities = ids
        .into_iter()
        .filter_map(|id| known_entities.get(id))
        .map(|e| {
            map([
                ("entity_id", string(&e.entity_id)),
                (
                    "props",
                    map([
                        ("name", string(&e.name)),
                        ("canonical_name", string(&e.canonical_name)),
                        ("entity_type", string(&e.entity_type)),
                    ]),
                ),
            ])
        })
        .collect();

    Ok(DocumentRows {
        chunks,
        next,
        entities,
        mentions,
        relations,
    })
}

/// The Source node's properties for a document that was parsed.
pub(crate) fn source_props(
    s: &SourceRef,
    version: i64,
    doc: &ParsedDocument,
    now_ms: i64,
) -> BoltType {
    let mut props = base_source_props(s, version, "ok", now_ms);
    props.push(("title", string(&doc.title)));
    props.push(("parser", string(&doc.parser)));
    // 0 = the document does not say (always set, so a new version can clear an old date)
    props.push(("document_unix_ms", int(doc.document_unix_ms)));
    map(props)
}

/// The Source node's properties for a source that could not be processed.
pub(crate) fn failed_source_props(
    s: &SourceRef,
    version: i64,
    error: &str,
    now_ms: i64,
) -> BoltType {
    let mut props = base_source_props(s, version, "failed", now_ms);
    props.push(("error", string(error)));
    map(props)
}

fn base_source_props(
    s: &SourceRef,
    version: i64,
    status: &str,
    now_ms: i64,
) -> Vec<(&'static str, BoltType)> {
    vec![
        ("source_id", string(&s.source_id)),
        ("version", int(version)),
        ("origin", string(&s.origin)),
        ("path", string(&s.path)),
        ("content_hash", string(&s.content_hash)),
        ("media_type", string(&s.media_type)),
        ("modified_unix_ms", int(s.modified_unix_ms)),
        ("link", string(&s.link)),
        ("size", int(to_i64(s.size))),
        ("status", string(status)),
        ("updated_at", int(now_ms)),
    ]
}

/// Bolt integers are signed; sizes and offsets beyond i64 do not occur in practice, so
/// saturating keeps the write going instead of failing a document over it.
fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn string(s: &str) -> BoltType {
    BoltType::String(BoltString::new(s))
}

pub(crate) fn int(i: i64) -> BoltType {
    BoltType::from(i)
}

pub(crate) fn float(f: f64) -> BoltType {
    BoltType::from(f)
}

fn strings(items: &[String]) -> BoltType {
    BoltType::List(BoltList {
        value: items.iter().map(|s| string(s)).collect(),
    })
}

pub(crate) fn list(items: Vec<BoltType>) -> BoltType {
    BoltType::List(BoltList { value: items })
}

pub(crate) fn map<'a>(pairs: impl IntoIterator<Item = (&'a str, BoltType)>) -> BoltType {
    let mut m = BoltMap::new();
    for (k, v) in pairs {
        m.put(BoltString::new(k), v);
    }
    BoltType::Map(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kb_proto::{Chunk, Entity, Mention, Relation};

    fn entity(id: &str) -> Entity {
        Entity {
            entity_id: id.into(),
            name: id.into(),
            canonical_name: id.into(),
            entity_type: "TOPIC".into(),
        }
    }

    fn doc() -> ParsedDocument {
        ParsedDocument {
            chunks: (0..3)
                .rev()
                .map(|i| Chunk {
                    chunk_id: format!("c{i}"),
                    index: i,
                    ..Default::default()
                })
                .collect(),
            entities: vec![entity("a"), entity("b"), entity("unused")],
            mentions: vec![
                Mention {
                    chunk_id: "c0".into(),
                    entity_id: "a".into(),
                    count: 1,
                },
                Mention {
                    chunk_id: "c0".into(),
                    entity_id: "a".into(),
                    count: 2,
                },
            ],
            relations: vec![
                Relation {
                    source_entity_id: "a".into(),
                    target_entity_id: "b".into(),
                    relation_type: "co_occurs".into(),
                    weight: 0.2,
                },
                Relation {
                    source_entity_id: "a".into(),
                    target_entity_id: "b".into(),
                    relation_type: "CO_OCCURS".into(),
                    weight: 0.9,
                },
            ],
            ..Default::default()
        }
    }

    #[test]
    fn next_follows_chunk_order_and_duplicates_merge() {
        let rows = document_rows(&doc(), "s").unwrap();
        assert_eq!(rows.chunks.len(), 3);
        let next: Vec<(String, String)> = rows
            .next
            .iter()
            .map(|r| match r {
                BoltType::Map(m) => (
                    m.get::<String>("from").unwrap(),
                    m.get::<String>("to").unwrap(),
                ),
                _ => panic!("row is not a map"),
            })
            .collect();
        assert_eq!(
            next,
            vec![("c0".into(), "c1".into()), ("c1".into(), "c2".into())]
        );
        assert_eq!(rows.mentions.len(), 1);
        match &rows.mentions[0] {
            BoltType::Map(m) => assert_eq!(m.get::<i64>("count").unwrap(), 3),
            _ => panic!("row is not a map"),
        }
        let co = &rows.relations[&RelationType::CoOccurs];
        assert_eq!(co.len(), 1);
        match &co[0] {
            BoltType::Map(m) => assert!((m.get::<f64>("weight").unwrap() - 0.9).abs() < 1e-6),
            _ => panic!("row is not a map"),
        }
        // "unused" is named by nothing, so it is not written.
        assert_eq!(rows.entities.len(), 2);
    }

    #[test]
    fn dangling_references_are_permanent_errors() {
        let mut d = doc();
        d.mentions.push(Mention {
            chunk_id: "c9".into(),
            entity_id: "a".into(),
            count: 1,
        });
        let err = document_rows(&d, "s").unwrap_err();
        assert_eq!(err.kind, kb_store::StoreErrorKind::Permanent);

        let mut d = doc();
        d.relations[0].target_entity_id = "nobody".into();
        assert!(document_rows(&d, "s").is_err());

        let mut d = doc();
        d.chunks[1].chunk_id = "c2".into();
        assert!(document_rows(&d, "s").is_err());
    }
}
