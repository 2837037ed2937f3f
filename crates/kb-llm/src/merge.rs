//! Merges an [`Extraction`] into the [`ParsedDocument`] it came from, so one real thing is
//! one entity whichever extractor found it.
//!
//! An LLM entity becomes the document's existing entity of the same type when one has
//! (in this order) the same canonical name, a surface name with the same canonical form
//! (e.g. a local DATE "March 5, 2020"), or the same canonical name up to plural endings;
//! a PERSON that is a transcript SPEAKER of the document (by `kb_parse::speaker_canonical`)
//! and no PERSON becomes that SPEAKER. Otherwise it is a new entity with
//! `kb_parse::ids::entity_id(TYPE, canonical)`, the id the local extractor would give it.
//!
//! Mentions: per (chunk, entity), the larger count wins. Relations: CO_OCCURS is ordered by
//! entity id as the local extractor does; a relation the document already has keeps the
//! larger weight; at most `kb_parse::MAX_RELATIONS` new ones are added, heaviest first.

use std::collections::{HashMap, HashSet};

use kb_parse::{canonical_name, ids, speaker_canonical, EntityType, RelationType, MAX_RELATIONS};
use kb_proto::{Entity, Mention, ParsedDocument, Relation};

use crate::extract::Extraction;
use crate::names::loose_key;

/// What a merge changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MergeStats {
    /// LLM entities that were already in the document.
    pub entities_matched: usize,
    pub entities_added: usize,
    pub mentions_added: usize,
    /// Existing mentions whose count the LLM raised.
    pub mentions_raised: usize,
    pub relations_added: usize,
    /// Existing relations whose weight the LLM raised.
    pub relations_raised: usize,
    /// New relations beyond the cap, not added.
    pub relations_capped: usize,
}

/// Lookup of the document's entities by the keys an LLM entity may match.
#[derive(Default)]
struct Index {
    exact: HashMap<(String, String), String>,
    surface: HashMap<(String, String), String>,
    loose: HashMap<(String, String), String>,
    speakers: HashMap<String, String>,
}

impl Index {
    fn add(&mut self, e: &Entity) {
        let ty = e.entity_type.clone();
        let id = e.entity_id.clone();
        self.exact
            .entry((ty.clone(), e.canonical_name.clone()))
            .or_insert_with(|| id.clone());
        self.surface
            .entry((ty.clone(), canonical_name(&e.name)))
            .or_insert_with(|| id.clone());
        self.loose
            .entry((ty.clone(), loose_key(&e.canonical_name)))
            .or_insert_with(|| id.clone());
        if ty == EntityType::Speaker.as_str() {
            self.speakers
                .entry(e.canonical_name.clone())
                .or_insert_with(|| id.clone());
        }
    }

    fn find(&self, ty: EntityType, name: &str, canonical: &str) -> Option<String> {
        let t = ty.as_str().to_owned();
        let get =
            |m: &HashMap<(String, String), String>, k: String| m.get(&(t.clone(), k)).cloned();
        get(&self.exact, canonical.to_owned())
            .or_else(|| get(&self.surface, canonical_name(name)))
            .or_else(|| {
                (ty == EntityType::Person)
                    .then(|| self.speakers.get(&speaker_canonical(name)).cloned())
                    .flatten()
            })
            .or_else(|| get(&self.loose, loose_key(canonical)))
    }
}

/// Adds the extraction's entities, mentions and relations to `doc` (see the module docs).
pub fn merge_into(doc: &mut ParsedDocument, ex: &Extraction) -> MergeStats {
    let mut st = MergeStats::default();
    let mut index = Index::default();
    for e in &doc.entities {
        index.add(e);
    }
    let ids: Vec<String> = ex
        .entities
        .iter()
        .map(
            |e| match index.find(e.entity_type, &e.name, &e.canonical_name) {
                Some(id) => {
                    st.entities_matched += 1;
                    id
                }
                None => {
                    let new = Entity {
                        entity_id: ids::entity_id(e.entity_type.as_str(), &e.canonical_name),
                        name: e.name.clone(),
                        canonical_name: e.canonical_name.clone(),
                        entity_type: e.entity_type.as_str().to_owned(),
                    };
                    index.add(&new);
                    st.entities_added += 1;
                    let id = new.entity_id.clone();
                    doc.entities.push(new);
                    id
                }
            },
        )
        .collect();

    let chunk_ids: HashSet<&str> = doc.chunks.iter().map(|c| c.chunk_id.as_str()).collect();
    let mut mention_at: HashMap<(String, String), usize> = doc
        .mentions
        .iter()
        .enumerate()
        .map(|(i, m)| ((m.chunk_id.clone(), m.entity_id.clone()), i))
        .collect();
    let mut new_mentions = Vec::new();
    for m in &ex.mentions {
        let Some(entity_id) = ids.get(m.entity) else {
            continue;
        };
        if !chunk_ids.contains(m.chunk_id.as_str()) {
            continue;
        }
        let key = (m.chunk_id.clone(), entity_id.clone());
        match mention_at.get(&key) {
            Some(&i) if i < doc.mentions.len() => {
                if m.count > doc.mentions[i].count {
                    doc.mentions[i].count = m.count;
                    st.mentions_raised += 1;
                }
            }
            Some(&i) => {
                let nm: &mut Mention = &mut new_mentions[i - doc.mentions.len()];
                nm.count = nm.count.max(m.count);
            }
            None => {
                mention_at.insert(key, doc.mentions.len() + new_mentions.len());
                new_mentions.push(Mention {
                    chunk_id: m.chunk_id.clone(),
                    entity_id: entity_id.clone(),
                    count: m.count,
                });
            }
        }
    }
    st.mentions_added = new_mentions.len();
    doc.mentions.extend(new_mentions);

    let mut rel_at: HashMap<(String, String, String), usize> = doc
        .relations
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let key = (
                r.source_entity_id.clone(),
                r.target_entity_id.clone(),
                r.relation_type.clone(),
            );
            (key, i)
        })
        .collect();
    let mut new_rels: Vec<Relation> = Vec::new();
    for r in &ex.relations {
        let (Some(s), Some(t)) = (ids.get(r.source), ids.get(r.target)) else {
            continue;
        };
        if s == t {
            continue;
        }
        let (s, t) = if r.relation_type == RelationType::CoOccurs && s > t {
            (t, s)
        } else {
            (s, t)
        };
        let ty = r.relation_type.as_str();
        let key = (s.clone(), t.clone(), ty.to_owned());
        match rel_at.get(&key) {
            Some(&i) if i < doc.relations.len() => {
                if r.weight > doc.relations[i].weight {
                    doc.relations[i].weight = r.weight;
                    st.relations_raised += 1;
                }
            }
            Some(&i) => {
                let nr = &mut new_rels[i - doc.relations.len()];
                nr.weight = nr.weight.max(r.weight);
            }
            None => {
                rel_at.insert(key, doc.relations.len() + new_rels.len());
                new_rels.push(Relation {
                    source_entity_id: s.clone(),
                    target_entity_id: t.clone(),
                    relation_type: ty.to_owned(),
                    weight: r.weight,
                });
            }
        }
    }
    new_rels.sort_by(|a, b| {
        b.weight.total_cmp(&a.weight).then_with(|| {
            (&a.relation_type, &a.source_entity_id, &a.target_entity_id).cmp(&(
                &b.relation_type,
                &b.source_entity_id,
                &b.target_entity_id,
            ))
        })
    });
    st.relations_capped = new_rels.len().saturating_sub(MAX_RELATIONS);
    new_rels.truncate(MAX_RELATIONS);
    st.relations_added = new_rels.len();
    doc.relations.extend(new_rels);
    st
}
