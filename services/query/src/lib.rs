//! kb-query: the read side as a service. Hybrid search over both stores as an HTTP JSON API
//! (`/v1/search`, `/v1/sources/{id}`, `/v1/entities/{name}`, OpenAPI at `/openapi.json`) and
//! as MCP tools over streamable HTTP (`/mcp`), with `/healthz`, `/readyz` and `/metrics`.
//!
//! One store away is not an outage: the engine answers from the other and says so in
//! `degraded`; `/readyz` says which store is away.

mod app;
mod auth;
mod extract;
mod health;
mod limits;
mod mcp_http;
mod metrics;
mod openapi;
mod problem;
mod routes;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use kb_core::service::Context;
use kb_core::Settings;
use kb_query::Backend;

/// Serves until shutdown.
pub async fn run(settings: Settings, ctx: Context) -> anyhow::Result<()> {
    let q = &settings.query;
    let keys = auth::Keys::from_settings(q)?;
    let listen: SocketAddr = q
        .listen
        .parse()
        .with_context(|| format!("query.listen {:?} is not an address", q.listen))?;
    // The recorder must exist before the first metric is recorded, or that one is lost.
    kb_core::telemetry::metrics_handle();

    let backend = Backend::from_settings(&settings).await?;
    backend.check_now().await;
    backend.spawn_monitors(
        Duration::from_millis(q.probe_interval_ms),
        ctx.shutdown.clone(),
    );
    for s in backend.engine.stores() {
        tracing::info!(store = %s.store, up = s.up, reason = s.reason.as_deref().unwrap_or(""), "store at start");
    }

    let app = app::router(app::AppParts {
        engine: backend.engine.clone(),
        keys: keys.clone(),
        mcp: mcp_http::service(
            backend.engine.clone(),
            listen,
            q.max_body_bytes,
            &ctx.shutdown,
        ),
        max_body_bytes: q.max_body_bytes,
        // validated to cover two store deadlines (kb-core settings/query.rs)
        request_timeout: Duration::from_millis(q.request_timeout_ms),
    })?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen} (query.listen)"))?;
    tracing::info!(
        addr = %listener.local_addr()?,
        auth = if keys.required() { "bearer" } else { "none" },
        "serving the query API and MCP"
    );
    ctx.health.set_ready(true);
    axum::serve(listener, app)
        .with_graceful_shutdown(ctx.shutdown.clone().cancelled_owned())
        .await
        .context("the HTTP server failed")?;
    Ok(())
}
