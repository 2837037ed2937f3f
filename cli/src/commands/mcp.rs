//! `kb mcp`: the knowledge base as an MCP server over stdin/stdout, for assistants that start
//! their tools as processes (Claude Desktop, IDEs). The same tools as kb-query's `/mcp`
//! (`kb_query::mcp`). Stdout carries the protocol only: logs go to stderr.

use std::process::ExitCode;
use std::time::Duration;

use kb_core::Settings;
use kb_query::mcp::KbMcp;
use kb_query::Backend;
use rmcp::ServiceExt;
use tokio_util::sync::CancellationToken;

/// Serves until the client closes stdin. A store that is away makes answers degraded; the
/// monitors bring it back while the session lasts.
pub async fn run(settings: &Settings) -> anyhow::Result<ExitCode> {
    let backend = Backend::from_settings(settings).await?;
    backend.check_now().await;
    let monitors = CancellationToken::new();
    backend.spawn_monitors(
        Duration::from_millis(settings.query.probe_interval_ms),
        monitors.clone(),
    );
    let served = async {
        let session = KbMcp::new(backend.engine.clone())
            .serve(rmcp::transport::stdio())
            .await?;
        session.waiting().await?;
        anyhow::Ok(())
    }
    .await;
    monitors.cancel();
    served?;
    Ok(ExitCode::SUCCESS)
}
