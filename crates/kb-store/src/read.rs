//! The read contract: what the query side asks of a store, in the stores' own terms (no HTTP,
//! no ranking across stores). Postgres answers every part; the graph answers the entity parts,
//! documents, and a plain text scan for when Postgres is away. Each capability is a small
//! trait, so the query engine can be tested against fakes and either store can stand in for
//! the other where it holds the same data.

use serde::Serialize;

use crate::StoreError;

/// Which origins a search may return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginFilter {
    /// Local files: `folder:<watcher>` and `file` (`kb ingest`).
    Folder,
    /// Google Drive: `drive:<name>`.
    Drive,
    /// Exactly this origin, e.g. `folder:inbox`.
    Exact(String),
}

impl OriginFilter {
    /// The origin values that match exactly, and the prefixes that match.
    pub fn exact_and_prefixes(&self) -> (Vec<String>, Vec<String>) {
        match self {
            OriginFilter::Folder => (vec!["file".into()], vec!["folder:".into()]),
            OriginFilter::Drive => (Vec::new(), vec!["drive:".into()]),
            OriginFilter::Exact(o) => (vec![o.clone()], Vec::new()),
        }
    }
}

/// Narrows which chunks a retriever may return; every field set must hold. Values are
/// already normalized (lower-cased speaker, canonical entity name) by the query layer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChunkFilter {
    /// The source's path starts with this.
    pub path_prefix: Option<String>,
    pub origin: Option<OriginFilter>,
    /// Exact media type, or a `type/` prefix (from `type/*`).
    pub media_type: Option<MediaTypeFilter>,
    /// Lower-case text that one of the chunk's speakers contains.
    pub speaker: Option<String>,
    /// The source's time (its document date when known, else its modified time) is at or
    /// after / before these Unix milliseconds.
    pub from_unix_ms: Option<i64>,
    pub to_unix_ms: Option<i64>,
    /// The chunk mentions an entity with one of these canonical names (the forms a name
    /// may take, e.g. singular and plural); empty = no condition.
    pub entity_names: Vec<String>,
}

impl ChunkFilter {
    pub fn is_empty(&self) -> bool {
        *self == ChunkFilter::default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaTypeFilter {
    Exact(String),
    /// e.g. `text/` for `text/*`.
    Prefix(String),
}

/// Where a chunk comes from: what a reader needs to cite it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SourceInfo {
    pub source_id: String,
    pub version: u64,
    pub origin: String,
    pub path: String,
    pub title: String,
    pub media_type: String,
    /// Where a person opens it (a Drive file's link); empty for local files.
    pub link: String,
    pub modified_unix_ms: Option<i64>,
    /// The content's own date (a meeting's date), when the document says.
    pub document_unix_ms: Option<i64>,
    /// `ok` or `failed`.
    pub status: String,
    pub error: Option<String>,
}

/// One chunk as a retriever found it, with its source.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ChunkHit {
    pub chunk_id: String,
    pub chunk_index: u32,
    pub text: String,
    pub importance: f32,
    pub speakers: Vec<String>,
    pub start_seconds: Option<f64>,
    pub end_seconds: Option<f64>,
    pub section: Option<String>,
    pub source: SourceInfo,
    /// The retriever's own score (cosine similarity, text rank, entity weight); only its
    /// order within one retriever means anything.
    pub score: f64,
}

/// An entity as both stores name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntityRef {
    pub entity_id: String,
    pub name: String,
    pub canonical_name: String,
    pub entity_type: String,
}

/// One relation of an entity, seen from it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Neighbour {
    /// The entity the relation starts from (one of those asked about).
    pub of: String,
    pub entity: EntityRef,
    pub relation: String,
    /// `out` when the asked entity is the relation's source, `in` otherwise.
    pub direction: &'static str,
    /// Summed over the sources that state the relation.
    pub weight: f64,
}

/// How often an entity is mentioned, over the whole store.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EntityStats {
    pub entity: EntityRef,
    /// Chunks that mention it.
    pub chunks: u64,
    /// Sources those chunks belong to, when asked for (it costs a visit of every mention).
    pub sources: Option<u64>,
    /// Chunks in the whole store, for weighing `chunks` against.
    pub total_chunks: u64,
}

/// A document with its chunks in order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Document {
    pub source: SourceInfo,
    pub chunks: Vec<ChunkHit>,
}

/// Nearest chunks by embedding, and full-text search: Postgres.
#[async_trait::async_trait]
pub trait TextIndex: Send + Sync {
    /// The `k` chunks nearest to `vector`, nearest first; `score` is cosine similarity.
    async fn nearest(
        &self,
        vector: &[f32],
        filter: &ChunkFilter,
        k: usize,
    ) -> Result<Vec<ChunkHit>, StoreError>;

    /// The `k` chunks that best match `query` as text, best first.
    async fn keyword(
        &self,
        query: &str,
        filter: &ChunkFilter,
        k: usize,
    ) -> Result<Vec<ChunkHit>, StoreError>;
}

/// Entities and the chunks that mention them: the graph, and Postgres's copy of it.
#[async_trait::async_trait]
pub trait EntityIndex: Send + Sync {
    /// Entities whose canonical name is one of `canonical_names`, with how many chunks
    /// mention each (and in how many sources, with `sources`).
    async fn resolve(
        &self,
        canonical_names: &[String],
        sources: bool,
    ) -> Result<Vec<EntityStats>, StoreError>;

    /// Relations of the entities `entity_ids` to others, heaviest first, at most `limit`.
    async fn neighbours(
        &self,
        entity_ids: &[String],
        limit: usize,
    ) -> Result<Vec<Neighbour>, StoreError>;

    /// Chunks that mention any of `weights`' entities, scored by the sum over them of the
    /// entity's weight × a saturating function of the mention count (BM25's, k1 = 1.2: a
    /// speaker named in forty turns of one chunk is not forty times the evidence), best first
    /// (ties: higher importance first).
    async fn mentioning(
        &self,
        weights: &[(String, f64)],
        filter: &ChunkFilter,
        k: usize,
    ) -> Result<Vec<ChunkHit>, StoreError>;
}

/// Whole documents by id.
#[async_trait::async_trait]
pub trait DocumentStore: Send + Sync {
    /// The source and its chunks (no embeddings); `None` when the store does not hold it.
    async fn document(&self, source_id: &str) -> Result<Option<Document>, StoreError>;
}

/// A last resort when no text index is reachable: chunks holding any of `words`
/// (lower-case), scored by how many distinct words they hold, then importance.
#[async_trait::async_trait]
pub trait TextScan: Send + Sync {
    async fn scan(
        &self,
        words: &[String],
        filter: &ChunkFilter,
        k: usize,
    ) -> Result<Vec<ChunkHit>, StoreError>;
}
