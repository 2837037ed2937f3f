//! Each remote provider against a local fake server speaking its wire format, including the
//! ways real services fail.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use kb_core::Secret;
use kb_embed::fake::{fake_vector, FakeConfig, FakeFlavor, FakeProvider, Fault};
use kb_embed::EmbedErrorExt as _;
use kb_embed::{
    check_dimensions, EmbedErrorKind, Embedder, RemoteConfig, RemoteEmbedder, RemoteKind,
};

const KEY: &str = "sk-test-0123456789";

fn texts(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("chunk number {i} about budgets"))
        .collect()
}

async fn fake(flavor: FakeFlavor, dims: usize) -> FakeProvider {
    let mut cfg = FakeConfig::new(flavor, dims);
    cfg.api_key = Some(KEY.to_owned());
    FakeProvider::start(cfg).await.unwrap()
}

fn client(kind: RemoteKind, server: &FakeProvider, model: &str, dims: usize) -> RemoteEmbedder {
    let mut cfg = RemoteConfig::new(kind, model, dims);
    cfg.base_url = server.base_url();
    cfg.api_key = Some(Secret::new(KEY));
    cfg.timeout = Duration::from_secs(5);
    RemoteEmbedder::new(cfg).unwrap()
}

#[tokio::test]
async fn mistral_request_shape_key_and_vectors() {
    let server = fake(FakeFlavor::Mistral, 1024).await;
    let m = client(RemoteKind::Mistral, &server, "mistral-embed", 1024);
    let input = texts(3);
    let got = m.embed(&input).await.unwrap();
    for (t, v) in input.iter().zip(&got) {
        assert_eq!(v, &fake_vector(t, 1024), "vector for {t:?}");
    }
    let req = &server.requests()[0];
    assert_eq!(req.path, "/v1/embeddings");
    assert_eq!(req.body["model"], "mistral-embed");
    assert_eq!(req.inputs, input);
    assert!(req.body.get("encoding_format").is_none(), "{}", req.body);
    assert!(req.body.get("dimensions").is_none(), "{}", req.body);
    assert_eq!(
        req.authorization.as_deref(),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!((m.max_batch(), m.max_request_tokens()), (256, Some(16_384)));
}

#[tokio::test]
async fn openai_compatible_asks_for_floats_and_dimensions_when_told() {
    let server = fake(FakeFlavor::OpenAi, 1536).await;
    let mut cfg = RemoteConfig::new(RemoteKind::OpenAi, "text-embedding-3-small", 256);
    cfg.base_url = format!("{}/v1", server.base_url());
    cfg.api_key = Some(Secret::new(KEY));
    cfg.send_dimensions = true;
    let m = RemoteEmbedder::new(cfg).unwrap();
    let input = texts(5);
    // The fake answers in reverse order with `index`: the client must restore input order.
    let got = m.embed(&input).await.unwrap();
    for (t, v) in input.iter().zip(&got) {
        assert_eq!(v, &fake_vector(t, 256));
    }
    let body = &server.requests()[0].body;
    assert_eq!(body["encoding_format"], "float");
    assert_eq!(body["dimensions"], 256);
    assert_eq!(body["model"], "text-embedding-3-small");
}

#[tokio::test]
async fn ollama_api_embed() {
    let server = fake(FakeFlavor::Ollama, 768).await;
    let m = client(RemoteKind::Ollama, &server, "nomic-embed-text", 768);
    let input = texts(4);
    let got = m.embed(&input).await.unwrap();
    for (t, v) in input.iter().zip(&got) {
        assert_eq!(v, &fake_vector(t, 768));
    }
    let req = &server.requests()[0];
    assert_eq!(req.path, "/api/embed");
    assert_eq!(req.body["model"], "nomic-embed-text");
    assert_eq!(req.inputs, input);
}

#[tokio::test]
async fn refused_key_is_permanent_and_the_key_never_shows() {
    for (flavor, kind) in [
        (FakeFlavor::Mistral, RemoteKind::Mistral),
        (FakeFlavor::OpenAi, RemoteKind::OpenAi),
        (FakeFlavor::Ollama, RemoteKind::Ollama),
    ] {
        let server = fake(flavor, 8).await;
        let mut cfg = RemoteConfig::new(kind, "m", 8);
        cfg.base_url = server.base_url();
        cfg.api_key = Some(Secret::new("sk-wrong-secret"));
        let m = RemoteEmbedder::new(cfg).unwrap();
        let err = m.embed(&texts(1)).await.unwrap_err();
        assert_eq!(err.kind, EmbedErrorKind::Permanent, "{flavor:?}: {err}");
        assert!(err.message().contains("401"), "{err}");
        assert!(
            err.message().contains("Unauthorized"),
            "provider text quoted: {err}"
        );
        assert!(!err.message().contains("sk-wrong"), "{err}");
        assert!(
            !format!("{err:?} {m:?}").contains("sk-wrong"),
            "key in Debug output"
        );
    }
    // 403 too.
    let server = fake(FakeFlavor::OpenAi, 8).await;
    server.push_fault(Fault::Status {
        code: 403,
        retry_after: None,
    });
    let err = client(RemoteKind::OpenAi, &server, "m", 8)
        .embed(&texts(1))
        .await
        .unwrap_err();
    assert_eq!(err.kind, EmbedErrorKind::Permanent, "{err}");
}

#[tokio::test]
async fn rate_limit_is_transient_throttled_and_carries_retry_after() {
    let server = fake(FakeFlavor::Mistral, 8).await;
    let m = client(RemoteKind::Mistral, &server, "mistral-embed", 8);
    server.push_fault(Fault::Status {
        code: 429,
        retry_after: Some("7".into()),
    });
    let err = m.embed(&texts(2)).await.unwrap_err();
    assert!(err.is_transient() && err.is_throttled(), "{err}");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    // And the next request goes through.
    assert_eq!(m.embed(&texts(2)).await.unwrap().len(), 2);
}

#[tokio::test]
async fn server_errors_are_transient_and_503_retry_after_is_kept() {
    let server = fake(FakeFlavor::OpenAi, 8).await;
    let m = client(RemoteKind::OpenAi, &server, "m", 8);
    for code in [500, 502, 504] {
        server.push_fault(Fault::Status {
            code,
            retry_after: None,
        });
        let err = m.embed(&texts(1)).await.unwrap_err();
        assert!(err.is_transient() && !err.is_throttled(), "{code}: {err}");
        assert!(err.message().contains(&code.to_string()), "{err}");
    }
    server.push_fault(Fault::Status {
        code: 503,
        retry_after: Some("2".into()),
    });
    let err = m.embed(&texts(1)).await.unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(2)));
}

#[tokio::test]
async fn slow_answer_times_out_as_transient() {
    let server = fake(FakeFlavor::Ollama, 8).await;
    let mut cfg = RemoteConfig::new(RemoteKind::Ollama, "m", 8);
    cfg.base_url = server.base_url();
    cfg.timeout = Duration::from_millis(300);
    let m = RemoteEmbedder::new(cfg).unwrap();
    server.push_fault(Fault::Delay(Duration::from_secs(30)));
    let started = Instant::now();
    let err = m.embed(&texts(1)).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(err.message().contains("no answer within"), "{err}");
    // gave up after its timeout, long before the server would have answered
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn malformed_body_is_transient() {
    for flavor in [FakeFlavor::Mistral, FakeFlavor::Ollama] {
        let server = fake(flavor, 8).await;
        let kind = if flavor == FakeFlavor::Ollama {
            RemoteKind::Ollama
        } else {
            RemoteKind::Mistral
        };
        let m = client(kind, &server, "m", 8);
        server.push_fault(Fault::Malformed);
        let err = m.embed(&texts(1)).await.unwrap_err();
        assert!(err.is_transient(), "{err}");
        assert!(err.message().contains("malformed"), "{err}");
    }
}

#[tokio::test]
async fn wrong_dimension_is_permanent_mid_run_and_a_config_error_at_start() {
    let server = fake(FakeFlavor::OpenAi, 8).await;
    let m = client(RemoteKind::OpenAi, &server, "m", 8);
    check_dimensions(&m, 8).await.unwrap();
    server.push_fault(Fault::WrongDimensions(5));
    let err = m.embed(&texts(2)).await.unwrap_err();
    assert_eq!(err.kind, EmbedErrorKind::Permanent, "{err}");
    assert!(err.message().contains("5 dimensions"), "{err}");

    // A 1024-dimension model configured as 384: refused at start with the fix in the message.
    let server = fake(FakeFlavor::Mistral, 1024).await;
    let m = client(RemoteKind::Mistral, &server, "mistral-embed", 384);
    let err = check_dimensions(&m, 384).await.unwrap_err();
    assert_eq!(err.kind, EmbedErrorKind::Config, "{err}");
    assert!(err.message().contains("1024"), "{err}");
    assert!(err.message().contains("KB_EMBEDDER__DIMENSIONS"), "{err}");
}

#[tokio::test]
async fn refused_inputs_are_permanent_and_marked_input_specific() {
    let mut cfg = FakeConfig::new(FakeFlavor::Mistral, 8);
    cfg.max_inputs = Some(2);
    let server = FakeProvider::start(cfg).await.unwrap();
    let m = client(RemoteKind::Mistral, &server, "mistral-embed", 8);
    let err = m.embed(&texts(3)).await.unwrap_err();
    assert_eq!(err.kind, EmbedErrorKind::Permanent);
    assert!(err.is_input_specific(), "{err}");
    assert!(err.message().contains("Too many inputs"), "{err}");
}

#[tokio::test]
async fn unreachable_service_is_transient_at_start() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cfg = RemoteConfig::new(RemoteKind::Ollama, "m", 8);
    cfg.base_url = format!("http://127.0.0.1:{port}");
    let m = RemoteEmbedder::new(cfg).unwrap();
    let err = check_dimensions(&m, 8).await.unwrap_err();
    assert_eq!(err.kind, EmbedErrorKind::Transient, "{err}");
    assert!(err.message().contains("cannot connect"), "{err}");
}
