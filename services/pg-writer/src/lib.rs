//! pg-writer: the mirror stream into Postgres + pgvector, with its own durable consumer.

use kb_core::service::Context;
use kb_core::Settings;

/// Runs the Postgres writer until shutdown. A disabled writer (`postgres.enabled = false`, the
/// seed's rollback switch) consumes nothing; its durable consumer keeps its place, so enabling
/// it later catches up from the mirror stream.
pub async fn run(settings: Settings, dimensions: usize, ctx: Context) -> anyhow::Result<()> {
    if !settings.postgres.enabled {
        tracing::warn!(
            "postgres.enabled = false: not writing; the mirror stream keeps everything for later"
        );
        ctx.shutdown.cancelled().await;
        return Ok(());
    }
    let pg = &settings.postgres;
    // Postgres may be down when the writer (re)starts: wait for it instead of exiting, so the
    // writer catches up by itself when it returns.
    let store = loop {
        match kb_pg::PgStore::from_settings(pg, dimensions).await {
            Ok(store) => break store,
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, "postgres not reachable, waiting for it");
                tokio::select! {
                    _ = ctx.shutdown.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(std::time::Duration::from_secs(2)) => {}
                }
            }
            Err(e) => return Err(e.into()),
        }
    };
    kb_writer::run_with(
        kb_writer::Stage::PgWriter,
        store,
        &settings.nats,
        settings.nats.inline_max_bytes,
        kb_writer::WriterOptions::from_settings(&settings.writer, 4),
        ctx,
    )
    .await
}
