//! The retrievers, each against the store that serves it best, with the other store as a
//! stand-in when that one is away:
//!
//! | retriever | from | when its store is away |
//! | --- | --- | --- |
//! | vector | Postgres (pgvector HNSW) | nothing stands in |
//! | keyword | Postgres (full text) | the graph's text scan |
//! | graph | the graph over Bolt; the question's entities counted on Postgres | Postgres's copy of the entities and relations |
//!
//! A stand-in's answer still marks its retriever degraded: the result is not what the
//! retriever would have given.

use std::collections::HashSet;
use std::sync::Arc;

use kb_embed::Embedder;
use kb_store::read::{ChunkFilter, ChunkHit, EntityIndex, EntityStats, Neighbour};
use kb_store::StoreError;

use crate::api::{EntityOut, NeighbourOut};
use crate::engine::{GraphSide, PgSide};
use crate::question::{self, NEIGHBOUR_SHARE};
use crate::slot::{Away, Slot};

/// What one retriever produced.
pub(crate) struct Outcome {
    pub hits: Vec<ChunkHit>,
    /// False when the retriever's own store did not answer (a stand-in may have).
    pub whole: bool,
}

impl Outcome {
    fn failed() -> Self {
        Self {
            hits: Vec::new(),
            whole: false,
        }
    }
}

pub(crate) async fn vector(
    pg: &Slot<dyn PgSide>,
    embedder: Option<&Arc<dyn Embedder>>,
    query: &str,
    filter: &ChunkFilter,
    depth: usize,
) -> Outcome {
    let Some(embedder) = embedder else {
        return Outcome::failed();
    };
    if !pg.is_up() {
        return Outcome::failed();
    }
    let vector = match embedder.embed(&[query.to_owned()]).await {
        Ok(mut v) if v.len() == 1 => v.remove(0),
        Ok(_) => return Outcome::failed(),
        Err(e) => {
            tracing::warn!(error = %e, "could not embed the query");
            return Outcome::failed();
        }
    };
    match pg
        .call(|s| async move { s.nearest(&vector, filter, depth).await })
        .await
    {
        Ok(hits) => Outcome { hits, whole: true },
        Err(Away(_)) => Outcome::failed(),
    }
}

pub(crate) async fn keyword(
    pg: &Slot<dyn PgSide>,
    graph: &Slot<dyn GraphSide>,
    query: &str,
    filter: &ChunkFilter,
    depth: usize,
) -> Outcome {
    if let Ok(hits) = pg
        .call(|s| async move { s.keyword(query, filter, depth).await })
        .await
    {
        return Outcome { hits, whole: true };
    }
    let words = question::scan_words(query);
    let hits = graph
        .call(|g| async move { g.scan(&words, filter, depth).await })
        .await
        .unwrap_or_default();
    Outcome { hits, whole: false }
}

/// Entities of the question with their neighbours, and the chunks that mention them and
/// then their neighbours.
pub(crate) struct GraphAnswer {
    pub outcome: Outcome,
    pub entities: Vec<EntityOut>,
}

impl GraphAnswer {
    /// The mode did not walk the graph.
    pub fn none() -> Self {
        Self {
            outcome: Outcome::failed(),
            entities: Vec::new(),
        }
    }
}

pub(crate) async fn graph(
    pg: &Slot<dyn PgSide>,
    graph: &Slot<dyn GraphSide>,
    names: &[String],
    filter: &ChunkFilter,
    depth: usize,
    max_neighbours: usize,
) -> GraphAnswer {
    let Some(found) = resolve(pg, graph, names).await else {
        return GraphAnswer::none();
    };
    let weighted = question::weigh(&found);
    if weighted.is_empty() {
        return GraphAnswer {
            outcome: Outcome {
                hits: Vec::new(),
                whole: true,
            },
            entities: Vec::new(),
        };
    }
    let weighted = &weighted;
    let on_graph = graph
        .call(|g| async move { walk(g.as_ref(), weighted, filter, depth, max_neighbours).await })
        .await;
    let (walked, whole) = match on_graph {
        Ok(w) => (Some(w), true),
        Err(_) => (
            pg.call(
                |s| async move { walk(s.as_ref(), weighted, filter, depth, max_neighbours).await },
            )
            .await
            .ok(),
            false,
        ),
    };
    match walked {
        Some((hits, entities)) => GraphAnswer {
            outcome: Outcome { hits, whole },
            entities,
        },
        None => GraphAnswer::none(),
    }
}

/// The question's entities with how many chunks mention each. Postgres counts them from an
/// index (0.7 ms on 20,000 chunks); the graph walks every mention (5.6 ms, 27 ms at p99 for
/// an entity in 10,000 chunks), so the graph answers only when Postgres is away. Both stores
/// hold the same entities under the same ids, so the walk that follows finds them in either.
async fn resolve(
    pg: &Slot<dyn PgSide>,
    graph: &Slot<dyn GraphSide>,
    names: &[String],
) -> Option<Vec<EntityStats>> {
    if names.is_empty() {
        return Some(Vec::new());
    }
    if let Ok(found) = pg
        .call(|s| async move { s.resolve(names, false).await })
        .await
    {
        return Some(found);
    }
    graph
        .call(|g| async move { g.resolve(names, false).await })
        .await
        .ok()
}

/// From the weighed entities: their neighbours, and the chunks that mention them and then
/// their neighbours, on whichever store answers. The neighbours and the direct mentions do
/// not depend on each other, so they are asked at once.
async fn walk<E: EntityIndex + ?Sized>(
    index: &E,
    weighted: &[(EntityStats, f64)],
    filter: &ChunkFilter,
    depth: usize,
    max_neighbours: usize,
) -> Result<(Vec<ChunkHit>, Vec<EntityOut>), StoreError> {
    let ids: Vec<String> = weighted
        .iter()
        .map(|(e, _)| e.entity.entity_id.clone())
        .collect();
    let direct: Vec<(String, f64)> = weighted
        .iter()
        .map(|(e, w)| (e.entity.entity_id.clone(), *w))
        .collect();
    let (neighbours, hits) = tokio::join!(
        index.neighbours(&ids, max_neighbours),
        index.mentioning(&direct, filter, depth)
    );
    let (neighbours, mut hits) = (neighbours?, hits?);
    let entities = context(weighted, &neighbours);
    if hits.len() < depth {
        let related = neighbour_weights(weighted, &neighbours);
        if !related.is_empty() {
            let seen: HashSet<String> = hits.iter().map(|h| h.chunk_id.clone()).collect();
            let more = index.mentioning(&related, filter, depth).await?;
            hits.extend(
                more.into_iter()
                    .filter(|h| !seen.contains(&h.chunk_id))
                    .take(depth.saturating_sub(seen.len())),
            );
        }
    }
    Ok((hits, entities))
}

/// Neighbours not named in the question, each with a share of its strongest parent's weight
/// scaled by the relation's strength.
fn neighbour_weights(
    weighted: &[(EntityStats, f64)],
    neighbours: &[Neighbour],
) -> Vec<(String, f64)> {
    let named: HashSet<&str> = weighted
        .iter()
        .map(|(e, _)| e.entity.entity_id.as_str())
        .collect();
    let max_rel = neighbours
        .iter()
        .map(|n| n.weight)
        .fold(0.0f64, f64::max)
        .max(f64::MIN_POSITIVE);
    let mut out: Vec<(String, f64)> = Vec::new();
    for n in neighbours {
        if named.contains(n.entity.entity_id.as_str()) {
            continue;
        }
        let parent = weighted
            .iter()
            .find(|(e, _)| e.entity.entity_id == n.of)
            .map_or(0.0, |(_, w)| *w);
        let w = parent * NEIGHBOUR_SHARE * (n.weight / max_rel);
        match out.iter_mut().find(|(id, _)| *id == n.entity.entity_id) {
            Some((_, existing)) => *existing = existing.max(w),
            None => out.push((n.entity.entity_id.clone(), w)),
        }
    }
    out.retain(|(_, w)| *w > 0.0);
    out
}

/// The context block: each entity found, with its relations.
fn context(weighted: &[(EntityStats, f64)], neighbours: &[Neighbour]) -> Vec<EntityOut> {
    weighted
        .iter()
        .map(|(e, _)| EntityOut {
            entity_id: e.entity.entity_id.clone(),
            name: e.entity.name.clone(),
            canonical_name: e.entity.canonical_name.clone(),
            entity_type: e.entity.entity_type.clone(),
            chunks: e.chunks,
            sources: e.sources,
            neighbours: neighbours
                .iter()
                .filter(|n| n.of == e.entity.entity_id)
                .map(neighbour_out)
                .collect(),
        })
        .collect()
}

pub(crate) fn neighbour_out(n: &Neighbour) -> NeighbourOut {
    NeighbourOut {
        name: n.entity.name.clone(),
        canonical_name: n.entity.canonical_name.clone(),
        entity_type: n.entity.entity_type.clone(),
        relation: n.relation.clone(),
        direction: n.direction.to_owned(),
        weight: n.weight,
    }
}
