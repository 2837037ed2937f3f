//! A fresh Postgres database and a fresh graph database on the `bench` instance, filled with
//! the generated documents through the writers' own store code (`MirrorStore::prepare`, bulk
//! mode for Postgres, `apply(Change::Upsert)` several documents at once), both at once.

use anyhow::{bail, Context};
use futures::stream::{self, StreamExt, TryStreamExt};
use kb_graph::{GraphConfig, GraphStore};
use kb_pg::PgStore;
use kb_proto::ParsedDocument;
use kb_store::{Applied, Change, MirrorStore};
use sqlx::{Connection, PgConnection};
use std::time::Instant;

/// The database name used on both servers (dropped first when a previous run left it).
pub const DB: &str = "kb_bench_query";
/// Documents applied at once: Postgres, the graph (entities are shared, so graph writers
/// conflict and retry; the graph-writer service itself applies one at a time).
const PG_CONCURRENCY: usize = 4;
const GRAPH_CONCURRENCY: usize = 2;

fn var(name: &str) -> anyhow::Result<String> {
    std::env::var(name).with_context(|| {
        format!("{name} is not set: run this through `make bench-query` (deploy/local/bench)")
    })
}

/// `url` with another database name.
pub fn with_database(url: &str, db: &str) -> anyhow::Result<String> {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let Some((server, _)) = base.rsplit_once('/') else {
        bail!("the Postgres URL names no database: {url}");
    };
    Ok(match query {
        Some(q) => format!("{server}/{db}?{q}"),
        None => format!("{server}/{db}"),
    })
}

pub struct Filled {
    pub pg_url: String,
    pub graph: GraphConfig,
    /// Rows in, before the index.
    pub pg_load_s: f64,
    /// The HNSW build at the end of bulk mode.
    pub pg_index_s: f64,
    pub graph_s: f64,
    /// Both stores, side by side.
    pub wall_s: f64,
    pub chunks: i64,
    pub entities: i64,
    pub mentions: i64,
}

async fn fresh_postgres(url: &str) -> anyhow::Result<String> {
    let mut admin = PgConnection::connect(&with_database(url, "postgres")?).await?;
    // DB is a fixed name of ours, safe unquoted.
    sqlx::query(&format!("DROP DATABASE IF EXISTS {DB} WITH (FORCE)"))
        .execute(&mut admin)
        .await?;
    sqlx::query(&format!("CREATE DATABASE {DB}"))
        .execute(&mut admin)
        .await?;
    admin.close().await.ok();
    with_database(url, DB)
}

/// A new graph database over ArcadeDB's HTTP API, as root (admin on every database).
async fn fresh_graph() -> anyhow::Result<GraphConfig> {
    kb_bench_retrieval::arcadedb::recreate_database(DB).await?;
    Ok(GraphConfig {
        uri: var("KB_NEO4J_URI")?,
        user: "root".into(),
        password: var("KB_ARCADEDB_ROOT_PASSWORD")?,
        database: Some(DB.into()),
        max_connections: GRAPH_CONCURRENCY * 2,
    })
}

/// Transient failures (the graph's write conflicts once its own retries are spent: documents
/// share entities) are tried again, as the writer loop redelivers them.
const APPLY_ATTEMPTS: u32 = 20;

async fn apply_all(
    store: &dyn MirrorStore,
    docs: &[ParsedDocument],
    concurrency: usize,
) -> anyhow::Result<u32> {
    let retried = std::sync::atomic::AtomicU32::new(0);
    let retried_ref = &retried;
    stream::iter(docs)
        .map(|d| async move {
            let mut attempt = 1;
            loop {
                match store.apply(Change::Upsert(d)).await {
                    Ok(Applied::Written) => return Ok(()),
                    Ok(other) => bail!("{}: {other:?} instead of written", store.name()),
                    Err(e) if e.is_transient() && attempt < APPLY_ATTEMPTS => {
                        retried_ref.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        tokio::time::sleep(std::time::Duration::from_millis(
                            50 * u64::from(attempt),
                        ))
                        .await;
                        attempt += 1;
                    }
                    Err(e) => {
                        return Err(anyhow::Error::new(e).context(format!("{} apply", store.name())))
                    }
                }
            }
        })
        .buffer_unordered(concurrency)
        .try_collect::<()>()
        .await?;
    Ok(retried.into_inner())
}

async fn fill_postgres(
    url: &str,
    dims: usize,
    docs: &[ParsedDocument],
) -> anyhow::Result<(f64, f64)> {
    let store = PgStore::connect(url, dims, u32::try_from(PG_CONCURRENCY * 2).unwrap_or(8)).await?;
    store.prepare().await?;
    if !store.begin_bulk().await? {
        bail!("Postgres did not enter bulk mode on a fresh database");
    }
    let t = Instant::now();
    let retried = apply_all(&store, docs, PG_CONCURRENCY).await?;
    if retried > 0 {
        eprintln!("note: Postgres: {retried} transient failures retried");
    }
    let load = t.elapsed().as_secs_f64();
    let t = Instant::now();
    store.end_bulk().await?;
    Ok((load, t.elapsed().as_secs_f64()))
}

async fn fill_graph(cfg: &GraphConfig, docs: &[ParsedDocument]) -> anyhow::Result<f64> {
    let store = GraphStore::connect(cfg).await?;
    store.prepare().await?;
    let t = Instant::now();
    let retried = apply_all(&store, docs, GRAPH_CONCURRENCY).await?;
    if retried > 0 {
        println!(
            "(graph: {retried} documents applied again after a write conflict outlasted the \
             store's own retries)"
        );
    }
    Ok(t.elapsed().as_secs_f64())
}

/// Fresh databases, filled with `docs` (both stores at once).
pub async fn fill(
    postgres_url: &str,
    dims: usize,
    docs: &[ParsedDocument],
) -> anyhow::Result<Filled> {
    let pg_url = fresh_postgres(postgres_url).await?;
    let graph = fresh_graph().await?;
    let t = Instant::now();
    let (pg, graph_s) = tokio::join!(fill_postgres(&pg_url, dims, docs), fill_graph(&graph, docs));
    let wall_s = t.elapsed().as_secs_f64();
    let (pg_load_s, pg_index_s) = pg.context("filling Postgres")?;
    let graph_s = graph_s.context("filling the graph")?;
    let mut conn = PgConnection::connect(&pg_url).await?;
    let (chunks, entities, mentions): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM chunks), (SELECT count(*) FROM entities),
                (SELECT count(*) FROM chunk_mentions)",
    )
    .fetch_one(&mut conn)
    .await?;
    // fresh statistics for the planner, as autovacuum would give a store this size
    sqlx::query("ANALYZE").execute(&mut conn).await?;
    conn.close().await.ok();
    Ok(Filled {
        pg_url,
        graph,
        pg_load_s,
        pg_index_s,
        graph_s,
        wall_s,
        chunks,
        entities,
        mentions,
    })
}
