//! Reciprocal-rank fusion: each retriever's list counts by rank, not by its own score scale
//! (cosine similarity, text rank and entity weight are not comparable), so a chunk found by
//! several retrievers rises, and one retriever's confident list cannot drown the others.

use std::collections::HashMap;

use kb_store::read::ChunkHit;

use crate::api::{Ranks, Retriever};

/// One retriever's answer, best first.
pub struct Ranked {
    pub retriever: Retriever,
    pub weight: f64,
    pub hits: Vec<ChunkHit>,
}

/// A chunk after fusion.
pub struct Fused {
    pub hit: ChunkHit,
    pub score: f64,
    pub ranks: Ranks,
}

/// Fuses `lists` (score = Σ weight / (rrf_k + rank), rank 1-based) and keeps the best `k`.
/// Ties go to the chunk found by more retrievers, then to the smaller chunk id, so the order
/// is stable. A chunk's details come from the first list that has it.
pub fn fuse(lists: Vec<Ranked>, rrf_k: f64, k: usize) -> Vec<Fused> {
    let mut by_id: HashMap<String, Fused> = HashMap::new();
    for list in lists {
        for (i, hit) in list.hits.into_iter().enumerate() {
            let rank = i + 1;
            let add = list.weight / (rrf_k + rank as f64);
            let entry = by_id.entry(hit.chunk_id.clone()).or_insert_with(|| Fused {
                hit,
                score: 0.0,
                ranks: Ranks::default(),
            });
            // A retriever lists a chunk once; if it did not, its best rank counts.
            if entry.ranks.get(list.retriever).is_none() {
                entry.ranks.set(list.retriever, rank);
                entry.score += add;
            }
        }
    }
    let mut fused: Vec<Fused> = by_id.into_values().collect();
    let found_by = |f: &Fused| {
        [Retriever::Vector, Retriever::Keyword, Retriever::Graph]
            .iter()
            .filter(|r| f.ranks.get(**r).is_some())
            .count()
    };
    fused.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| found_by(b).cmp(&found_by(a)))
            .then_with(|| a.hit.chunk_id.cmp(&b.hit.chunk_id))
    });
    fused.truncate(k);
    fused
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hits(ids: &[&str]) -> Vec<ChunkHit> {
        ids.iter()
            .map(|id| ChunkHit {
                chunk_id: (*id).into(),
                ..ChunkHit::default()
            })
            .collect()
    }

    fn list(r: Retriever, w: f64, ids: &[&str]) -> Ranked {
        Ranked {
            retriever: r,
            weight: w,
            hits: hits(ids),
        }
    }

    #[test]
    fn agreement_beats_one_high_rank() {
        let out = fuse(
            vec![
                list(Retriever::Vector, 1.0, &["a", "b", "c"]),
                list(Retriever::Keyword, 1.0, &["c", "d", "a"]),
            ],
            60.0,
            10,
        );
        let ids: Vec<&str> = out.iter().map(|f| f.hit.chunk_id.as_str()).collect();
        assert_eq!(ids, ["a", "c", "b", "d"]);
        assert_eq!(out[0].ranks.vector, Some(1));
        assert_eq!(out[0].ranks.keyword, Some(3));
        assert_eq!(out[0].ranks.graph, None);
        let want = 1.0 / 61.0 + 1.0 / 63.0;
        assert!((out[0].score - want).abs() < 1e-12);
    }

    #[test]
    fn weights_scale_a_retriever_and_k_truncates() {
        let out = fuse(
            vec![
                list(Retriever::Vector, 0.1, &["a"]),
                list(Retriever::Graph, 1.0, &["b"]),
            ],
            60.0,
            1,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].hit.chunk_id, "b");
        assert!(fuse(Vec::new(), 60.0, 5).is_empty());
    }

    #[test]
    fn a_duplicate_in_one_list_counts_once() {
        let out = fuse(vec![list(Retriever::Vector, 1.0, &["a", "a"])], 60.0, 5);
        assert_eq!(out.len(), 1);
        assert!((out[0].score - 1.0 / 61.0).abs() < 1e-12);
    }
}
