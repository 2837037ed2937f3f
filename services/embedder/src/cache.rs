//! The shared embedding cache and its hit/miss totals, both in JetStream KV so that every
//! embedder process (and `kb status`) sees the same ones.
//!
//! - `kb_embed_cache`: key = [`kb_embed::cache_key`] (model, dimensions, SHA-256 of the text),
//!   value = the vector as little-endian `f32`s. History 1; capped in bytes
//!   (`embedder.cache_max_bytes`, 1 GiB by default), the oldest entries going first.
//! - `kb_embed_stats`: key `totals` = `{"hits":N,"misses":N}`, summed by every process with
//!   compare-and-set on the entry's revision.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::stream::DiscardPolicy;
use async_nats::jetstream::{self, kv};
use futures::{StreamExt, TryStreamExt};
use kb_embed::{decode_vector, encode_vector, CacheCounters, VectorCache};
use kb_stream::topology::{bucket_config, upsert_bucket};
use kb_stream::{StreamError, StreamErrorKind};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

pub const CACHE_BUCKET: &str = "kb_embed_cache";
pub const STATS_BUCKET: &str = "kb_embed_stats";
const TOTALS_KEY: &str = "totals";
/// KV requests in flight per lookup or store batch.
const PARALLEL: usize = 32;

/// The cache bucket, as a [`VectorCache`].
#[derive(Clone)]
pub struct KvCache {
    kv: kv::Store,
}

impl KvCache {
    /// Creates the bucket if needed (or updates its size cap). A capped cache drops its
    /// oldest entries to make room (discard old): the KV client creates every bucket with
    /// discard new, which would refuse the newest vectors instead.
    pub async fn open(js: &jetstream::Context, max_bytes: i64) -> Result<Self, StreamError> {
        let cfg = kv::Config {
            max_bytes: if max_bytes > 0 { max_bytes } else { -1 },
            ..bucket_config(
                CACHE_BUCKET,
                "embeddings by (model, dimensions, sha256 of text)",
            )
        };
        let kv = upsert_bucket(js, cfg).await?;
        discard_oldest(js).await?;
        Ok(Self { kv })
    }
}

#[async_trait::async_trait]
impl VectorCache for KvCache {
    async fn get_many(&self, keys: &[String]) -> Vec<Option<Vec<f32>>> {
        futures::stream::iter(keys.iter().cloned())
            .map(|k| {
                let kv = self.kv.clone();
                async move {
                    match kv.get(k).await {
                        Ok(Some(bytes)) if bytes.len() % 4 == 0 => {
                            decode_vector(&bytes, bytes.len() / 4)
                        }
                        Ok(_) => None,
                        Err(e) => {
                            // A cache outage costs money, not correctness: embed instead.
                            tracing::warn!(error = %e, "embedding cache lookup failed");
                            None
                        }
                    }
                }
            })
            .buffered(PARALLEL)
            .collect()
            .await
    }

    async fn put_many(&self, entries: Vec<(String, Vec<f32>)>) {
        let failures = futures::stream::iter(entries)
            .map(|(k, v)| {
                let kv = self.kv.clone();
                async move { kv.put(k, encode_vector(&v).into()).await }
            })
            .buffer_unordered(PARALLEL)
            .filter(|r| futures::future::ready(r.is_err()))
            .count()
            .await;
        if failures > 0 {
            tracing::warn!(failures, "cannot store some embeddings in the cache");
        }
    }
}

/// Makes the cache bucket's stream drop its oldest entries when full.
async fn discard_oldest(js: &jetstream::Context) -> Result<(), StreamError> {
    let name = format!("KV_{CACHE_BUCKET}");
    let mut stream = js
        .get_stream(&name)
        .await
        .map_err(|e| StreamError::transient("cannot open the cache bucket's stream", e))?;
    let info = stream
        .info()
        .await
        .map_err(|e| StreamError::transient("cannot read the cache bucket's stream", e))?;
    if info.config.discard == DiscardPolicy::Old {
        return Ok(());
    }
    let config = jetstream::stream::Config {
        discard: DiscardPolicy::Old,
        ..info.config.clone()
    };
    js.update_stream(config).await.map_err(|e| {
        StreamError::with(
            StreamErrorKind::Config,
            "cannot make the embedding cache drop its oldest entries",
            e,
        )
    })?;
    Ok(())
}

/// Cache hits and misses summed over every embedder process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheTotals {
    pub hits: u64,
    pub misses: u64,
}

impl CacheTotals {
    /// Share of chunks served from the cache; none before the first chunk.
    pub fn hit_rate(&self) -> Option<f64> {
        let all = self.hits + self.misses;
        (all > 0).then(|| self.hits as f64 / all as f64)
    }
}

/// What `kb status` shows about the cache.
#[derive(Debug, Clone, Serialize)]
pub struct CacheStatus {
    pub hits: u64,
    pub misses: u64,
    pub hit_rate: Option<f64>,
    /// Vectors stored, and their bytes on the broker.
    pub entries: u64,
    pub bytes: u64,
}

async fn stats_bucket(js: &jetstream::Context) -> Result<kv::Store, StreamError> {
    let description = "embedding cache hits and misses, summed over all embedders";
    upsert_bucket(js, bucket_config(STATS_BUCKET, description)).await
}

/// Adds to the shared totals (compare-and-set; concurrent embedders retry).
pub async fn add_totals(stats: &kv::Store, hits: u64, misses: u64) -> Result<(), StreamError> {
    for _ in 0..32 {
        let current = stats
            .entry(TOTALS_KEY)
            .await
            .map_err(|e| StreamError::transient("cannot read cache totals", e))?;
        let (mut totals, revision) = match current {
            Some(e) if e.operation == kv::Operation::Put => (
                serde_json::from_slice::<CacheTotals>(&e.value).unwrap_or_default(),
                Some(e.revision),
            ),
            Some(e) => (CacheTotals::default(), Some(e.revision)),
            None => (CacheTotals::default(), None),
        };
        totals.hits += hits;
        totals.misses += misses;
        let value = serde_json::to_vec(&totals)
            .map_err(|e| StreamError::new(StreamErrorKind::Decode, e.to_string()))?;
        let written = match revision {
            Some(rev) => stats.update(TOTALS_KEY, value.into(), rev).await.is_ok(),
            None => stats.create(TOTALS_KEY, value.into()).await.is_ok(),
        };
        if written {
            return Ok(());
        }
    }
    Err(StreamError::new(
        StreamErrorKind::Transient,
        "cache totals kept conflicting",
    ))
}

/// Reports this process's counts to the shared totals every `every`, and once more at
/// shutdown; runs until `shutdown` is cancelled.
pub async fn report_totals(
    js: jetstream::Context,
    counters: Arc<CacheCounters>,
    every: Duration,
    shutdown: CancellationToken,
) {
    let stats = match stats_bucket(&js).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cache hit rate will not be reported");
            return;
        }
    };
    loop {
        let stop = tokio::select! {
            _ = shutdown.cancelled() => true,
            _ = tokio::time::sleep(every) => false,
        };
        flush(&stats, &counters).await;
        if stop {
            return;
        }
    }
}

/// Sends unreported counts; puts them back if the broker refused.
pub async fn flush(stats: &kv::Store, counters: &CacheCounters) {
    let (hits, misses) = counters.take_unflushed();
    if hits + misses == 0 {
        return;
    }
    if let Err(e) = add_totals(stats, hits, misses).await {
        tracing::debug!(error = %e, "cannot report cache totals yet");
        counters.restore_unflushed(hits, misses);
    }
}

/// The cache's totals and size, or `None` when no embedder has used a cache yet.
pub async fn status(js: &jetstream::Context) -> Result<Option<CacheStatus>, StreamError> {
    let Ok(stats) = js.get_key_value(STATS_BUCKET).await else {
        return Ok(None);
    };
    let totals = match stats
        .get(TOTALS_KEY)
        .await
        .map_err(|e| StreamError::transient("cannot read cache totals", e))?
    {
        Some(v) => serde_json::from_slice::<CacheTotals>(&v).unwrap_or_default(),
        None => CacheTotals::default(),
    };
    let (entries, bytes) = match js.get_key_value(CACHE_BUCKET).await {
        Ok(cache) => match cache.status().await {
            Ok(s) => (s.info.state.messages, s.info.state.bytes),
            Err(_) => (0, 0),
        },
        Err(_) => (0, 0),
    };
    Ok(Some(CacheStatus {
        hits: totals.hits,
        misses: totals.misses,
        hit_rate: totals.hit_rate(),
        entries,
        bytes,
    }))
}

/// Every key in the cache bucket (tests and tools; reads the whole key list).
pub async fn keys(js: &jetstream::Context) -> Result<Vec<String>, StreamError> {
    let cache = js
        .get_key_value(CACHE_BUCKET)
        .await
        .map_err(|e| StreamError::transient("cannot open the cache bucket", e))?;
    cache
        .keys()
        .await
        .map_err(|e| StreamError::transient("cannot list cache keys", e))?
        .try_collect()
        .await
        .map_err(|e| StreamError::transient("cannot list cache keys", e))
}
