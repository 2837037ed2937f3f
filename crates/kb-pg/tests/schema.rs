//! Schema setup, the embedding dimension contract and connection errors.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use common::*;
use kb_pg::PgStore;
use kb_store::{Applied, Change, MirrorStore, StoreErrorKind};

#[tokio::test]
async fn a_chunk_of_the_wrong_dimension_is_permanent_and_writes_nothing() {
    let (store, _) = fresh_store(4).await;
    let good = document_mentioning("s1", 1, "good", 2, &[entity("Alice", "PERSON")], 4);
    assert_eq!(
        store.apply(Change::Upsert(&good)).await.unwrap(),
        Applied::Written
    );
    let before = store.summaries().await.unwrap();

    // Version 2 carries one 3-dimensional embedding: the whole document is refused.
    let mut bad = document_mentioning("s1", 2, "bad", 2, &[entity("Bob", "PERSON")], 4);
    bad.chunks[1].embedding = vec![0.1, 0.2, 0.3];
    let err = store.apply(Change::Upsert(&bad)).await.unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::Permanent, "{err}");
    assert!(err.to_string().contains("3-dimensional"), "{err}");
    assert_eq!(store.summaries().await.unwrap(), before);
    assert_eq!(entity_ids(&store).await, vec!["PERSON:alice"]);

    // Also on a new source: nothing at all is written.
    let mut fresh = document_mentioning("s2", 1, "bad", 1, &[], 4);
    fresh.chunks[0].embedding = vec![1.0; 3];
    assert!(store.apply(Change::Upsert(&fresh)).await.is_err());
    let sources: i64 = sqlx::query_scalar("SELECT count(*) FROM sources")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(sources, 1);
}

#[tokio::test]
async fn connecting_with_another_dimension_to_a_prepared_store_is_a_config_error() {
    let (_store, url) = fresh_store(4).await;
    let err = PgStore::connect(&url, 8, 2).await.unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::Config, "{err}");
    assert!(err.to_string().contains("4-dimensional"), "{err}");
    // The same dimension connects fine.
    PgStore::connect(&url, 4, 2).await.unwrap();
}

#[tokio::test]
async fn concurrent_prepare_sets_the_dimension_and_the_hnsw_index_once() {
    let url = kb_testkit::stack()
        .await
        .unwrap()
        .fresh_postgres()
        .await
        .unwrap();
    let a = PgStore::connect(&url, 6, 2).await.unwrap();
    let b = PgStore::connect(&url, 6, 2).await.unwrap();
    let (ra, rb) = tokio::join!(a.prepare(), b.prepare());
    ra.unwrap();
    rb.unwrap();
    a.prepare().await.unwrap();

    let column_type: String = sqlx::query_scalar(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute
         WHERE attrelid = 'chunks'::regclass AND attname = 'embedding'",
    )
    .fetch_one(a.pool())
    .await
    .unwrap();
    assert_eq!(column_type, "vector(6)");
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT indexdef FROM pg_indexes WHERE tablename = 'chunks' AND indexdef LIKE '%hnsw%'",
    )
    .fetch_all(a.pool())
    .await
    .unwrap();
    assert_eq!(indexes.len(), 1, "{indexes:?}");
    assert!(indexes[0].contains("vector_cosine_ops"), "{}", indexes[0]);

    // Preparing with another dimension is refused, not silently altered.
    let other = PgStore::connect(&url, 6, 1).await.unwrap();
    sqlx::query("SELECT 1").execute(other.pool()).await.unwrap();
    let err = PgStore::connect(&url, 7, 1).await.unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::Config);
}

#[tokio::test]
async fn the_seed_tables_exist_with_the_seed_column_names() {
    let (store, _) = fresh_store(4).await;
    let columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns
         WHERE table_schema = current_schema()
           AND (table_name, column_name) IN (('chunks', 'text'), ('chunks', 'importance_score'),
               ('chunks', 'embedding'), ('sources', 'source_id'), ('entities', 'entity_id'),
               ('chunk_mentions', 'chunk_id'), ('chunk_mentions', 'entity_id'))
         ORDER BY 1, 2",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(columns.len(), 7, "{columns:?}");
}

#[tokio::test]
async fn connection_problems_have_the_right_kind() {
    let stack = kb_testkit::stack().await.unwrap();
    let url = stack.fresh_postgres().await.unwrap();

    // Nobody listens on port 1: retry later.
    let err = PgStore::connect("postgres://postgres@127.0.0.1:1/kb", 4, 1)
        .await
        .unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::Transient, "{err}");

    // A database that does not exist: the operator must fix the URL.
    let missing = url.rsplit_once('/').unwrap().0.to_string() + "/no_such_database";
    let err = PgStore::connect(&missing, 4, 1).await.unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::Config, "{err}");

    let err = PgStore::connect("not a url", 4, 1).await.unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::Config, "{err}");

    // sslmode=require makes the client insist on TLS, which the local server lacks: the hosted
    // setting is honoured, not ignored.
    let sep = if url.contains('?') { '&' } else { '?' };
    let err = PgStore::connect(&format!("{url}{sep}sslmode=require"), 4, 1)
        .await
        .unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::Config, "{err}");
    // The default (prefer) falls back to plain TCP on a server without TLS.
    PgStore::connect(&format!("{url}{sep}sslmode=prefer"), 4, 1)
        .await
        .unwrap();
}

#[tokio::test]
async fn postgres_ssl_mode_verify_full_refuses_a_server_that_cannot_prove_itself() {
    use kb_core::settings::{PostgresSettings, SslMode};
    let url = kb_testkit::stack()
        .await
        .unwrap()
        .fresh_postgres()
        .await
        .unwrap();
    // Loopback without sslmode: no network to trust, plain TCP (the stack has no TLS).
    let loopback = PostgresSettings {
        url: kb_core::Secret::new(url.clone()),
        ..PostgresSettings::default()
    };
    PgStore::from_settings(&loopback, 4).await.unwrap();
    // The setting applies to any host when the URL names no sslmode: the local server offers
    // no TLS, so nothing is sent in the clear and the error says what to check.
    let verify = PostgresSettings {
        ssl_mode: Some(SslMode::VerifyFull),
        ..loopback
    };
    let err = PgStore::from_settings(&verify, 4).await.unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::Config, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("postgres.ssl_root_cert") && text.contains("verify-full"),
        "{text}"
    );
}
