//! Liveness and readiness. Ready means at least one store answers: with one away the service
//! still answers (degraded), so only both away takes it out of a load balancer.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use kb_query::{QueryEngine, StoreStatus};
use serde::Serialize;

/// What `/readyz` says.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// At least one store answers, so searches get answers (degraded when one is away).
    pub ready: bool,
    /// Each store: whether it answers, and why not.
    pub stores: Vec<StoreStatus>,
}

/// The process is up.
#[utoipa::path(
    get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is up", body = String, content_type = "text/plain"))
)]
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Whether the service can answer, and each store's state.
#[utoipa::path(
    get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "At least one store answers", body = Readiness),
        (status = 503, description = "No store answers", body = Readiness),
    )
)]
pub async fn readyz(State(engine): State<Arc<QueryEngine>>) -> (StatusCode, Json<Readiness>) {
    let stores = engine.stores();
    let ready = stores.iter().any(|s| s.up);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(Readiness { ready, stores }))
}
