//! The read side of kb-mirror: a chatbot's question → cited chunks from both stores.
//!
//! # Layout
//! - [`api`]: the request and response shapes shared by the HTTP API, `kb search --json` and
//!   the MCP tools (OpenAPI and JSON Schema derived from them).
//! - [`filters`]: request filters checked and put in the stores' terms.
//! - `retrieve`: the three retrievers — `vector` (pgvector), `keyword` (Postgres full text),
//!   `graph` (entities named in the question → chunks mentioning them, then their neighbours'
//!   chunks, over Bolt) — each with the other store standing in when its own is away.
//! - [`fusion`]: reciprocal-rank fusion of their lists.
//! - [`engine`]: [`QueryEngine`] runs a mode's retrievers at once, fuses, reports `degraded`.
//! - [`slot`]: a store that may be away: deadlines, taken as away at the first miss,
//!   probed back in the background.
//! - [`connect`]: all of the above from [`kb_core::Settings`].
//!
//! The stores answer through the small traits of [`kb_store::read`], so the engine can be
//! tested against fakes; the real ones are `kb_pg::PgStore` and `kb_graph::GraphStore`.

pub mod api;
pub mod connect;
pub mod engine;
mod error;
#[cfg(test)]
mod fake;
pub mod filters;
pub mod fusion;
#[cfg(feature = "mcp")]
pub mod mcp;
pub mod question;
mod retrieve;
pub mod slot;
mod telemetry;

pub use api::{Mode, Retriever, SearchRequest, SearchResponse};
pub use connect::Backend;
pub use engine::{EngineConfig, GraphSide, PgSide, QueryEngine};
pub use error::{QueryError, QueryErrorExt, QueryErrorKind};
pub use slot::{Slot, StoreStatus};
