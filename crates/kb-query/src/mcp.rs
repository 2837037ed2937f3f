//! The MCP (Model Context Protocol) tools over a [`QueryEngine`]: `search`, `get_document`,
//! `get_entity`. One handler for every transport: `kb mcp` serves it over stdio, the kb-query
//! service over streamable HTTP at `/mcp`. Each tool answers with the same JSON as the HTTP
//! API, as text content; a request the engine refuses, or nothing found, is a tool error
//! carrying the engine's message (the model reads it and can correct itself).

use std::sync::Arc;

use rmcp::handler::server::{router::tool::ToolRouter, wrapper::Parameters};
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::{tool, tool_handler, tool_router, ErrorData, ServerHandler};
use serde::{Deserialize, Serialize};

use crate::api::SearchRequest;
use crate::{QueryEngine, QueryError};

/// What `get_document` takes.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentArgs {
    /// The document's `source_id`, as a search result gives it.
    pub source_id: String,
}

/// What `get_entity` takes.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EntityArgs {
    /// The entity's name (a person, organization, place, topic…); any form the knowledge
    /// base names it by, e.g. `remote control` or `Remote Controls`.
    pub name: String,
}

/// The MCP server of the read side. Cheap to clone (one per HTTP request in stateless mode).
#[derive(Clone)]
pub struct KbMcp {
    engine: Arc<QueryEngine>,
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl KbMcp {
    pub fn new(engine: Arc<QueryEngine>) -> Self {
        Self {
            engine,
            tool_router: Self::tool_router(),
        }
    }

    #[tool(
        description = "Search the knowledge base (documents, meeting transcripts) for chunks that \
            answer a question. Modes: hybrid (default: vector + keyword + graph, fused), vector, \
            keyword, graph. Filters narrow by path prefix, origin, media type, speaker, document \
            date (from/to) or an entity mentioned. Returns JSON: results best first, each with \
            source_id, path, title, chunk_index, text, speakers and start/end seconds for \
            transcripts, and its score; entities recognised in the question; and `degraded`, \
            the retrievers that could not answer (a store away).",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn search(
        &self,
        Parameters(req): Parameters<SearchRequest>,
    ) -> Result<CallToolResult, ErrorData> {
        answer(self.engine.search(&req).await)
    }

    #[tool(
        description = "A whole document by source_id (from a search result): its path, title, \
            status and every chunk in order, as JSON.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn get_document(
        &self,
        Parameters(args): Parameters<DocumentArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        answer(self.engine.document(&args.source_id).await)
    }

    #[tool(
        description = "An entity of the knowledge graph by name: its type, how many chunks and \
            documents mention it, and its related entities with the relation and its weight, \
            as JSON.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn get_entity(
        &self,
        Parameters(args): Parameters<EntityArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        answer(self.engine.entity(&args.name).await)
    }
}

/// The engine's answer as JSON text, or its refusal as a tool error with its message.
fn answer<T: Serialize>(result: Result<T, QueryError>) -> Result<CallToolResult, ErrorData> {
    match result {
        Ok(value) => Ok(CallToolResult::success(vec![ContentBlock::json(&value)?])),
        Err(e) => Ok(CallToolResult::error(vec![ContentBlock::text(e.message)])),
    }
}

// `router = self.tool_router`: the router built once in `new`, not rebuilt per call.
#[tool_handler(router = self.tool_router)]
impl ServerHandler for KbMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("kb-mirror", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "kb-mirror's knowledge base: documents and meeting transcripts. Use `search` \
                 to find passages that answer a question (cite path and chunk), `get_document` \
                 to read a whole document, `get_entity` for what the knowledge graph knows \
                 about a person, organization, place or topic.",
            )
    }
}
