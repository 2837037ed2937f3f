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
//! Works with a local server and with hosted Postgres over TLS (rustls), verifying the server
//! (`verify-full`) by default when it is not on this machine ([`PgStore::from_settings`]).
//!
//! **Bounded in time.** Every session carries server-side limits (`statement_timeout`,
//! `lock_timeout`, `idle_in_transaction_session_timeout` from `postgres.statement_timeout_ms`),
//! and every apply a client-side deadline (`postgres.apply_timeout_secs` plus one second per
//! 500 chunks). A connection that missed the deadline is closed, never handed out again: on a
//! network that lost its packets it would wait for an answer that never comes.

mod apply;
mod bulk;
mod connect;
mod error;
mod phase5;
mod query;
mod read;
mod rows;
mod schema;

use std::time::{Duration, Instant};

use kb_core::settings::PostgresSettings;
use kb_core::Secret;
use kb_store::{
    Applied, Change, MirrorStore, SourceSummary, StoreCounts, StoreError, StoreErrorExt as _,
};
use sqlx::postgres::PgPoolOptions;

pub use phase5::Phase5Report;
pub use query::{SESSION_EF_SEARCH, TS_CONFIG};

/// How long to wait for a pooled connection before reporting a transient error.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(15);

/// How long [`MirrorStore::probe`] waits for `SELECT 1`.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The Postgres mirror; cheap to clone (shares the pool).
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: sqlx::PgPool,
    dimensions: usize,
    /// Base deadline of one apply (`postgres.apply_timeout_secs`).
    apply_timeout: Duration,
    /// How many chunks hold the lexemes keyword search saw lately (shared by clones).
    term_stats: std::sync::Arc<query::TermStats>,
}

/// How long a connection handed back to the pool may take to answer its check. sqlx pings
/// every connection it takes back, with no time limit: on a network that lost its packets the
/// ping, and the pool slot with it, would wait until the kernel gives up (many minutes).
const RELEASE_CHECK: Duration = Duration::from_secs(5);

fn pool_options(max_connections: u32, acquire_timeout: Duration) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections.max(1))
        .acquire_timeout(acquire_timeout)
        .after_release(|conn, _| {
            Box::pin(async move {
                match tokio::time::timeout(RELEASE_CHECK, sqlx::Connection::ping(conn)).await {
                    Ok(answered) => answered.map(|()| true),
                    // An error closes the connection without waiting on it.
                    Err(_) => Err(sqlx::Error::Io(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "a connection handed back did not answer its check",
                    ))),
                }
            })
        })
}

/// `url` with every other `[postgres]` setting at its default.
fn default_settings(url: &str, max_connections: u32) -> PostgresSettings {
    PostgresSettings {
        url: Secret::new(url),
        max_connections,
        ..PostgresSettings::default()
    }
}

impl PgStore {
    /// Connects to `url` (a libpq-style URL) with the other `[postgres]` settings at their
    /// defaults; see [`PgStore::from_settings`].
    pub async fn connect(
        url: &str,
        dimensions: usize,
        max_connections: u32,
    ) -> Result<Self, StoreError> {
        Self::from_settings(&default_settings(url, max_connections), dimensions).await
    }

    /// Connects as `[postgres]` says (URL, pool size, TLS, time limits) and checks that a store
    /// prepared earlier uses the same embedding dimension.
    ///
    /// TLS: the URL's `sslmode`, else `postgres.ssl_mode`, else `verify-full` for a host that is
    /// not this machine (see the crate docs); `postgres.ssl_root_cert` is the CA.
    ///
    /// Errors: `Config` for a bad URL, bad credentials, TLS that cannot be verified, a missing
    /// database or a dimension mismatch; `Transient` when the server cannot be reached.
    pub async fn from_settings(
        settings: &PostgresSettings,
        dimensions: usize,
    ) -> Result<Self, StoreError> {
        let options = connect::connect_options(settings)?;
        let pool = pool_options(settings.max_connections, ACQUIRE_TIMEOUT)
            .connect_with(options.clone())
            .await
            .map_err(|e| connect::connect_error(&options, e))?;
        schema::check_dimension(&pool, dimensions).await?;
        Ok(Self {
            pool,
            dimensions,
            apply_timeout: Duration::from_secs(settings.apply_timeout_secs.max(1)),
            term_stats: Default::default(),
        })
    }

    /// A store that connects on first use, for readers that must start (and answer from
    /// elsewhere) while Postgres is away; `acquire_timeout` bounds each wait for a connection.
    /// The dimension is checked by [`PgStore::check`]. TLS and time limits as in
    /// [`PgStore::connect`].
    pub fn connect_lazy(
        url: &str,
        dimensions: usize,
        max_connections: u32,
        acquire_timeout: Duration,
    ) -> Result<Self, StoreError> {
        Self::lazy_from_settings(
            &default_settings(url, max_connections),
            dimensions,
            acquire_timeout,
        )
    }

    /// [`PgStore::connect_lazy`] as `[postgres]` says (URL, pool size, TLS, time limits).
    pub fn lazy_from_settings(
        settings: &PostgresSettings,
        dimensions: usize,
        acquire_timeout: Duration,
    ) -> Result<Self, StoreError> {
        let options = connect::connect_options(settings)?;
        let pool =
            pool_options(settings.max_connections, acquire_timeout).connect_lazy_with(options);
        Ok(Self {
            pool,
            dimensions,
            apply_timeout: Duration::from_secs(settings.apply_timeout_secs.max(1)),
            term_stats: Default::default(),
        })
    }

    /// Replaces the base apply deadline (`postgres.apply_timeout_secs`).
    pub fn with_apply_timeout(mut self, timeout: Duration) -> Self {
        self.apply_timeout = timeout;
        self
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

    /// One transaction on one connection, within [`MirrorStore::apply_deadline`]. When the
    /// deadline passes, the connection is closed instead of going back to the pool (the pool
    /// would test it with a ping that, on a dead network, never returns); the server ends the
    /// abandoned transaction by itself (`idle_in_transaction_session_timeout`).
    async fn apply(&self, change: Change<'_>) -> Result<Applied, StoreError> {
        let limit = self.apply_deadline(&change);
        let started = Instant::now();
        let what = || match change.source() {
            Some(s) => format!("source {} v{}", s.source_id, s.version),
            None => "a document without a source".to_string(),
        };
        let timed_out = |step: &str| {
            StoreError::timeout(format!(
                "postgres: apply of {} did not finish within {limit:?} ({step})",
                what()
            ))
        };
        let mut conn = match tokio::time::timeout(limit, self.pool.acquire()).await {
            Ok(conn) => {
                conn.map_err(|e| error::store_error(format!("{}: connecting", what()), e))?
            }
            Err(_) => return Err(timed_out("waiting for a connection")),
        };
        let left = limit.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, apply::apply(&mut conn, self.dimensions, change)).await {
            Ok(result) => result,
            Err(_) => {
                conn.close_on_drop();
                Err(timed_out("the connection is closed"))
            }
        }
    }

    fn apply_deadline(&self, change: &Change<'_>) -> Duration {
        kb_store::scaled_deadline(self.apply_timeout, change)
    }

    /// `SELECT 1` within 2 s on a pooled connection (closed if it does not answer).
    async fn probe(&self) -> Result<(), StoreError> {
        let timed_out =
            || StoreError::timeout(format!("postgres: no answer within {PROBE_TIMEOUT:?}"));
        let started = Instant::now();
        let mut conn = match tokio::time::timeout(PROBE_TIMEOUT, self.pool.acquire()).await {
            Ok(conn) => conn.map_err(|e| error::store_error("probe: connecting", e))?,
            Err(_) => return Err(timed_out()),
        };
        let left = PROBE_TIMEOUT.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, sqlx::query("SELECT 1").execute(&mut *conn)).await {
            Ok(done) => done
                .map(drop)
                .map_err(|e| error::store_error("probe: SELECT 1", e)),
            Err(_) => {
                conn.close_on_drop();
                Err(timed_out())
            }
        }
    }

    async fn purge_tombstones(&self, deleted_before_unix_ms: i64) -> Result<u64, StoreError> {
        sqlx::query("DELETE FROM tombstones WHERE deleted_at < to_timestamp($1::float8 / 1000)")
            .bind(deleted_before_unix_ms as f64)
            .execute(&self.pool)
            .await
            .map(|done| done.rows_affected())
            .map_err(|e| error::store_error("purge tombstones", e))
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
