//! Checks one answer of the model against the schema and against the chunks it was about.
//! A whole answer that is not JSON of the schema is [`Invalid`] (the caller re-asks once);
//! single bad items are dropped and counted: names not in their chunk (hallucinations),
//! unknown chunk numbers, relation types outside the vocabulary, relations between names
//! that are not entities of that chunk.

use std::collections::HashMap;

use kb_parse::{canonical_name, EntityType, RelationType};

use crate::canon;
use crate::names::{occurrences, words};
use crate::schema::{self, ModelOutput, TypeMapping};
use crate::stats::ExtractionStats;

/// Longest entity name accepted, in characters.
const MAX_NAME_CHARS: usize = 200;

/// One chunk of a request: its document index and its words.
pub struct GroupChunk {
    pub index: u32,
    pub words: Vec<String>,
}

impl GroupChunk {
    pub fn new(index: u32, text: &str) -> Self {
        Self {
            index,
            words: words(text),
        }
    }
}

/// Why a whole answer was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    Empty,
    Malformed,
    Schema,
}

impl Invalid {
    pub fn count(self, stats: &mut ExtractionStats) {
        match self {
            Invalid::Empty => stats.empty_output += 1,
            Invalid::Malformed => stats.malformed_json += 1,
            Invalid::Schema => stats.schema_mismatch += 1,
        }
    }
}

/// An accepted entity in one chunk of the group (`chunk` = position in the group).
#[derive(Debug, Clone, PartialEq)]
pub struct FoundEntity {
    pub chunk: usize,
    pub ty: EntityType,
    pub name: String,
    pub canonical: String,
    /// Occurrences of the name in the chunk (at least 1).
    pub count: u32,
}

/// An accepted relation; `source` and `target` index [`GroupOutput::entities`].
#[derive(Debug, Clone, PartialEq)]
pub struct FoundRelation {
    pub chunk: usize,
    pub source: usize,
    pub target: usize,
    pub ty: RelationType,
    pub weight: f32,
}

#[derive(Debug, Default)]
pub struct GroupOutput {
    pub entities: Vec<FoundEntity>,
    pub relations: Vec<FoundRelation>,
}

/// Parses the content as the schema's JSON. A Markdown code fence around it is tolerated
/// (servers without strict decoding add one).
pub fn parse(content: Option<&str>) -> Result<ModelOutput, Invalid> {
    let text = content.map(str::trim).unwrap_or_default();
    if text.is_empty() {
        return Err(Invalid::Empty);
    }
    let text = strip_fence(text);
    let value: serde_json::Value = serde_json::from_str(text).map_err(|_| Invalid::Malformed)?;
    serde_json::from_value(value).map_err(|_| Invalid::Schema)
}

fn strip_fence(t: &str) -> &str {
    let Some(rest) = t.strip_prefix("```") else {
        return t;
    };
    let rest = rest.strip_prefix("json").unwrap_or(rest);
    rest.strip_suffix("```").unwrap_or(rest).trim()
}

/// Keeps what the chunks support; counts the rest in `stats`.
pub fn check(out: ModelOutput, chunks: &[GroupChunk], stats: &mut ExtractionStats) -> GroupOutput {
    let mut g = GroupOutput::default();
    for mc in out.chunks {
        let Some(pos) = chunks.iter().position(|c| i64::from(c.index) == mc.chunk) else {
            stats.unknown_chunks += 1;
            stats.entities_invalid += mc.entities.len() as u64;
            stats.relations_dropped += mc.relations.len() as u64;
            continue;
        };
        let chunk = &chunks[pos];
        // name forms of this chunk's entities → index in g.entities
        let mut by_name: HashMap<String, usize> = HashMap::new();
        for e in mc.entities {
            let name = e.name.trim();
            if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
                stats.entities_invalid += 1;
                continue;
            }
            let ty = match schema::entity_type(&e.kind) {
                TypeMapping::Known(t) => t,
                TypeMapping::AsTopic => {
                    stats.entities_mapped_to_topic += 1;
                    EntityType::Topic
                }
            };
            let n = occurrences(name, &chunk.words);
            if n == 0 {
                stats.entities_hallucinated += 1;
                continue;
            }
            let canonical = canon::canonical(ty, name);
            if canonical.is_empty() {
                stats.entities_invalid += 1;
                continue;
            }
            let existing = g
                .entities
                .iter()
                .position(|x| x.chunk == pos && x.ty == ty && x.canonical == canonical);
            let idx = match existing {
                Some(i) => i,
                None => {
                    stats.entities_accepted += 1;
                    g.entities.push(FoundEntity {
                        chunk: pos,
                        ty,
                        name: name.to_owned(),
                        canonical,
                        count: u32::try_from(n).unwrap_or(u32::MAX),
                    });
                    g.entities.len() - 1
                }
            };
            by_name.entry(name.to_lowercase()).or_insert(idx);
            by_name.entry(canonical_name(name)).or_insert(idx);
        }
        let find = |n: &str| {
            by_name
                .get(&n.trim().to_lowercase())
                .or_else(|| by_name.get(&canonical_name(n)))
                .copied()
        };
        for r in mc.relations {
            let (Some(ty), Some(s), Some(t)) = (
                schema::relation_type(&r.kind),
                find(&r.source),
                find(&r.target),
            ) else {
                stats.relations_dropped += 1;
                continue;
            };
            if s == t || !r.weight.is_finite() {
                stats.relations_dropped += 1;
                continue;
            }
            if !(0.0..=1.0).contains(&r.weight) {
                stats.weights_clamped += 1;
            }
            let weight = r.weight.clamp(0.0, 1.0) as f32;
            let (ty, s, t) = fit(ty, s, t, &g.entities, stats);
            stats.relations_accepted += 1;
            g.relations.push(FoundRelation {
                chunk: pos,
                source: s,
                target: t,
                ty,
                weight,
            });
        }
    }
    g
}

/// Directs BELONGS_TO (person/organization → organization) and DISCUSSES (person/organization
/// → topic) the way the local extractor does; a pair of types that fits neither way becomes
/// CO_OCCURS, with the endpoints in either order (the merge orders them by id).
fn fit(
    ty: RelationType,
    s: usize,
    t: usize,
    ents: &[FoundEntity],
    stats: &mut ExtractionStats,
) -> (RelationType, usize, usize) {
    use EntityType::*;
    let ok = |a: usize, b: usize| match ty {
        RelationType::BelongsTo => {
            matches!(ents[a].ty, Person | Organization | Speaker) && ents[b].ty == Organization
        }
        RelationType::Discusses => {
            matches!(ents[a].ty, Person | Organization | Speaker) && ents[b].ty == Topic
        }
        RelationType::CoOccurs => true,
    };
    if ok(s, t) {
        (ty, s, t)
    } else if ok(t, s) {
        (ty, t, s)
    } else {
        stats.relations_retyped += 1;
        (RelationType::CoOccurs, s, t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(json: &str, chunks: &[GroupChunk]) -> (GroupOutput, ExtractionStats) {
        let mut st = ExtractionStats::default();
        let out = parse(Some(json)).unwrap();
        (check(out, chunks, &mut st), st)
    }

    #[test]
    fn whole_answer_errors() {
        assert_eq!(parse(None).unwrap_err(), Invalid::Empty);
        assert_eq!(parse(Some("  ")).unwrap_err(), Invalid::Empty);
        assert_eq!(
            parse(Some("{\"chunks\": [")).unwrap_err(),
            Invalid::Malformed
        );
        assert_eq!(
            parse(Some("{\"entities\": []}")).unwrap_err(),
            Invalid::Schema
        );
        assert!(parse(Some("```json\n{\"chunks\": []}\n```")).is_ok());
    }

    #[test]
    fn keeps_supported_items_and_counts_the_rest() {
        let chunks = [
            GroupChunk::new(
                3,
                "Ada Lovelace joined Acme Corp on March 5, 2020. Ada talked about budgets.",
            ),
            GroupChunk::new(4, "Nothing here."),
        ];
        let json = r#"{"chunks":[
          {"chunk":3,"entities":[
             {"name":"Ada Lovelace","type":"person"},
             {"name":"Acme Corp","type":"organization"},
             {"name":"March 5, 2020","type":"date"},
             {"name":"budgets","type":"topic"},
             {"name":"Charles Babbage","type":"person"},
             {"name":"Acme Corp","type":"company"},
             {"name":"Analytical Engine","type":"product"},
             {"name":"  ","type":"person"}],
           "relations":[
             {"source":"Acme Corp","target":"Ada Lovelace","type":"belongs_to","weight":0.9},
             {"source":"ada lovelace","target":"budgets","type":"discusses","weight":1.7},
             {"source":"Ada Lovelace","target":"Charles Babbage","type":"related_to","weight":0.5},
             {"source":"Ada Lovelace","target":"Acme Corp","type":"MATCH (n) DETACH DELETE n","weight":0.5},
             {"source":"March 5, 2020","target":"budgets","type":"belongs_to","weight":0.4}]},
          {"chunk":9,"entities":[{"name":"Nothing","type":"topic"}],"relations":[]}
        ]}"#;
        let (g, st) = run(json, &chunks);
        let names: Vec<(&str, EntityType, &str)> = g
            .entities
            .iter()
            .map(|e| (e.name.as_str(), e.ty, e.canonical.as_str()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("Ada Lovelace", EntityType::Person, "ada lovelace"),
                ("Acme Corp", EntityType::Organization, "acme corp"),
                ("March 5, 2020", EntityType::Date, "2020-03-05"),
                ("budgets", EntityType::Topic, "budgets"),
            ]
        );
        assert_eq!(st.entities_hallucinated, 2, "Babbage and Analytical Engine");
        assert_eq!(st.entities_mapped_to_topic, 1);
        assert_eq!(
            st.entities_invalid,
            1 + 1,
            "blank name + the unknown chunk's entity"
        );
        assert_eq!(st.unknown_chunks, 1);
        let rels: Vec<(usize, usize, RelationType, f32)> = g
            .relations
            .iter()
            .map(|r| (r.source, r.target, r.ty, r.weight))
            .collect();
        assert_eq!(
            rels,
            vec![
                // turned around: a person belongs to an organization
                (0, 1, RelationType::BelongsTo, 0.9),
                (0, 3, RelationType::Discusses, 1.0),
                // a date belongs to nothing: kept as co-occurrence
                (2, 3, RelationType::CoOccurs, 0.4),
            ]
        );
        assert_eq!(st.relations_dropped, 2, "unknown entity + unknown type");
        assert_eq!(st.weights_clamped, 1);
        assert_eq!(st.relations_retyped, 1);
    }
}
