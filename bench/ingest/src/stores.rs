//! Fresh databases for the ingest benchmark on the `bench` instance (dropped first when a run left them).

use anyhow::bail;
use kb_graph::GraphConfig;
use sqlx::{Connection, PgConnection};

pub const DB: &str = "kb_bench_ingest";

pub struct Stores {
    pub pg_url: String,
    pub graph: GraphConfig,
}

fn var(name: &str) -> anyhow::Result<String> {
    crate::var(name)
}

/// `url` with another database name.
fn with_database(url: &str, db: &str) -> anyhow::Result<String> {
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

pub async fn fresh() -> anyhow::Result<Stores> {
    let url = var("KB_POSTGRES_URL")?;
    let mut admin = PgConnection::connect(&with_database(&url, "postgres")?).await?;
    // DB is a fixed name of ours, safe unquoted.
    sqlx::query(&format!("DROP DATABASE IF EXISTS {DB} WITH (FORCE)"))
        .execute(&mut admin)
        .await?;
    sqlx::query(&format!("CREATE DATABASE {DB}"))
        .execute(&mut admin)
        .await?;
    admin.close().await.ok();

    kb_bench_retrieval::arcadedb::recreate_database(DB).await?;
    Ok(Stores {
        pg_url: with_database(&url, DB)?,
        graph: GraphConfig {
            uri: var("KB_NEO4J_URI")?,
            user: "root".into(),
            password: var("KB_ARCADEDB_ROOT_PASSWORD")?,
            database: Some(DB.into()),
            max_connections: 2,
        },
    })
}
