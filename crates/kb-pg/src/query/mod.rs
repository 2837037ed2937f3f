//! The read side of the Postgres mirror ([`kb_store::read`]): nearest chunks over the HNSW
//! index, full-text search, the entity tables, whole documents. Filters apply in every query.

mod entities;
mod filter;
mod keyword;
mod rows;

use kb_store::read::{
    ChunkFilter, ChunkHit, Document, DocumentStore, EntityIndex, EntityStats, Neighbour, TextIndex,
};
use kb_store::StoreError;
use pgvector::Vector;
use sqlx::{PgPool, Postgres, QueryBuilder};

use crate::error::store_error;
use crate::PgStore;
use rows::{ChunkRow, SourceRow, CHUNK_COLUMNS, SOURCE_COLUMNS};

pub(crate) use keyword::TermStats;
pub use keyword::TS_CONFIG;

/// `hnsw.ef_search` of every session: the default query depth (`query.depth`), so the
/// candidates of a default search come from one pass; a larger k reads on (iterative scan).
pub const SESSION_EF_SEARCH: usize = 50;

async fn nearest(
    pool: &PgPool,
    dimensions: usize,
    vector: &[f32],
    filter: &ChunkFilter,
    k: usize,
) -> Result<Vec<ChunkHit>, StoreError> {
    if vector.len() != dimensions {
        return Err(StoreError::permanent(format!(
            "the query vector has {} dimensions, the store {dimensions}",
            vector.len()
        )));
    }
    if k == 0 {
        return Ok(Vec::new());
    }
    let embedding = Vector::from(vector.to_vec());
    let mut qb = QueryBuilder::<Postgres>::new("SELECT ");
    qb.push(CHUNK_COLUMNS)
        .push(SOURCE_COLUMNS)
        .push(", (1 - (c.embedding <=> ")
        .push_bind(embedding.clone())
        .push("))::float8 AS score FROM chunks c JOIN sources s ON s.source_id = c.source_id WHERE c.embedding IS NOT NULL");
    filter::push(&mut qb, filter);
    qb.push(" ORDER BY c.embedding <=> ")
        .push_bind(embedding)
        .push(" LIMIT ")
        .push_bind(i64::try_from(k).unwrap_or(i64::MAX));
    // HNSW yields ef_search candidates at a time. Every session starts with
    // SESSION_EF_SEARCH and an iterative scan (connect.rs), which reads on until k rows pass
    // the filter: one round trip, where setting them per query took a transaction of four
    // (each waiting for the backend to be scheduled, under load).
    let rows: Vec<ChunkRow> = qb
        .build_query_as()
        .fetch_all(pool)
        .await
        .map_err(|e| store_error("vector search", e))?;
    let mut hits: Vec<ChunkHit> = rows.into_iter().map(ChunkHit::from).collect();
    // relaxed_order may return rows slightly out of order
    hits.sort_by(|a, b| b.score.total_cmp(&a.score));
    Ok(hits)
}

async fn document(pool: &PgPool, source_id: &str) -> Result<Option<Document>, StoreError> {
    let source: Option<SourceRow> = sqlx::query_as(&format!(
        "SELECT {SOURCE_COLUMNS} FROM sources s WHERE s.source_id = $1"
    ))
    .bind(source_id)
    .fetch_optional(pool)
    .await
    .map_err(|e| store_error("reading a source", e))?;
    let Some(source) = source else {
        return Ok(None);
    };
    let rows: Vec<ChunkRow> = sqlx::query_as(&format!(
        "SELECT {CHUNK_COLUMNS}{SOURCE_COLUMNS}, 0::float8 AS score
         FROM chunks c JOIN sources s ON s.source_id = c.source_id
         WHERE c.source_id = $1 ORDER BY c.chunk_index"
    ))
    .bind(source_id)
    .fetch_all(pool)
    .await
    .map_err(|e| store_error("reading a source's chunks", e))?;
    Ok(Some(Document {
        source: source.into(),
        chunks: rows.into_iter().map(ChunkHit::from).collect(),
    }))
}

#[async_trait::async_trait]
impl TextIndex for PgStore {
    async fn nearest(
        &self,
        vector: &[f32],
        filter: &ChunkFilter,
        k: usize,
    ) -> Result<Vec<ChunkHit>, StoreError> {
        nearest(&self.pool, self.dimensions, vector, filter, k).await
    }

    async fn keyword(
        &self,
        query: &str,
        filter: &ChunkFilter,
        k: usize,
    ) -> Result<Vec<ChunkHit>, StoreError> {
        keyword::keyword(&self.pool, &self.term_stats, query, filter, k).await
    }
}

#[async_trait::async_trait]
impl EntityIndex for PgStore {
    async fn resolve(
        &self,
        canonical_names: &[String],
        sources: bool,
    ) -> Result<Vec<EntityStats>, StoreError> {
        let total = keyword::chunk_total(&self.pool, &self.term_stats).await?;
        entities::resolve(&self.pool, canonical_names, sources, total).await
    }

    async fn neighbours(
        &self,
        entity_ids: &[String],
        limit: usize,
    ) -> Result<Vec<Neighbour>, StoreError> {
        entities::neighbours(&self.pool, entity_ids, limit).await
    }

    async fn mentioning(
        &self,
        weights: &[(String, f64)],
        filter: &ChunkFilter,
        k: usize,
    ) -> Result<Vec<ChunkHit>, StoreError> {
        entities::mentioning(&self.pool, weights, filter, k).await
    }
}

#[async_trait::async_trait]
impl DocumentStore for PgStore {
    async fn document(&self, source_id: &str) -> Result<Option<Document>, StoreError> {
        document(&self.pool, source_id).await
    }
}
