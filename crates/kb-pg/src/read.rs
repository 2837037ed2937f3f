//! Per-source summaries and store totals, for `kb verify` and `kb status`.

use std::collections::{BTreeMap, HashSet};

use kb_store::{SourceSummary, StoreCounts, StoreError};
use sqlx::PgPool;

use crate::error::store_error;

#[derive(Default)]
struct Parts {
    chunk_ids: Vec<String>,
    mentions: Vec<(String, String, u64)>,
    relations: u64,
}

pub(crate) async fn summaries(pool: &PgPool) -> Result<Vec<SourceSummary>, StoreError> {
    // One repeatable-read snapshot so the four reads agree with each other.
    let mut tx = pool
        .begin()
        .await
        .map_err(|e| store_error("summaries: begin", e))?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await
        .map_err(|e| store_error("summaries: snapshot", e))?;
    // A full scan of every chunk and mention (`kb verify`): not held to the statement limit.
    sqlx::query("SET LOCAL statement_timeout = 0")
        .execute(&mut *tx)
        .await
        .map_err(|e| store_error("summaries: lifting the statement limit", e))?;
    let sources: Vec<(String, i64, String)> =
        sqlx::query_as("SELECT source_id, version, status FROM sources ORDER BY source_id")
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| store_error("summaries: reading sources", e))?;
    let chunks: Vec<(String, String)> = sqlx::query_as("SELECT source_id, chunk_id FROM chunks")
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| store_error("summaries: reading chunks", e))?;
    let mentions: Vec<(String, String, String, i32)> = sqlx::query_as(
        "SELECT c.source_id, m.chunk_id, m.entity_id, m.count
         FROM chunk_mentions m JOIN chunks c ON c.chunk_id = m.chunk_id",
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(|e| store_error("summaries: reading mentions", e))?;
    let relations: Vec<(String, i64)> =
        sqlx::query_as("SELECT source_id, count(*) FROM entity_relations GROUP BY source_id")
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| store_error("summaries: reading relations", e))?;
    tx.rollback()
        .await
        .map_err(|e| store_error("summaries: ending the snapshot", e))?;

    let mut parts: BTreeMap<String, Parts> = BTreeMap::new();
    for (sid, chunk_id) in chunks {
        parts.entry(sid).or_default().chunk_ids.push(chunk_id);
    }
    for (sid, chunk_id, entity_id, count) in mentions {
        let n = u64::try_from(count).unwrap_or(0);
        parts
            .entry(sid)
            .or_default()
            .mentions
            .push((chunk_id, entity_id, n));
    }
    for (sid, n) in relations {
        parts.entry(sid).or_default().relations = nonneg(n);
    }

    Ok(sources
        .into_iter()
        .map(|(sid, version, status)| {
            let p = parts.remove(&sid).unwrap_or_default();
            let entities = p
                .mentions
                .iter()
                .map(|(_, e, _)| e.as_str())
                .collect::<HashSet<_>>()
                .len() as u64;
            SourceSummary::from_parts(
                sid,
                nonneg(version),
                status,
                p.chunk_ids,
                p.mentions,
                entities,
                p.relations,
            )
        })
        .collect())
}

type CountsRow = (i64, i64, i64, i64, i64, i64, i64);

pub(crate) async fn counts(pool: &PgPool) -> Result<StoreCounts, StoreError> {
    let (sources, failed, chunks, embedded, entities, mentions, relations): CountsRow =
        sqlx::query_as(
            "SELECT (SELECT count(*) FROM sources),
                    (SELECT count(*) FROM sources WHERE status = 'failed'),
                    (SELECT count(*) FROM chunks),
                    (SELECT count(embedding) FROM chunks),
                    (SELECT count(*) FROM entities),
                    (SELECT count(*) FROM chunk_mentions),
                    (SELECT count(*) FROM entity_relations)",
        )
        .fetch_one(pool)
        .await
        .map_err(|e| store_error("counting rows", e))?;
    Ok(StoreCounts {
        sources: nonneg(sources),
        failed_sources: nonneg(failed),
        chunks: nonneg(chunks),
        chunks_with_embeddings: nonneg(embedded),
        entities: nonneg(entities),
        mentions: nonneg(mentions),
        relations: nonneg(relations),
    })
}

fn nonneg(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}
