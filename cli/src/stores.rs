//! Opening the stores from settings, the same way the writers do.

use kb_core::{Component, Settings};

pub async fn postgres(settings: &Settings) -> anyhow::Result<kb_pg::PgStore> {
    postgres_with(settings, 4).await
}

/// Postgres with a pool of at most `max_connections` (and at most the configured pool).
pub async fn postgres_with(
    settings: &Settings,
    max_connections: u32,
) -> anyhow::Result<kb_pg::PgStore> {
    settings.validate(&[Component::Postgres])?;
    let pg = &settings.postgres;
    Ok(kb_pg::PgStore::connect(
        pg.url.expose(),
        settings.embedder.dimensions,
        pg.max_connections.min(max_connections.max(1)),
    )
    .await?)
}

pub async fn graph(settings: &Settings) -> anyhow::Result<kb_graph::GraphStore> {
    graph_with(settings, 4).await
}

/// The graph with a pool of at most `max_connections` (and at most the configured pool).
pub async fn graph_with(
    settings: &Settings,
    max_connections: usize,
) -> anyhow::Result<kb_graph::GraphStore> {
    settings.validate(&[Component::Neo4j])?;
    let n = &settings.neo4j;
    Ok(kb_graph::GraphStore::connect(&kb_graph::GraphConfig {
        uri: n.uri.clone(),
        user: n.user.clone(),
        password: n.password.expose().to_string(),
        database: n.database.clone(),
        max_connections: n.max_connections.min(max_connections.max(1)),
    })
    .await?)
}

/// The writers that are switched on, by consumer name.
pub fn enabled_writers(settings: &Settings) -> Vec<&'static str> {
    let mut w = Vec::new();
    if settings.postgres.enabled {
        w.push(kb_stream::subjects::PG_WRITER);
    }
    if settings.neo4j.enabled {
        w.push(kb_stream::subjects::GRAPH_WRITER);
    }
    w
}
