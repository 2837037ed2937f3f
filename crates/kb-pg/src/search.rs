//! Nearest-chunk search by cosine distance over the HNSW index.

use kb_store::StoreError;
use pgvector::Vector;
use serde::Serialize;
use sqlx::PgPool;

use crate::error::store_error;

/// One search result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchHit {
    pub source_id: String,
    pub path: String,
    pub chunk_id: String,
    pub chunk_index: u32,
    pub text: String,
    pub importance_score: f32,
    /// Cosine similarity: 1 - cosine distance.
    pub score: f32,
}

type HitRow = (String, String, String, i32, String, f32, f64);

pub(crate) async fn search(
    pool: &PgPool,
    dimensions: usize,
    query: &[f32],
    k: usize,
) -> Result<Vec<SearchHit>, StoreError> {
    if query.len() != dimensions {
        return Err(StoreError::permanent(format!(
            "the query vector has {} dimensions, the store {dimensions}",
            query.len()
        )));
    }
    if k == 0 {
        return Ok(Vec::new());
    }
    let mut tx = pool
        .begin()
        .await
        .map_err(|e| store_error("search: begin", e))?;
    // HNSW returns at most ef_search candidates (default 40): widen it for larger k.
    let ef_search = k.clamp(40, 1000);
    sqlx::query("SELECT set_config('hnsw.ef_search', $1, true)")
        .bind(ef_search.to_string())
        .execute(&mut *tx)
        .await
        .map_err(|e| store_error("search: setting hnsw.ef_search", e))?;
    let rows: Vec<HitRow> = sqlx::query_as(
        "SELECT c.source_id, s.path, c.chunk_id, c.chunk_index, c.text,
                COALESCE(c.importance_score, 0), c.embedding <=> $1 AS distance
         FROM chunks c JOIN sources s ON s.source_id = c.source_id
         WHERE c.embedding IS NOT NULL
         ORDER BY c.embedding <=> $1
         LIMIT $2",
    )
    .bind(Vector::from(query.to_vec()))
    .bind(i64::try_from(k).unwrap_or(i64::MAX))
    .fetch_all(&mut *tx)
    .await
    .map_err(|e| store_error("search: querying chunks", e))?;
    tx.rollback()
        .await
        .map_err(|e| store_error("search: ending the transaction", e))?;
    Ok(rows
        .into_iter()
        .map(
            |(source_id, path, chunk_id, index, text, importance_score, distance)| SearchHit {
                source_id,
                path,
                chunk_id,
                chunk_index: u32::try_from(index).unwrap_or(0),
                text,
                importance_score,
                score: (1.0 - distance) as f32,
            },
        )
        .collect())
}
