//! The read side of the graph ([`kb_store::read`]): entities named in a question, the chunks
//! that mention them, their neighbours, whole documents, and a text scan for when Postgres is
//! away. Every statement is in [`crate::cypher`]; every value is a parameter.

use kb_store::read::{
    ChunkFilter, ChunkHit, Document, DocumentStore, EntityIndex, EntityRef, EntityStats,
    MediaTypeFilter, Neighbour, SourceInfo, TextScan,
};
use kb_store::StoreError;
use neo4rs::{BoltType, Row};

use crate::bolt::{opt_i64, opt_string, read_rows, req_i64, req_string};
use crate::cypher;
use crate::rows::{float, int, list, map, string};
use crate::{with_timeout, GraphStore};

/// How long the chunk count weighing entities is reused.
const CHUNK_TOTAL_TTL: std::time::Duration = std::time::Duration::from_secs(60);

fn limit(k: usize) -> BoltType {
    int(i64::try_from(k).unwrap_or(i64::MAX))
}

/// The `$f_*` parameters [`cypher::filter_clause`] refers to.
fn filter_params(f: &ChunkFilter) -> Vec<(&'static str, BoltType)> {
    let mut p = Vec::new();
    if let Some(path) = &f.path_prefix {
        p.push(("f_path", string(path)));
    }
    if let Some(origin) = &f.origin {
        let (exact, prefixes) = origin.exact_and_prefixes();
        p.push(("f_origins", list(exact.iter().map(|s| string(s)).collect())));
        p.push((
            "f_origin_prefixes",
            list(prefixes.iter().map(|s| string(s)).collect()),
        ));
    }
    match &f.media_type {
        Some(MediaTypeFilter::Exact(m) | MediaTypeFilter::Prefix(m)) => {
            p.push(("f_media", string(m)))
        }
        None => {}
    }
    if let Some(s) = &f.speaker {
        p.push(("f_speaker", string(s)));
    }
    if let Some(t) = f.from_unix_ms {
        p.push(("f_from", int(t)));
    }
    if let Some(t) = f.to_unix_ms {
        p.push(("f_to", int(t)));
    }
    if !f.entity_names.is_empty() {
        p.push((
            "f_entity",
            list(f.entity_names.iter().map(|s| string(s)).collect()),
        ));
    }
    p
}

/// A number column that a server may hand back as an integer or a float.
fn opt_f64(row: &Row, column: &str) -> Option<f64> {
    row.get::<Option<f64>>(column).ok().flatten().or_else(|| {
        row.get::<Option<i64>>(column)
            .ok()
            .flatten()
            .map(|i| i as f64)
    })
}

fn source_info(row: &Row) -> Result<SourceInfo, StoreError> {
    let nonzero = |v: Option<i64>| v.filter(|ms| *ms != 0);
    Ok(SourceInfo {
        source_id: req_string(row, "source_id")?,
        version: u64::try_from(opt_i64(row, "version")?.unwrap_or(0)).unwrap_or(0),
        origin: opt_string(row, "origin")?.unwrap_or_default(),
        path: opt_string(row, "path")?.unwrap_or_default(),
        title: opt_string(row, "title")?.unwrap_or_default(),
        media_type: opt_string(row, "media_type")?.unwrap_or_default(),
        link: opt_string(row, "link")?.unwrap_or_default(),
        modified_unix_ms: nonzero(opt_i64(row, "modified_ms")?),
        document_unix_ms: nonzero(opt_i64(row, "document_ms")?),
        status: opt_string(row, "status")?.unwrap_or_else(|| "ok".into()),
        error: opt_string(row, "error")?,
    })
}

fn chunk_hit(row: &Row) -> Result<ChunkHit, StoreError> {
    Ok(ChunkHit {
        chunk_id: req_string(row, "chunk_id")?,
        chunk_index: u32::try_from(opt_i64(row, "chunk_index")?.unwrap_or(0)).unwrap_or(0),
        text: opt_string(row, "text")?.unwrap_or_default(),
        importance: opt_f64(row, "importance").unwrap_or(0.0) as f32,
        speakers: row
            .get::<Option<Vec<String>>>("speakers")
            .ok()
            .flatten()
            .unwrap_or_default(),
        start_seconds: opt_f64(row, "start_seconds").filter(|s| *s >= 0.0),
        end_seconds: opt_f64(row, "end_seconds").filter(|s| *s >= 0.0),
        section: opt_string(row, "section")?.filter(|s| !s.is_empty()),
        source: source_info(row)?,
        score: opt_f64(row, "score").unwrap_or(0.0),
    })
}

fn entity_ref(row: &Row) -> Result<EntityRef, StoreError> {
    Ok(EntityRef {
        entity_id: req_string(row, "entity_id")?,
        name: opt_string(row, "name")?.unwrap_or_default(),
        canonical_name: opt_string(row, "canonical_name")?.unwrap_or_default(),
        entity_type: opt_string(row, "entity_type")?.unwrap_or_default(),
    })
}

impl GraphStore {
    /// Runs one read statement on its own, within the store's timeout.
    async fn read(
        &self,
        what: &'static str,
        cypher: &str,
        params: Vec<(&str, BoltType)>,
    ) -> Result<Vec<Row>, StoreError> {
        let (_, graph) = self.pool.get();
        with_timeout(
            self.timeout,
            what,
            read_rows(&graph, self.database.as_deref(), what, cypher, params),
        )
        .await
    }

    /// Chunks in the graph, counted at most every [`CHUNK_TOTAL_TTL`] (weights need only
    /// its order of magnitude).
    async fn chunk_total(&self) -> Result<u64, StoreError> {
        if let Some((n, at)) = *self.chunk_total.lock().unwrap_or_else(|p| p.into_inner()) {
            if at.elapsed() < CHUNK_TOTAL_TTL {
                return Ok(n);
            }
        }
        let rows = self
            .read("count chunks", cypher::COUNT_CHUNKS, vec![])
            .await?;
        let n = rows
            .first()
            .map(|r| req_i64(r, "n"))
            .transpose()?
            .map_or(0, |n| u64::try_from(n).unwrap_or(0));
        *self.chunk_total.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((n, std::time::Instant::now()));
        Ok(n)
    }

    /// Answers a trivial query: the server is up and these credentials work.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.read("ping", "RETURN 1 AS n", vec![]).await.map(drop)
    }
}

#[async_trait::async_trait]
impl EntityIndex for GraphStore {
    async fn resolve(
        &self,
        canonical_names: &[String],
        sources: bool,
    ) -> Result<Vec<EntityStats>, StoreError> {
        if canonical_names.is_empty() {
            return Ok(Vec::new());
        }
        let names = list(canonical_names.iter().map(|n| string(n)).collect());
        let statement = if sources {
            cypher::RESOLVE_ENTITIES_WITH_SOURCES
        } else {
            cypher::RESOLVE_ENTITIES
        };
        let rows = self
            .read("resolve entities", statement, vec![("names", names)])
            .await?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let total = self.chunk_total().await?;
        let mut out = rows
            .iter()
            .map(|row| {
                Ok(EntityStats {
                    entity: entity_ref(row)?,
                    chunks: u64::try_from(req_i64(row, "chunks")?).unwrap_or(0),
                    sources: if sources {
                        Some(u64::try_from(req_i64(row, "sources")?).unwrap_or(0))
                    } else {
                        None
                    },
                    total_chunks: total,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        out.sort_by(|a, b| a.entity.entity_id.cmp(&b.entity.entity_id));
        Ok(out)
    }

    async fn neighbours(
        &self,
        entity_ids: &[String],
        limit_n: usize,
    ) -> Result<Vec<Neighbour>, StoreError> {
        if entity_ids.is_empty() || limit_n == 0 {
            return Ok(Vec::new());
        }
        let ids = list(entity_ids.iter().map(|n| string(n)).collect());
        let rows = self
            .read(
                "entity neighbours",
                &cypher::neighbours(),
                vec![("ids", ids), ("limit", limit(limit_n))],
            )
            .await?;
        rows.iter()
            .map(|row| {
                let out = row.get::<bool>("out").unwrap_or(true);
                Ok(Neighbour {
                    of: req_string(row, "of")?,
                    entity: entity_ref(row)?,
                    relation: opt_string(row, "relation")?.unwrap_or_default(),
                    direction: if out { "out" } else { "in" },
                    weight: opt_f64(row, "weight").unwrap_or(0.0),
                })
            })
            .collect()
    }

    async fn mentioning(
        &self,
        weights: &[(String, f64)],
        filter: &ChunkFilter,
        k: usize,
    ) -> Result<Vec<ChunkHit>, StoreError> {
        if weights.is_empty() || k == 0 {
            return Ok(Vec::new());
        }
        let ws = list(
            weights
                .iter()
                .map(|(id, w)| map([("id", string(id)), ("weight", float(*w))]))
                .collect(),
        );
        let mut params = filter_params(filter);
        params.push(("weights", ws));
        params.push(("k", limit(k)));
        let rows = self
            .read(
                "chunks mentioning entities",
                &cypher::mentioning(&cypher::filter_clause(filter)),
                params,
            )
            .await?;
        rows.iter().map(chunk_hit).collect()
    }
}

#[async_trait::async_trait]
impl DocumentStore for GraphStore {
    async fn document(&self, source_id: &str) -> Result<Option<Document>, StoreError> {
        let sid = || vec![("sid", string(source_id))];
        let sources = self
            .read("read a source", &cypher::read_source(), sid())
            .await?;
        let Some(row) = sources.first() else {
            return Ok(None);
        };
        let source = source_info(row)?;
        let chunks = self
            .read(
                "read a source's chunks",
                &cypher::read_document_chunks(),
                sid(),
            )
            .await?
            .iter()
            .map(chunk_hit)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(Document { source, chunks }))
    }
}

#[async_trait::async_trait]
impl TextScan for GraphStore {
    async fn scan(
        &self,
        words: &[String],
        filter: &ChunkFilter,
        k: usize,
    ) -> Result<Vec<ChunkHit>, StoreError> {
        if words.is_empty() || k == 0 {
            return Ok(Vec::new());
        }
        let mut params = filter_params(filter);
        params.push(("words", list(words.iter().map(|w| string(w)).collect())));
        params.push(("k", limit(k)));
        let rows = self
            .read(
                "text scan",
                &cypher::text_scan(&cypher::filter_clause(filter)),
                params,
            )
            .await?;
        rows.iter().map(chunk_hit).collect()
    }
}
