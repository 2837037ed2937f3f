//! Schema setup: the embedded migrations, then the embedding dimension and the HNSW index,
//! which depend on the configured model and so cannot live in a fixed migration.

use kb_store::{StoreError, StoreErrorKind};
use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, PgPool, Postgres};

use crate::error::{config, migrate_error, store_error};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Session advisory lock (single-key space) held while preparing or switching bulk mode, so two
/// processes starting at once do not race on `CREATE EXTENSION`, the column type or the index.
const PREPARE_LOCK: i64 = 0x6b62_5f70_675f_7072; // "kb_pg_pr"

/// pgvector's limit for the `vector` type.
pub(crate) const MAX_DIMENSIONS: usize = 16_000;

pub(crate) async fn prepare(pool: &PgPool, dimensions: usize) -> Result<(), StoreError> {
    let mut conn = lock_schema(pool, "preparing the Postgres schema").await?;
    let result = prepare_locked(&mut conn, dimensions).await;
    unlock_schema(conn).await;
    result
}

/// A connection holding the schema lock; hand it back to [`unlock_schema`].
pub(crate) async fn lock_schema(
    pool: &PgPool,
    what: &str,
) -> Result<PoolConnection<Postgres>, StoreError> {
    let mut conn = pool
        .acquire()
        .await
        .map_err(|e| store_error(format!("{what}: connecting"), e))?;
    // Schema work may rightly take long (an HNSW build over every chunk, waiting for another
    // process's build): lift the session's time limits until unlock_schema restores them.
    for statement in LIFT_LIMITS {
        if let Err(e) = sqlx::query(statement).execute(&mut *conn).await {
            conn.close_on_drop();
            return Err(store_error(format!("{what}: lifting the time limits"), e));
        }
    }
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(PREPARE_LOCK)
        .execute(&mut *conn)
        .await
        .map_err(|e| store_error(format!("{what}: taking the lock"), e))?;
    Ok(conn)
}

pub(crate) async fn unlock_schema(mut conn: PoolConnection<Postgres>) {
    let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(PREPARE_LOCK)
        .execute(&mut *conn)
        .await;
    let mut restored = true;
    for statement in RESTORE_LIMITS {
        restored &= sqlx::query(statement).execute(&mut *conn).await.is_ok();
    }
    if unlocked.is_err() || !restored {
        // The lock lives as long as the session: closing it is the sure way to release it
        // (and a session without its time limits must not go back to the pool).
        conn.close_on_drop();
    }
}

/// No statement or lock time limit for this session (schema work).
const LIFT_LIMITS: [&str; 2] = ["SET statement_timeout = 0", "SET lock_timeout = 0"];

/// Back to the limits the session started with (`postgres.statement_timeout_ms`).
const RESTORE_LIMITS: [&str; 2] = ["RESET statement_timeout", "RESET lock_timeout"];

async fn prepare_locked(conn: &mut PgConnection, dimensions: usize) -> Result<(), StoreError> {
    // `run_direct` is `run` on a connection we already hold (under our lock); `run` itself trips
    // the "Acquire is not general enough" limitation inside a Send future.
    MIGRATOR
        .run_direct(&mut *conn)
        .await
        .map_err(migrate_error)?;
    match embedding_dimension(&mut *conn).await? {
        Some(have) if have == dimensions => {}
        Some(have) => return Err(dimension_mismatch(have, dimensions)),
        None => {
            // The type modifier cannot be a bind parameter; `dimensions` is a checked integer.
            let alter =
                format!("ALTER TABLE chunks ALTER COLUMN embedding TYPE vector({dimensions})");
            sqlx::query(&alter).execute(&mut *conn).await.map_err(
                |e| match crate::error::kind_of(&e) {
                    StoreErrorKind::Transient => store_error("setting the embedding dimension", e),
                    _ => StoreError::with(
                        StoreErrorKind::Config,
                        format!(
                            "cannot make chunks.embedding vector({dimensions}): the table holds \
                             embeddings of another dimension; replay into a fresh database"
                        ),
                        e,
                    ),
                },
            )?;
        }
    }
    create_vector_index(conn, dimensions).await
}

/// The HNSW index over `chunks.embedding` (cosine), if missing. Built with a large
/// `maintenance_work_mem` so the graph is built in memory: when it does not fit, pgvector
/// builds on disk, many times slower. Memory is only used as far as the data needs it.
pub(crate) async fn create_vector_index(
    conn: &mut PgConnection,
    dimensions: usize,
) -> Result<(), StoreError> {
    let failed = |e: sqlx::Error| {
        match crate::error::kind_of(&e) {
        StoreErrorKind::Transient => store_error("creating the HNSW index", e),
        _ => StoreError::with(
            StoreErrorKind::Config,
            format!("cannot create the HNSW index on vector({dimensions}) (pgvector indexes at most 2000 dimensions)"),
            e,
        ),
    }
    };
    let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(failed)?;
    sqlx::query(INDEX_BUILD_MEMORY)
        .execute(&mut *tx)
        .await
        .map_err(failed)?;
    sqlx::query(&format!(
        "CREATE INDEX IF NOT EXISTS {VECTOR_INDEX} ON chunks USING hnsw (embedding vector_cosine_ops)"
    ))
    .execute(&mut *tx)
    .await
    .map_err(failed)?;
    tx.commit().await.map_err(failed)
}

/// Transaction-local, so pooled connections keep the server's default.
const INDEX_BUILD_MEMORY: &str = "SET LOCAL maintenance_work_mem = '512MB'";

/// The vector index's name (`chunks_embedding_hnsw_idx`).
pub(crate) const VECTOR_INDEX: &str = "chunks_embedding_hnsw_idx";

/// At connect: refuses a store whose embeddings have another dimension than the model's.
pub(crate) async fn check_dimension(pool: &PgPool, dimensions: usize) -> Result<(), StoreError> {
    if dimensions == 0 || dimensions > MAX_DIMENSIONS {
        return Err(config(format!(
            "embedding dimension {dimensions} is out of range (1..={MAX_DIMENSIONS})"
        )));
    }
    let mut conn = pool
        .acquire()
        .await
        .map_err(|e| store_error("checking the embedding dimension: connecting", e))?;
    match embedding_dimension(&mut conn).await? {
        Some(have) if have != dimensions => Err(dimension_mismatch(have, dimensions)),
        _ => Ok(()),
    }
}

/// The dimension `chunks.embedding` is declared with; `None` when the table does not exist yet
/// or the column has no dimension.
async fn embedding_dimension(conn: &mut PgConnection) -> Result<Option<usize>, StoreError> {
    let typmod: Option<i32> = sqlx::query_scalar(
        "SELECT a.atttypmod FROM pg_attribute a
         WHERE a.attrelid = to_regclass('chunks') AND a.attname = 'embedding'
           AND NOT a.attisdropped",
    )
    .fetch_optional(&mut *conn)
    .await
    .map_err(|e| store_error("reading the embedding dimension", e))?;
    // pgvector stores the dimension itself as the type modifier; -1 means none.
    Ok(typmod
        .filter(|t| *t > 0)
        .and_then(|t| usize::try_from(t).ok()))
}

fn dimension_mismatch(have: usize, want: usize) -> StoreError {
    config(format!(
        "the Postgres store holds {have}-dimensional embeddings but the configured embedding \
         model produces {want}: the model changed. Re-embed by replaying the mirror stream into \
         a fresh database, or configure the model this store was built with"
    ))
}
