//! The knowledge-graph store: mirrors every document into a Neo4j-compatible graph over Bolt.
//!
//! The same Cypher runs on Neo4j 5 (production) and on ArcadeDB's Bolt server (local runs and
//! tests). The model:
//!
//! ```text
//! (:Source {source_id, version, origin, path, title, content_hash, media_type,
//!           modified_unix_ms, size, parser, status, error, updated_at})
//!   -[:HAS_CHUNK]->(:Chunk {chunk_id, source_id, index, text, importance_score, token_count,
//!                           start_offset, end_offset, start_seconds, end_seconds, speakers, section})
//!   -[:MENTIONS {count}]->(:Entity {entity_id, name, canonical_name, entity_type})
//! (:Chunk)-[:NEXT]->(:Chunk)                      consecutive chunks of one source
//! (:Entity)-[:CO_OCCURS|DISCUSSES|BELONGS_TO|MENTIONED_WITH|RELATED_TO {source_id, weight}]->(:Entity)
//! (:Tombstone {source_id, version, deleted_at})   a deleted source's last version
//! ```
//!
//! - Relationship types come from a fixed vocabulary ([`RelationType`]); anything else is
//!   stored as `RELATED_TO`. Every value is a query parameter, so documents cannot inject Cypher.
//! - Each change is one transaction, last-writer-wins on the source version: a change whose
//!   version is not newer than the stored Source or Tombstone is [`Applied::Stale`]. Tombstones
//!   make a delete win over an older upsert that arrives later.
//! - Entities are shared across sources and removed once nothing references them.
//! - `updated_at`, `deleted_at` and `modified_unix_ms` are Unix milliseconds (integers behave
//!   the same on every Bolt server). `start_seconds`/`end_seconds` are absent when unknown.
//! - **Embeddings are not stored in the graph**: vectors live in Postgres (pgvector). For the
//!   same reason [`StoreCounts::chunks_with_embeddings`] equals the chunk count here.
//!
//! ```no_run
//! # async fn demo() -> Result<(), kb_store::StoreError> {
//! use kb_graph::{GraphConfig, GraphStore};
//! use kb_store::MirrorStore;
//! let store = GraphStore::connect(&GraphConfig::new("bolt://127.0.0.1:7687", "neo4j", "secret")).await?;
//! store.prepare().await?;
//! # Ok(()) }
//! ```
//!
//! **Bounded in time.** Every apply has a deadline (`neo4j.apply_timeout_secs` plus one second
//! per 500 chunks, [`MirrorStore::apply_deadline`]). When any deadline of the store passes, the
//! Bolt pool is replaced by a new one: neo4rs recycles a pooled connection with a RESET that
//! has no timeout, so a connection whose packets are lost would hang every operation that
//! draws it again.

mod bolt;
mod config;
mod cypher;
mod error;
mod query;
mod read;
mod rows;
mod vocab;
mod write;

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use kb_core::settings::Neo4jSettings;
use kb_store::{
    Applied, Change, MirrorStore, SourceSummary, StoreCounts, StoreError, StoreErrorExt as _,
};
use neo4rs::{ConfigBuilder, Graph};

pub use config::GraphConfig;
pub use vocab::RelationType;

use bolt::Tx;

/// How long one operation other than an apply (a summary scan, creating the schema) may take
/// before it counts as a transient failure; applies have [`MirrorStore::apply_deadline`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long [`MirrorStore::probe`] waits for `RETURN 1`.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Write conflicts (deadlocks, ArcadeDB's optimistic-concurrency failures) are retried this
/// many times inside the store before being returned as transient.
const CONFLICT_RETRIES: u32 = 8;

/// The graph mirror over a pool of Bolt connections; cheap to clone (clones share the pool).
#[derive(Clone)]
pub struct GraphStore {
    pool: Arc<Pool>,
    database: Option<String>,
    /// Deadline of the operations other than applies.
    timeout: Duration,
    /// Base deadline of one apply (`neo4j.apply_timeout_secs`).
    apply_timeout: Duration,
    /// The chunk count the read side weighs entities against, and when it was read: counting
    /// every chunk on each question cost more than the rest of entity resolution.
    chunk_total: Arc<Mutex<Option<(u64, std::time::Instant)>>>,
}

/// The Bolt pool, replaced as a whole after a deadline passed.
struct Pool {
    config: neo4rs::Config,
    /// The pool in use and its generation (how many times it was replaced).
    current: Mutex<(u64, Graph)>,
}

impl Pool {
    fn get(&self) -> (u64, Graph) {
        let current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        (current.0, current.1.clone())
    }

    /// Replaces generation `seen` by a new pool, unless another caller already did. The old
    /// pool closes its connections once the last operation using it lets go.
    async fn replace(&self, seen: u64) {
        // Creating a pool connects nothing (connections are made on first use).
        let fresh = match Graph::connect(self.config.clone()).await {
            Ok(graph) => graph,
            Err(e) => {
                tracing::warn!(error = %e, "graph: cannot build a new Bolt pool");
                return;
            }
        };
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if current.0 == seen {
            *current = (seen + 1, fresh);
            tracing::warn!(
                generation = seen + 1,
                "graph: a deadline passed; the Bolt pool is replaced, its connections closed"
            );
        }
    }

    fn generation(&self) -> u64 {
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .0
    }
}

impl GraphStore {
    /// Connects and checks the server answers a query with these credentials.
    pub async fn connect(cfg: &GraphConfig) -> Result<Self, StoreError> {
        let mut builder = ConfigBuilder::default()
            .uri(cfg.uri.as_str())
            .user(cfg.user.as_str())
            .password(cfg.password.as_str())
            .max_connections(cfg.max_connections.max(1));
        if let Some(db) = &cfg.database {
            builder = builder.db(db.as_str());
        }
        let config = builder
            .build()
            .map_err(|e| error::classify("invalid connection settings", e))?;
        let graph = Graph::connect(config.clone())
            .await
            .map_err(|e| error::classify("connect", e))?;
        let store = Self {
            pool: Arc::new(Pool {
                config,
                current: Mutex::new((0, graph)),
            }),
            database: cfg.database.clone(),
            timeout: DEFAULT_TIMEOUT,
            apply_timeout: kb_store::DEFAULT_APPLY_TIMEOUT,
            chunk_total: Arc::default(),
        };
        // The pool connects lazily: make a bad address or password show up here, at start.
        let database = store.database.clone();
        store
            .within(CONNECT_TIMEOUT, "connect", |graph| async move {
                let mut tx = Tx::begin(&graph, database.as_deref()).await?;
                tx.rows("ping", "RETURN 1 AS n", vec![]).await?;
                tx.commit().await
            })
            .await?;
        Ok(store)
    }

    /// Connects as `[neo4j]` says (URI, credentials, database, pool size, apply deadline).
    pub async fn from_settings(settings: &Neo4jSettings) -> Result<Self, StoreError> {
        let store = Self::connect(&GraphConfig {
            uri: settings.uri.clone(),
            user: settings.user.clone(),
            password: settings.password.expose().to_string(),
            database: settings.database.clone(),
            max_connections: settings.max_connections,
        })
        .await?;
        Ok(store.with_apply_timeout(Duration::from_secs(settings.apply_timeout_secs.max(1))))
    }

    /// Replaces the deadline of the operations other than applies ([`DEFAULT_TIMEOUT`]).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Replaces the base apply deadline (`neo4j.apply_timeout_secs`).
    pub fn with_apply_timeout(mut self, timeout: Duration) -> Self {
        self.apply_timeout = timeout;
        self
    }

    /// How many times the Bolt pool was replaced after a deadline passed.
    pub fn pool_generation(&self) -> u64 {
        self.pool.generation()
    }

    async fn begin(&self) -> Result<Tx, StoreError> {
        let (_, graph) = self.pool.get();
        Tx::begin(&graph, self.database.as_deref()).await
    }

    /// Runs `op` on the current pool within `limit`; past it, the pool is replaced and the
    /// error is a [`StoreError::timeout`].
    async fn within<T, F, Fut>(&self, limit: Duration, what: &str, op: F) -> Result<T, StoreError>
    where
        F: FnOnce(Graph) -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let (generation, graph) = self.pool.get();
        match tokio::time::timeout(limit, op(graph)).await {
            Ok(result) => result,
            Err(_) => {
                self.pool.replace(generation).await;
                Err(StoreError::timeout(format!(
                    "graph: {what} timed out after {limit:?}"
                )))
            }
        }
    }

    /// Runs one statement in its own transaction (schema statements may not share one with
    /// writes on Neo4j).
    async fn run_alone(&self, what: &str, cypher: &str) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        tx.run(what, cypher, vec![]).await?;
        tx.commit().await
    }
}

async fn with_timeout<T>(
    limit: Duration,
    what: &str,
    op: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(limit, op).await.unwrap_or_else(|_| {
        Err(StoreError::timeout(format!(
            "graph: {what} timed out after {limit:?}"
        )))
    })
}

/// Exponential backoff with jitter so conflicting writers do not collide again in step.
fn conflict_backoff(attempt: u32) -> Duration {
    let base = 20u64 << attempt.min(6);
    let jitter = u64::from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0),
    ) % base.max(1);
    Duration::from_millis(base + jitter)
}

#[async_trait::async_trait]
impl MirrorStore for GraphStore {
    fn name(&self) -> &'static str {
        "graph"
    }

    async fn prepare(&self) -> Result<(), StoreError> {
        self.within(self.timeout, "prepare", |_| async {
            for c in cypher::CONSTRAINTS {
                self.run_alone("create constraint", c).await?;
            }
            self.run_alone("create index", cypher::CHUNK_SOURCE_INDEX)
                .await?;
            self.run_alone("create index", cypher::ENTITY_CANONICAL_INDEX)
                .await?;
            for t in RelationType::ALL {
                self.run_alone("create index", &cypher::relation_index(t))
                    .await?;
            }
            Ok(())
        })
        .await
    }

    /// One transaction (retried at once on a write conflict), all within
    /// [`MirrorStore::apply_deadline`]; past it the Bolt pool is replaced.
    async fn apply(&self, change: Change<'_>) -> Result<Applied, StoreError> {
        let limit = self.apply_deadline(&change);
        let what = match change.source() {
            Some(s) => format!("apply of source {} v{}", s.source_id, s.version),
            None => "apply".to_string(),
        };
        let database = self.database.as_deref();
        self.within(limit, &what, |graph| async move {
            let mut attempt = 0;
            loop {
                match write::apply_once(&graph, database, change).await {
                    Err(e) if attempt < CONFLICT_RETRIES && error::is_conflict(&e) => {
                        tracing::debug!(error = %e, attempt, "graph: write conflict, retrying");
                        tokio::time::sleep(conflict_backoff(attempt)).await;
                        attempt += 1;
                    }
                    other => return other,
                }
            }
        })
        .await
    }

    fn apply_deadline(&self, change: &Change<'_>) -> Duration {
        kb_store::scaled_deadline(self.apply_timeout, change)
    }

    /// `RETURN 1` within 2 s (the pool is replaced if it does not answer).
    async fn probe(&self) -> Result<(), StoreError> {
        let database = self.database.as_deref();
        self.within(PROBE_TIMEOUT, "probe", |graph| async move {
            let mut tx = Tx::begin(&graph, database).await?;
            tx.rows("probe", "RETURN 1 AS n", vec![]).await?;
            tx.rollback().await;
            Ok(())
        })
        .await
    }

    async fn purge_tombstones(&self, deleted_before_unix_ms: i64) -> Result<u64, StoreError> {
        self.within(self.timeout, "purge tombstones", |_| async {
            let mut tx = self.begin().await?;
            let rows = tx
                .rows(
                    "purge tombstones",
                    cypher::PURGE_TOMBSTONES,
                    vec![("before", rows::int(deleted_before_unix_ms))],
                )
                .await?;
            tx.commit().await?;
            Ok(rows
                .first()
                .and_then(|r| r.get::<i64>("n").ok())
                .map_or(0, |n| n.max(0) as u64))
        })
        .await
    }

    async fn summaries(&self) -> Result<Vec<SourceSummary>, StoreError> {
        self.within(self.timeout, "summaries", |_| async {
            let mut tx = self.begin().await?;
            let out = read::summaries(&mut tx).await?;
            tx.rollback().await;
            Ok(out)
        })
        .await
    }

    async fn counts(&self) -> Result<StoreCounts, StoreError> {
        self.within(self.timeout, "counts", |_| async {
            let mut tx = self.begin().await?;
            let out = read::counts(&mut tx).await?;
            tx.rollback().await;
            Ok(out)
        })
        .await
    }
}
