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
    // The graph server may be down when the writer (re)starts: wait for it instead of exiting,
    // so the writer catches up by itself when it returns.
    let store = loop {
        match kb_graph::GraphStore::from_settings(&settings.neo4j).await {
            Ok(store) => break store,
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, "graph server not reachable, waiting for it");
                tokio::select! {
                    _ = ctx.shutdown.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(std::time::Duration::from_secs(2)) => {}
                }
            }
            Err(e) => return Err(e.into()),
        }
    };
    // One document at a time: concurrent MERGEs of shared entities conflict on some servers.
    kb_writer::run_with(
        kb_writer::Stage::GraphWriter,
        store,
        &settings.nats,
        settings.nats.inline_max_bytes,
        kb_writer::WriterOptions::from_settings(&settings.writer, 1),
        ctx,
    )
    .await
}
