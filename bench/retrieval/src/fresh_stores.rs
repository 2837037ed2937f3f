//! Fresh databases on the `bench` stack instance for a benchmark that runs the services itself
//! (`kb-bench-ingest`, `kb-bench-soak`); dropped first when an earlier run left them.

use anyhow::{bail, Context};
use kb_graph::GraphConfig;
use sqlx::{Connection, PgConnection};

pub struct Stores {
    /// The database's name in both stores.
    pub db: &'static str,
    pub pg_url: String,
    pub graph: GraphConfig,
}

/// A variable `deploy/local/bench` sets from the `bench` instance.
pub fn var(name: &str) -> anyhow::Result<String> {
    std::env::var(name)
        .with_context(|| format!("{name} is not set: run this through `deploy/local/bench NAME`"))
}

/// A numeric knob of a benchmark, `default` when unset or not a number.
pub fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
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

/// Empty databases named `db` (a fixed name of the caller's: used unquoted) in both stores.
pub async fn fresh(db: &'static str) -> anyhow::Result<Stores> {
    let url = var("KB_POSTGRES_URL")?;
    let mut admin = PgConnection::connect(&with_database(&url, "postgres")?).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .execute(&mut admin)
        .await?;
    sqlx::query(&format!("CREATE DATABASE {db}"))
        .execute(&mut admin)
        .await?;
    admin.close().await.ok();

    crate::arcadedb::recreate_database(db).await?;
    Ok(Stores {
        db,
        pg_url: with_database(&url, db)?,
        graph: GraphConfig {
            uri: var("KB_NEO4J_URI")?,
            user: "root".into(),
            password: var("KB_ARCADEDB_ROOT_PASSWORD")?,
            database: Some(db.into()),
            max_connections: 2,
        },
    })
}
