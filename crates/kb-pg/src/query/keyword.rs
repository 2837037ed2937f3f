//! Full-text search over `chunks.text_search` (the `english` configuration, migration 0002).
//!
//! A chatbot's question is not a boolean query: "what did they decide about the budget"
//! should find chunks with any of its words, the rare ones counting most. So unless the query
//! uses web-search syntax (quotes, `-word`, `or`), which `websearch_to_tsquery` honours as
//! written, its lexemes are OR-ed and each chunk scores the sum of the inverse document
//! frequencies of the lexemes it holds (as BM25 weighs terms), plus its `ts_rank_cd` cover
//! density to order chunks holding the same terms. Lexemes held by most chunks are asked
//! for only when the others find fewer than k chunks.

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

/// Lexemes held by more than this share of all chunks say nothing about any one of them;
/// they are dropped unless every lexeme of the query is that common.
const MAX_DOC_FREQUENCY: f64 = 0.5;

/// Weight of `ts_rank_cd` (about 0..1) against the summed IDF (about 1..10 per lexeme).
const COVER_WEIGHT: f64 = 0.5;

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
    let terms = weighted_lexemes(pool, query).await?;
    let (selective, all) = select_terms(terms);
    // Rare lexemes first: a lexeme in most chunks would make nearly every chunk a candidate.
    // Only when they find fewer than k chunks do the common ones count too.
    let mut hits = if selective.is_empty() {
        Vec::new()
    } else {
        ranked(pool, &selective, filter, k).await?
    };
    if hits.len() < k && all.len() > selective.len() {
        let seen: std::collections::HashSet<String> =
            hits.iter().map(|h| h.chunk_id.clone()).collect();
        let more = ranked(pool, &all, filter, k).await?;
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

/// The query's distinct lexemes with how many chunks hold each, and the number of chunks.
async fn weighted_lexemes(
    pool: &PgPool,
    query: &str,
) -> Result<Vec<(String, i64, i64)>, StoreError> {
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "WITH total AS (SELECT count(*) AS n FROM chunks)
         SELECT t.lexeme,
                (SELECT count(*) FROM chunks WHERE text_search @@ quote_literal(t.lexeme)::tsquery),
                total.n
         FROM total, (SELECT DISTINCT unnest(tsvector_to_array(to_tsvector($1::regconfig, $2)))
                      AS lexeme) t",
    )
    .bind(TS_CONFIG)
    .bind(query)
    .fetch_all(pool)
    .await
    .map_err(|e| store_error("keyword search: term frequencies", e))?;
    Ok(rows)
}

/// The lexemes some chunk holds, weighted by IDF: the selective ones (held by at most
/// [`MAX_DOC_FREQUENCY`] of the chunks) and all of them, each sorted by lexeme.
pub(crate) fn select_terms(rows: Vec<(String, i64, i64)>) -> (Terms, Terms) {
    let mut all: Vec<(String, f64, bool)> = rows
        .into_iter()
        .filter(|(_, df, _)| *df > 0)
        .map(|(l, df, n)| {
            let (df, n) = (df as f64, (n as f64).max(df as f64));
            (l, idf(n, df), df / n <= MAX_DOC_FREQUENCY)
        })
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    let selective = all
        .iter()
        .filter(|t| t.2)
        .map(|(l, w, _)| (l.clone(), *w))
        .collect();
    (selective, all.into_iter().map(|(l, w, _)| (l, w)).collect())
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

    #[test]
    fn rare_terms_weigh_more_and_common_ones_wait() {
        let (selective, all) = select_terms(vec![
            ("meet".into(), 900, 1000),
            ("budget".into(), 3, 1000),
            ("zebra".into(), 0, 1000),
        ]);
        assert_eq!(selective.len(), 1, "{selective:?}");
        assert_eq!(selective[0].0, "budget");
        assert_eq!(all.len(), 2, "a lexeme no chunk holds is never asked for");
        assert_eq!(all[0].0, "budget");
        assert!(all[0].1 > all[1].1);
    }

    #[test]
    fn lexemes_are_quoted_for_tsquery() {
        assert_eq!(quote_lexeme("o'neil"), "'o''neil'");
    }
}
