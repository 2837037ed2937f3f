//! recall@k as the corpus README defines it: a query is answered at k when one of the top-k
//! chunks holds a substantial part of a turn inside the query's `relevant_turns`.
//!
//! "Substantial" = [`MIN_OVERLAP`] consecutive characters of the turn (whitespace collapsed), or
//! the whole turn when it is shorter but still at least [`MIN_TURN`] characters; shorter turns
//! ("Okay.", "Mm-hmm.") appear everywhere and prove nothing, so they never count.
//! Two figures: `within` searches the meeting's own chunks (the question is about that meeting),
//! `corpus` searches every ingested chunk.

use crate::corpus::Transcript;
use crate::pipeline::Ingested;
use anyhow::Context;
use kb_core::Settings;
use pgvector::Vector;

pub const MIN_OVERLAP: usize = 60;
pub const MIN_TURN: usize = 20;
const K: i64 = 10;

#[derive(Debug, Default, Clone, Copy)]
pub struct Recall {
    pub at5: f64,
    pub at10: f64,
}

pub struct Meeting {
    pub name: String,
    pub queries: usize,
    pub within: Recall,
    pub corpus: Recall,
}

pub struct Report {
    pub meetings: Vec<Meeting>,
}

impl Report {
    pub fn queries(&self) -> usize {
        self.meetings.iter().map(|m| m.queries).sum()
    }
    /// Recall over all queries (not the mean of the meetings').
    pub fn totals(&self) -> (Recall, Recall) {
        let n = self.queries().max(1) as f64;
        let sum = |f: fn(&Meeting) -> Recall| {
            let (a, b) = self.meetings.iter().fold((0.0, 0.0), |(a, b), m| {
                let r = f(m);
                (a + r.at5 * m.queries as f64, b + r.at10 * m.queries as f64)
            });
            Recall {
                at5: a / n,
                at10: b / n,
            }
        };
        (sum(|m| m.within), sum(|m| m.corpus))
    }
}

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether `chunk` holds a substantial part of `turn` (see the module docs).
pub fn holds_part_of(chunk: &str, turn: &str) -> bool {
    let (chunk, turn) = (collapse(chunk), collapse(turn));
    let chars: Vec<(usize, char)> = turn.char_indices().collect();
    if chars.len() < MIN_TURN {
        return false;
    }
    if chars.len() <= MIN_OVERLAP {
        return chunk.contains(&turn);
    }
    (0..=chars.len() - MIN_OVERLAP).any(|i| {
        let start = chars[i].0;
        let end = chars
            .get(i + MIN_OVERLAP)
            .map(|c| c.0)
            .unwrap_or(turn.len());
        chunk.contains(&turn[start..end])
    })
}

/// 1-based rank of the first retrieved chunk that answers, if any.
pub fn first_hit(chunks: &[String], relevant: &[&str]) -> Option<usize> {
    chunks
        .iter()
        .position(|c| relevant.iter().any(|t| holds_part_of(c, t)))
        .map(|i| i + 1)
}

async fn top_chunks(
    pool: &sqlx::PgPool,
    v: &Vector,
    sources: &[String],
) -> anyhow::Result<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT text FROM chunks WHERE source_id = ANY($2) ORDER BY embedding <=> $1 LIMIT $3",
    )
    .bind(v)
    .bind(sources)
    .bind(K)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// recall@5 and recall@10 of first-hit ranks (`None`: no hit in the list).
pub fn score(ranks: &[Option<usize>]) -> Recall {
    let n = ranks.len().max(1) as f64;
    let within = |k| ranks.iter().filter(|r| r.is_some_and(|r| r <= k)).count() as f64 / n;
    Recall {
        at5: within(5),
        at10: within(10),
    }
}

/// Mean reciprocal rank of first-hit ranks, counting only ranks up to `k` (MRR@k).
pub fn mrr(ranks: &[Option<usize>], k: usize) -> f64 {
    let n = ranks.len().max(1) as f64;
    ranks
        .iter()
        .filter_map(|r| r.filter(|r| *r >= 1 && *r <= k))
        .map(|r| 1.0 / r as f64)
        .sum::<f64>()
        / n
}

pub async fn evaluate(ingested: &Ingested, transcripts: &[Transcript]) -> anyhow::Result<Report> {
    let settings = Settings::load(None)?;
    let embedder = kb_embed::load_embedder(&settings)?;
    let all: Vec<String> = ingested.source_ids.values().cloned().collect();
    let mut meetings = Vec::new();
    for t in transcripts {
        let path = std::fs::canonicalize(&t.document)?;
        let sid = ingested
            .source_ids
            .get(&path)
            .with_context(|| format!("{} was not ingested", path.display()))?;
        let questions: Vec<String> = t.queries.iter().map(|q| q.query.clone()).collect();
        let vectors = embedder.embed(&questions).await?;
        let (mut within, mut corpus) = (Vec::new(), Vec::new());
        for (q, v) in t.queries.iter().zip(vectors) {
            let relevant = t.relevant_texts(q);
            let v = Vector::from(v);
            within.push(first_hit(
                &top_chunks(&ingested.pool, &v, std::slice::from_ref(sid)).await?,
                &relevant,
            ));
            corpus.push(first_hit(
                &top_chunks(&ingested.pool, &v, &all).await?,
                &relevant,
            ));
        }
        meetings.push(Meeting {
            name: t.name.clone(),
            queries: t.queries.len(),
            within: score(&within),
            corpus: score(&corpus),
        });
    }
    Ok(Report { meetings })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TURN: &str = "So the remote control should be original, trendy and user-friendly, and it should not cost more than twelve and a half euros.";

    #[test]
    fn a_chunk_with_sixty_characters_of_a_turn_is_a_hit() {
        let chunk = format!(
            "Project Manager: Okay.\nIndustrial Designer: {}",
            &TURN[30..100]
        );
        assert!(holds_part_of(&chunk, TURN));
    }

    #[test]
    fn fewer_than_sixty_characters_is_not_a_hit() {
        let chunk = format!("Marketing: {}", &TURN[0..50]);
        assert!(!holds_part_of(&chunk, TURN));
    }

    #[test]
    fn whitespace_differences_do_not_matter() {
        let chunk = TURN.replace(", ", ",\n   ");
        assert!(holds_part_of(&chunk, TURN));
    }

    #[test]
    fn short_turns_count_whole_and_fillers_never() {
        assert!(holds_part_of(
            "A: We decided on a yellow case. B: Yes.",
            "We decided on a yellow case."
        ));
        assert!(!holds_part_of("A: Okay. B: Mm-hmm.", "Okay."));
    }

    #[test]
    fn recall_counts_ranks_within_k() {
        let r = score(&[Some(1), Some(7), None, Some(5)]);
        assert_eq!((r.at5, r.at10), (0.5, 0.75));
        assert_eq!(
            mrr(&[Some(1), Some(4), None, Some(11)], 10),
            (1.0 + 0.25) / 4.0
        );
        let chunks = vec!["nothing here".to_string(), format!("x {TURN}")];
        assert_eq!(first_hit(&chunks, &[TURN]), Some(2));
    }
}
