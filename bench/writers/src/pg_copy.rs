//! The Postgres baseline: the same rows loaded with binary `COPY` (one stream per table, no
//! index on the vectors), then the HNSW index built once, as a hand-written bulk load would.

use kb_proto::ParsedDocument;
use sqlx::{Connection, PgConnection};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The PostgreSQL binary COPY format (see the manual's COPY page, "Binary Format").
pub struct CopyBuf {
    buf: Vec<u8>,
}

impl CopyBuf {
    pub fn new() -> Self {
        let mut buf = Vec::with_capacity(1 << 20);
        buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        buf.extend_from_slice(&0i32.to_be_bytes()); // flags
        buf.extend_from_slice(&0i32.to_be_bytes()); // header extension length
        Self { buf }
    }
    pub fn row(&mut self, fields: i16) {
        self.buf.extend_from_slice(&fields.to_be_bytes());
    }
    fn field(&mut self, bytes: &[u8]) {
        self.buf
            .extend_from_slice(&(bytes.len() as i32).to_be_bytes());
        self.buf.extend_from_slice(bytes);
    }
    pub fn null(&mut self) {
        self.buf.extend_from_slice(&(-1i32).to_be_bytes());
    }
    pub fn text(&mut self, s: &str) {
        self.field(s.as_bytes());
    }
    pub fn int4(&mut self, v: i32) {
        self.field(&v.to_be_bytes());
    }
    pub fn int8(&mut self, v: i64) {
        self.field(&v.to_be_bytes());
    }
    pub fn float4(&mut self, v: f32) {
        self.field(&v.to_be_bytes());
    }
    pub fn float8(&mut self, v: f64) {
        self.field(&v.to_be_bytes());
    }
    /// pgvector's binary form: dimension (int16), unused (int16), float4 values.
    pub fn vector(&mut self, v: &[f32]) {
        self.buf
            .extend_from_slice(&((4 + 4 * v.len()) as i32).to_be_bytes());
        self.buf.extend_from_slice(&(v.len() as i16).to_be_bytes());
        self.buf.extend_from_slice(&0i16.to_be_bytes());
        for x in v {
            self.buf.extend_from_slice(&x.to_be_bytes());
        }
    }
    /// A one-dimensional `text[]` (element type oid 25).
    pub fn text_array(&mut self, items: &[String]) {
        let mut a = Vec::new();
        let ndim: i32 = if items.is_empty() { 0 } else { 1 };
        a.extend_from_slice(&ndim.to_be_bytes());
        a.extend_from_slice(&0i32.to_be_bytes()); // no nulls
        a.extend_from_slice(&25u32.to_be_bytes());
        if ndim == 1 {
            a.extend_from_slice(&(items.len() as i32).to_be_bytes());
            a.extend_from_slice(&1i32.to_be_bytes()); // lower bound
            for s in items {
                a.extend_from_slice(&(s.len() as i32).to_be_bytes());
                a.extend_from_slice(s.as_bytes());
            }
        }
        self.field(&a);
    }
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        self.buf
    }
}

async fn copy(conn: &mut PgConnection, statement: &str, data: Vec<u8>) -> anyhow::Result<u64> {
    let mut c = conn.copy_in_raw(statement).await?;
    c.send(data).await?;
    Ok(c.finish().await?)
}

pub struct CopyTimes {
    pub rows: u64,
    pub load: Duration,
    pub index: Duration,
}

/// Loads `docs` into a prepared, empty store (`url`) by COPY, then builds the HNSW index.
pub async fn load(url: &str, docs: &[ParsedDocument]) -> anyhow::Result<CopyTimes> {
    let mut conn = PgConnection::connect(url).await?;
    sqlx::query("DROP INDEX IF EXISTS chunks_embedding_hnsw_idx")
        .execute(&mut conn)
        .await?;
    let started = Instant::now();
    let mut rows = 0;

    let mut b = CopyBuf::new();
    for d in docs {
        let s = d.source.clone().unwrap_or_default();
        b.row(12);
        b.text(&s.source_id);
        b.int8(s.version as i64);
        b.text(&s.origin);
        b.text(&s.path);
        b.text(&d.title);
        b.text(&s.content_hash);
        b.text(&s.media_type);
        b.int8(s.size as i64);
        b.null(); // modified_at
        b.text("ok");
        b.text(&d.embedding_model);
        b.text(&d.parser);
    }
    rows += copy(
        &mut conn,
        "COPY sources (source_id, version, origin, path, title, content_hash, media_type, \
         size_bytes, modified_at, status, embedding_model, parser) FROM STDIN (FORMAT binary)",
        b.finish(),
    )
    .await?;

    let entities: BTreeMap<&str, &kb_proto::Entity> = docs
        .iter()
        .flat_map(|d| d.entities.iter().map(|e| (e.entity_id.as_str(), e)))
        .collect();
    let mut b = CopyBuf::new();
    for e in entities.values() {
        b.row(4);
        b.text(&e.entity_id);
        b.text(&e.name);
        b.text(&e.canonical_name);
        b.text(&e.entity_type);
    }
    rows += copy(
        &mut conn,
        "COPY entities (entity_id, name, canonical_name, entity_type) FROM STDIN (FORMAT binary)",
        b.finish(),
    )
    .await?;

    // Chunks in slices, so the buffer stays small however large the knowledge base.
    for part in docs.chunks(20) {
        let mut b = CopyBuf::new();
        for d in part {
            let sid = d
                .source
                .as_ref()
                .map(|s| s.source_id.as_str())
                .unwrap_or_default();
            for c in &d.chunks {
                b.row(13);
                b.text(&c.chunk_id);
                b.text(sid);
                b.int4(c.index as i32);
                b.text(&c.text);
                b.float4(c.importance_score);
                b.vector(&c.embedding);
                b.int8(c.start_offset as i64);
                b.int8(c.end_offset as i64);
                b.int4(c.token_count as i32);
                b.text_array(&c.speakers);
                b.float8(c.start_seconds);
                b.float8(c.end_seconds);
                b.null(); // section
            }
        }
        rows += copy(
            &mut conn,
            "COPY chunks (chunk_id, source_id, chunk_index, text, importance_score, embedding, \
             start_offset, end_offset, token_count, speakers, start_seconds, end_seconds, section) \
             FROM STDIN (FORMAT binary)",
            b.finish(),
        )
        .await?;
    }

    let mut b = CopyBuf::new();
    for d in docs {
        for m in &d.mentions {
            b.row(3);
            b.text(&m.chunk_id);
            b.text(&m.entity_id);
            b.int4(m.count as i32);
        }
    }
    rows += copy(
        &mut conn,
        "COPY chunk_mentions (chunk_id, entity_id, count) FROM STDIN (FORMAT binary)",
        b.finish(),
    )
    .await?;

    let mut b = CopyBuf::new();
    for d in docs {
        let sid = d
            .source
            .as_ref()
            .map(|s| s.source_id.as_str())
            .unwrap_or_default();
        for r in &d.relations {
            b.row(5);
            b.text(sid);
            b.text(&r.source_entity_id);
            b.text(&r.target_entity_id);
            b.text(&r.relation_type);
            b.float4(r.weight);
        }
    }
    rows += copy(
        &mut conn,
        "COPY entity_relations (source_id, source_entity_id, target_entity_id, relation_type, \
         weight) FROM STDIN (FORMAT binary)",
        b.finish(),
    )
    .await?;
    let load = started.elapsed();

    // The same index, built the same way as the writer's bulk mode does.
    let started = Instant::now();
    let mut tx = conn.begin().await?;
    sqlx::query("SET LOCAL maintenance_work_mem = '512MB'")
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "CREATE INDEX chunks_embedding_hnsw_idx ON chunks USING hnsw (embedding vector_cosine_ops)",
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(CopyTimes {
        rows,
        load,
        index: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_copy_framing() {
        let mut b = CopyBuf::new();
        b.row(2);
        b.text("ab");
        b.vector(&[1.0, -2.0]);
        let out = b.finish();
        assert!(out.starts_with(b"PGCOPY\n\xff\r\n\0"));
        // header 19, row: 2 + (4+2) + (4+4+8), trailer 2
        assert_eq!(out.len(), 19 + 2 + 6 + 16 + 2);
        assert_eq!(&out[out.len() - 2..], &(-1i16).to_be_bytes());
    }
}
