//! Error statuses, retries and `Retry-After`.

use std::time::{Duration, Instant, SystemTime};

use kb_llm::LlmErrorKind;

use crate::fake::{knowing, Fake, Reply};
use crate::{doc, extractor, settings, NAMES, RELATIONS, TEXT};

fn one_chunk() -> kb_proto::ParsedDocument {
    doc("Ada Lovelace works for Acme Corp in London.")
}

fn rate_limited() -> Reply {
    Reply::error(429, "Requests rate limit exceeded", "rate_limited")
}

#[tokio::test]
async fn waits_retry_after_seconds_on_429_then_succeeds() {
    let fake = Fake::start(
        vec![rate_limited().header("retry-after", "1")],
        Duration::ZERO,
        knowing(NAMES, RELATIONS),
    )
    .await;
    let started = Instant::now();
    let ex = extractor(settings(&fake.base_url))
        .extract(&one_chunk())
        .await
        .unwrap();
    let seen = fake.seen();
    assert_eq!(seen.len(), 2);
    let gap = seen[1].at - seen[0].at;
    // the backoff alone would be ~10 ms
    assert!(gap >= Duration::from_millis(950), "{gap:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(ex.stats.http_attempts, 2);
    assert_eq!(ex.stats.requests, 1);
    assert_eq!(ex.entities.len(), 3);
}

#[tokio::test]
async fn waits_retry_after_http_date() {
    let at = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(2));
    let fake = Fake::start(
        vec![rate_limited().header("retry-after", &at)],
        Duration::ZERO,
        knowing(NAMES, RELATIONS),
    )
    .await;
    extractor(settings(&fake.base_url))
        .extract(&one_chunk())
        .await
        .unwrap();
    let seen = fake.seen();
    // the date has whole seconds: at least one second, at most two, away
    let gap = seen[1].at - seen[0].at;
    assert!(gap >= Duration::from_millis(950), "{gap:?}");
    assert!(gap <= Duration::from_secs(4), "{gap:?}");
}

#[tokio::test]
async fn retries_500_then_succeeds() {
    let fake = Fake::start(
        vec![
            Reply::error(500, "Internal server error", "internal_server_error"),
            Reply::raw(502, "<html>bad gateway</html>"),
        ],
        Duration::ZERO,
        knowing(NAMES, RELATIONS),
    )
    .await;
    let ex = extractor(settings(&fake.base_url))
        .extract(&one_chunk())
        .await
        .unwrap();
    assert_eq!(fake.seen().len(), 3);
    assert_eq!(ex.stats.http_attempts, 3);
    assert_eq!(ex.entities.len(), 3);
}

#[tokio::test]
async fn gives_up_after_the_retries_with_a_transient_error() {
    let fake = Fake::start(vec![], Duration::ZERO, |_: &serde_json::Value| {
        Reply::error(503, "Service unavailable", "service_unavailable")
    })
    .await;
    let err = extractor(settings(&fake.base_url))
        .extract(&one_chunk())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), LlmErrorKind::Transient);
    assert_eq!(err.status(), Some(503));
    assert_eq!(fake.seen().len(), 4, "first try + max_retries = 3");
}

#[tokio::test]
async fn a_long_retry_after_is_handed_to_the_caller() {
    let fake = Fake::start(
        vec![rate_limited().header("retry-after", "120")],
        Duration::ZERO,
        knowing(NAMES, RELATIONS),
    )
    .await;
    let err = extractor(settings(&fake.base_url))
        .extract(&one_chunk())
        .await
        .unwrap_err();
    assert!(err.is_transient());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(120)));
    assert_eq!(fake.seen().len(), 1, "not waited for in-process");
}

#[tokio::test]
async fn unauthorized_is_a_configuration_error_without_retry() {
    let fake = Fake::start(
        vec![Reply::raw(
            401,
            r#"{"message":"Unauthorized","request_id":"r-1"}"#,
        )],
        Duration::ZERO,
        knowing(NAMES, RELATIONS),
    )
    .await;
    let mut s = settings(&fake.base_url);
    s.max_concurrency = 1;
    let err = extractor(s).extract(&doc(TEXT)).await.unwrap_err();
    assert_eq!(err.kind(), LlmErrorKind::Config);
    assert_eq!(err.status(), Some(401));
    assert!(err.to_string().contains("Unauthorized"), "{err}");
    assert!(!format!("{err} {err:?}").contains("sk-test-secret"));
    // the first group's 401 stops the document: no retry, no further groups
    assert_eq!(fake.seen().len(), 1);
}

#[tokio::test]
async fn bad_request_is_permanent() {
    let fake = Fake::start(
        vec![Reply::raw(
            400,
            r#"{"error":{"message":"Invalid schema for response_format","type":"invalid_request_error","code":null}}"#,
        )],
        Duration::ZERO,
        knowing(NAMES, RELATIONS),
    )
    .await;
    let err = extractor(settings(&fake.base_url))
        .extract(&one_chunk())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), LlmErrorKind::Permanent);
    assert!(err.message().contains("Invalid schema"), "{err}");
    assert_eq!(fake.seen().len(), 1);
}

#[tokio::test]
async fn a_slow_server_times_out_as_transient() {
    let fake = Fake::start(vec![], Duration::from_secs(30), knowing(NAMES, RELATIONS)).await;
    let mut s = settings(&fake.base_url);
    s.timeout_secs = 1;
    s.max_retries = 0;
    let llm = extractor(s);
    let started = Instant::now();
    let err = llm.extract(&one_chunk()).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    // gave up after its timeout, long before the server would have answered
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn a_200_that_is_no_chat_completion_is_a_configuration_error() {
    let fake = Fake::start(
        vec![Reply::raw(200, "<html>login page</html>")],
        Duration::ZERO,
        knowing(NAMES, RELATIONS),
    )
    .await;
    let err = extractor(settings(&fake.base_url))
        .extract(&one_chunk())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), LlmErrorKind::Config);
}
