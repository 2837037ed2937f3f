//! Opening the stores from settings, the same way the writers do.

use kb_core::{Component, Settings};
use kb_stream::Stage;

pub async fn postgres(settings: &Settings) -> anyhow::Result<kb_pg::PgStore> {
    postgres_with(settings, 4).await
}

/// Postgres with a pool of at most `max_connections` (and at most the configured pool).
pub async fn postgres_with(
    settings: &Settings,
    max_connections: u32,
) -> anyhow::Result<kb_pg::PgStore> {
    settings.validate(&[Component::Postgres])?;
    // The writers' TLS mode, root certificate and timeouts, with a smaller pool.
    let pg = kb_core::settings::PostgresSettings {
        max_connections: settings
            .postgres
            .max_connections
            .min(max_connections.max(1)),
        ..settings.postgres.clone()
    };
    Ok(kb_pg::PgStore::from_settings(&pg, settings.embedder.dimensions).await?)
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
    let n = kb_core::settings::Neo4jSettings {
        max_connections: settings.neo4j.max_connections.min(max_connections.max(1)),
        ..settings.neo4j.clone()
    };
    Ok(kb_graph::GraphStore::from_settings(&n).await?)
}

/// The writers that are switched on.
pub fn enabled_writers(settings: &Settings) -> Vec<Stage> {
    let mut w = Vec::new();
    if settings.postgres.enabled {
        w.push(Stage::PgWriter);
    }
    if settings.neo4j.enabled {
        w.push(Stage::GraphWriter);
    }
    w
}
