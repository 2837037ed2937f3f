//! A store for the engine's unit tests: answers every read trait from nothing, and records
//! what it was asked, so a test can say which store answered which step.

use std::sync::Mutex;

use kb_store::read::{
    ChunkFilter, ChunkHit, Document, DocumentStore, EntityIndex, EntityRef, EntityStats, Neighbour,
    SourceInfo, TextIndex, TextScan,
};
use kb_store::StoreError;

#[derive(Default)]
pub(crate) struct FakeStore {
    calls: Mutex<Vec<String>>,
}

impl FakeStore {
    /// What was asked, in order: `resolve`, `neighbours`, `mentioning k=N`, `nearest k=N`...
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn record(&self, call: String) {
        self.calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(call);
    }
}

/// `k` distinct chunks, best first.
fn hits(prefix: &str, k: usize) -> Vec<ChunkHit> {
    (0..k)
        .map(|i| ChunkHit {
            chunk_id: format!("{prefix}-{i}"),
            text: format!("chunk {i}"),
            source: SourceInfo {
                source_id: "s".into(),
                ..SourceInfo::default()
            },
            score: 1.0 / (i as f64 + 1.0),
            ..ChunkHit::default()
        })
        .collect()
}

#[async_trait::async_trait]
impl TextIndex for FakeStore {
    async fn nearest(
        &self,
        _: &[f32],
        _: &ChunkFilter,
        k: usize,
    ) -> Result<Vec<ChunkHit>, StoreError> {
        self.record(format!("nearest k={k}"));
        Ok(hits("v", k))
    }

    async fn keyword(
        &self,
        _: &str,
        _: &ChunkFilter,
        k: usize,
    ) -> Result<Vec<ChunkHit>, StoreError> {
        self.record(format!("keyword k={k}"));
        Ok(hits("w", k))
    }
}

#[async_trait::async_trait]
impl EntityIndex for FakeStore {
    /// One entity per name, each in 5 of 1,000 chunks.
    async fn resolve(&self, names: &[String], _: bool) -> Result<Vec<EntityStats>, StoreError> {
        self.record("resolve".into());
        Ok(names
            .iter()
            .map(|n| EntityStats {
                entity: EntityRef {
                    entity_id: format!("e:{n}"),
                    name: n.clone(),
                    canonical_name: n.clone(),
                    entity_type: "concept".into(),
                },
                chunks: 5,
                sources: None,
                total_chunks: 1000,
            })
            .collect())
    }

    async fn neighbours(&self, _: &[String], _: usize) -> Result<Vec<Neighbour>, StoreError> {
        self.record("neighbours".into());
        Ok(Vec::new())
    }

    async fn mentioning(
        &self,
        _: &[(String, f64)],
        _: &ChunkFilter,
        k: usize,
    ) -> Result<Vec<ChunkHit>, StoreError> {
        self.record(format!("mentioning k={k}"));
        Ok(hits("g", k))
    }
}

#[async_trait::async_trait]
impl DocumentStore for FakeStore {
    async fn document(&self, _: &str) -> Result<Option<Document>, StoreError> {
        self.record("document".into());
        Ok(None)
    }
}

#[async_trait::async_trait]
impl TextScan for FakeStore {
    async fn scan(
        &self,
        _: &[String],
        _: &ChunkFilter,
        k: usize,
    ) -> Result<Vec<ChunkHit>, StoreError> {
        self.record(format!("scan k={k}"));
        Ok(hits("t", k))
    }
}
