//! Merging into the local extractor's document: one real thing, one entity.

use std::collections::HashSet;
use std::time::Duration;

use kb_llm::{merge_into, Extraction, LlmEntity, LlmMention, LlmRelation};
use kb_parse::{ids, EntityType, RelationType};
use kb_proto::{Chunk, Entity, ParsedDocument};

use crate::fake::{knowing, Fake};
use crate::{doc, extractor, settings, NAMES, RELATIONS, TEXT};

fn check_integrity(d: &ParsedDocument) {
    let ents: HashSet<&str> = d.entities.iter().map(|e| e.entity_id.as_str()).collect();
    assert_eq!(ents.len(), d.entities.len(), "entity ids are unique");
    let keys: HashSet<(&str, &str)> = d
        .entities
        .iter()
        .map(|e| (e.entity_type.as_str(), e.canonical_name.as_str()))
        .collect();
    assert_eq!(
        keys.len(),
        d.entities.len(),
        "one entity per type and canonical name"
    );
    let chunks: HashSet<&str> = d.chunks.iter().map(|c| c.chunk_id.as_str()).collect();
    let mut pairs = HashSet::new();
    for m in &d.mentions {
        assert!(chunks.contains(m.chunk_id.as_str()) && ents.contains(m.entity_id.as_str()));
        assert!(
            pairs.insert((&m.chunk_id, &m.entity_id)),
            "one mention per chunk and entity"
        );
    }
    let vocab = ["DISCUSSES", "BELONGS_TO", "CO_OCCURS"];
    for r in &d.relations {
        assert!(
            ents.contains(r.source_entity_id.as_str())
                && ents.contains(r.target_entity_id.as_str())
        );
        assert!(
            vocab.contains(&r.relation_type.as_str()),
            "{}",
            r.relation_type
        );
        assert_ne!(r.source_entity_id, r.target_entity_id);
    }
}

#[tokio::test]
async fn enrich_adds_to_the_local_extraction_without_duplicates() {
    let fake = Fake::start(vec![], Duration::ZERO, knowing(NAMES, RELATIONS)).await;
    let local = doc(TEXT);
    let mut d = local.clone();
    // what the local extractor finds in TEXT (it does not know "Ada" as a given name)
    let grace = ids::entity_id("PERSON", "grace hopper");
    let lab = ids::entity_id("ORGANIZATION", "navy research lab");
    let date = ids::entity_id("DATE", "2020-03-05");
    let topic = ids::entity_id("TOPIC", "budget review");
    for id in [&grace, &lab, &date, &topic] {
        assert!(
            local.entities.iter().any(|e| &e.entity_id == id),
            "{:?}",
            local.entities
        );
    }

    let ext = extractor(settings(&fake.base_url));
    let e = ext.enrich(&mut d).await.unwrap();
    assert!(e.complete && !e.budget_exceeded);
    check_integrity(&d);
    // everything local is still there, the chunks untouched
    for le in &local.entities {
        assert!(d.entities.contains(le));
    }
    assert_eq!(d.chunks, local.chunks);
    // London, Grace Hopper, the lab, the date and both topics are the local nodes
    assert_eq!(e.merge.entities_matched, 6, "{:?}", e.merge);
    assert_eq!(e.merge.entities_added, 2, "{:?}", e.merge);
    // new ones get the id any document (and the local extractor) would give them
    let ada = ids::entity_id("PERSON", "ada lovelace");
    let acme = ids::entity_id("ORGANIZATION", "acme corp");
    assert!(d
        .entities
        .iter()
        .any(|x| x.entity_id == ada && x.name == "Ada Lovelace"));
    let rel = |s: &str, t: &str, ty: &str| {
        let found: Vec<&kb_proto::Relation> = d
            .relations
            .iter()
            .filter(|r| r.source_entity_id == s && r.target_entity_id == t && r.relation_type == ty)
            .collect();
        assert_eq!(found.len(), 1, "{s} {ty} {t}: {:?}", d.relations);
        found[0].weight
    };
    assert_eq!(rel(&ada, &acme, "BELONGS_TO"), 0.9);
    assert!((rel(&ada, &topic, "DISCUSSES") - 1.6).abs() < 1e-6);
    // stated by both extractors: one relation, the stronger weight
    let local_w = local
        .relations
        .iter()
        .find(|r| {
            r.source_entity_id == grace
                && r.target_entity_id == lab
                && r.relation_type == "BELONGS_TO"
        })
        .map(|r| r.weight)
        .unwrap_or(0.0);
    assert_eq!(rel(&grace, &lab, "BELONGS_TO"), local_w.max(1.4));
    // every LLM mention is in the document
    let ada_mentions = d.mentions.iter().filter(|m| m.entity_id == ada).count();
    assert_eq!(ada_mentions, 2, "chunks 0 and 2");

    // merging the same answer again changes nothing
    let again = ext.extract(&local).await.unwrap();
    let before = d.clone();
    let st = merge_into(&mut d, &again);
    assert_eq!(d, before);
    assert_eq!(
        (st.entities_added, st.mentions_added, st.relations_added),
        (0, 0, 0)
    );
}

fn ent(ty: EntityType, name: &str, canonical: &str) -> Entity {
    Entity {
        entity_id: ids::entity_id(ty.as_str(), canonical),
        name: name.into(),
        canonical_name: canonical.into(),
        entity_type: ty.as_str().into(),
    }
}

fn llm(ty: EntityType, name: &str, canonical: &str) -> LlmEntity {
    LlmEntity {
        entity_type: ty,
        name: name.into(),
        canonical_name: canonical.into(),
    }
}

#[test]
fn llm_entities_resolve_to_speakers_surfaces_and_plurals() {
    let mut d = ParsedDocument {
        chunks: vec![Chunk {
            chunk_id: "c0".into(),
            text: "Pat Kelly: the budget cuts start in March 2021.".into(),
            ..Chunk::default()
        }],
        entities: vec![
            ent(
                EntityType::Speaker,
                "Mr. Pat Kelly (Calgary, CPC)",
                "pat kelly",
            ),
            ent(EntityType::Topic, "budget cut", "budget cut"),
            ent(EntityType::Date, "March 2021", "2021-03"),
        ],
        ..ParsedDocument::default()
    };
    let ex = Extraction {
        entities: vec![
            llm(EntityType::Person, "Pat Kelly", "pat kelly"),
            llm(EntityType::Topic, "budget cuts", "budget cuts"),
            llm(EntityType::Date, "March 2021", "march 2021"),
            llm(EntityType::Organization, "Treasury Board", "treasury board"),
        ],
        mentions: vec![
            LlmMention {
                chunk_id: "c0".into(),
                entity: 0,
                count: 1,
            },
            LlmMention {
                chunk_id: "c0".into(),
                entity: 3,
                count: 2,
            },
            LlmMention {
                chunk_id: "elsewhere".into(),
                entity: 1,
                count: 1,
            },
        ],
        relations: vec![
            LlmRelation {
                source: 0,
                target: 1,
                relation_type: RelationType::Discusses,
                weight: 0.8,
                chunks: 1,
            },
            LlmRelation {
                source: 3,
                target: 2,
                relation_type: RelationType::CoOccurs,
                weight: 0.5,
                chunks: 1,
            },
        ],
        ..Extraction::default()
    };
    let st = merge_into(&mut d, &ex);
    assert_eq!(
        st.entities_matched, 3,
        "speaker, plural topic, date by its surface"
    );
    assert_eq!(st.entities_added, 1);
    check_integrity(&d);
    let speaker = ids::entity_id("SPEAKER", "pat kelly");
    let topic = ids::entity_id("TOPIC", "budget cut");
    assert!(d.relations.iter().any(|r| r.source_entity_id == speaker
        && r.target_entity_id == topic
        && r.relation_type == "DISCUSSES"));
    // CO_OCCURS runs from the smaller id, as in the local extractor
    let co = d
        .relations
        .iter()
        .find(|r| r.relation_type == "CO_OCCURS")
        .unwrap();
    assert!(co.source_entity_id < co.target_entity_id);
    assert_eq!(
        st.mentions_added, 2,
        "the mention of an unknown chunk is skipped"
    );
}

#[test]
fn existing_mentions_and_relations_keep_the_stronger_value() {
    let a = ent(EntityType::Person, "Ada Lovelace", "ada lovelace");
    let b = ent(EntityType::Organization, "Acme Corp", "acme corp");
    let mut d = ParsedDocument {
        chunks: vec![Chunk {
            chunk_id: "c0".into(),
            ..Chunk::default()
        }],
        entities: vec![a.clone(), b.clone()],
        mentions: vec![kb_proto::Mention {
            chunk_id: "c0".into(),
            entity_id: a.entity_id.clone(),
            count: 1,
        }],
        relations: vec![kb_proto::Relation {
            source_entity_id: a.entity_id.clone(),
            target_entity_id: b.entity_id.clone(),
            relation_type: "BELONGS_TO".into(),
            weight: 1.0,
        }],
        ..ParsedDocument::default()
    };
    let ex = Extraction {
        entities: vec![
            llm(EntityType::Person, "Ada Lovelace", "ada lovelace"),
            llm(EntityType::Organization, "Acme Corp", "acme corp"),
        ],
        mentions: vec![LlmMention {
            chunk_id: "c0".into(),
            entity: 0,
            count: 3,
        }],
        relations: vec![LlmRelation {
            source: 0,
            target: 1,
            relation_type: RelationType::BelongsTo,
            weight: 2.5,
            chunks: 3,
        }],
        ..Extraction::default()
    };
    let st = merge_into(&mut d, &ex);
    assert_eq!((st.mentions_raised, st.relations_raised), (1, 1));
    assert_eq!(d.mentions.len(), 1);
    assert_eq!(d.mentions[0].count, 3);
    assert_eq!(d.relations.len(), 1);
    assert_eq!(d.relations[0].weight, 2.5);
}
