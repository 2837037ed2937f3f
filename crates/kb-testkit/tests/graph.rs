//! fresh_graph against the real ArcadeDB Bolt server: one isolated database per call.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use neo4rs::{query, ConfigBuilder, Graph};

async fn connect(db: &kb_testkit::GraphDb) -> Graph {
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

async fn names(graph: &Graph) -> Vec<String> {
    let mut rows = graph
        .execute(query("MATCH (d:Doc) RETURN d.name AS name ORDER BY name"))
        .await
        .unwrap();
    let mut out = Vec::new();
    while let Some(row) = rows.next().await.unwrap() {
        out.push(row.get::<String>("name").unwrap());
    }
    out
}

#[tokio::test]
async fn fresh_graphs_are_isolated_over_bolt() {
    let stack = kb_testkit::stack().await.unwrap();
    let a = stack.fresh_graph().await.unwrap();
    let b = stack.fresh_graph().await.unwrap();
    assert_ne!(a.database, b.database);
    assert!(a.uri.starts_with("bolt://127.0.0.1:"));

    let ga = connect(&a).await;
    let gb = connect(&b).await;
    assert!(names(&ga).await.is_empty(), "a fresh graph is empty");

    ga.run(query(
        "CREATE CONSTRAINT doc_name IF NOT EXISTS FOR (d:Doc) REQUIRE d.name IS UNIQUE",
    ))
    .await
    .unwrap();
    ga.run(
        query("UNWIND $names AS n MERGE (d:Doc {name: n}) SET d += {seen: true}")
            .param("names", vec!["alpha", "beta"]),
    )
    .await
    .unwrap();
    gb.run(query("MERGE (d:Doc {name: 'gamma'})"))
        .await
        .unwrap();

    assert_eq!(names(&ga).await, ["alpha", "beta"]);
    assert_eq!(names(&gb).await, ["gamma"]);

    // A new connection sees the committed data of its own database only.
    let ga2 = connect(&a).await;
    assert_eq!(names(&ga2).await, ["alpha", "beta"]);
}
