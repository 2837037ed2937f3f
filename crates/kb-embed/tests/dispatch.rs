//! The dispatcher against the fake provider: packing across calls within input and token
//! limits, retries, Retry-After, adapting to 429s, and isolating refused inputs.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kb_embed::fake::{fake_vector, FakeConfig, FakeFlavor, FakeProvider, Fault};
use kb_embed::EmbedErrorExt as _;
use kb_embed::{
    estimate_tokens, DispatchConfig, Dispatcher, EmbedErrorKind, Embedder, RemoteConfig,
    RemoteEmbedder, RemoteKind,
};

const DIMS: usize = 16;

fn remote(
    server: &FakeProvider,
    max_inputs: usize,
    max_tokens: Option<usize>,
) -> Arc<dyn Embedder> {
    let mut cfg = RemoteConfig::new(RemoteKind::OpenAi, "fake-model", DIMS);
    cfg.base_url = server.base_url();
    cfg.max_inputs = max_inputs;
    cfg.max_request_tokens = max_tokens;
    cfg.timeout = Duration::from_secs(5);
    Arc::new(RemoteEmbedder::new(cfg).unwrap())
}

fn fast(max_in_flight: usize, max_retries: usize) -> DispatchConfig {
    DispatchConfig {
        max_in_flight,
        max_retries,
        min_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_secs(5),
    }
}

fn doc(name: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{name} paragraph {i}")).collect()
}

fn assert_vectors(texts: &[String], got: &[Vec<f32>]) {
    assert_eq!(texts.len(), got.len());
    for (t, v) in texts.iter().zip(got) {
        assert_eq!(v, &fake_vector(t, DIMS), "wrong vector for {t:?}");
    }
}

#[tokio::test]
async fn packs_inputs_of_concurrent_documents_into_shared_requests() {
    let mut cfg = FakeConfig::new(FakeFlavor::OpenAi, DIMS);
    cfg.latency = Duration::from_millis(150);
    cfg.max_inputs = Some(8);
    let server = FakeProvider::start(cfg).await.unwrap();
    let d = Arc::new(Dispatcher::new(remote(&server, 8, None), fast(1, 0)));

    let docs: Vec<Vec<String>> = (0..6).map(|i| doc(&format!("doc{i}"), 5)).collect();
    let mut tasks = Vec::new();
    for texts in docs.clone() {
        let d = Arc::clone(&d);
        tasks.push(tokio::spawn(async move { d.embed(&texts).await }));
        // Stagger a little so the first document's request is in flight while others queue.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for (texts, t) in docs.iter().zip(tasks) {
        assert_vectors(texts, &t.await.unwrap().unwrap());
    }

    let requests = server.requests();
    assert!(requests
        .iter()
        .all(|r| r.status == 200 && r.inputs.len() <= 8));
    // 30 inputs in requests of at most 8: a request per document would be 6.
    assert!(requests.len() <= 5, "{} requests", requests.len());
    let mixed = requests.iter().any(|r| {
        let docs: HashSet<&str> = r
            .inputs
            .iter()
            .filter_map(|t| t.split(' ').next())
            .collect();
        docs.len() > 1
    });
    assert!(mixed, "no request carried chunks of two documents");
    assert_eq!(server.embedded_inputs().len(), 30, "each input sent once");
}

#[tokio::test]
async fn requests_stay_within_the_token_budget() {
    let mut cfg = FakeConfig::new(FakeFlavor::Mistral, DIMS);
    // The fake counts words; 3 texts of 20 words exceed 50, 2 do not.
    cfg.max_words = Some(50);
    let server = FakeProvider::start(cfg).await.unwrap();
    let texts: Vec<String> = (0..9)
        .map(|i| {
            format!(
                "text {i} {}",
                "lorem ipsum dolor sit amet ".repeat(4).trim()
            )
        })
        .collect();
    let budget = estimate_tokens(&texts[0]) * 2 + 1;
    let d = Dispatcher::new(remote(&server, 256, Some(budget)), fast(2, 0));
    assert_vectors(&texts, &d.embed(&texts).await.unwrap());
    for r in server.requests() {
        assert_eq!(r.status, 200, "a request went over the budget");
        let tokens: usize = r.inputs.iter().map(|t| estimate_tokens(t)).sum();
        assert!(tokens <= budget, "{tokens} > {budget}");
    }
}

#[tokio::test]
async fn retries_transient_failures_and_waits_for_retry_after() {
    let server = FakeProvider::start(FakeConfig::new(FakeFlavor::OpenAi, DIMS))
        .await
        .unwrap();
    server.push_fault(Fault::Status {
        code: 503,
        retry_after: None,
    });
    server.push_fault(Fault::Malformed);
    server.push_fault(Fault::Status {
        code: 429,
        retry_after: Some("1".into()),
    });
    let d = Dispatcher::new(remote(&server, 64, None), fast(4, 5));
    let texts = doc("a", 3);
    let started = Instant::now();
    assert_vectors(&texts, &d.embed(&texts).await.unwrap());
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After ignored: {:?}",
        started.elapsed()
    );
    assert_eq!(server.requests().len(), 4);
}

#[tokio::test]
async fn gives_up_after_max_retries_with_a_transient_error() {
    let server = FakeProvider::start(FakeConfig::new(FakeFlavor::OpenAi, DIMS))
        .await
        .unwrap();
    for _ in 0..5 {
        server.push_fault(Fault::Status {
            code: 500,
            retry_after: None,
        });
    }
    let d = Dispatcher::new(remote(&server, 64, None), fast(1, 2));
    let err = d.embed(&doc("a", 2)).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert_eq!(server.requests().len(), 3, "one try and two retries");
}

#[tokio::test]
async fn a_long_retry_after_goes_back_to_the_caller_at_once() {
    let server = FakeProvider::start(FakeConfig::new(FakeFlavor::Mistral, DIMS))
        .await
        .unwrap();
    server.push_fault(Fault::Status {
        code: 429,
        retry_after: Some("120".into()),
    });
    let d = Dispatcher::new(remote(&server, 64, None), fast(2, 5));
    let started = Instant::now();
    let err = d.embed(&doc("a", 2)).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(err.is_transient() && err.is_throttled(), "{err}");
    // The embedder service naks the message with this delay.
    assert_eq!(err.retry_after(), Some(Duration::from_secs(120)));
}

#[tokio::test]
async fn permanent_failures_are_not_retried() {
    let server = FakeProvider::start(FakeConfig::new(FakeFlavor::OpenAi, DIMS))
        .await
        .unwrap();
    server.push_fault(Fault::Status {
        code: 401,
        retry_after: None,
    });
    let d = Dispatcher::new(remote(&server, 64, None), fast(2, 5));
    let err = d.embed(&doc("a", 2)).await.unwrap_err();
    assert_eq!(err.kind, EmbedErrorKind::Permanent);
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn halves_requests_in_flight_on_429_and_still_embeds_everything() {
    let mut cfg = FakeConfig::new(FakeFlavor::OpenAi, DIMS);
    cfg.latency = Duration::from_millis(60);
    cfg.max_concurrent = Some(2);
    cfg.throttle_retry_after = "0".into();
    let server = FakeProvider::start(cfg).await.unwrap();
    // One input per request: 60 requests, 8 allowed in flight at first.
    let d = Arc::new(Dispatcher::new(remote(&server, 1, None), fast(8, 20)));
    let texts = doc("t", 60);
    let run = {
        let (d, texts) = (Arc::clone(&d), texts.clone());
        tokio::spawn(async move { d.embed(&texts).await })
    };
    let mut lowest = d.current_limit();
    while !run.is_finished() {
        lowest = lowest.min(d.current_limit());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_vectors(&texts, &run.await.unwrap().unwrap());
    let throttled = server.requests().iter().filter(|r| r.status == 429).count();
    assert!(
        throttled > 0,
        "the fake never throttled: test proves nothing"
    );
    assert!(lowest <= 4, "limit never halved: lowest {lowest}");
    assert!(
        d.current_limit() > lowest,
        "limit never grew back from {lowest}"
    );
    // Without adapting, ~6 of every 8 requests would be refused (well over 60 in total).
    assert!(throttled < 60, "{throttled} requests throttled");
}

#[tokio::test]
async fn a_refused_input_fails_only_its_own_document() {
    let mut cfg = FakeConfig::new(FakeFlavor::Mistral, DIMS);
    cfg.latency = Duration::from_millis(100);
    cfg.poison = Some("POISON".into());
    let server = FakeProvider::start(cfg).await.unwrap();
    let d = Arc::new(Dispatcher::new(remote(&server, 64, None), fast(1, 0)));
    // The first call holds the only slot, so the next two queue and share one request.
    let first = {
        let d = Arc::clone(&d);
        tokio::spawn(async move { d.embed(&doc("first", 1)).await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut bad = doc("bad", 4);
    bad[2] = "bad paragraph with POISON in it".into();
    let good = doc("good", 4);
    let (b, g) = tokio::join!(d.embed(&bad), d.embed(&good));
    first.await.unwrap().unwrap();
    let err = b.unwrap_err();
    assert_eq!(err.kind, EmbedErrorKind::Permanent);
    assert!(err.message().contains("content filter"), "{err}");
    assert_vectors(&good, &g.unwrap());
    let shared = server.requests().iter().any(|r| {
        r.inputs.iter().any(|t| t.contains("POISON"))
            && r.inputs.iter().any(|t| t.starts_with("good"))
    });
    assert!(
        shared,
        "the two documents never shared a request: test proves nothing"
    );
}
