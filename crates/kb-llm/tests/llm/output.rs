//! Answers that are not what the schema promises.

use std::time::Duration;

use kb_parse::EntityType;
use serde_json::json;

use crate::fake::{knowing, Fake, Reply};
use crate::{doc, extractor, settings, NAMES, RELATIONS};

fn one_chunk() -> kb_proto::ParsedDocument {
    doc("Ada Lovelace works for Acme Corp in London.")
}

#[tokio::test]
async fn malformed_json_is_asked_again_once() {
    let fake = Fake::start(
        vec![Reply::chat(
            r#"{"chunks": [{"chunk": 0, "entities": [{"name": "Ada"#,
        )],
        Duration::ZERO,
        knowing(NAMES, RELATIONS),
    )
    .await;
    let ex = extractor(settings(&fake.base_url))
        .extract(&one_chunk())
        .await
        .unwrap();
    assert_eq!(fake.seen().len(), 2);
    assert_eq!(ex.stats.malformed_json, 1);
    assert_eq!(ex.stats.output_retries, 1);
    assert_eq!(ex.entities.len(), 3, "the second answer counts");
    assert!(ex.is_complete());
}

#[tokio::test]
async fn a_group_whose_answers_stay_invalid_is_dropped_not_failed() {
    let fake = Fake::start(vec![], Duration::ZERO, |_: &serde_json::Value| {
        Reply::chat("Sure! Here are the entities: Ada Lovelace (person)")
    })
    .await;
    let ex = extractor(settings(&fake.base_url))
        .extract(&one_chunk())
        .await
        .unwrap();
    assert_eq!(fake.seen().len(), 2, "asked once more, not forever");
    assert_eq!(ex.stats.malformed_json, 2);
    assert_eq!(ex.stats.groups_dropped, 1);
    assert!(ex.entities.is_empty());
    assert!(!ex.is_complete());
}

#[tokio::test]
async fn content_not_matching_the_schema_is_rejected() {
    let extra_field = json!({"chunks": [{"chunk": 0, "entities": [
        {"name": "Ada Lovelace", "type": "person", "salience": 0.9}], "relations": []}]});
    let missing_field =
        json!({"chunks": [{"chunk": 0, "entities": [{"name": "Ada Lovelace"}], "relations": []}]});
    let wrong_type = json!({"chunks": [{"chunk": "first", "entities": [], "relations": []}]});
    for bad in [extra_field, missing_field, wrong_type] {
        let fake = Fake::start(
            vec![Reply::chat(&bad.to_string())],
            Duration::ZERO,
            knowing(NAMES, RELATIONS),
        )
        .await;
        let ex = extractor(settings(&fake.base_url))
            .extract(&one_chunk())
            .await
            .unwrap();
        assert_eq!(ex.stats.schema_mismatch, 1, "{bad}");
        assert_eq!(ex.stats.output_retries, 1);
        assert_eq!(ex.entities.len(), 3, "the re-ask's valid answer is used");
    }
}

#[tokio::test]
async fn empty_content_is_asked_again() {
    let fake = Fake::start(
        vec![Reply::raw(
            200,
            &json!({"id": "x", "object": "chat.completion", "choices": [{"index": 0,
                "message": {"role": "assistant", "content": null}, "finish_reason": "stop"}]})
            .to_string(),
        )],
        Duration::ZERO,
        knowing(NAMES, RELATIONS),
    )
    .await;
    let ex = extractor(settings(&fake.base_url))
        .extract(&one_chunk())
        .await
        .unwrap();
    assert_eq!(ex.stats.empty_output, 1);
    assert_eq!(ex.entities.len(), 3);
}

#[tokio::test]
async fn hallucinated_names_and_their_relations_are_dropped() {
    let answer = json!({"chunks": [{"chunk": 0,
        "entities": [
            {"name": "Ada Lovelace", "type": "person"},
            {"name": "Acme Corporation", "type": "organization"},
            {"name": "Charles Babbage", "type": "person"},
            {"name": "London", "type": "place"}],
        "relations": [
            {"source": "Charles Babbage", "target": "Ada Lovelace", "type": "related_to", "weight": 0.9},
            {"source": "Ada Lovelace", "target": "Acme Corporation", "type": "belongs_to", "weight": 0.9},
            {"source": "Ada Lovelace", "target": "London", "type": "related_to", "weight": 0.5}]}]});
    let fake = Fake::start(vec![], Duration::ZERO, move |_: &serde_json::Value| {
        Reply::chat(&answer.to_string())
    })
    .await;
    let ex = extractor(settings(&fake.base_url))
        .extract(&one_chunk())
        .await
        .unwrap();
    let names: Vec<&str> = ex.entities.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, vec!["Ada Lovelace", "London"]);
    assert_eq!(ex.stats.entities_hallucinated, 2);
    assert_eq!(ex.relations.len(), 1);
    assert_eq!(ex.stats.relations_dropped, 2);
    assert_eq!(
        fake.seen().len(),
        1,
        "item problems are no reason to ask again"
    );
}

#[tokio::test]
async fn types_outside_the_vocabulary_never_pass_through() {
    // a server without strict decoding may answer outside the enums
    let answer = json!({"chunks": [{"chunk": 0,
        "entities": [
            {"name": "Ada Lovelace", "type": "PERSON"},
            {"name": "Acme Corp", "type": "product"},
            {"name": "London", "type": "city"}],
        "relations": [
            {"source": "Ada Lovelace", "target": "Acme Corp", "type": "KNOWS]->(x) DETACH DELETE x //", "weight": 0.9},
            {"source": "Ada Lovelace", "target": "London", "type": "related_to", "weight": 7}]}]});
    let fake = Fake::start(vec![], Duration::ZERO, move |_: &serde_json::Value| {
        Reply::chat(&answer.to_string())
    })
    .await;
    let ex = extractor(settings(&fake.base_url))
        .extract(&one_chunk())
        .await
        .unwrap();
    let types: Vec<EntityType> = ex.entities.iter().map(|e| e.entity_type).collect();
    assert_eq!(
        types,
        vec![EntityType::Person, EntityType::Topic, EntityType::Place]
    );
    assert_eq!(ex.stats.entities_mapped_to_topic, 1);
    assert_eq!(ex.relations.len(), 1);
    assert_eq!(
        ex.relations[0].relation_type,
        kb_parse::RelationType::CoOccurs
    );
    assert_eq!(ex.relations[0].weight, 1.0, "clamped into [0, 1]");
    assert_eq!(ex.stats.weights_clamped, 1);
}

#[tokio::test]
async fn an_answer_cut_off_at_max_tokens_is_not_asked_again() {
    let cut = json!({"id": "x", "object": "chat.completion", "choices": [{"index": 0,
        "message": {"role": "assistant", "content": "{\"chunks\": [{\"chunk\": 0, \"entities\": [{\"na"},
        "finish_reason": "length"}],
        "usage": {"prompt_tokens": 900, "completion_tokens": 1500, "total_tokens": 2400}});
    let fake = Fake::start(
        vec![Reply::raw(200, &cut.to_string())],
        Duration::ZERO,
        knowing(NAMES, RELATIONS),
    )
    .await;
    let ex = extractor(settings(&fake.base_url))
        .extract(&one_chunk())
        .await
        .unwrap();
    assert_eq!(
        fake.seen().len(),
        1,
        "the same request would be cut off again"
    );
    assert_eq!(ex.stats.truncated_output, 1);
    assert_eq!(ex.stats.groups_dropped, 1);
    assert_eq!(ex.stats.completion_tokens, 1500);
    assert!(ex.entities.is_empty() && !ex.is_complete());
}
