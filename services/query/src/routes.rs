//! The `/v1` JSON API: search, a document, an entity. The engine checks requests and answers
//! degraded when a store is away; these only translate to HTTP.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use kb_query::api::{DocumentResponse, EntityResponse, SearchRequest, SearchResponse};
use kb_query::QueryEngine;

use crate::extract::{ApiJson, ApiPath};
use crate::problem::{ApiError, Problem};

/// Search the knowledge base.
///
/// Hybrid retrieval (vector + keyword + graph, fused by reciprocal rank) or one retriever,
/// with filters. A store that is away makes the answer degraded (`degraded` names the
/// retrievers that could not answer), not an error.
#[utoipa::path(
    post, path = "/v1/search", tag = "search",
    request_body(content = SearchRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Results, best first", body = SearchResponse),
        (status = 400, description = "The request is invalid: not JSON, not of this shape, an empty or too long query, k out of range, a bad filter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is over query.max_body_bytes", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not declared as application/json", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "No store can answer, or the request ran out of time", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn search(
    State(engine): State<Arc<QueryEngine>>,
    ApiJson(req): ApiJson<SearchRequest>,
) -> Result<Json<SearchResponse>, ApiError> {
    Ok(Json(engine.search(&req).await?))
}

/// A document and its chunks, in order.
#[utoipa::path(
    get, path = "/v1/sources/{id}", tag = "documents",
    params(("id" = String, Path, description = "The document's source_id (as in search results)")),
    responses(
        (status = 200, description = "The document", body = DocumentResponse),
        (status = 400, description = "The id is empty or too long", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such document", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "No store can answer, or the request ran out of time", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn document(
    State(engine): State<Arc<QueryEngine>>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<DocumentResponse>, ApiError> {
    Ok(Json(engine.document(&id).await?))
}

/// An entity of the knowledge graph, with its relations.
#[utoipa::path(
    get, path = "/v1/entities/{name}", tag = "entities",
    params(("name" = String, Path, description = "The entity's name, in any form the knowledge base gives it (`Remote Controls`, `remote control`)")),
    responses(
        (status = 200, description = "Every entity of that name (one per type)", body = EntityResponse),
        (status = 400, description = "The name is empty, too long, or names nothing", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No entity of that name", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "No store can answer, or the request ran out of time", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn entity(
    State(engine): State<Arc<QueryEngine>>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<EntityResponse>, ApiError> {
    Ok(Json(engine.entity(&name).await?))
}
