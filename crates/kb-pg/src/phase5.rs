//! The seed plan's Phase 5 verification, run verbatim so the numbers are exactly what the
//! users' own SQL reports.
//!
//! The SQL files are copied unchanged from the plan ("Step 5.1: Check Postgres Data" and
//! "Step 5.2: Test Vector Search") and sent with the simple query protocol, as psql does.
//! That protocol returns every value as text, so results are decoded from their text form.

use futures::StreamExt;
use kb_store::StoreError;
use serde::Serialize;
use sqlx::postgres::PgRow;
use sqlx::{Either, PgPool, Row};

use crate::error::{kind_of, store_error};

const CHECK_DATA: &str = include_str!("sql/phase5_check_data.sql");
const VECTOR_SEARCH: &str = include_str!("sql/phase5_vector_search.sql");

/// SQLSTATE division_by_zero: the plan's percentage divides by COUNT(*) of an empty table.
const DIVISION_BY_ZERO: &str = "22012";

/// What the seed's Phase 5 queries report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Phase5Report {
    /// (table_name, count) rows of "Count records", in the order the query returns them.
    pub table_counts: Vec<(String, i64)>,
    pub total_chunks: i64,
    pub chunks_with_embeddings: i64,
    /// `None` when the chunks table is empty (the plan's query then fails dividing by zero).
    pub percentage: Option<f64>,
    /// (preview, importance_score, similarity) rows of "Test semantic search".
    pub sample_search: Vec<(String, Option<f32>, f64)>,
}

pub(crate) async fn phase5(pool: &PgPool) -> Result<Phase5Report, StoreError> {
    let (statements, failure) = run_script(pool, CHECK_DATA).await;
    let mut statements = statements.into_iter();
    let counts_rows = statements.next().unwrap_or_default();
    let embedding_rows = statements.next().unwrap_or_default();
    let table_counts = counts_rows
        .iter()
        .map(|r| Ok((text(r, 0)?, parse(r, 1)?)))
        .collect::<Result<Vec<(String, i64)>, StoreError>>()?;

    let (total_chunks, chunks_with_embeddings, percentage) = match (failure, embedding_rows.first())
    {
        (None, Some(r)) => (parse(r, 0)?, parse(r, 1)?, opt_parse(r, 2)?),
        (Some(e), _) if is_division_by_zero(&e) && table_counts.len() == 4 => {
            let chunks = table_counts
                .iter()
                .find(|(t, _)| t == "chunks")
                .map_or(0, |(_, n)| *n);
            (chunks, 0, None)
        }
        (Some(e), _) => return Err(store_error("phase 5: checking the data", e)),
        (None, None) => {
            return Err(StoreError::new(
                kb_store::StoreErrorKind::Config,
                "phase 5: the embedding check returned no row",
            ))
        }
    };

    let (statements, failure) = run_script(pool, VECTOR_SEARCH).await;
    if let Some(e) = failure {
        return Err(store_error("phase 5: testing vector search", e));
    }
    let sample_search = statements
        .first()
        .map(|rows| {
            rows.iter()
                .map(|r| Ok((text(r, 0)?, opt_parse(r, 1)?, parse(r, 2)?)))
                .collect::<Result<Vec<_>, StoreError>>()
        })
        .transpose()?
        .unwrap_or_default();

    Ok(Phase5Report {
        table_counts,
        total_chunks,
        chunks_with_embeddings,
        percentage,
        sample_search,
    })
}

/// Runs a multi-statement script; returns the rows of each statement that completed and the
/// error that stopped the script, if any.
async fn run_script(pool: &PgPool, script: &'static str) -> (Vec<Vec<PgRow>>, Option<sqlx::Error>) {
    let mut done = Vec::new();
    let mut current = Vec::new();
    let mut stream = sqlx::raw_sql(script).fetch_many(pool);
    while let Some(item) = stream.next().await {
        match item {
            Ok(Either::Left(_)) => done.push(std::mem::take(&mut current)),
            Ok(Either::Right(row)) => current.push(row),
            Err(e) => return (done, Some(e)),
        }
    }
    (done, None)
}

fn is_division_by_zero(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some(DIVISION_BY_ZERO))
}

fn opt_text(row: &PgRow, i: usize) -> Result<Option<String>, StoreError> {
    // Text-format values decode as strings whatever their SQL type.
    row.try_get_unchecked::<Option<String>, _>(i)
        .map_err(|e| StoreError::with(kind_of(&e), format!("phase 5: column {i}"), e))
}

fn text(row: &PgRow, i: usize) -> Result<String, StoreError> {
    opt_text(row, i)?.ok_or_else(|| StoreError::permanent(format!("phase 5: column {i} is NULL")))
}

fn opt_parse<T: std::str::FromStr>(row: &PgRow, i: usize) -> Result<Option<T>, StoreError> {
    opt_text(row, i)?
        .map(|s| {
            s.trim().parse::<T>().map_err(|_| {
                StoreError::permanent(format!("phase 5: column {i}: cannot parse {s:?}"))
            })
        })
        .transpose()
}

fn parse<T: std::str::FromStr>(row: &PgRow, i: usize) -> Result<T, StoreError> {
    opt_parse(row, i)?.ok_or_else(|| StoreError::permanent(format!("phase 5: column {i} is NULL")))
}
