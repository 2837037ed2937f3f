//! The wire shape of the read side, shared by the HTTP API, `kb search --json` and the MCP
//! tools: one request type, one response type, documented field by field (the OpenAPI
//! document and the MCP tool schemas are generated from these).

use serde::{Deserialize, Serialize};

/// How to retrieve.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Vector, keyword and graph, fused by reciprocal rank.
    #[default]
    Hybrid,
    /// Nearest chunks by embedding (pgvector).
    Vector,
    /// Full-text search (Postgres).
    Keyword,
    /// Entities named in the query → chunks mentioning them and their related entities.
    Graph,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Hybrid => "hybrid",
            Mode::Vector => "vector",
            Mode::Keyword => "keyword",
            Mode::Graph => "graph",
        }
    }

    /// The retrievers this mode runs.
    pub fn retrievers(self) -> &'static [Retriever] {
        match self {
            Mode::Hybrid => &[Retriever::Vector, Retriever::Keyword, Retriever::Graph],
            Mode::Vector => &[Retriever::Vector],
            Mode::Keyword => &[Retriever::Keyword],
            Mode::Graph => &[Retriever::Graph],
        }
    }
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "hybrid" => Ok(Mode::Hybrid),
            "vector" => Ok(Mode::Vector),
            "keyword" => Ok(Mode::Keyword),
            "graph" => Ok(Mode::Graph),
            other => Err(format!(
                "unknown mode {other:?} (hybrid, vector, keyword, graph)"
            )),
        }
    }
}

/// One way of finding chunks; named in `ranks` and in `degraded`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Retriever {
    Vector,
    Keyword,
    Graph,
}

impl Retriever {
    pub fn as_str(self) -> &'static str {
        match self {
            Retriever::Vector => "vector",
            Retriever::Keyword => "keyword",
            Retriever::Graph => "graph",
        }
    }
}

/// Narrows the search; every filter given must hold. They apply in every mode.
#[derive(
    Debug,
    Clone,
    Default,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct Filters {
    /// The source's path starts with this (e.g. `meetings/2024/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    /// `folder` (local files), `drive` (Google Drive), or an exact origin such as
    /// `folder:inbox`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// A media type (`application/pdf`) or a family (`text/*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// One of the chunk's speakers contains this, ignoring case (transcripts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speaker: Option<String>,
    /// The document's time is at or after this: RFC 3339 (`2024-05-01T09:00:00Z`) or a
    /// date (`2024-05-01`). Document time is the meeting's date for transcripts that state it,
    /// the document's own date when its metadata has one, else its modified time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The document's time is at or before this (a date means the end of that day, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// The chunk mentions this entity (by name, matched as the knowledge base names it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity: Option<String>,
}

/// A question for the knowledge base.
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// The question or keywords. Keyword search honours web-search syntax when used:
    /// `"exact phrase"`, `-excluded`, `or`.
    #[schema(min_length = 1)]
    #[schemars(length(min = 1))]
    pub query: String,
    /// Retrieval mode; `hybrid` when absent.
    #[serde(default)]
    pub mode: Mode,
    /// How many results (default and maximum set by the server, usually 10 and 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    #[schemars(range(min = 1))]
    pub k: Option<usize>,
    #[serde(default)]
    pub filters: Filters,
}

/// The rank (1 = best) a chunk had in each retriever that found it.
#[derive(
    Debug,
    Clone,
    Default,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    schemars::JsonSchema,
)]
pub struct Ranks {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vector: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keyword: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub graph: Option<usize>,
}

impl Ranks {
    pub fn get(&self, r: Retriever) -> Option<usize> {
        match r {
            Retriever::Vector => self.vector,
            Retriever::Keyword => self.keyword,
            Retriever::Graph => self.graph,
        }
    }

    pub fn set(&mut self, r: Retriever, rank: usize) {
        match r {
            Retriever::Vector => self.vector = Some(rank),
            Retriever::Keyword => self.keyword = Some(rank),
            Retriever::Graph => self.graph = Some(rank),
        }
    }
}

/// One chunk of one document, with what a reader needs to cite it.
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema, schemars::JsonSchema,
)]
pub struct Hit {
    /// Position in the answer, 1 = best.
    pub rank: usize,
    /// Fused score: Σ over retrievers of weight / (rrf_k + rank). Higher is better.
    pub score: f64,
    /// Each retriever's rank for this chunk; absent where it did not find it.
    pub ranks: Ranks,
    pub source_id: String,
    pub chunk_id: String,
    /// 0-based position of the chunk in its document.
    pub chunk_index: u32,
    pub text: String,
    #[serde(flatten)]
    pub source: SourceOut,
    /// Speakers of the chunk's turns (transcripts), in order of first appearance.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub speakers: Vec<String>,
    /// Time range of the chunk in the recording, seconds from the start (transcripts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_seconds: Option<f64>,
    /// Heading path above the chunk (structured documents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section: Option<String>,
    /// How much the chunk matters within its document, 0..1 (set at ingest).
    pub importance: f32,
}

/// Where a chunk comes from.
#[derive(
    Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema, schemars::JsonSchema,
)]
pub struct SourceOut {
    pub path: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub title: String,
    /// `folder:<name>`, `file` (`kb ingest`) or `drive:<name>`.
    pub origin: String,
    pub media_type: String,
    /// Where a person opens the document (Google Drive files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// Last modification of the source file, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_at: Option<String>,
    /// The content's own date (a meeting's date), RFC 3339, when the document states it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_date: Option<String>,
}

/// A relation of an entity to another.
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema, schemars::JsonSchema,
)]
pub struct NeighbourOut {
    pub name: String,
    pub canonical_name: String,
    pub entity_type: String,
    /// e.g. `CO_OCCURS`, `DISCUSSES`.
    pub relation: String,
    /// `out` when the entity is the relation's subject, `in` otherwise.
    pub direction: String,
    /// Strength of the relation, summed over the documents that state it.
    pub weight: f64,
}

/// An entity with its neighbours in the knowledge graph.
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema, schemars::JsonSchema,
)]
pub struct EntityOut {
    pub entity_id: String,
    pub name: String,
    pub canonical_name: String,
    /// PERSON, ORGANIZATION, PLACE, DATE, TOPIC or SPEAKER.
    pub entity_type: String,
    /// Chunks that mention it.
    pub chunks: u64,
    /// Documents those chunks belong to (entity lookups; searches leave it out, as counting
    /// them visits every mention).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<u64>,
    pub neighbours: Vec<NeighbourOut>,
}

/// The answer to a search.
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema, schemars::JsonSchema,
)]
pub struct SearchResponse {
    pub query: String,
    pub mode: Mode,
    /// Best first.
    pub results: Vec<Hit>,
    /// Entities recognised in the query, with their neighbours: context for the answer.
    pub entities: Vec<EntityOut>,
    /// Retrievers that could not answer (their store away or too slow); empty when all is
    /// well. The results then come from the others.
    pub degraded: Vec<Retriever>,
    pub took_ms: u64,
}

/// One chunk of a document.
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema, schemars::JsonSchema,
)]
pub struct ChunkOut {
    pub chunk_id: String,
    pub chunk_index: u32,
    pub text: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub speakers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section: Option<String>,
    pub importance: f32,
}

/// A document and its chunks in order.
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema, schemars::JsonSchema,
)]
pub struct DocumentResponse {
    pub source_id: String,
    pub version: u64,
    #[serde(flatten)]
    pub source: SourceOut,
    /// `ok`, or `failed` (then `error` says why and there are no chunks).
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub chunks: Vec<ChunkOut>,
    /// The store that could not answer, when the document came from the other.
    pub degraded: Vec<String>,
}

/// An entity, looked up by name.
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema, schemars::JsonSchema,
)]
pub struct EntityResponse {
    /// Every entity with that canonical name (one per type).
    pub entities: Vec<EntityOut>,
    /// The store that could not answer, when the answer came from the other.
    pub degraded: Vec<String>,
}
