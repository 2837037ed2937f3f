//! The router: which paths exist, which need a token, and the limits around them.
//!
//! Layers, outermost first: request counting, the request's time budget; then, on `/v1/*` and
//! `/mcp` only, the bearer token and the body limit. Health, readiness, metrics and the
//! OpenAPI document stay open (probes and tools must not need a key).

use std::sync::Arc;
use std::time::Duration;

use axum::http::header;
use axum::middleware::from_fn_with_state;
use axum::routing::get;
use axum::Router;
use kb_query::QueryEngine;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{self, Keys};
use crate::mcp_http::McpService;
use crate::{health, limits, metrics, openapi, problem, routes as api};

/// What the router is built from.
pub struct AppParts {
    pub engine: Arc<QueryEngine>,
    pub keys: Keys,
    pub mcp: McpService,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
}

pub fn router(parts: AppParts) -> anyhow::Result<Router> {
    let protected = OpenApiRouter::new()
        .routes(routes!(api::search))
        .routes(routes!(api::document))
        .routes(routes!(api::entity))
        .nest_service("/mcp", parts.mcp)
        .route_layer(from_fn_with_state(parts.max_body_bytes, limits::body_limit))
        .route_layer(from_fn_with_state(parts.keys, auth::require_bearer));
    let (routes, doc) = OpenApiRouter::with_openapi(openapi::base())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .merge(protected)
        .split_for_parts();
    let doc = Arc::new(doc.to_pretty_json()?);
    Ok(routes
        .route("/metrics", get(metrics::render))
        .route(
            "/openapi.json",
            get(move || {
                let doc = doc.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, "application/json")],
                        doc.to_string(),
                    )
                }
            }),
        )
        .fallback(problem::not_found)
        .method_not_allowed_fallback(problem::method_not_allowed)
        .with_state(parts.engine)
        .layer(from_fn_with_state(
            parts.request_timeout,
            limits::request_timeout,
        ))
        .layer(axum::middleware::from_fn(metrics::count_requests)))
}
