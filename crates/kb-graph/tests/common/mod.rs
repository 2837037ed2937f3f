//! Shared test helpers: a fresh graph database per test on the real ArcadeDB Bolt server. The
//! documents are kb-testkit's fixtures (`document_about`, `named_entity`, `relation`).
#![allow(dead_code)]

use kb_graph::{GraphConfig, GraphStore};
use kb_store::MirrorStore;
use neo4rs::{query, BoltType, ConfigBuilder, Graph};

/// A prepared store on an empty database, plus a raw Bolt client to inspect it.
pub struct TestGraph {
    pub store: GraphStore,
    pub raw: Graph,
    pub config: GraphConfig,
}

pub async fn fresh() -> TestGraph {
    let db = kb_testkit::stack()
        .await
        .unwrap()
        .fresh_graph()
        .await
        .unwrap();
    let config = GraphConfig {
        uri: db.uri.clone(),
        user: db.user.clone(),
        password: db.password.clone(),
        database: Some(db.database.clone()),
        max_connections: 4,
    };
    let store = GraphStore::connect(&config).await.unwrap();
    store.prepare().await.unwrap();
    let raw = Graph::connect(
        ConfigBuilder::default()
            .uri(db.uri.as_str())
            .user(db.user.as_str())
            .password(db.password.as_str())
            .db(db.database.as_str())
            .max_connections(2)
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    TestGraph { store, raw, config }
}

impl TestGraph {
    /// Runs a query returning one integer column `n` in its first row.
    pub async fn count(&self, cypher: &str) -> i64 {
        self.count_with(cypher, vec![]).await
    }

    pub async fn count_with(&self, cypher: &str, params: Vec<(&str, BoltType)>) -> i64 {
        let mut rows = self
            .raw
            .execute(query(cypher).params(params))
            .await
            .unwrap();
        let row = rows.next().await.unwrap().expect("one row");
        row.get::<i64>("n").unwrap()
    }

    /// All values of one string column.
    pub async fn strings(&self, cypher: &str, column: &str) -> Vec<String> {
        let mut rows = self.raw.execute(query(cypher)).await.unwrap();
        let mut out = Vec::new();
        while let Some(row) = rows.next().await.unwrap() {
            out.push(row.get::<String>(column).unwrap());
        }
        out.sort();
        out
    }

    /// Number of relationships of every kind: catches duplicates MERGE might have made.
    pub async fn relationship_total(&self) -> i64 {
        self.count("MATCH ()-[r]->() RETURN count(r) AS n").await
    }

    pub async fn node_total(&self) -> i64 {
        self.count("MATCH (x) RETURN count(x) AS n").await
    }
}
