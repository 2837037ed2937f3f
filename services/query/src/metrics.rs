//! `/metrics` (Prometheus) and the HTTP request counters behind it.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Everything the process counts, in Prometheus's text format.
pub async fn render() -> Response {
    let text = kb_core::telemetry::metrics_handle()
        .map(|h| h.render())
        .unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// Counts every request by route (the route's pattern, so ids do not make new series; any
/// unknown path is `unmatched`) and status, and times it.
pub async fn count_requests(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("kb_query_http_requests_total", "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("kb_query_http_request_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}
