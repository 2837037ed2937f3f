//! Private Postgres and ArcadeDB servers: a test can stop, kill and restart them, and what was
//! committed before is there again afterwards, on the same port.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use neo4rs::{query, ConfigBuilder, Graph};
use sqlx::{Connection, PgConnection};

async fn pg_rows(url: &str) -> Vec<i32> {
    let mut c = PgConnection::connect(url).await.unwrap();
    sqlx::query_scalar("SELECT id FROM items ORDER BY id")
        .fetch_all(&mut c)
        .await
        .unwrap()
}

#[tokio::test]
async fn private_postgres_survives_stop_kill_and_restart_with_pgvector() {
    let stack = kb_testkit::stack().await.unwrap();
    let mut pg = stack.private_postgres().await.unwrap();
    let url = pg.url();
    assert!(url.ends_with("/kb"), "{url}");
    assert_ne!(url, stack.postgres_url(), "not the shared server");

    let mut c = PgConnection::connect(&url).await.unwrap();
    sqlx::query("CREATE EXTENSION vector")
        .execute(&mut c)
        .await
        .unwrap();
    sqlx::query("CREATE TABLE items (id int PRIMARY KEY, embedding vector(2))")
        .execute(&mut c)
        .await
        .unwrap();
    sqlx::query("INSERT INTO items VALUES (1, '[1,0]')")
        .execute(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();

    pg.stop().await.unwrap();
    assert!(!pg.is_running());
    assert!(
        PgConnection::connect(&url).await.is_err(),
        "a stopped server refuses connections"
    );
    pg.start().await.unwrap();
    assert_eq!(pg_rows(&url).await, [1]);

    let mut c = PgConnection::connect(&url).await.unwrap();
    sqlx::query("INSERT INTO items VALUES (2, '[0,1]')")
        .execute(&mut c)
        .await
        .unwrap();
    pg.kill9().unwrap();
    // A backend notices its postmaster's death on its next wait, not at once: on a loaded
    // machine it may still answer a ping or two.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while c.ping().await.is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "the session dies with the postmaster"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    pg.start().await.unwrap();
    assert_eq!(
        pg_rows(&url).await,
        [1, 2],
        "committed rows survive a crash"
    );
    let nearest: i32 =
        sqlx::query_scalar("SELECT id FROM items ORDER BY embedding <=> '[0.1,0.9]' LIMIT 1")
            .fetch_one(&mut PgConnection::connect(&url).await.unwrap())
            .await
            .unwrap();
    assert_eq!(nearest, 2);
}

async fn graph(db: &kb_testkit::GraphDb) -> Graph {
    let config = ConfigBuilder::new()
        .uri(&db.uri)
        .user(&db.user)
        .password(&db.password)
        .db(db.database.as_str())
        .max_connections(2)
        .build()
        .unwrap();
    Graph::connect(config).await.unwrap()
}

async fn doc_count(g: &Graph) -> i64 {
    let mut rows = g
        .execute(query("MATCH (d:Doc) RETURN count(d) AS n"))
        .await
        .unwrap();
    rows.next().await.unwrap().unwrap().get::<i64>("n").unwrap()
}

#[tokio::test]
async fn private_graph_survives_stop_kill_and_restart() {
    let stack = kb_testkit::stack().await.unwrap();
    let mut server = stack.private_graph().await.unwrap();
    let db = server.graph_db();
    assert_ne!(db.uri, stack.shared_graph().uri);

    let g = graph(&db).await;
    g.run(query("CREATE (:Doc {name: 'a'})")).await.unwrap();
    assert_eq!(doc_count(&g).await, 1);

    server.stop().await.unwrap();
    assert!(!server.is_running());
    assert!(g.run(query("CREATE (:Doc {name: 'lost'})")).await.is_err());
    server.start().await.unwrap();
    let g = graph(&db).await;
    assert_eq!(doc_count(&g).await, 1);

    g.run(query("CREATE (:Doc {name: 'b'})")).await.unwrap();
    server.kill9().unwrap();
    server.start().await.unwrap();
    let g = graph(&db).await;
    assert_eq!(doc_count(&g).await, 2, "committed nodes survive a crash");
}

#[tokio::test]
async fn a_paused_postgres_holds_its_port_answers_nothing_and_still_stops() {
    use std::time::Duration;
    let stack = kb_testkit::stack().await.unwrap();
    let mut pg = stack.private_postgres().await.unwrap();
    let url = pg.url();
    let mut open = PgConnection::connect(&url).await.unwrap();

    pg.pause().unwrap();
    assert!(pg.is_running(), "paused is not exited");
    let silent = Duration::from_millis(1500);
    assert!(
        tokio::time::timeout(silent, open.ping()).await.is_err(),
        "an open session's backend answers nothing"
    );
    drop(open);
    let tcp = tokio::time::timeout(
        silent,
        tokio::net::TcpStream::connect(("127.0.0.1", pg.port())),
    )
    .await;
    assert!(
        matches!(tcp, Ok(Ok(_))),
        "the kernel still accepts connections: a blackhole, not a refusal"
    );
    assert!(
        tokio::time::timeout(silent, PgConnection::connect(&url))
            .await
            .is_err(),
        "a new session gets no answer"
    );

    pg.resume().unwrap();
    let mut c = PgConnection::connect(&url).await.unwrap();
    c.ping().await.unwrap();

    // Stopping a paused server continues it first, so it shuts down as asked.
    pg.pause().unwrap();
    tokio::time::timeout(Duration::from_secs(20), pg.stop())
        .await
        .expect("stop does not hang on a paused server")
        .unwrap();
    assert!(!pg.is_running());

    // Dropping a paused server takes its backends with it: the open session ends.
    pg.start().await.unwrap();
    let mut c = PgConnection::connect(&url).await.unwrap();
    pg.pause().unwrap();
    drop(pg);
    let closed = tokio::time::timeout(Duration::from_secs(15), c.ping()).await;
    assert!(matches!(closed, Ok(Err(_))), "{closed:?}");
}

#[tokio::test]
async fn a_paused_graph_answers_nothing_until_resumed() {
    use std::time::Duration;
    let stack = kb_testkit::stack().await.unwrap();
    let mut server = stack.private_graph().await.unwrap();
    let db = server.graph_db();
    let g = graph(&db).await;
    g.run(query("CREATE (:Doc {name: 'a'})")).await.unwrap();

    server.pause().unwrap();
    assert!(server.is_running());
    let count = tokio::time::timeout(Duration::from_millis(1500), doc_count(&g)).await;
    assert!(count.is_err(), "a paused server answers nothing");
    server.resume().unwrap();
    assert_eq!(doc_count(&graph(&db).await).await, 1);

    server.pause().unwrap();
    tokio::time::timeout(Duration::from_secs(40), server.stop())
        .await
        .expect("stop does not hang on a paused server")
        .unwrap();
    assert!(!server.is_running());
}
