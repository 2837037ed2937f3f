//! The JSON schema the model must answer with, the strict Rust form of that answer, and the
//! mapping of its type words onto the fixed vocabularies of `kb_parse`.

use std::sync::OnceLock;

use kb_parse::{EntityType, RelationType};
use serde::Deserialize;
use serde_json::{json, Value};

/// Name of the schema in `response_format.json_schema.name`.
pub const SCHEMA_NAME: &str = "kb_extraction";

/// Entity type words offered to the model.
pub const ENTITY_TYPES: [&str; 5] = ["person", "organization", "place", "date", "topic"];
/// Relation type words offered to the model.
pub const RELATION_TYPES: [&str; 3] = ["belongs_to", "discusses", "related_to"];

/// The response schema (strict mode: every property required, no others allowed).
pub fn schema() -> &'static Value {
    static S: OnceLock<Value> = OnceLock::new();
    S.get_or_init(|| {
        json!({
            "type": "object",
            "properties": {
                "chunks": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "chunk": {"type": "integer", "description": "the chunk number given in the input"},
                            "entities": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "properties": {
                                        "name": {"type": "string", "description": "exactly as written in the chunk"},
                                        "type": {"type": "string", "enum": ENTITY_TYPES}
                                    },
                                    "required": ["name", "type"],
                                    "additionalProperties": false
                                }
                            },
                            "relations": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "properties": {
                                        "source": {"type": "string", "description": "name of an entity of this chunk"},
                                        "target": {"type": "string", "description": "name of an entity of this chunk"},
                                        "type": {"type": "string", "enum": RELATION_TYPES},
                                        "weight": {"type": "number", "description": "confidence from 0 to 1"}
                                    },
                                    "required": ["source", "target", "type", "weight"],
                                    "additionalProperties": false
                                }
                            }
                        },
                        "required": ["chunk", "entities", "relations"],
                        "additionalProperties": false
                    }
                }
            },
            "required": ["chunks"],
            "additionalProperties": false
        })
    })
}

/// The model's answer. `deny_unknown_fields` everywhere: anything else is a schema mismatch.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelOutput {
    pub chunks: Vec<ModelChunk>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelChunk {
    pub chunk: i64,
    pub entities: Vec<ModelEntity>,
    pub relations: Vec<ModelRelation>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntity {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelRelation {
    pub source: String,
    pub target: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub weight: f64,
}

/// How a type word maps onto [`EntityType`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeMapping {
    /// One of the offered words (or a plain synonym of one).
    Known(EntityType),
    /// Anything else (e.g. "product", "event"): kept as a TOPIC and counted.
    AsTopic,
}

/// Maps an entity type word; a non-strict server may answer outside the enum.
pub fn entity_type(word: &str) -> TypeMapping {
    use EntityType::*;
    let w = word.trim().to_ascii_lowercase();
    let known = match w.as_str() {
        "person" | "people" | "per" | "individual" | "speaker" => Person,
        "organization" | "organisation" | "org" | "company" | "institution" | "agency" => {
            Organization
        }
        "place" | "location" | "loc" | "gpe" | "city" | "country" | "region" => Place,
        "date" | "time" | "datetime" => Date,
        "topic" | "concept" | "keyphrase" | "keyword" | "subject" => Topic,
        _ => return TypeMapping::AsTopic,
    };
    TypeMapping::Known(known)
}

/// Maps a relation type word; unknown words give `None` and the relation is dropped, so no
/// unchecked text ever becomes a relationship type.
pub fn relation_type(word: &str) -> Option<RelationType> {
    match word.trim().to_ascii_lowercase().as_str() {
        "belongs_to" | "member_of" | "works_for" | "part_of" => Some(RelationType::BelongsTo),
        "discusses" | "talks_about" | "mentions" => Some(RelationType::Discusses),
        "related_to" | "co_occurs" | "associated_with" => Some(RelationType::CoOccurs),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_is_strict_everywhere() {
        // strict mode needs every object closed and every property required
        fn check(v: &Value) {
            if let Some(props) = v.get("properties").and_then(Value::as_object) {
                assert_eq!(v["additionalProperties"], json!(false), "{v}");
                let req: Vec<&str> = v["required"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r.as_str().unwrap())
                    .collect();
                for (k, p) in props {
                    assert!(req.contains(&k.as_str()), "{k} not required");
                    check(p);
                }
            }
            if let Some(items) = v.get("items") {
                check(items);
            }
        }
        check(schema());
    }

    #[test]
    fn vocabularies_map_and_unknowns_are_contained() {
        for w in ENTITY_TYPES {
            assert!(matches!(entity_type(w), TypeMapping::Known(_)), "{w}");
        }
        for w in RELATION_TYPES {
            assert!(relation_type(w).is_some(), "{w}");
        }
        assert_eq!(
            entity_type(" Company "),
            TypeMapping::Known(EntityType::Organization)
        );
        assert_eq!(entity_type("product"), TypeMapping::AsTopic);
        assert_eq!(relation_type("DROP_ALL`) //"), None);
        assert_eq!(relation_type("WORKS_FOR"), Some(RelationType::BelongsTo));
    }

    #[test]
    fn output_rejects_extra_and_missing_fields() {
        let ok = r#"{"chunks":[{"chunk":0,"entities":[{"name":"Ada","type":"person"}],"relations":[]}]}"#;
        assert!(serde_json::from_str::<ModelOutput>(ok).is_ok());
        let extra = r#"{"chunks":[{"chunk":0,"entities":[{"name":"Ada","type":"person","confidence":1}],"relations":[]}]}"#;
        assert!(serde_json::from_str::<ModelOutput>(extra).is_err());
        let missing = r#"{"chunks":[{"chunk":0,"entities":[]}]}"#;
        assert!(serde_json::from_str::<ModelOutput>(missing).is_err());
    }
}
