//! The per-document token budget and the concurrency limit.

use std::time::{Duration, Instant};

use kb_llm::prompt::{estimate_request_tokens, user_prompt};

use crate::fake::{knowing, Fake, Reply};
use crate::{doc, extractor, settings, NAMES, RELATIONS, TEXT};

/// Budget cost of a one-chunk request: estimated prompt + max_tokens.
fn cost(d: &kb_proto::ParsedDocument, i: usize, max_out: u32) -> usize {
    estimate_request_tokens(&user_prompt(&[&d.chunks[i]])) + max_out as usize
}

#[tokio::test]
async fn stops_at_the_budget_and_says_so() {
    let fake = Fake::start(vec![], Duration::ZERO, knowing(NAMES, RELATIONS)).await;
    let d = doc(TEXT);
    let mut s = settings(&fake.base_url);
    let two = cost(&d, 0, s.max_output_tokens) + cost(&d, 1, s.max_output_tokens);
    s.max_tokens_per_document = two + 10;
    let ex = extractor(s).extract(&d).await.unwrap();

    assert!(ex.budget_exceeded);
    assert!(!ex.is_complete());
    assert_eq!(fake.seen().len(), 2, "only what fits is sent");
    assert_eq!(ex.stats.groups, 4);
    assert_eq!(ex.stats.groups_skipped_budget, 2);
    assert_eq!(ex.stats.estimated_tokens, two as u64);
    // what was extracted is returned: chunks 0 and 1 only
    let covered: Vec<&str> = ex.mentions.iter().map(|m| m.chunk_id.as_str()).collect();
    assert!(covered
        .iter()
        .all(|c| *c == d.chunks[0].chunk_id || *c == d.chunks[1].chunk_id));
    assert!(covered.contains(&d.chunks[1].chunk_id.as_str()));
}

#[tokio::test]
async fn a_re_ask_must_fit_the_budget_too() {
    let fake = Fake::start(vec![], Duration::ZERO, |_: &serde_json::Value| {
        Reply::chat("not json")
    })
    .await;
    let d = doc("Ada Lovelace works for Acme Corp in London.");
    let mut s = settings(&fake.base_url);
    s.max_tokens_per_document = cost(&d, 0, s.max_output_tokens);
    let ex = extractor(s).extract(&d).await.unwrap();
    assert_eq!(fake.seen().len(), 1);
    assert!(ex.budget_exceeded);
    assert_eq!(ex.stats.groups_dropped, 1);
    assert_eq!(ex.stats.output_retries, 0);
}

#[tokio::test]
async fn never_more_requests_in_flight_than_the_limit() {
    let delay = Duration::from_millis(150);
    let fake = Fake::start(vec![], delay, knowing(NAMES, RELATIONS)).await;
    let mut s = settings(&fake.base_url);
    s.max_concurrency = 2;
    let ext = extractor(s);
    let (a, b) = (doc(TEXT), doc(TEXT));
    let started = Instant::now();
    // two documents at once share the extractor's limit
    let (ra, rb) = tokio::join!(ext.extract(&a), ext.extract(&b));
    ra.unwrap();
    rb.unwrap();
    assert_eq!(fake.seen().len(), 8);
    assert_eq!(
        fake.max_in_flight(),
        2,
        "the limit is reached and never passed"
    );
    assert!(started.elapsed() >= delay * 4, "{:?}", started.elapsed());

    let fake3 = Fake::start(vec![], delay, knowing(NAMES, RELATIONS)).await;
    let mut s3 = settings(&fake3.base_url);
    s3.max_concurrency = 3;
    let ext3 = extractor(s3);
    let (ra, rb) = tokio::join!(ext3.extract(&a), ext3.extract(&b));
    ra.unwrap();
    rb.unwrap();
    assert_eq!(fake3.max_in_flight(), 3);
}
