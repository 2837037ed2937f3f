//! Reading back what the graph holds, reduced to per-source summaries and store totals that
//! `kb verify` compares with Postgres.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use kb_store::{SourceSummary, StoreCounts, StoreError};

use crate::bolt::{opt_i64, opt_string, req_i64, req_string, Tx};
use crate::cypher;

#[derive(Default)]
struct Parts {
    version: u64,
    status: String,
    chunk_ids: Vec<String>,
    mentions: Vec<(String, String, u64)>,
    entities: BTreeSet<String>,
}

pub(crate) async fn summaries(tx: &mut Tx) -> Result<Vec<SourceSummary>, StoreError> {
    let mut by_source: BTreeMap<String, Parts> = BTreeMap::new();
    for row in tx
        .rows("read sources", cypher::READ_SOURCES, vec![])
        .await?
    {
        let sid = req_string(&row, "sid")?;
        let version = opt_i64(&row, "version")?.unwrap_or(0);
        let status = opt_string(&row, "status")?.unwrap_or_else(|| "ok".to_owned());
        by_source.insert(
            sid,
            Parts {
                version: u64::try_from(version).unwrap_or(0),
                status,
                ..Parts::default()
            },
        );
    }

    for row in tx
        .rows("read chunk ids", cypher::READ_CHUNK_IDS, vec![])
        .await?
    {
        if let Some(p) = by_source.get_mut(&req_string(&row, "sid")?) {
            p.chunk_ids.push(req_string(&row, "cid")?);
        }
    }

    for row in tx
        .rows("read mentions", cypher::READ_MENTIONS, vec![])
        .await?
    {
        if let Some(p) = by_source.get_mut(&req_string(&row, "sid")?) {
            let entity = req_string(&row, "eid")?;
            let count = opt_i64(&row, "n")?.unwrap_or(0);
            p.entities.insert(entity.clone());
            p.mentions.push((
                req_string(&row, "cid")?,
                entity,
                u64::try_from(count).unwrap_or(0),
            ));
        }
    }

    let mut relations: HashMap<String, u64> = HashMap::new();
    for row in tx
        .rows("read relation counts", cypher::READ_RELATION_COUNTS, vec![])
        .await?
    {
        if let Some(sid) = opt_string(&row, "sid")? {
            *relations.entry(sid).or_default() += u64::try_from(req_i64(&row, "n")?).unwrap_or(0);
        }
    }

    Ok(by_source
        .into_iter()
        .map(|(sid, p)| {
            let rels = relations.get(&sid).copied().unwrap_or(0);
            SourceSummary::from_parts(
                sid,
                p.version,
                p.status,
                p.chunk_ids,
                p.mentions,
                p.entities.len() as u64,
                rels,
            )
        })
        .collect())
}

pub(crate) async fn counts(tx: &mut Tx) -> Result<StoreCounts, StoreError> {
    let chunks = count(tx, "count chunks", cypher::COUNT_CHUNKS).await?;
    Ok(StoreCounts {
        sources: count(tx, "count sources", cypher::COUNT_SOURCES).await?,
        failed_sources: count(tx, "count failed sources", cypher::COUNT_FAILED_SOURCES).await?,
        chunks,
        // Vectors live in Postgres only; every chunk the graph holds came from an embedded
        // document, so the graph reports full coverage by construction.
        chunks_with_embeddings: chunks,
        entities: count(tx, "count entities", cypher::COUNT_ENTITIES).await?,
        mentions: count(tx, "count mentions", cypher::COUNT_MENTIONS).await?,
        relations: count(tx, "count relations", cypher::COUNT_RELATIONS).await?,
    })
}

async fn count(tx: &mut Tx, what: &str, cypher: &str) -> Result<u64, StoreError> {
    let rows = tx.rows(what, cypher, vec![]).await?;
    let n = match rows.first() {
        Some(row) => req_i64(row, "n")?,
        None => 0,
    };
    Ok(u64::try_from(n).unwrap_or(0))
}
