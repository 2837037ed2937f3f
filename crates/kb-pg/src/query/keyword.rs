//! Full-text search over `chunks.text_search` (the `english` configuration, migration 0002).
//!
//! A chatbot's question is not a boolean query: "what did they decide about the budget"
//! should find chunks with any of its words, the rare ones counting most. So unless the query
//! uses web-search syntax (quotes, `-word`, `or`), which `websearch_to_tsquery` honours as
//! written, its lexemes are OR-ed and each chunk scores the sum of the inverse document
//! frequencies of the lexemes it holds (as BM25 weighs terms), plus its `ts_rank_cd` cover
//! density to order chunks holding the same terms.
//!
//! Cost is bounded the way search engines bound it, by the rare terms: scoring every chunk
//! that holds a common word ("project" in half of 20,000 chunks) cost 200 ms a query. The
//! first pass takes the query's rarest lexemes while their chunks add up to at most
//! [`POSTING_BUDGET`], so it scores at most that many candidates; common lexemes only count
//! when that pass finds fewer than k chunks (a narrow filter). How many chunks hold a lexeme
//! is counted up to [`POSTING_BUDGET`] (the rest is "common") and kept for a while
//! ([`TermStats`]), so a frequent word is not counted on every question.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kb_store::read::{ChunkFilter, ChunkHit};
use kb_store::StoreError;
use sqlx::{PgPool, Postgres, QueryBuilder};

use super::filter;
use super::rows::{ChunkRow, CHUNK_COLUMNS, SOURCE_COLUMNS};
use crate::error::store_error;

/// Lexemes with their weights.
pub(crate) type Terms = Vec<(String, f64)>;

/// The text-search configuration of the generated column; queries must use the same.
pub const TS_CONFIG: &str = "english";

/// Chunks the first pass may score, summed over its lexemes' chunk counts (scoring costs
/// about 3 µs a candidate: 1,000 keep keyword search near 4 ms on 20,000 chunks).
pub(crate) const POSTING_BUDGET: i64 = 1000;

/// Lexemes held by more than this share of all chunks say nothing about any one of them:
/// even the fallback pass leaves them out, unless every lexeme of the query is that common.
const MAX_DOC_FREQUENCY: f64 = 0.5;

/// Weight of `ts_rank_cd` (about 0..1) against the summed IDF (about 1..10 per lexeme).
const COVER_WEIGHT: f64 = 0.5;

/// How long a lexeme's chunk count is trusted; counts drift slowly as documents come and go.
const STATS_TTL: Duration = Duration::from_secs(600);
/// Lexemes remembered at most (the cache is emptied past it).
const STATS_MAX: usize = 50_000;

/// Chunk counts of lexemes (capped at [`POSTING_BUDGET`] + 1) and of the whole table, kept
/// for [`STATS_TTL`]. One per store (a database), shared by its clones.
#[derive(Debug, Default)]
pub(crate) struct TermStats {
    lexemes: Mutex<HashMap<String, (i64, Instant)>>,
    total: Mutex<Option<(i64, Instant)>>,
}

impl TermStats {
    fn lexeme(&self, lexeme: &str) -> Option<i64> {
        let map = self.lexemes.lock().unwrap_or_else(|p| p.into_inner());
        map.get(lexeme)
            .filter(|(_, at)| at.elapsed() < STATS_TTL)
            .map(|(df, _)| *df)
    }

    fn remember(&self, counts: &[(String, i64)]) {
        let mut map = self.lexemes.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() + counts.len() > STATS_MAX {
            map.clear();
        }
        let now = Instant::now();
        for (l, df) in counts {
            map.insert(l.clone(), (*df, now));
        }
    }

    fn total(&self) -> Option<i64> {
        let t = self.total.lock().unwrap_or_else(|p| p.into_inner());
        t.filter(|(_, at)| at.elapsed() < STATS_TTL).map(|(n, _)| n)
    }

    fn remember_total(&self, n: i64) {
        *self.total.lock().unwrap_or_else(|p| p.into_inner()) = Some((n, Instant::now()));
    }
}

/// Whether the query is written in web-search syntax and must be taken literally.
pub(crate) fn has_operators(query: &str) -> bool {
    query.contains('"')
        || query
            .split_whitespace()
            .any(|w| w.eq_ignore_ascii_case("or") || (w.len() > 1 && w.starts_with('-')))
}

/// BM25's inverse document frequency (never negative).
pub(crate) fn idf(total: f64, df: f64) -> f64 {
    (1.0 + (total - df + 0.5) / (df + 0.5)).ln()
}

pub(crate) async fn keyword(
    pool: &PgPool,
    stats: &TermStats,
    query: &str,
    filter: &ChunkFilter,
    k: usize,
) -> Result<Vec<ChunkHit>, StoreError> {
    if k == 0 || query.trim().is_empty() {
        return Ok(Vec::new());
    }
    if has_operators(query) {
        return strict(pool, query, filter, k).await;
    }
    let counts = lexeme_counts(pool, stats, query).await?;
    let (first, fallback) = plan(counts);
    let mut hits = if first.is_empty() {
        Vec::new()
    } else {
        ranked(pool, &first, filter, k).await?
    };
    if hits.len() < k && fallback.len() > first.len() {
        let seen: std::collections::HashSet<String> =
            hits.iter().map(|h| h.chunk_id.clone()).collect();
        let more = ranked(pool, &fallback, filter, k).await?;
        hits.extend(more.into_iter().filter(|h| !seen.contains(&h.chunk_id)));
        hits.truncate(k);
    }
    Ok(hits)
}

/// Chunks holding any of `terms`, by summed IDF of those they hold, then cover density.
async fn ranked(
    pool: &PgPool,
    terms: &[(String, f64)],
    filter: &ChunkFilter,
    k: usize,
) -> Result<Vec<ChunkHit>, StoreError> {
    let any = terms
        .iter()
        .map(|(l, _)| quote_lexeme(l))
        .collect::<Vec<_>>()
        .join(" | ");
    let mut qb = QueryBuilder::<Postgres>::new("SELECT ");
    qb.push(CHUNK_COLUMNS).push(SOURCE_COLUMNS).push(", (0");
    for (lexeme, weight) in terms {
        qb.push(" + ")
            .push_bind(*weight)
            .push(" * (c.text_search @@ ")
            .push_bind(quote_lexeme(lexeme))
            .push("::tsquery)::int");
    }
    qb.push(")::float8 + ")
        .push_bind(COVER_WEIGHT)
        .push(" * ts_rank_cd(c.text_search, ")
        .push_bind(any.clone())
        .push("::tsquery, 1) AS score FROM chunks c JOIN sources s ON s.source_id = c.source_id WHERE c.text_search @@ ")
        .push_bind(any)
        .push("::tsquery");
    filter::push(&mut qb, filter);
    qb.push(" ORDER BY score DESC, importance DESC, c.chunk_id LIMIT ")
        .push_bind(i64::try_from(k).unwrap_or(i64::MAX));
    let rows: Vec<ChunkRow> = qb
        .build_query_as()
        .fetch_all(pool)
        .await
        .map_err(|e| store_error("keyword search", e))?;
    Ok(rows.into_iter().map(ChunkHit::from).collect())
}

/// The query as `websearch_to_tsquery` reads it, ranked by cover density.
async fn strict(
    pool: &PgPool,
    query: &str,
    filter: &ChunkFilter,
    k: usize,
) -> Result<Vec<ChunkHit>, StoreError> {
    let mut qb = QueryBuilder::<Postgres>::new("WITH q AS (SELECT websearch_to_tsquery(");
    qb.push_bind(TS_CONFIG)
        .push("::regconfig, ")
        .push_bind(query.to_owned())
        .push(") AS query) SELECT ")
        .push(CHUNK_COLUMNS)
        .push(SOURCE_COLUMNS)
        .push(
            ", ts_rank_cd(c.text_search, q.query, 1)::float8 AS score \
             FROM q, chunks c JOIN sources s ON s.source_id = c.source_id \
             WHERE c.text_search @@ q.query",
        );
    filter::push(&mut qb, filter);
    qb.push(" ORDER BY score DESC, importance DESC, c.chunk_id LIMIT ")
        .push_bind(i64::try_from(k).unwrap_or(i64::MAX));
    let rows: Vec<ChunkRow> = qb
        .build_query_as()
        .fetch_all(pool)
        .await
        .map_err(|e| store_error("keyword search", e))?;
    Ok(rows.into_iter().map(ChunkHit::from).collect())
}

/// The query's distinct lexemes with how many chunks hold each (capped at
/// [`POSTING_BUDGET`] + 1), and the number of chunks; counts come from `stats` when fresh.
async fn lexeme_counts(
    pool: &PgPool,
    stats: &TermStats,
    query: &str,
) -> Result<Counts, StoreError> {
    let lexemes: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT unnest(tsvector_to_array(to_tsvector($1::regconfig, $2)))",
    )
    .bind(TS_CONFIG)
    .bind(query)
    .fetch_all(pool)
    .await
    .map_err(|e| store_error("keyword search: lexemes", e))?;
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for l in lexemes {
        match stats.lexeme(&l) {
            Some(df) => known.push((l, df)),
            None => unknown.push(l),
        }
    }
    if !unknown.is_empty() {
        // Counting stops past the budget: a common word's chunks are not all visited.
        let counted: Vec<(String, i64)> = sqlx::query_as(
            "SELECT l, (SELECT count(*) FROM (SELECT 1 FROM chunks
                         WHERE text_search @@ quote_literal(l)::tsquery LIMIT $2) x)
             FROM unnest($1::text[]) AS l",
        )
        .bind(&unknown)
        .bind(POSTING_BUDGET + 1)
        .fetch_all(pool)
        .await
        .map_err(|e| store_error("keyword search: lexeme counts", e))?;
        stats.remember(&counted);
        known.extend(counted);
    }
    let total = chunk_total(pool, stats).await?;
    Ok(Counts {
        lexemes: known,
        total,
    })
}

/// Chunks in the store, counted at most every [`STATS_TTL`].
pub(crate) async fn chunk_total(pool: &PgPool, stats: &TermStats) -> Result<i64, StoreError> {
    if let Some(n) = stats.total() {
        return Ok(n);
    }
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM chunks")
        .fetch_one(pool)
        .await
        .map_err(|e| store_error("counting chunks", e))?;
    stats.remember_total(n);
    Ok(n)
}

/// Chunk counts of a query's lexemes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Counts {
    pub lexemes: Vec<(String, i64)>,
    pub total: i64,
}

/// The weighted lexemes of the first pass (the rarest, while their chunk counts add up to at
/// most [`POSTING_BUDGET`]; at least the rarest one) and of the fallback pass (every lexeme
/// held by at most [`MAX_DOC_FREQUENCY`] of the chunks, or all when none is), each sorted by
/// lexeme. Lexemes no chunk holds are never asked for.
pub(crate) fn plan(counts: Counts) -> (Terms, Terms) {
    let mut present: Vec<(String, i64)> = counts
        .lexemes
        .into_iter()
        .filter(|(_, df)| *df > 0)
        .collect();
    present.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    let n = (counts.total as f64).max(1.0);
    let weigh = |(l, df): &(String, i64)| (l.clone(), idf(n.max(*df as f64), *df as f64));
    let mut first = Vec::new();
    let mut postings = 0i64;
    for t in &present {
        if !first.is_empty() && postings + t.1 > POSTING_BUDGET {
            break;
        }
        postings += t.1;
        first.push(weigh(t));
    }
    let rare: Vec<&(String, i64)> = present
        .iter()
        .filter(|(_, df)| (*df as f64) / n <= MAX_DOC_FREQUENCY)
        .collect();
    let mut fallback: Terms = if rare.is_empty() {
        present.iter().map(weigh).collect()
    } else {
        rare.into_iter().map(weigh).collect()
    };
    // The first pass's lexemes always stay in the fallback (it widens, never narrows).
    for t in &first {
        if !fallback.iter().any(|f| f.0 == t.0) {
            fallback.push(t.clone());
        }
    }
    first.sort_by(|a, b| a.0.cmp(&b.0));
    fallback.sort_by(|a, b| a.0.cmp(&b.0));
    (first, fallback)
}

/// A lexeme as a tsquery operand: quoted, so the parser takes it as it is.
fn quote_lexeme(lexeme: &str) -> String {
    format!("'{}'", lexeme.replace('\\', "\\\\").replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_search_syntax_is_detected() {
        assert!(has_operators("\"remote control\" price"));
        assert!(has_operators("budget -marketing"));
        assert!(has_operators("budget or price"));
        assert!(!has_operators("what did they decide about the budget?"));
        assert!(!has_operators("a - b"));
    }

    fn counts(lexemes: &[(&str, i64)], total: i64) -> Counts {
        Counts {
            lexemes: lexemes.iter().map(|(l, d)| ((*l).to_owned(), *d)).collect(),
            total,
        }
    }

    #[test]
    fn the_first_pass_takes_the_rarest_lexemes_within_the_budget() {
        let (first, fallback) = plan(counts(
            &[
                ("project", 1001),
                ("budget", 669),
                ("remot", 1001),
                ("say", 1001),
                ("zebra", 0),
                ("kinet", 12),
            ],
            20_000,
        ));
        let names = |t: &Terms| t.iter().map(|(l, _)| l.clone()).collect::<Vec<_>>();
        assert_eq!(names(&first), ["budget", "kinet"]);
        assert_eq!(
            names(&fallback),
            ["budget", "kinet", "project", "remot", "say"]
        );
        let w = |l: &str| first.iter().find(|t| t.0 == l).map(|t| t.1).unwrap_or(0.0);
        assert!(w("kinet") > w("budget"), "the rarer the heavier");
    }

    #[test]
    fn one_lexeme_is_always_searched_even_over_the_budget() {
        let (first, _) = plan(counts(&[("meet", 1001), ("manag", 1001)], 3000));
        assert_eq!(first.len(), 1);
    }

    #[test]
    fn in_a_small_store_every_lexeme_counts_at_once() {
        let (first, fallback) = plan(counts(&[("remot", 3), ("budget", 1)], 4));
        assert_eq!(first.len(), 2);
        assert_eq!(first, fallback);
    }

    #[test]
    fn lexemes_are_quoted_for_tsquery() {
        assert_eq!(quote_lexeme("o'neil"), "'o''neil'");
    }
}
