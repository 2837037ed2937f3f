//! graph-writer: the mirror stream into the Neo4j knowledge graph, with its own durable consumer.

use kb_core::service::Context;
use kb_core::Settings;

/// Runs the graph writer until shutdown; `neo4j.enabled = false` pauses it (see pg-writer).
pub async fn run(settings: Settings, ctx: Context) -> anyhow::Result<()> {
    if !settings.neo4j.enabled {
        tracing::warn!(
            "neo4j.enabled = false: not writing; the mirror stream keeps everything for later"
        );
        ctx.shutdown.cancelled().await;
        return Ok(());
    }
    let n = &settings.neo4j;
    let store = kb_graph::GraphStore::connect(&kb_graph::GraphConfig {
        uri: n.uri.clone(),
        user: n.user.clone(),
        password: n.password.expose().to_string(),
        database: n.database.clone(),
        max_connections: n.max_connections,
    })
    .await?;
    // One document at a time: concurrent MERGEs of shared entities conflict on some servers.
    kb_writer::run(
        "graph-writer",
        store,
        &settings.nats.url,
        settings.nats.inline_max_bytes,
        1,
        ctx,
    )
    .await
}
