//! The Postgres + pgvector mirror store.
//!
//! Holds the seed plan's tables (`sources`, `chunks` with `text`, `importance_score` and
//! `embedding vector(N)`, `entities`, `chunk_mentions`) plus per-source `entity_relations` and
//! `tombstones`, and implements [`kb_store::MirrorStore`]: one transaction per document,
//! last-writer-wins on the source version (tombstones included), batched `UNNEST` inserts,
//! orphaned entities removed with the last source that referenced them. Also the read side
//! ([`kb_store::read`]: cosine search over the HNSW index, full-text search, entities, whole
//! documents, all filtered alike) and the seed's Phase 5 verification SQL, run verbatim. Bulk
//! mode fills an empty store without the HNSW index and builds it once at the end.
//!
//! Works with a local server and with hosted Postgres (`sslmode=require`, rustls).

mod apply;
mod bulk;
mod error;
mod phase5;
mod query;
mod read;
mod rows;
mod schema;

use std::str::FromStr;
use std::time::Duration;

use kb_store::{Applied, Change, MirrorStore, SourceSummary, StoreCounts, StoreError};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

pub use phase5::Phase5Report;
pub use query::TS_CONFIG;

/// How long to wait for a pooled connection before reporting a transient error.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(15);

/// The Postgres mirror; cheap to clone (shares the pool).
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: sqlx::PgPool,
    dimensions: usize,
}

impl PgStore {
    /// Connects to `url` (a libpq-style URL; `sslmode=require` for hosted servers) and checks
    /// that a store prepared earlier uses the same embedding dimension.
    ///
    /// Errors: `Config` for a bad URL, bad credentials, a missing database or a dimension
    /// mismatch; `Transient` when the server cannot be reached.
    pub async fn connect(
        url: &str,
        dimensions: usize,
        max_connections: u32,
    ) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| error::store_error("parsing the Postgres URL", e))?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|e| error::store_error("connecting to Postgres", e))?;
        schema::check_dimension(&pool, dimensions).await?;
        Ok(Self { pool, dimensions })
    }

    /// A store that connects on first use, for readers that must start (and answer from
    /// elsewhere) while Postgres is away; `acquire_timeout` bounds each wait for a connection.
    /// The dimension is checked by [`PgStore::check`].
    pub fn connect_lazy(
        url: &str,
        dimensions: usize,
        max_connections: u32,
        acquire_timeout: Duration,
    ) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| error::store_error("parsing the Postgres URL", e))?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(acquire_timeout)
            .connect_lazy_with(options);
        Ok(Self { pool, dimensions })
    }

    /// Whether the migrations the read side needs have run (a reader does not run them: the
    /// writer owns the schema).
    pub async fn has_read_schema(&self) -> Result<bool, StoreError> {
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('chunks')
                 AND attname = 'text_search' AND NOT attisdropped)",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(|e| error::store_error("looking for the read schema", e))
    }

    /// Reaches the server and checks the store's embedding dimension.
    pub async fn check(&self) -> Result<(), StoreError> {
        schema::check_dimension(&self.pool, self.dimensions).await
    }

    /// Runs the seed plan's Phase 5 queries (Steps 5.1 and 5.2) unchanged.
    pub async fn phase5(&self) -> Result<Phase5Report, StoreError> {
        phase5::phase5(&self.pool).await
    }

    pub fn pool(&self) -> &sqlx::PgPool {
        &self.pool
    }

    /// The embedding dimension this store was opened with.
    pub fn dimensions(&self) -> usize {
        self.dimensions
    }

    /// True when the store holds no source and no tombstone.
    pub async fn is_empty(&self) -> Result<bool, StoreError> {
        bulk::is_empty(&self.pool).await
    }

    /// Whether the HNSW index `chunks_embedding_hnsw_idx` exists (it is absent in bulk mode).
    pub async fn has_vector_index(&self) -> Result<bool, StoreError> {
        bulk::has_vector_index(&self.pool).await
    }
}

#[async_trait::async_trait]
impl MirrorStore for PgStore {
    fn name(&self) -> &'static str {
        "postgres"
    }

    /// Runs the migrations, fixes `chunks.embedding` to `vector(N)` and creates the HNSW index;
    /// safe to run from several processes at once.
    async fn prepare(&self) -> Result<(), StoreError> {
        schema::prepare(&self.pool, self.dimensions).await
    }

    async fn apply(&self, change: Change<'_>) -> Result<Applied, StoreError> {
        apply::apply(&self.pool, self.dimensions, change).await
    }

    async fn summaries(&self) -> Result<Vec<SourceSummary>, StoreError> {
        read::summaries(&self.pool).await
    }

    async fn counts(&self) -> Result<StoreCounts, StoreError> {
        read::counts(&self.pool).await
    }

    /// On an empty store, drops the HNSW index until [`MirrorStore::end_bulk`] builds it.
    async fn begin_bulk(&self) -> Result<bool, StoreError> {
        bulk::begin(&self.pool).await
    }

    async fn end_bulk(&self) -> Result<(), StoreError> {
        bulk::end(&self.pool, self.dimensions).await
    }
}
