//! A thin transaction wrapper: every call names what it does, so errors say which statement
//! failed, and every driver error is classified on the way out. Reads run on their own
//! ([`read_rows`]).

use kb_store::StoreError;
use neo4rs::{query, BoltType, Graph, Row, Txn};

use crate::error::classify;
use crate::rows::list;

/// Rows per UNWIND statement: large documents (thousands of chunks) are sent in slices so no
/// single Bolt message or server-side statement grows without bound.
pub(crate) const BATCH_ROWS: usize = 500;

pub(crate) struct Tx {
    txn: Txn,
}

impl Tx {
    pub(crate) async fn begin(graph: &Graph, database: Option<&str>) -> Result<Self, StoreError> {
        let txn = match database {
            Some(db) => graph.start_txn_on(db).await,
            None => graph.start_txn().await,
        }
        .map_err(|e| {
            let mut err = classify("begin transaction", e);
            // BEGIN carries no document data, so its refusal is the connection's or the
            // server's state (a server shutting down answers "BEGIN not expected in state:
            // AUTHENTICATION"), never the document's: retry, do not dead-letter.
            if err.kind == kb_store::StoreErrorKind::Permanent {
                err.kind = kb_store::StoreErrorKind::Transient;
            }
            err
        })?;
        Ok(Self { txn })
    }

    /// Runs a statement, discarding its result.
    pub(crate) async fn run(
        &mut self,
        what: &str,
        cypher: &str,
        params: Vec<(&str, BoltType)>,
    ) -> Result<(), StoreError> {
        self.txn
            .run(query(cypher).params(params))
            .await
            .map_err(|e| classify(what, e))
    }

    /// Runs a statement and reads all of its rows.
    pub(crate) async fn rows(
        &mut self,
        what: &str,
        cypher: &str,
        params: Vec<(&str, BoltType)>,
    ) -> Result<Vec<Row>, StoreError> {
        let mut stream = self
            .txn
            .execute(query(cypher).params(params))
            .await
            .map_err(|e| classify(what, e))?;
        let mut rows = Vec::new();
        while let Some(row) = stream
            .next(self.txn.handle())
            .await
            .map_err(|e| classify(what, e))?
        {
            rows.push(row);
        }
        Ok(rows)
    }

    /// Runs an `UNWIND $rows` statement over `rows` in slices of [`BATCH_ROWS`], with `$sid`.
    pub(crate) async fn run_batched(
        &mut self,
        what: &str,
        cypher: &str,
        sid: &str,
        rows: &[BoltType],
    ) -> Result<(), StoreError> {
        for batch in rows.chunks(BATCH_ROWS) {
            let params = vec![
                ("sid", crate::rows::string(sid)),
                ("rows", list(batch.to_vec())),
            ];
            self.run(what, cypher, params).await?;
        }
        Ok(())
    }

    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        self.txn.commit().await.map_err(|e| classify("commit", e))
    }

    /// Best effort: after a failed statement the server already discarded the transaction and
    /// answers IGNORED; the pool's RESET on reuse cleans up either way.
    pub(crate) async fn rollback(self) {
        if let Err(e) = self.txn.rollback().await {
            tracing::debug!(error = %e, "graph: rollback did not complete");
        }
    }
}

/// Runs one read statement in an auto-commit transaction: RUN and PULL, where an explicit
/// transaction adds a BEGIN and a ROLLBACK round trip (a third of a query's messages).
pub(crate) async fn read_rows(
    graph: &Graph,
    database: Option<&str>,
    what: &str,
    cypher: &str,
    params: Vec<(&str, BoltType)>,
) -> Result<Vec<Row>, StoreError> {
    let q = query(cypher).params(params);
    let mut stream = match database {
        Some(db) => graph.execute_on(db, q).await,
        None => graph.execute(q).await,
    }
    .map_err(|e| classify(what, e))?;
    let mut rows = Vec::new();
    while let Some(row) = stream.next().await.map_err(|e| classify(what, e))? {
        rows.push(row);
    }
    Ok(rows)
}

/// Reads an integer column that may be null.
pub(crate) fn opt_i64(row: &Row, column: &str) -> Result<Option<i64>, StoreError> {
    row.get::<Option<i64>>(column)
        .map_err(|e| unexpected(column, e))
}

pub(crate) fn req_i64(row: &Row, column: &str) -> Result<i64, StoreError> {
    row.get::<i64>(column).map_err(|e| unexpected(column, e))
}

pub(crate) fn opt_string(row: &Row, column: &str) -> Result<Option<String>, StoreError> {
    row.get::<Option<String>>(column)
        .map_err(|e| unexpected(column, e))
}

pub(crate) fn req_string(row: &Row, column: &str) -> Result<String, StoreError> {
    row.get::<String>(column).map_err(|e| unexpected(column, e))
}

fn unexpected(column: &str, e: neo4rs::DeError) -> StoreError {
    StoreError::with(
        kb_store::StoreErrorKind::Permanent,
        format!("graph: unexpected value in column {column}"),
        e,
    )
}
