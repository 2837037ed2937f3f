//! The request we send and a normal JSON-schema answer.

use kb_llm::schema;
use serde_json::json;

use crate::fake::{knowing, Fake, Reply};
use crate::{doc, extractor, settings, NAMES, RELATIONS, TEXT};

#[tokio::test]
async fn sends_a_json_schema_request_and_reads_the_answer() {
    let fake = Fake::start(vec![], Default::default(), knowing(NAMES, RELATIONS)).await;
    let d = doc(TEXT);
    assert_eq!(d.chunks.len(), 4, "one chunk per paragraph");
    let ex = extractor(settings(&fake.base_url))
        .extract(&d)
        .await
        .unwrap();

    let seen = fake.seen();
    assert_eq!(seen.len(), 4, "one request per chunk group");
    let body = &seen[0].body;
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some("Bearer sk-test-secret")
    );
    assert_eq!(body["model"], "fake-model");
    assert_eq!(body["messages"][0]["role"], "system");
    assert_eq!(body["messages"][1]["role"], "user");
    assert_eq!(body["temperature"], 0.0);
    assert_eq!(body["max_tokens"], 1500);
    assert_eq!(
        body["response_format"],
        json!({"type": "json_schema", "json_schema": {
            "name": "kb_extraction", "schema": schema::schema(), "strict": true}})
    );
    // every chunk was sent exactly once, with its document index
    let mut sent: Vec<(u64, String)> = seen.iter().flat_map(|s| s.chunks()).collect();
    sent.sort();
    let expected: Vec<(u64, String)> = d
        .chunks
        .iter()
        .map(|c| (u64::from(c.index), c.text.clone()))
        .collect();
    assert_eq!(sent, expected);

    let ent = |name: &str| ex.entities.iter().position(|e| e.name == name).unwrap();
    assert_eq!(ex.entities.len(), NAMES.len(), "{:?}", ex.entities);
    let date = &ex.entities[ent("March 5, 2020")];
    assert_eq!(date.canonical_name, "2020-03-05");
    // "budget review" is in chunks 0 and 2, twice in chunk 0
    let br = ent("budget review");
    let mut counts: Vec<(usize, u32)> = ex
        .mentions
        .iter()
        .filter(|m| m.entity == br)
        .map(|m| {
            (
                d.chunks
                    .iter()
                    .position(|c| c.chunk_id == m.chunk_id)
                    .unwrap(),
                m.count,
            )
        })
        .collect();
    counts.sort();
    assert_eq!(counts, vec![(0, 2), (2, 1)]);
    // Ada discusses the budget review in chunks 0 and 2: evidence adds up
    let r = ex
        .relations
        .iter()
        .find(|r| r.source == ent("Ada Lovelace") && r.target == br)
        .unwrap();
    assert_eq!(r.relation_type, kb_parse::RelationType::Discusses);
    assert_eq!(r.chunks, 2);
    assert!((r.weight - 1.6).abs() < 1e-6, "{}", r.weight);
    assert!(ex.is_complete());
    assert_eq!(ex.stats.requests, 4);
    assert_eq!(ex.stats.http_attempts, 4);
    assert_eq!(
        ex.stats.prompt_tokens, 400,
        "usage as the server reported it"
    );
    assert_eq!(ex.stats.entities_hallucinated, 0);
}

#[tokio::test]
async fn groups_chunks_and_reads_mistral_content_parts() {
    let fake = Fake::start(vec![], Default::default(), |body: &serde_json::Value| {
        let chunks = crate::fake::chunks_of(body);
        let items: Vec<_> = chunks
            .iter()
            .map(|(n, _)| json!({"chunk": n, "entities": [{"name": "London", "type": "place"}], "relations": []}))
            .collect();
        Reply::chat_parts(&json!({ "chunks": items }).to_string())
    })
    .await;
    let mut s = settings(&fake.base_url);
    s.chunks_per_request = 3;
    let ex = extractor(s).extract(&doc(TEXT)).await.unwrap();
    let sizes: Vec<usize> = fake.seen().iter().map(|s| s.chunks().len()).collect();
    assert_eq!(sizes, vec![3, 1]);
    // London is only in chunks 0 and 2; the others' answers are hallucinations
    assert_eq!(ex.mentions.len(), 2);
    assert_eq!(ex.stats.entities_hallucinated, 2);
}

#[tokio::test]
async fn openai_compatible_base_with_v1_and_no_key() {
    let fake = Fake::start(vec![], Default::default(), knowing(NAMES, RELATIONS)).await;
    let mut s = settings(&format!("{}/v1", fake.base_url));
    s.provider = kb_llm::Provider::Openai;
    s.api_key = kb_core::Secret::default();
    let ex = extractor(s).extract(&doc(TEXT)).await.unwrap();
    assert!(!ex.entities.is_empty());
    assert!(fake.seen().iter().all(|r| r.authorization.is_none()));
}

#[test]
fn futures_are_send_and_debug_hides_the_key() {
    fn is_send<T: Send>(_: &T) {}
    let ext = extractor(settings("http://127.0.0.1:9"));
    let mut d = doc(TEXT);
    is_send(&ext.extract(&d));
    is_send(&ext.enrich(&mut d));
    let shown = format!("{ext:?}");
    assert!(
        shown.contains("fake-model") && !shown.contains("sk-test-secret"),
        "{shown}"
    );
}
