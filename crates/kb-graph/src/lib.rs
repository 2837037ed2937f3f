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
use std::time::Duration;

use kb_store::{Applied, Change, MirrorStore, SourceSummary, StoreCounts, StoreError};
use neo4rs::{ConfigBuilder, Graph};

pub use config::GraphConfig;
pub use vocab::RelationType;

use bolt::Tx;

/// How long one operation (one document's transaction, a summary scan) may take before it
/// counts as a transient failure.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Write conflicts (deadlocks, ArcadeDB's optimistic-concurrency failures) are retried this
/// many times inside the store before being returned as transient.
const CONFLICT_RETRIES: u32 = 8;

/// The graph mirror over a pool of Bolt connections.
#[derive(Clone)]
pub struct GraphStore {
    graph: Graph,
    database: Option<String>,
    timeout: Duration,
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
        let graph = Graph::connect(config)
            .await
            .map_err(|e| error::classify("connect", e))?;
        let store = Self {
            graph,
            database: cfg.database.clone(),
            timeout: DEFAULT_TIMEOUT,
        };
        // The pool connects lazily: make a bad address or password show up here, at start.
        with_timeout(CONNECT_TIMEOUT, "connect", async {
            let mut tx = store.begin().await?;
            tx.rows("ping", "RETURN 1 AS n", vec![]).await?;
            tx.commit().await
        })
        .await?;
        Ok(store)
    }

    /// Replaces the per-operation timeout ([`DEFAULT_TIMEOUT`]).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    async fn begin(&self) -> Result<Tx, StoreError> {
        Tx::begin(&self.graph, self.database.as_deref()).await
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
        Err(StoreError::transient(format!(
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
        with_timeout(self.timeout, "prepare", async {
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

    async fn apply(&self, change: Change<'_>) -> Result<Applied, StoreError> {
        let mut attempt = 0;
        loop {
            let result = with_timeout(
                self.timeout,
                "apply",
                write::apply_once(&self.graph, self.database.as_deref(), change),
            )
            .await;
            match result {
                Err(e) if attempt < CONFLICT_RETRIES && error::is_conflict(&e) => {
                    tracing::debug!(error = %e, attempt, "graph: write conflict, retrying");
                    tokio::time::sleep(conflict_backoff(attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn summaries(&self) -> Result<Vec<SourceSummary>, StoreError> {
        with_timeout(self.timeout, "summaries", async {
            let mut tx = self.begin().await?;
            let out = read::summaries(&mut tx).await?;
            tx.rollback().await;
            Ok(out)
        })
        .await
    }

    async fn counts(&self) -> Result<StoreCounts, StoreError> {
        with_timeout(self.timeout, "counts", async {
            let mut tx = self.begin().await?;
            let out = read::counts(&mut tx).await?;
            tx.rollback().await;
            Ok(out)
        })
        .await
    }
}
