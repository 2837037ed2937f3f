//! The engine from settings: the query model, a slot per store with its connector, and the
//! monitors that bring a store back when it answers again.

use std::sync::Arc;
use std::time::Duration;

use kb_core::{Component, Settings};
use kb_embed::{CachedEmbedder, Dispatcher, Embedder, MemoryCache};
use kb_graph::{GraphConfig, GraphStore};
use kb_pg::PgStore;
use kb_store::StoreError;
use tokio_util::sync::CancellationToken;

use crate::engine::{EngineConfig, GraphSide, PgSide, QueryEngine};
use crate::slot::{spawn_monitor, Connector, Slot};

/// Postgres: one lazy pool for the process (it replaces broken connections itself).
struct PgConnector {
    store: PgStore,
}

#[async_trait::async_trait]
impl Connector<dyn PgSide> for PgConnector {
    async fn connect(&self) -> Result<Arc<dyn PgSide>, StoreError> {
        Ok(Arc::new(self.store.clone()))
    }
    async fn probe(&self, _: &dyn PgSide) -> Result<(), StoreError> {
        // Also says whether the schema is there and the dimension is the model's.
        self.store.check().await?;
        if self.store.has_read_schema().await? {
            Ok(())
        } else {
            Err(StoreError::new(
                kb_store::StoreErrorKind::Config,
                "the schema is not migrated yet (start kb-pg-writer once)",
            ))
        }
    }
}

/// The graph: a new Bolt pool after a failure (a timed-out query may leave a pooled
/// connection in the middle of a message).
struct GraphConnector {
    config: GraphConfig,
    timeout: Duration,
}

#[async_trait::async_trait]
impl Connector<dyn GraphSide> for GraphConnector {
    async fn connect(&self) -> Result<Arc<dyn GraphSide>, StoreError> {
        let store = GraphStore::connect(&self.config)
            .await?
            .with_timeout(self.timeout);
        Ok(Arc::new(store))
    }
    async fn probe(&self, store: &dyn GraphSide) -> Result<(), StoreError> {
        // resolve() of nothing known is a cheap real read
        store
            .resolve(&["kb-query probe".to_owned()], false)
            .await
            .map(drop)
    }
}

/// Everything the read side needs, from settings.
pub struct Backend {
    pub engine: Arc<QueryEngine>,
    pub pg: Arc<Slot<dyn PgSide>>,
    pub graph: Arc<Slot<dyn GraphSide>>,
    pg_connector: Arc<dyn Connector<dyn PgSide>>,
    graph_connector: Arc<dyn Connector<dyn GraphSide>>,
}

impl Backend {
    /// Loads the query model and prepares both stores without waiting for them: a store
    /// that is away at start is only a degraded answer until it comes.
    pub async fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        settings.validate(&[Component::Query, Component::Postgres, Component::Neo4j])?;
        let q = &settings.query;
        let deadline = Duration::from_millis(q.store_timeout_ms);
        let embedder = load_query_embedder(settings).await?;
        // The operator's TLS mode, root certificate and statement timeout, as the writer's.
        let pg_store = PgStore::lazy_from_settings(
            &settings.postgres,
            settings.embedder.dimensions,
            deadline,
        )?;
        let n = &settings.neo4j;
        let graph_config = GraphConfig {
            uri: n.uri.clone(),
            user: n.user.clone(),
            password: n.password.expose().to_owned(),
            database: n.database.clone(),
            max_connections: n.max_connections,
        };
        // Turns per store = its pool: a query never waits for a connection inside the store.
        let pg = Arc::new(Slot::<dyn PgSide>::new(
            "postgres",
            deadline,
            false,
            settings.postgres.max_connections as usize,
        ));
        let graph = Arc::new(Slot::<dyn GraphSide>::new(
            "graph",
            deadline,
            true,
            settings.neo4j.max_connections,
        ));
        let engine = Arc::new(QueryEngine::new(
            EngineConfig::from(q),
            pg.clone(),
            graph.clone(),
            Some(embedder),
        ));
        Ok(Self {
            engine,
            pg,
            graph,
            pg_connector: Arc::new(PgConnector { store: pg_store }),
            graph_connector: Arc::new(GraphConnector {
                config: graph_config,
                timeout: deadline,
            }),
        })
    }

    /// One connect-and-probe round for both stores, at once (a one-shot command's start).
    pub async fn check_now(&self) {
        tokio::join!(
            self.pg.check(self.pg_connector.as_ref()),
            self.graph.check(self.graph_connector.as_ref())
        );
    }

    /// Keeps both stores' status fresh until `shutdown` (a long-running service).
    pub fn spawn_monitors(&self, interval: Duration, shutdown: CancellationToken) {
        spawn_monitor(
            self.pg.clone(),
            self.pg_connector.clone(),
            interval,
            shutdown.clone(),
        );
        spawn_monitor(
            self.graph.clone(),
            self.graph_connector.clone(),
            interval,
            shutdown,
        );
    }
}

/// The configured model behind the same dispatcher the embedder service uses: queries that
/// arrive while the model is busy are embedded together in its next batch (one forward pass
/// for eight short questions costs little more than one), and a remote provider gets its
/// retries and limits. In front, a bounded cache of query vectors (chatbots repeat questions).
async fn load_query_embedder(settings: &Settings) -> anyhow::Result<Arc<dyn Embedder>> {
    let s = settings.clone();
    let raw = tokio::task::spawn_blocking(move || kb_embed::load_embedder(&s)).await??;
    let raw: Arc<dyn Embedder> = Arc::new(Dispatcher::new(
        raw,
        kb_embed::provider::dispatch_config(&settings.embedder),
    ));
    let entries = settings.query.embedding_cache;
    Ok(if entries == 0 {
        raw
    } else {
        Arc::new(CachedEmbedder::new(
            raw,
            Arc::new(MemoryCache::bounded(entries)),
        ))
    })
}
