//! Bulk mode for filling an empty store: without the HNSW index while rows go in, the index
//! built once at the end. Keeping the index while inserting makes every chunk insert walk and
//! rewrite the on-disk graph, which measured about 50 times slower than building it after.

use kb_store::StoreError;
use sqlx::PgPool;

use crate::error::store_error;
use crate::schema::{create_vector_index, lock_schema, unlock_schema, VECTOR_INDEX};

/// True when the store holds no source and no tombstone: nothing a reader could miss.
pub(crate) async fn is_empty<'c>(conn: impl sqlx::PgExecutor<'c>) -> Result<bool, StoreError> {
    sqlx::query_scalar(
        "SELECT NOT EXISTS (SELECT 1 FROM sources) AND NOT EXISTS (SELECT 1 FROM tombstones)",
    )
    .fetch_one(conn)
    .await
    .map_err(|e| store_error("checking whether the store is empty", e))
}

pub(crate) async fn has_vector_index(pool: &PgPool) -> Result<bool, StoreError> {
    sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(VECTOR_INDEX)
        .fetch_one(pool)
        .await
        .map_err(|e| store_error("looking for the HNSW index", e))
}

/// Drops the vector index if the store is empty; returns whether bulk mode is on.
pub(crate) async fn begin(pool: &PgPool) -> Result<bool, StoreError> {
    let mut conn = lock_schema(pool, "starting bulk mode").await?;
    let result = async {
        // On the locked connection: a pool of one connection must not wait for itself.
        if !is_empty(&mut *conn).await? {
            return Ok(false);
        }
        sqlx::query(&format!("DROP INDEX IF EXISTS {VECTOR_INDEX}"))
            .execute(&mut *conn)
            .await
            .map_err(|e| store_error("dropping the HNSW index for bulk mode", e))?;
        Ok(true)
    }
    .await;
    unlock_schema(conn).await;
    result
}

/// Builds the vector index if it is missing (whoever started bulk mode, even a crashed run).
pub(crate) async fn end(pool: &PgPool, dimensions: usize) -> Result<(), StoreError> {
    let mut conn = lock_schema(pool, "ending bulk mode").await?;
    let result = create_vector_index(&mut conn, dimensions).await;
    unlock_schema(conn).await;
    result
}
