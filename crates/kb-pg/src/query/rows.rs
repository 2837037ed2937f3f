//! The columns every read query selects for a chunk and its source, and their mapping.

use kb_store::read::{ChunkHit, SourceInfo};

/// Select list for a chunk `c` joined to its source `s`; queries add `score`.
pub(crate) const CHUNK_COLUMNS: &str = "c.chunk_id, c.chunk_index, c.text, \
     COALESCE(c.importance_score, 0)::float8 AS importance, c.speakers, c.start_seconds, \
     c.end_seconds, c.section, ";

pub(crate) const SOURCE_COLUMNS: &str = "s.source_id, s.version, s.origin, s.path, \
     COALESCE(s.title, '') AS title, s.media_type, s.link, \
     (extract(epoch FROM s.modified_at) * 1000)::int8 AS modified_ms, \
     (extract(epoch FROM s.document_at) * 1000)::int8 AS document_ms, s.status, s.error";

#[derive(sqlx::FromRow)]
pub(crate) struct SourceRow {
    source_id: String,
    version: i64,
    origin: String,
    path: String,
    title: String,
    media_type: String,
    link: String,
    modified_ms: Option<i64>,
    document_ms: Option<i64>,
    status: String,
    error: Option<String>,
}

impl From<SourceRow> for SourceInfo {
    fn from(r: SourceRow) -> Self {
        SourceInfo {
            source_id: r.source_id,
            version: u64::try_from(r.version).unwrap_or(0),
            origin: r.origin,
            path: r.path,
            title: r.title,
            media_type: r.media_type,
            link: r.link,
            modified_unix_ms: r.modified_ms,
            document_unix_ms: r.document_ms,
            status: r.status,
            error: r.error,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ChunkRow {
    chunk_id: String,
    chunk_index: i32,
    text: String,
    importance: f64,
    speakers: Vec<String>,
    start_seconds: Option<f64>,
    end_seconds: Option<f64>,
    section: Option<String>,
    #[sqlx(flatten)]
    source: SourceRow,
    score: f64,
}

impl From<ChunkRow> for ChunkHit {
    fn from(r: ChunkRow) -> Self {
        ChunkHit {
            chunk_id: r.chunk_id,
            chunk_index: u32::try_from(r.chunk_index).unwrap_or(0),
            text: r.text,
            importance: r.importance as f32,
            speakers: r.speakers,
            // The writer stores unknown times as NULL; negative values never reach readers.
            start_seconds: r.start_seconds.filter(|s| *s >= 0.0),
            end_seconds: r.end_seconds.filter(|s| *s >= 0.0),
            section: r.section.filter(|s| !s.is_empty()),
            source: r.source.into(),
            score: r.score,
        }
    }
}
