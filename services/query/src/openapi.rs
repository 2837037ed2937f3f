//! The OpenAPI document, generated from the handlers' annotations and the API types.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::problem::Problem;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "kb-mirror query API",
        description = "Hybrid search (vector + keyword + graph) over the knowledge base kb-mirror \
            keeps in Postgres and a graph. Errors are RFC 9457 problem documents. /v1/* (and \
            /mcp, the MCP endpoint) need `Authorization: Bearer <key>` when the server has keys \
            (query.api_keys)."
    ),
    modifiers(&BearerScheme),
    components(schemas(Problem)),
    tags(
        (name = "search", description = "Questions to the knowledge base"),
        (name = "documents", description = "Whole documents"),
        (name = "entities", description = "The knowledge graph's entities"),
        (name = "operations", description = "Health and readiness"),
    )
)]
pub struct ApiDoc;

/// The document as served, with this build's version.
pub fn base() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc
}

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
    }
}
