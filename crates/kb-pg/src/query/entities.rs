//! Postgres's copy of the entity graph (`entities`, `chunk_mentions`, `entity_relations`):
//! the same answers the graph gives, for when the graph is away.

use kb_store::read::{ChunkFilter, ChunkHit, EntityRef, EntityStats, Neighbour};
use kb_store::StoreError;
use sqlx::{PgPool, Postgres, QueryBuilder};

use super::filter;
use super::rows::{ChunkRow, CHUNK_COLUMNS, SOURCE_COLUMNS};
use crate::error::store_error;

type EntityRow = (String, String, String, String);
/// of, entity (4 columns), relation, direction, weight
type NeighbourRow = (String, String, String, String, String, String, String, f64);

fn entity((entity_id, name, canonical_name, entity_type): EntityRow) -> EntityRef {
    EntityRef {
        entity_id,
        name,
        canonical_name,
        entity_type,
    }
}

pub(crate) async fn resolve(
    pool: &PgPool,
    canonical_names: &[String],
    sources: bool,
    total_chunks: i64,
) -> Result<Vec<EntityStats>, StoreError> {
    if canonical_names.is_empty() {
        return Ok(Vec::new());
    }
    // One mention per (chunk, entity): counting mentions counts chunks, from the index alone.
    let sql = if sources {
        "SELECT e.entity_id, e.name, e.canonical_name, e.entity_type,
                count(m.chunk_id), count(DISTINCT c.source_id)
         FROM entities e
         LEFT JOIN chunk_mentions m ON m.entity_id = e.entity_id
         LEFT JOIN chunks c ON c.chunk_id = m.chunk_id
         WHERE e.canonical_name = ANY($1)
         GROUP BY e.entity_id
         ORDER BY e.entity_id"
    } else {
        "SELECT e.entity_id, e.name, e.canonical_name, e.entity_type,
                (SELECT count(*) FROM chunk_mentions m WHERE m.entity_id = e.entity_id),
                NULL::int8
         FROM entities e
         WHERE e.canonical_name = ANY($1)
         ORDER BY e.entity_id"
    };
    let rows: Vec<(String, String, String, String, i64, Option<i64>)> = sqlx::query_as(sql)
        .bind(canonical_names)
        .fetch_all(pool)
        .await
        .map_err(|e| store_error("resolving entities", e))?;
    Ok(rows
        .into_iter()
        .map(|(id, name, canonical, ty, chunks, srcs)| EntityStats {
            entity: entity((id, name, canonical, ty)),
            chunks: u64::try_from(chunks).unwrap_or(0),
            sources: srcs.map(|n| u64::try_from(n).unwrap_or(0)),
            total_chunks: u64::try_from(total_chunks).unwrap_or(0),
        })
        .collect())
}

pub(crate) async fn neighbours(
    pool: &PgPool,
    entity_ids: &[String],
    limit: usize,
) -> Result<Vec<Neighbour>, StoreError> {
    if entity_ids.is_empty() || limit == 0 {
        return Ok(Vec::new());
    }
    // Both directions; a relation stated by several sources is one neighbour, weights summed.
    let rows: Vec<NeighbourRow> = sqlx::query_as(
        "WITH r AS (
                 SELECT source_entity_id AS of, target_entity_id AS other, relation_type,
                        'out' AS direction, weight
                 FROM entity_relations WHERE source_entity_id = ANY($1)
                 UNION ALL
                 SELECT target_entity_id, source_entity_id, relation_type, 'in', weight
                 FROM entity_relations WHERE target_entity_id = ANY($1))
             SELECT r.of, e.entity_id, e.name, e.canonical_name, e.entity_type,
                    r.relation_type, r.direction, sum(r.weight)::float8 AS w
             FROM r JOIN entities e ON e.entity_id = r.other
             WHERE r.other <> r.of
             GROUP BY r.of, e.entity_id, r.relation_type, r.direction
             ORDER BY w DESC, e.entity_id, r.relation_type
             LIMIT $2",
    )
    .bind(entity_ids)
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(pool)
    .await
    .map_err(|e| store_error("reading entity relations", e))?;
    Ok(rows
        .into_iter()
        .map(
            |(of, id, name, canonical, ty, relation, direction, weight)| Neighbour {
                of,
                entity: entity((id, name, canonical, ty)),
                relation,
                direction: if direction == "out" { "out" } else { "in" },
                weight,
            },
        )
        .collect())
}

pub(crate) async fn mentioning(
    pool: &PgPool,
    weights: &[(String, f64)],
    filter: &ChunkFilter,
    k: usize,
) -> Result<Vec<ChunkHit>, StoreError> {
    if weights.is_empty() || k == 0 {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = weights.iter().map(|(id, _)| id.clone()).collect();
    let ws: Vec<f64> = weights.iter().map(|(_, w)| *w).collect();
    let mut qb = QueryBuilder::<Postgres>::new("WITH w AS (SELECT * FROM unnest(");
    qb.push_bind(ids)
        .push("::text[], ")
        .push_bind(ws)
        .push("::float8[]) AS w(entity_id, weight)), scored AS (")
        .push(
            "SELECT m.chunk_id, \
             sum(w.weight * (m.count * 2.2) / (m.count + 1.2))::float8 AS score \
             FROM w JOIN chunk_mentions m ON m.entity_id = w.entity_id GROUP BY m.chunk_id) \
             SELECT ",
        )
        .push(CHUNK_COLUMNS)
        .push(SOURCE_COLUMNS)
        .push(
            ", scored.score FROM scored JOIN chunks c ON c.chunk_id = scored.chunk_id \
             JOIN sources s ON s.source_id = c.source_id WHERE true",
        );
    filter::push(&mut qb, filter);
    qb.push(" ORDER BY scored.score DESC, importance DESC, c.chunk_id LIMIT ")
        .push_bind(i64::try_from(k).unwrap_or(i64::MAX));
    let rows: Vec<ChunkRow> = qb
        .build_query_as()
        .fetch_all(pool)
        .await
        .map_err(|e| store_error("chunks mentioning entities", e))?;
    Ok(rows.into_iter().map(ChunkHit::from).collect())
}
