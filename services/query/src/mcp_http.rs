//! MCP over streamable HTTP at `/mcp`: the same tools as `kb mcp`, served statelessly (each
//! POST stands alone and is answered with JSON), so any replica can take any request.

use std::net::SocketAddr;
use std::sync::Arc;

use kb_query::mcp::KbMcp;
use kb_query::QueryEngine;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

pub type McpService = StreamableHttpService<KbMcp, LocalSessionManager>;

pub fn service(
    engine: Arc<QueryEngine>,
    listen: SocketAddr,
    max_body_bytes: usize,
    shutdown: &CancellationToken,
) -> McpService {
    let mut config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        .with_max_request_body_bytes(max_body_bytes)
        .with_cancellation_token(shutdown.child_token());
    // rmcp accepts only loopback Host headers by default (DNS-rebinding protection for
    // unauthenticated local servers). Beyond loopback a bearer token is required (settings
    // refuse to start without keys), which a rebinding page cannot send, so any Host will do.
    if !listen.ip().is_loopback() {
        config = config.disable_allowed_hosts();
    }
    StreamableHttpService::new(
        move || Ok(KbMcp::new(engine.clone())),
        Arc::new(LocalSessionManager::default()),
        config,
    )
}
