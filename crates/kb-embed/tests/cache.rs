//! The cache in front of a provider: the same text is never paid for twice.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use kb_embed::fake::{fake_vector, FakeConfig, FakeFlavor, FakeProvider};
use kb_embed::{
    CachedEmbedder, DispatchConfig, Dispatcher, Embedder, MemoryCache, RemoteConfig,
    RemoteEmbedder, RemoteKind, VectorCache,
};

const DIMS: usize = 12;

async fn setup(cache: Arc<dyn VectorCache>) -> (FakeProvider, CachedEmbedder) {
    let server = FakeProvider::start(FakeConfig::new(FakeFlavor::Ollama, DIMS))
        .await
        .unwrap();
    let mut cfg = RemoteConfig::new(RemoteKind::Ollama, "fake", DIMS);
    cfg.base_url = server.base_url();
    let remote: Arc<dyn Embedder> = Arc::new(RemoteEmbedder::new(cfg).unwrap());
    let d: Arc<dyn Embedder> = Arc::new(Dispatcher::new(remote, DispatchConfig::default()));
    (server, CachedEmbedder::new(d, cache))
}

fn paragraphs(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("paragraph {i} of a long document"))
        .collect()
}

#[tokio::test]
async fn reingest_and_one_edited_paragraph_pay_only_for_new_text() {
    let (server, cached) = setup(Arc::new(MemoryCache::default())).await;
    let doc = paragraphs(20);
    let first = cached.embed(&doc).await.unwrap();
    for (t, v) in doc.iter().zip(&first) {
        assert_eq!(v, &fake_vector(t, DIMS));
    }
    assert_eq!(server.embedded_inputs().len(), 20);

    // Re-ingest (or replay): nothing sent.
    assert_eq!(cached.embed(&doc).await.unwrap(), first);
    assert_eq!(server.embedded_inputs().len(), 20);

    // One paragraph edited: one input sent, and the vectors still line up.
    let mut edited = doc.clone();
    edited[7] = "paragraph 7, rewritten".into();
    let again = cached.embed(&edited).await.unwrap();
    assert_eq!(server.embedded_inputs().len(), 21);
    assert_eq!(server.embedded_inputs()[20], edited[7]);
    assert_eq!(again[7], fake_vector(&edited[7], DIMS));
    assert_eq!(again[8], first[8]);

    let c = cached.counters();
    assert_eq!((c.hits(), c.misses()), (20 + 19, 21));
    assert_eq!(c.take_unflushed(), (39, 21));
    assert_eq!(c.take_unflushed(), (0, 0));
}

#[tokio::test]
async fn repeated_text_in_one_document_is_embedded_once() {
    let (server, cached) = setup(Arc::new(MemoryCache::default())).await;
    let texts = vec!["same".to_string(), "other".into(), "same".into()];
    let v = cached.embed(&texts).await.unwrap();
    assert_eq!(v[0], v[2]);
    assert_eq!(
        server.embedded_inputs(),
        vec!["same".to_string(), "other".into()]
    );
}

/// A cache whose store is down: lookups miss, writes vanish.
struct Broken;

#[async_trait::async_trait]
impl VectorCache for Broken {
    async fn get_many(&self, keys: &[String]) -> Vec<Option<Vec<f32>>> {
        vec![None; keys.len()]
    }
    async fn put_many(&self, _: Vec<(String, Vec<f32>)>) {}
}

#[tokio::test]
async fn a_cache_outage_costs_requests_not_correctness() {
    let (server, cached) = setup(Arc::new(Broken)).await;
    let doc = paragraphs(3);
    let a = cached.embed(&doc).await.unwrap();
    let b = cached.embed(&doc).await.unwrap();
    assert_eq!(a, b);
    assert_eq!(server.embedded_inputs().len(), 6);
}
