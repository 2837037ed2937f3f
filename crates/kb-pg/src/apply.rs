//! Applies one change in one transaction, last-writer-wins on the source version.
//!
//! Failpoints (tests): `pg.before_commit` and `pg.after_commit`, keyed by the source id.

use kb_core::failpoint::Flow;
use kb_store::{Applied, Change, StoreError};
use sqlx::{Connection, PgConnection, Postgres, Transaction};

use crate::error::store_error;
use crate::rows::{document_rows, DocumentRows, SourceRow};

/// First key of the two-key advisory locks that serialize writers per source (the second key is
/// `hashtext(source_id)`); a hash collision only serializes two unrelated sources.
const SOURCE_LOCK_CLASS: i32 = 0x6b62_7067; // "kbpg"

/// Applies `change` on `conn` (one transaction).
pub(crate) async fn apply(
    conn: &mut PgConnection,
    dimensions: usize,
    change: Change<'_>,
) -> Result<Applied, StoreError> {
    match change {
        Change::Upsert(doc) => {
            // Validate before touching the database: an invalid document writes nothing.
            let rows = document_rows(doc, dimensions)?;
            let mut tx = match begin_for_source(conn, &rows.source, true).await? {
                Begun::Stale(current) => return Ok(Applied::Stale { current }),
                Begun::Ready(tx) => tx,
            };
            write_document(&mut tx, &rows).await?;
            commit(tx, &rows.source).await?;
            Ok(Applied::Written)
        }
        Change::Delete(source_ref) => {
            let source = SourceRow::from_ref(source_ref)?;
            let mut tx = match begin_for_source(conn, &source, true).await? {
                Begun::Stale(current) => return Ok(Applied::Stale { current }),
                Begun::Ready(tx) => tx,
            };
            delete_source(&mut tx, &source).await?;
            commit(tx, &source).await?;
            Ok(Applied::Deleted)
        }
        Change::Failed(source_ref, reason) => {
            let source = SourceRow::from_ref(source_ref)?;
            let mut tx = match begin_for_source(conn, &source, false).await? {
                Begun::Stale(current) => return Ok(Applied::Stale { current }),
                Begun::Ready(tx) => tx,
            };
            mark_failed(&mut tx, &source, reason).await?;
            commit(tx, &source).await?;
            Ok(Applied::MarkedFailed)
        }
    }
}

enum Begun<'c> {
    /// The store already holds this or a newer version (live, failed or deleted).
    Stale(u64),
    /// A transaction holding the source's lock; dropping it rolls back.
    Ready(Transaction<'c, Postgres>),
}

/// Begins the source's transaction: takes its lock, then compares versions. A failure recorded
/// at the same version yields to content or a deletion of that version (`replaces_failed`):
/// a writer that gave up on V marked it failed, and a retry of V must still go in.
async fn begin_for_source<'c>(
    conn: &'c mut PgConnection,
    source: &SourceRow<'_>,
    replaces_failed: bool,
) -> Result<Begun<'c>, StoreError> {
    let sid = source.source_id;
    let ctx = |step: &str| format!("source {sid} v{}: {step}", source.version);
    let mut tx = conn
        .begin()
        .await
        .map_err(|e| store_error(ctx("begin"), e))?;
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .bind(SOURCE_LOCK_CLASS)
        .bind(sid)
        .execute(&mut *tx)
        .await
        .map_err(|e| store_error(ctx("locking the source"), e))?;
    let (current, failed): (Option<i64>, Option<i64>) = sqlx::query_as(
        "SELECT GREATEST(
             (SELECT version FROM sources WHERE source_id = $1),
             (SELECT version FROM tombstones WHERE source_id = $1)),
           (SELECT version FROM sources WHERE source_id = $1 AND status = 'failed')",
    )
    .bind(sid)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| store_error(ctx("reading the current version"), e))?;
    let retries_failed = replaces_failed && failed == Some(source.version) && current == failed;
    match current {
        Some(current) if current >= source.version && !retries_failed => {
            tx.rollback()
                .await
                .map_err(|e| store_error(ctx("rollback"), e))?;
            Ok(Begun::Stale(u64::try_from(current).unwrap_or(0)))
        }
        _ => Ok(Begun::Ready(tx)),
    }
}

async fn commit(tx: Transaction<'_, Postgres>, source: &SourceRow<'_>) -> Result<(), StoreError> {
    let sid = source.source_id;
    let ctx = |step: &str| format!("source {sid} v{}: {step}", source.version);
    if let Flow::Err(msg) = kb_core::failpoint!("pg.before_commit", sid) {
        return Err(StoreError::transient(ctx(&format!("failpoint: {msg}"))));
    }
    tx.commit()
        .await
        .map_err(|e| store_error(ctx("commit"), e))?;
    if let Flow::Err(msg) = kb_core::failpoint!("pg.after_commit", sid) {
        return Err(StoreError::transient(ctx(&format!("failpoint: {msg}"))));
    }
    Ok(())
}

async fn write_document(tx: &mut PgConnection, rows: &DocumentRows<'_>) -> Result<(), StoreError> {
    let sid = rows.source.source_id;
    let ctx = |step: &str| format!("upsert of source {sid}: {step}");
    let before = referenced_entities(tx, sid).await?;
    remove_content(tx, sid).await?;
    upsert_source(
        tx,
        &rows.source,
        "ok",
        None,
        Some(rows.title),
        Some(rows.embedding_model),
        Some(rows.parser),
    )
    .await?;

    let e = &rows.entities;
    sqlx::query(
        "INSERT INTO entities (entity_id, name, canonical_name, entity_type)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[])
         ON CONFLICT (entity_id) DO NOTHING",
    )
    .bind(&e.ids)
    .bind(&e.names)
    .bind(&e.canonical_names)
    .bind(&e.types)
    .execute(&mut *tx)
    .await
    .map_err(|err| store_error(ctx("inserting entities"), err))?;

    for b in &rows.chunk_batches {
        sqlx::query(
            "INSERT INTO chunks (chunk_id, source_id, chunk_index, text, importance_score,
                 embedding, start_offset, end_offset, token_count, speakers,
                 start_seconds, end_seconds, section)
             SELECT c.chunk_id, $1, c.chunk_index, c.text, c.importance_score,
                 c.embedding, c.start_offset, c.end_offset, c.token_count,
                 ARRAY(SELECT s FROM jsonb_array_elements_text(c.speakers::jsonb)
                       WITH ORDINALITY AS t(s, i) ORDER BY i),
                 c.start_seconds, c.end_seconds, c.section
             FROM UNNEST($2::text[], $3::int4[], $4::text[], $5::float4[], $6::vector[],
                 $7::int8[], $8::int8[], $9::int4[], $10::text[], $11::float8[], $12::float8[],
                 $13::text[])
               AS c(chunk_id, chunk_index, text, importance_score, embedding, start_offset,
                 end_offset, token_count, speakers, start_seconds, end_seconds, section)",
        )
        .bind(sid)
        .bind(&b.ids)
        .bind(&b.indexes)
        .bind(&b.texts)
        .bind(&b.scores)
        .bind(&b.embeddings)
        .bind(&b.start_offsets)
        .bind(&b.end_offsets)
        .bind(&b.token_counts)
        .bind(&b.speakers)
        .bind(&b.start_seconds)
        .bind(&b.end_seconds)
        .bind(&b.sections)
        .execute(&mut *tx)
        .await
        .map_err(|err| store_error(ctx("inserting chunks"), err))?;
    }

    let m = &rows.mentions;
    sqlx::query(
        "INSERT INTO chunk_mentions (chunk_id, entity_id, count)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::int4[])",
    )
    .bind(&m.chunk_ids)
    .bind(&m.entity_ids)
    .bind(&m.counts)
    .execute(&mut *tx)
    .await
    .map_err(|err| store_error(ctx("inserting mentions"), err))?;

    let r = &rows.relations;
    sqlx::query(
        "INSERT INTO entity_relations
             (source_id, source_entity_id, target_entity_id, relation_type, weight)
         SELECT $1, r.* FROM UNNEST($2::text[], $3::text[], $4::text[], $5::float4[]) AS r",
    )
    .bind(sid)
    .bind(&r.sources)
    .bind(&r.targets)
    .bind(&r.types)
    .bind(&r.weights)
    .execute(&mut *tx)
    .await
    .map_err(|err| store_error(ctx("inserting relations"), err))?;

    sqlx::query("DELETE FROM tombstones WHERE source_id = $1")
        .bind(sid)
        .execute(&mut *tx)
        .await
        .map_err(|err| store_error(ctx("clearing the tombstone"), err))?;

    // Entities this source referenced before but no longer does may now be orphans.
    let now = rows.referenced_entities();
    let dropped: Vec<String> = before
        .into_iter()
        .filter(|id| !now.contains(id.as_str()))
        .collect();
    remove_orphans(tx, sid, dropped).await
}

async fn delete_source(tx: &mut PgConnection, source: &SourceRow<'_>) -> Result<(), StoreError> {
    let sid = source.source_id;
    let before = referenced_entities(tx, sid).await?;
    // Chunks, mentions and relations go with the source (ON DELETE CASCADE).
    sqlx::query("DELETE FROM sources WHERE source_id = $1")
        .bind(sid)
        .execute(&mut *tx)
        .await
        .map_err(|e| store_error(format!("delete of source {sid}: removing it"), e))?;
    sqlx::query(
        "INSERT INTO tombstones (source_id, version, deleted_at) VALUES ($1, $2, now())
         ON CONFLICT (source_id) DO UPDATE SET version = EXCLUDED.version, deleted_at = now()",
    )
    .bind(sid)
    .bind(source.version)
    .execute(&mut *tx)
    .await
    .map_err(|e| {
        store_error(
            format!("delete of source {sid}: recording the tombstone"),
            e,
        )
    })?;
    remove_orphans(tx, sid, before).await
}

async fn mark_failed(
    tx: &mut PgConnection,
    source: &SourceRow<'_>,
    reason: &str,
) -> Result<(), StoreError> {
    let sid = source.source_id;
    let before = referenced_entities(tx, sid).await?;
    remove_content(tx, sid).await?;
    upsert_source(tx, source, "failed", Some(reason), None, None, None).await?;
    sqlx::query("DELETE FROM tombstones WHERE source_id = $1")
        .bind(sid)
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            store_error(
                format!("failure of source {sid}: clearing the tombstone"),
                e,
            )
        })?;
    remove_orphans(tx, sid, before).await
}

/// Removes the source's chunks (and with them their mentions) and relations.
async fn remove_content(tx: &mut PgConnection, sid: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM chunks WHERE source_id = $1")
        .bind(sid)
        .execute(&mut *tx)
        .await
        .map_err(|e| store_error(format!("source {sid}: removing old chunks"), e))?;
    sqlx::query("DELETE FROM entity_relations WHERE source_id = $1")
        .bind(sid)
        .execute(&mut *tx)
        .await
        .map_err(|e| store_error(format!("source {sid}: removing old relations"), e))?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn upsert_source(
    tx: &mut PgConnection,
    s: &SourceRow<'_>,
    status: &str,
    error: Option<&str>,
    title: Option<&str>,
    embedding_model: Option<&str>,
    parser: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO sources (source_id, version, origin, path, title, content_hash, media_type,
             size_bytes, modified_at, status, error, embedding_model, parser, updated_at, link,
             document_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, to_timestamp($9), $10, $11, $12, $13, now(),
             $14, to_timestamp($15))
         ON CONFLICT (source_id) DO UPDATE SET
             version = EXCLUDED.version, origin = EXCLUDED.origin, path = EXCLUDED.path,
             title = EXCLUDED.title, content_hash = EXCLUDED.content_hash,
             media_type = EXCLUDED.media_type, size_bytes = EXCLUDED.size_bytes,
             modified_at = EXCLUDED.modified_at, status = EXCLUDED.status,
             error = EXCLUDED.error, embedding_model = EXCLUDED.embedding_model,
             parser = EXCLUDED.parser, updated_at = now(), link = EXCLUDED.link,
             document_at = EXCLUDED.document_at",
    )
    .bind(s.source_id)
    .bind(s.version)
    .bind(s.origin)
    .bind(s.path)
    .bind(title)
    .bind(s.content_hash)
    .bind(s.media_type)
    .bind(s.size_bytes)
    .bind(s.modified_at)
    .bind(status)
    .bind(error)
    .bind(embedding_model)
    .bind(parser)
    .bind(s.link)
    .bind(s.document_at)
    .execute(&mut *tx)
    .await
    .map_err(|e| store_error(format!("source {}: writing the source row", s.source_id), e))?;
    Ok(())
}

/// Entities the source currently references through its chunks' mentions or its relations.
async fn referenced_entities(tx: &mut PgConnection, sid: &str) -> Result<Vec<String>, StoreError> {
    sqlx::query_scalar(
        "SELECT m.entity_id FROM chunk_mentions m JOIN chunks c ON c.chunk_id = m.chunk_id
         WHERE c.source_id = $1
         UNION SELECT source_entity_id FROM entity_relations WHERE source_id = $1
         UNION SELECT target_entity_id FROM entity_relations WHERE source_id = $1",
    )
    .bind(sid)
    .fetch_all(&mut *tx)
    .await
    .map_err(|e| store_error(format!("source {sid}: reading referenced entities"), e))
}

/// Deletes those of `candidates` that nothing references any more: "a delete removes the
/// document and whatever only it referenced".
async fn remove_orphans(
    tx: &mut PgConnection,
    sid: &str,
    mut candidates: Vec<String>,
) -> Result<(), StoreError> {
    if candidates.is_empty() {
        return Ok(());
    }
    // Same lock order in every writer.
    candidates.sort_unstable();
    candidates.dedup();
    sqlx::query(
        "DELETE FROM entities e
         WHERE e.entity_id = ANY($1::text[])
           AND NOT EXISTS (SELECT 1 FROM chunk_mentions m WHERE m.entity_id = e.entity_id)
           AND NOT EXISTS (SELECT 1 FROM entity_relations r WHERE r.source_entity_id = e.entity_id)
           AND NOT EXISTS (SELECT 1 FROM entity_relations r WHERE r.target_entity_id = e.entity_id)",
    )
    .bind(&candidates)
    .execute(&mut *tx)
    .await
    .map_err(|e| store_error(format!("source {sid}: removing orphaned entities"), e))?;
    Ok(())
}
