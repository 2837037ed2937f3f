//! The embedder service in-process against a real NATS and a fake provider: documents reach
//! the mirror with the right vectors, the shared cache saves requests across versions, a
//! refused key dead-letters with its reason, and a dimension mismatch stops the start.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use async_nats::jetstream;
use kb_core::service::Context;
use kb_core::settings::EmbedProvider;
use kb_core::telemetry::Health;
use kb_core::Settings;
use kb_embed::fake::{fake_vector, FakeConfig, FakeFlavor, FakeProvider, Fault};
use kb_proto::{Chunk, DeadLetter, Message, MirrorEvent, ParsedDocument, SourceRef};
use kb_stream::{subjects, Publisher};
use tokio_util::sync::CancellationToken;

const DIMS: usize = 8;

fn settings(nats: &str, fake: &FakeProvider) -> Settings {
    let mut s = Settings::default();
    s.nats.url = nats.to_owned();
    s.embedder.provider = EmbedProvider::Openai;
    s.embedder.model = "fake-embed".into();
    s.embedder.base_url = fake.base_url();
    s.embedder.dimensions = DIMS;
    s.embedder.ack_wait_secs = 5;
    s.embedder.concurrency = 2;
    s
}

fn start(
    settings: Settings,
) -> (
    tokio::task::JoinHandle<anyhow::Result<()>>,
    CancellationToken,
) {
    let shutdown = CancellationToken::new();
    let ctx = Context {
        name: "kb-embedder",
        shutdown: shutdown.clone(),
        health: Health::default(),
    };
    (tokio::spawn(kb_embedder::run(settings, ctx)), shutdown)
}

fn document(id: &str, version: u64, texts: &[&str]) -> ParsedDocument {
    ParsedDocument {
        source: Some(SourceRef {
            source_id: id.to_owned(),
            version,
            origin: "test".into(),
            path: format!("{id}.txt"),
            ..Default::default()
        }),
        chunks: texts
            .iter()
            .enumerate()
            .map(|(i, t)| Chunk {
                chunk_id: format!("{id}-{i}"),
                index: i as u32,
                text: (*t).to_owned(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

async fn publisher(js: &jetstream::Context) -> Publisher {
    let topo = kb_stream::topology::ensure(js).await.unwrap();
    Publisher::new(&topo, 256 * 1024)
}

/// The mirror's document for `id` once it reaches `version`.
async fn mirrored(p: &Publisher, id: &str, version: u64) -> ParsedDocument {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(m) = p
            .topology()
            .mirror
            .get_last_raw_message_by_subject(&subjects::mirror(id))
            .await
        {
            let ev = MirrorEvent::decode(m.payload.as_ref()).unwrap();
            if ev.source.as_ref().unwrap().version >= version {
                let bytes = p.blobs().fetch(ev.body.as_ref().unwrap()).await.unwrap();
                return ParsedDocument::decode(bytes.as_slice()).unwrap();
            }
        }
        assert!(
            Instant::now() < deadline,
            "{id} v{version} never reached the mirror"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn assert_embedded(doc: &ParsedDocument) {
    assert_eq!(doc.embedding_model, "fake-embed");
    assert_eq!(doc.embedding_dimensions as usize, DIMS);
    for c in &doc.chunks {
        assert_eq!(
            c.embedding,
            fake_vector(&c.text, DIMS),
            "chunk {}",
            c.chunk_id
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_are_embedded_and_the_cache_saves_requests() {
    let stack = kb_testkit::stack().await.unwrap();
    let nats = stack.nats().await.unwrap();
    let fake = FakeProvider::start(FakeConfig::new(FakeFlavor::OpenAi, DIMS))
        .await
        .unwrap();
    let (task, shutdown) = start(settings(&nats.url(), &fake));

    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = jetstream::new(client);
    let p = publisher(&js).await;
    p.parsed(&document("alpha", 1, &["one", "two", "three"]))
        .await
        .unwrap();
    p.parsed(&document("beta", 1, &["four", "two"]))
        .await
        .unwrap();
    assert_embedded(&mirrored(&p, "alpha", 1).await);
    assert_embedded(&mirrored(&p, "beta", 1).await);

    // Version 2 of alpha: one paragraph edited. Only the new text costs a request.
    let before = fake.embedded_inputs().len();
    p.parsed(&document("alpha", 2, &["one", "two", "three, edited"]))
        .await
        .unwrap();
    let v2 = mirrored(&p, "alpha", 2).await;
    assert_embedded(&v2);
    let sent: Vec<String> = fake.embedded_inputs()[before..].to_vec();
    assert_eq!(sent, vec!["three, edited".to_string()]);

    // The shared totals `kb status` shows (reported every 2 s).
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        let s = kb_embedder::cache::status(&js).await.unwrap();
        if let Some(s) = s.filter(|s| s.hits + s.misses >= 8) {
            break s;
        }
        assert!(Instant::now() < deadline, "cache totals never reported");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // 8 chunks looked up; "two" in beta may race alpha, so 2 or 3 hits.
    assert!(status.hits >= 2 && status.misses <= 6, "{status:?}");
    assert!(status.hit_rate.unwrap() > 0.2);
    assert_eq!(
        status.entries as usize,
        kb_embedder::cache::keys(&js).await.unwrap().len()
    );
    assert!(status.entries >= 5);

    shutdown.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_key_dead_letters_the_document_with_the_reason() {
    let stack = kb_testkit::stack().await.unwrap();
    let nats = stack.nats().await.unwrap();
    let fake = FakeProvider::start(FakeConfig::new(FakeFlavor::Mistral, DIMS))
        .await
        .unwrap();
    let mut s = settings(&nats.url(), &fake);
    s.embedder.cache = false;
    let (task, shutdown) = start(s);

    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = jetstream::new(client);
    let p = publisher(&js).await;
    // Wait until the service passed its probe, then make the key "expire".
    let deadline = Instant::now() + Duration::from_secs(20);
    while fake.requests().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the service never probed the provider"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    fake.push_fault(Fault::Status {
        code: 401,
        retry_after: None,
    });
    p.parsed(&document("gamma", 1, &["some text"]))
        .await
        .unwrap();

    let dlq = p.topology().dlq.clone();
    let deadline = Instant::now() + Duration::from_secs(20);
    let dl = loop {
        if let Ok(m) = dlq
            .get_last_raw_message_by_subject(&subjects::dead_letter(
                kb_stream::Stage::Embedder.as_str(),
                "gamma",
            ))
            .await
        {
            break DeadLetter::decode(m.payload.as_ref()).unwrap();
        }
        assert!(Instant::now() < deadline, "no dead letter");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(dl.error_kind, "embedding_failed");
    assert!(dl.reason.contains("401"), "{}", dl.reason);
    assert_eq!(dl.deliveries, 1, "a refused key is not retried");
    assert_eq!(fake.requests().len(), 2, "probe and one request");

    // Issue 15: the give-up also records the failure in both stores (a FAILED mirror event)
    // and in progress, so `kb ingest` ends with "failed", not "timeout".
    let deadline = Instant::now() + Duration::from_secs(10);
    let failed = loop {
        if let Ok(m) = p
            .topology()
            .mirror
            .get_last_raw_message_by_subject(&subjects::mirror("gamma"))
            .await
        {
            break MirrorEvent::decode(m.payload.as_ref()).unwrap();
        }
        assert!(Instant::now() < deadline, "no FAILED mirror event");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(failed.kind, kb_proto::mirror_event::Kind::Failed as i32);
    assert_eq!(failed.source.as_ref().unwrap().version, 1);
    assert!(failed.error.contains("401"), "{}", failed.error);
    let progress = kb_stream::Progress::new(p.topology().progress.clone())
        .get(kb_stream::Stage::Embedder, "gamma")
        .await
        .unwrap()
        .expect("progress recorded");
    assert_eq!(progress.status, "failed");
    assert_eq!(progress.version, 1);

    shutdown.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dimension_mismatch_stops_the_start_with_a_clear_error() {
    let fake = FakeProvider::start(FakeConfig::new(FakeFlavor::Ollama, 768))
        .await
        .unwrap();
    // No broker needed: the probe runs first.
    let mut s = settings("nats://127.0.0.1:9", &fake);
    s.embedder.provider = EmbedProvider::Ollama;
    s.embedder.dimensions = 384;
    let (task, _shutdown) = start(s);
    let err = tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains("768") && text.contains("KB_EMBEDDER__DIMENSIONS"),
        "{text}"
    );
}

#[test]
fn settings_validation_knows_every_provider() {
    let mut s = Settings::default();
    s.embedder.provider = EmbedProvider::Mistral;
    let err = s
        .validate(&[kb_core::Component::Embedder])
        .unwrap_err()
        .to_string();
    assert!(err.contains("api_key"), "{err}");
    s.embedder.provider = EmbedProvider::Openai;
    let err = s
        .validate(&[kb_core::Component::Embedder])
        .unwrap_err()
        .to_string();
    assert!(err.contains("embedder.model"), "{err}");
    s.embedder.model = "text-embedding-3-small".into();
    s.validate(&[kb_core::Component::Embedder]).unwrap();
    // An unknown provider does not load at all.
    let file = std::env::temp_dir().join(format!("kb-embedder-{}.toml", std::process::id()));
    std::fs::write(&file, "[embedder]\nprovider = \"cohere\"\n").unwrap();
    let err = Settings::load(Some(&file)).unwrap_err().to_string();
    let _ = std::fs::remove_file(&file);
    assert!(err.contains("not known"), "{err}");
}

/// Issue 15, item 8: a capped cache evicts its oldest entries; it never refuses the newest.
#[tokio::test]
async fn a_capped_cache_drops_the_oldest_not_the_newest() {
    use kb_embed::VectorCache;
    let stack = kb_testkit::stack().await.unwrap();
    let nats = stack.nats().await.unwrap();
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = jetstream::new(client);
    let cache = kb_embedder::cache::KvCache::open(&js, 64 * 1024)
        .await
        .unwrap();
    let key = |i: usize| format!("test-model.{DIMS}.{i:064x}");
    // 200 vectors of 64 floats (256 bytes each, plus key and headers): well past 64 KiB.
    for i in 0..200 {
        cache
            .put_many(vec![(key(i), kb_testkit::vector(64, i as u64))])
            .await;
    }
    let newest = cache.get_many(&[key(199), key(198)]).await;
    assert!(
        newest.iter().all(Option::is_some),
        "the newest entries are readable"
    );
    assert_eq!(newest[0].as_deref(), Some(&kb_testkit::vector(64, 199)[..]));
    assert!(
        cache.get_many(&[key(0)]).await[0].is_none(),
        "the oldest went first"
    );
    let info = js
        .get_key_value(kb_embedder::cache::CACHE_BUCKET)
        .await
        .unwrap();
    let status = info.status().await.unwrap();
    assert!(
        status.info.state.bytes <= 64 * 1024,
        "{:?}",
        status.info.state
    );
}

/// Issue 15, item 3: a document the embedder keeps dying on (here the failpoint drops the
/// delivery unanswered, as a dead process would) is given up as `crashed` after
/// `embedder.crash_limit` deaths, with a FAILED record in both stores; the next one goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_the_embedder_dies_on_is_dead_lettered_and_failed_after_crash_limit() {
    let _fail = kb_testkit::FailGuard::new();
    kb_core::failpoint::set("consume.handle", "4*skip@delta").unwrap();
    let stack = kb_testkit::stack().await.unwrap();
    let nats = stack.nats().await.unwrap();
    let fake = FakeProvider::start(FakeConfig::new(FakeFlavor::OpenAi, DIMS))
        .await
        .unwrap();
    let mut s = settings(&nats.url(), &fake);
    s.embedder.ack_wait_secs = 1;
    s.embedder.crash_limit = 3;
    let (task, shutdown) = start(s);
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = jetstream::new(client);
    let p = publisher(&js).await;
    p.parsed(&document("delta", 1, &["doomed text"]))
        .await
        .unwrap();
    p.parsed(&document("epsilon", 1, &["fine text"]))
        .await
        .unwrap();
    assert_embedded(&mirrored(&p, "epsilon", 1).await);

    let dlq = p.topology().dlq.clone();
    let deadline = Instant::now() + Duration::from_secs(25);
    let dl = loop {
        if let Ok(m) = dlq
            .get_last_raw_message_by_subject(&subjects::dead_letter(
                kb_stream::Stage::Embedder.as_str(),
                "delta",
            ))
            .await
        {
            break DeadLetter::decode(m.payload.as_ref()).unwrap();
        }
        assert!(Instant::now() < deadline, "no dead letter");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(dl.error_kind, "crashed");
    assert_eq!(dl.deliveries, 5);
    assert_eq!(dl.source.as_ref().map(|s| s.version), Some(1));
    let m = p
        .topology()
        .mirror
        .get_last_raw_message_by_subject(&subjects::mirror("delta"))
        .await
        .unwrap();
    let failed = MirrorEvent::decode(m.payload.as_ref()).unwrap();
    assert_eq!(failed.kind, kb_proto::mirror_event::Kind::Failed as i32);
    assert!(failed.error.contains("died 3 times"), "{}", failed.error);
    assert_eq!(kb_core::failpoint::hits("consume.handle"), 4);

    shutdown.cancel();
    task.await.unwrap().unwrap();
}
