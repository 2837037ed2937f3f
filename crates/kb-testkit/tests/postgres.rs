//! fresh_postgres against the real test Postgres: isolated databases with pgvector available.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use sqlx::{Connection, PgConnection, Row};

#[tokio::test]
async fn fresh_postgres_is_empty_isolated_and_has_pgvector() {
    let stack = kb_testkit::stack().await.unwrap();
    let a = stack.fresh_postgres().await.unwrap();
    let b = stack.fresh_postgres().await.unwrap();
    assert_ne!(a, b);

    let mut ca = PgConnection::connect(&a).await.unwrap();
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_one(&mut ca)
    .await
    .unwrap();
    assert_eq!(tables, 0, "a fresh database has no tables");

    sqlx::query("CREATE EXTENSION vector")
        .execute(&mut ca)
        .await
        .unwrap();
    sqlx::query("CREATE TABLE items (id int PRIMARY KEY, embedding vector(3))")
        .execute(&mut ca)
        .await
        .unwrap();
    sqlx::query("INSERT INTO items VALUES (1, '[1,0,0]'), (2, '[0,1,0]')")
        .execute(&mut ca)
        .await
        .unwrap();
    let nearest =
        sqlx::query("SELECT id, embedding <=> '[0.9,0.1,0]' AS d FROM items ORDER BY d LIMIT 1")
            .fetch_one(&mut ca)
            .await
            .unwrap();
    assert_eq!(nearest.get::<i32, _>("id"), 1);

    // The other database does not see the table.
    let mut cb = PgConnection::connect(&b).await.unwrap();
    let seen: Option<String> = sqlx::query_scalar("SELECT to_regclass('items')::text")
        .fetch_one(&mut cb)
        .await
        .unwrap();
    assert_eq!(seen, None);

    let encoding: String = sqlx::query_scalar("SHOW server_encoding")
        .fetch_one(&mut cb)
        .await
        .unwrap();
    assert_eq!(encoding, "UTF8");
}
