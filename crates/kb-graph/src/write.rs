//! Applying one change to one source in one transaction, last-writer-wins on its version.
//!
//! Failpoint (tests): `graph.before_commit`, keyed by the source id.

use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

use kb_core::failpoint::Flow;
use kb_store::{Applied, Change, StoreError};
use neo4rs::{BoltType, Graph};

use crate::bolt::{opt_i64, opt_string, Tx, BATCH_ROWS};
use crate::cypher;
use crate::rows::{self, document_rows, int, list, string, DocumentRows};
use crate::vocab::RelationType;

/// What the change asks for, with everything validated and converted before the transaction
/// starts (a malformed document never costs a round trip).
enum Plan {
    Upsert { rows: DocumentRows, props: BoltType },
    Failed { props: BoltType },
    Delete,
}

/// One attempt: begin, check the version, write, commit (or roll back when stale).
pub(crate) async fn apply_once(
    graph: &Graph,
    database: Option<&str>,
    change: Change<'_>,
) -> Result<Applied, StoreError> {
    let source = change
        .source()
        .ok_or_else(|| StoreError::permanent("graph: upsert without a source reference"))?;
    let sid = source.source_id.as_str();
    if sid.is_empty() {
        return Err(StoreError::permanent(
            "graph: change with an empty source id",
        ));
    }
    let version = i64::try_from(source.version).map_err(|_| {
        StoreError::permanent(format!(
            "graph: version {} of {sid} does not fit a Bolt integer",
            source.version
        ))
    })?;
    let now = now_ms();
    let plan = match change {
        Change::Upsert(doc) => Plan::Upsert {
            rows: document_rows(doc, sid)?,
            props: rows::source_props(source, version, doc, now),
        },
        Change::Failed(_, error) => Plan::Failed {
            props: rows::failed_source_props(source, version, error, now),
        },
        Change::Delete(_) => Plan::Delete,
    };

    let mut tx = Tx::begin(graph, database).await?;
    match write(&mut tx, sid, version, now, &plan).await {
        Ok(Applied::Stale { current }) => {
            // Undoes the placeholder Source the lock may have created.
            tx.rollback().await;
            Ok(Applied::Stale { current })
        }
        Ok(applied) => {
            if let Flow::Err(msg) = kb_core::failpoint!("graph.before_commit", sid) {
                tx.rollback().await;
                return Err(StoreError::transient(format!(
                    "graph: failpoint before commit: {msg}"
                )));
            }
            tx.commit().await?;
            Ok(applied)
        }
        Err(e) => {
            tx.rollback().await;
            Err(e)
        }
    }
}

async fn write(
    tx: &mut Tx,
    sid: &str,
    version: i64,
    now: i64,
    plan: &Plan,
) -> Result<Applied, StoreError> {
    let p = |extra: Vec<(&'static str, BoltType)>| {
        let mut v = vec![("sid", string(sid))];
        v.extend(extra);
        v
    };

    tx.run("lock source", cypher::LOCK_SOURCE, p(vec![]))
        .await?;
    let found = tx
        .rows("read version", cypher::READ_VERSION, p(vec![]))
        .await?;
    let (mut stored, mut status, mut tombstone) = (None, None, None);
    if let Some(row) = found.first() {
        stored = opt_i64(row, "source_version")?;
        status = opt_string(row, "source_status")?;
        tombstone = opt_i64(row, "tombstone_version")?;
    }
    let current = stored.max(tombstone);
    // A failure recorded at this very version (a writer that gave up on it) yields to the
    // content or the deletion of that version: a retry of it must go in.
    let retries_failed = !matches!(plan, Plan::Failed { .. })
        && stored == Some(version)
        && current == stored
        && status.as_deref() == Some("failed");
    if let Some(current) = current.filter(|c| *c >= version && !retries_failed) {
        return Ok(Applied::Stale {
            current: u64::try_from(current).unwrap_or(0),
        });
    }

    // A Source without a version is the placeholder the lock just created: nothing to clear.
    let touched = if stored.is_some() {
        clear_content(tx, sid).await?
    } else {
        BTreeSet::new()
    };

    let applied = match plan {
        Plan::Upsert { rows, props } => {
            tx.run(
                "write source",
                cypher::SET_SOURCE_OK,
                p(vec![("props", props.clone())]),
            )
            .await?;
            write_content(tx, sid, rows).await?;
            tx.run("remove tombstone", cypher::DELETE_TOMBSTONE, p(vec![]))
                .await?;
            Applied::Written
        }
        Plan::Failed { props } => {
            tx.run(
                "write failed source",
                cypher::SET_SOURCE_FAILED,
                p(vec![("props", props.clone())]),
            )
            .await?;
            tx.run("remove tombstone", cypher::DELETE_TOMBSTONE, p(vec![]))
                .await?;
            Applied::MarkedFailed
        }
        Plan::Delete => {
            tx.run("delete source", cypher::DELETE_SOURCE, p(vec![]))
                .await?;
            tx.run(
                "write tombstone",
                cypher::SET_TOMBSTONE,
                p(vec![("version", int(version)), ("now", int(now))]),
            )
            .await?;
            Applied::Deleted
        }
    };

    delete_orphans(tx, touched).await?;
    Ok(applied)
}

/// Removes the source's chunks (with their MENTIONS and NEXT) and its relations; returns the
/// entities they touched, which may now be orphans.
async fn clear_content(tx: &mut Tx, sid: &str) -> Result<BTreeSet<String>, StoreError> {
    let sid_param = || vec![("sid", string(sid))];
    let mut touched = BTreeSet::new();
    for row in tx
        .rows(
            "read mentioned entities",
            cypher::MENTIONED_ENTITIES,
            sid_param(),
        )
        .await?
    {
        touched.extend(opt_string(&row, "id")?);
    }
    for t in RelationType::ALL {
        for row in tx
            .rows(
                "read relation ends",
                &cypher::relation_endpoints(t),
                sid_param(),
            )
            .await?
        {
            touched.extend(opt_string(&row, "a")?);
            touched.extend(opt_string(&row, "b")?);
        }
        tx.run(
            "delete relations",
            &cypher::delete_relations(t),
            sid_param(),
        )
        .await?;
    }
    tx.run("delete chunks", cypher::DELETE_CHUNKS, sid_param())
        .await?;
    Ok(touched)
}

async fn write_content(tx: &mut Tx, sid: &str, rows: &DocumentRows) -> Result<(), StoreError> {
    tx.run_batched("write chunks", cypher::UPSERT_CHUNKS, sid, &rows.chunks)
        .await?;
    tx.run_batched("link chunks", cypher::UPSERT_NEXT, sid, &rows.next)
        .await?;
    tx.run_batched(
        "write entities",
        cypher::UPSERT_ENTITIES,
        sid,
        &rows.entities,
    )
    .await?;
    tx.run_batched(
        "write mentions",
        cypher::UPSERT_MENTIONS,
        sid,
        &rows.mentions,
    )
    .await?;
    for (t, rels) in &rows.relations {
        tx.run_batched("write relations", &cypher::upsert_relations(*t), sid, rels)
            .await?;
    }
    Ok(())
}

async fn delete_orphans(tx: &mut Tx, ids: BTreeSet<String>) -> Result<(), StoreError> {
    let ids: Vec<BoltType> = ids.iter().map(|id| string(id)).collect();
    for batch in ids.chunks(BATCH_ROWS) {
        tx.run(
            "delete orphan entities",
            cypher::DELETE_ORPHAN_ENTITIES,
            vec![("ids", list(batch.to_vec()))],
        )
        .await?;
    }
    Ok(())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
