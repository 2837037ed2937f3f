//! The embedding cache: vectors keyed by (model, dimensions, SHA-256 of the text), so the same
//! text is never paid for twice, whichever document, version or replay it comes from.
//!
//! [`VectorCache`] is the store (the embedder service uses a JetStream KV bucket shared by
//! every worker; [`MemoryCache`] serves tests and single processes). [`CachedEmbedder`] puts
//! it in front of any [`Embedder`] and counts hits and misses. The cache is an optimisation:
//! a store failure is logged and treated as a miss, never as an embedding failure.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use crate::{EmbedError, Embedder};

/// A store of vectors by key; implementations swallow (and log) their own failures.
#[async_trait::async_trait]
pub trait VectorCache: Send + Sync {
    /// One answer per key, in order; `None` when absent or unreadable.
    async fn get_many(&self, keys: &[String]) -> Vec<Option<Vec<f32>>>;
    /// Stores vectors; best effort.
    async fn put_many(&self, entries: Vec<(String, Vec<f32>)>);
}

/// `<model>.<dimensions>.<sha256 of text>`; a valid NATS KV key for any model name (characters
/// outside `[A-Za-z0-9_-]` become `_`, and a digest of the exact name keeps names apart).
pub fn cache_key(model: &str, dimensions: usize, text: &str) -> String {
    let safe: String = model
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    let name_digest = Sha256::digest(model.as_bytes());
    format!(
        "{safe}-{}.{dimensions}.{}",
        hex::encode(&name_digest[..4]),
        hex::encode(Sha256::digest(text.as_bytes()))
    )
}

/// Little-endian `f32`s, 4 bytes per dimension.
pub fn encode_vector(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The inverse of [`encode_vector`]; `None` unless exactly `dimensions` finite values.
pub fn decode_vector(bytes: &[u8], dimensions: usize) -> Option<Vec<f32>> {
    if bytes.len() != dimensions * 4 {
        return None;
    }
    let v: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    v.iter().all(|x| x.is_finite()).then_some(v)
}

/// Hits and misses since start, per input text.
#[derive(Debug, Default)]
pub struct CacheCounters {
    hits: AtomicU64,
    misses: AtomicU64,
    unflushed_hits: AtomicU64,
    unflushed_misses: AtomicU64,
}

impl CacheCounters {
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }
    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }
    /// Counts not yet reported by [`CacheCounters::take_unflushed`]: the service adds them to
    /// the shared totals that `kb status` reads.
    pub fn take_unflushed(&self) -> (u64, u64) {
        (
            self.unflushed_hits.swap(0, Ordering::Relaxed),
            self.unflushed_misses.swap(0, Ordering::Relaxed),
        )
    }
    /// Puts back counts whose flush failed, to go with the next one.
    pub fn restore_unflushed(&self, hits: u64, misses: u64) {
        self.unflushed_hits.fetch_add(hits, Ordering::Relaxed);
        self.unflushed_misses.fetch_add(misses, Ordering::Relaxed);
    }
    fn record(&self, hits: u64, misses: u64) {
        self.hits.fetch_add(hits, Ordering::Relaxed);
        self.misses.fetch_add(misses, Ordering::Relaxed);
        self.restore_unflushed(hits, misses);
        metrics::counter!("kb_embed_cache_hits_total").increment(hits);
        metrics::counter!("kb_embed_cache_misses_total").increment(misses);
    }
}

/// An [`Embedder`] that asks the cache first and embeds only what it lacks.
pub struct CachedEmbedder {
    inner: Arc<dyn Embedder>,
    cache: Arc<dyn VectorCache>,
    counters: Arc<CacheCounters>,
}

impl CachedEmbedder {
    pub fn new(inner: Arc<dyn Embedder>, cache: Arc<dyn VectorCache>) -> Self {
        Self {
            inner,
            cache,
            counters: Arc::default(),
        }
    }

    pub fn counters(&self) -> Arc<CacheCounters> {
        Arc::clone(&self.counters)
    }
}

#[async_trait::async_trait]
impl Embedder for CachedEmbedder {
    fn model(&self) -> &str {
        self.inner.model()
    }

    fn dimensions(&self) -> usize {
        self.inner.dimensions()
    }

    fn max_batch(&self) -> usize {
        self.inner.max_batch()
    }

    fn max_request_tokens(&self) -> Option<usize> {
        self.inner.max_request_tokens()
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let dims = self.inner.dimensions();
        let keys: Vec<String> = texts
            .iter()
            .map(|t| cache_key(self.inner.model(), dims, t))
            .collect();
        // The same text twice in one call (boilerplate paragraphs) is looked up and paid once.
        let mut unique: Vec<usize> = Vec::new();
        let mut first_of: HashMap<&str, usize> = HashMap::new();
        for (i, k) in keys.iter().enumerate() {
            first_of.entry(k.as_str()).or_insert_with(|| {
                unique.push(i);
                i
            });
        }
        let unique_keys: Vec<String> = unique.iter().map(|&i| keys[i].clone()).collect();
        let found = self.cache.get_many(&unique_keys).await;
        let mut vectors: HashMap<&str, Vec<f32>> = HashMap::new();
        let mut missing: Vec<usize> = Vec::new();
        for (&i, hit) in unique.iter().zip(found) {
            match hit.filter(|v| v.len() == dims) {
                Some(v) => {
                    vectors.insert(keys[i].as_str(), v);
                }
                None => missing.push(i),
            }
        }
        let misses = missing.len() as u64;
        self.counters.record(texts.len() as u64 - misses, misses);
        // One call per text, all queued at once: the layer below still packs them into full
        // requests, and each vector is stored as soon as its request is back, so a worker
        // that dies mid-document leaves everything it was answered in the cache.
        let key_list = &keys;
        let fresh = futures::future::join_all(missing.iter().map(|&i| async move {
            let one = std::slice::from_ref(&texts[i]);
            let v =
                self.inner.embed(one).await?.pop().ok_or_else(|| {
                    EmbedError::permanent("provider returned no vector for an input")
                })?;
            self.cache
                .put_many(vec![(key_list[i].clone(), v.clone())])
                .await;
            Ok::<_, EmbedError>((i, v))
        }))
        .await;
        let mut failure: Option<EmbedError> = None;
        for r in fresh {
            match r {
                Ok((i, v)) => {
                    vectors.insert(keys[i].as_str(), v);
                }
                // A permanent error outranks a transient one: retrying the call cannot help.
                Err(e) => {
                    if failure
                        .as_ref()
                        .is_none_or(|f| f.is_transient() && !e.is_transient())
                    {
                        failure = Some(e);
                    }
                }
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
        keys.iter()
            .map(|k| {
                vectors.get(k.as_str()).cloned().ok_or_else(|| {
                    EmbedError::permanent("embedding cache lost a vector it just stored")
                })
            })
            .collect()
    }
}

/// A process-local [`VectorCache`]; unbounded, or keeping the newest `capacity` entries.
#[derive(Debug, Default)]
pub struct MemoryCache {
    entries: Mutex<HashMap<String, Vec<u8>>>,
    /// Insertion order, kept only when bounded.
    order: Mutex<std::collections::VecDeque<String>>,
    capacity: Option<usize>,
}

impl MemoryCache {
    /// A cache that forgets its oldest entry past `capacity` (a long-running reader's cache
    /// of query vectors must not grow without end).
    pub fn bounded(capacity: usize) -> Self {
        Self {
            capacity: Some(capacity.max(1)),
            ..Self::default()
        }
    }

    pub fn len(&self) -> usize {
        self.entries.lock().map(|e| e.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait::async_trait]
impl VectorCache for MemoryCache {
    async fn get_many(&self, keys: &[String]) -> Vec<Option<Vec<f32>>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        keys.iter()
            .map(|k| entries.get(k).and_then(|b| decode_vector(b, b.len() / 4)))
            .collect()
    }

    async fn put_many(&self, new: Vec<(String, Vec<f32>)>) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let mut order = self.order.lock().unwrap_or_else(|p| p.into_inner());
        for (k, v) in new {
            let fresh = entries.insert(k.clone(), encode_vector(&v)).is_none();
            if let (Some(cap), true) = (self.capacity, fresh) {
                order.push_back(k);
                while order.len() > cap {
                    if let Some(old) = order.pop_front() {
                        entries.remove(&old);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keys_separate_model_dimensions_and_text_and_are_kv_safe() {
        let a = cache_key("mistral-embed", 1024, "hello");
        assert_eq!(a, cache_key("mistral-embed", 1024, "hello"));
        assert_ne!(a, cache_key("mistral-embed", 1024, "hello!"));
        assert_ne!(a, cache_key("mistral-embed", 512, "hello"));
        assert_ne!(a, cache_key("other", 1024, "hello"));
        // Same sanitized form, different names: still different keys.
        let colon = cache_key("nomic-embed-text:latest", 768, "x");
        assert_ne!(colon, cache_key("nomic-embed-text_latest", 768, "x"));
        assert!(colon
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)));
        assert!(a.ends_with(&hex::encode(Sha256::digest(b"hello"))));
    }

    #[tokio::test]
    async fn a_bounded_memory_cache_forgets_the_oldest() {
        let cache = MemoryCache::bounded(2);
        for k in ["a", "b", "a", "c"] {
            cache.put_many(vec![(k.to_owned(), vec![1.0])]).await;
        }
        let got = cache.get_many(&["a".into(), "b".into(), "c".into()]).await;
        assert_eq!(got, [None, Some(vec![1.0]), Some(vec![1.0])]);
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn vectors_round_trip_as_little_endian_f32() {
        let v = vec![1.0f32, -0.5, 3.25e-3];
        let bytes = encode_vector(&v);
        assert_eq!(&bytes[..4], &1.0f32.to_le_bytes());
        assert_eq!(decode_vector(&bytes, 3), Some(v));
        assert_eq!(decode_vector(&bytes, 4), None);
        assert_eq!(decode_vector(&encode_vector(&[f32::NAN]), 1), None);
    }
}
