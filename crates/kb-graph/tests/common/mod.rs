//! Shared test helpers: a fresh graph database per test on the real ArcadeDB Bolt server, and
//! small documents built from the contract's types.
#![allow(dead_code)]

use kb_graph::{GraphConfig, GraphStore};
use kb_proto::{Chunk, Entity, Mention, ParsedDocument, Relation, SourceRef};
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

pub fn source(id: &str, version: u64) -> SourceRef {
    SourceRef {
        link: String::new(),
        source_id: id.into(),
        version,
        origin: "folder:test".into(),
        path: format!("{id}.md"),
        content_hash: format!("hash-{id}-{version}"),
        media_type: "text/markdown".into(),
        modified_unix_ms: 1_700_000_000_000,
        size: 1234,
    }
}

pub fn entity(id: &str, kind: &str) -> Entity {
    Entity {
        entity_id: id.into(),
        name: id.to_uppercase(),
        canonical_name: id.into(),
        entity_type: kind.into(),
    }
}

pub fn relation(from: &str, to: &str, kind: &str, weight: f32) -> Relation {
    Relation {
        source_entity_id: from.into(),
        target_entity_id: to.into(),
        relation_type: kind.into(),
        weight,
    }
}

/// A document with `n` chunks; chunk i mentions every entity in `entities` (i + 1) times.
pub fn document(id: &str, version: u64, n: u32, entities: &[&str]) -> ParsedDocument {
    let chunks: Vec<Chunk> = (0..n)
        .map(|i| Chunk {
            chunk_id: format!("{id}-v{version}-c{i}"),
            index: i,
            text: format!("chunk {i} of {id} version {version}"),
            importance_score: 0.5,
            start_offset: u64::from(i) * 100,
            end_offset: u64::from(i) * 100 + 99,
            token_count: 20,
            speakers: vec!["Ana".into(), "Bo".into()],
            start_seconds: f64::from(i) * 10.0,
            end_seconds: -1.0,
            section: "Intro".into(),
            embedding: vec![0.1; 4],
        })
        .collect();
    let mentions = chunks
        .iter()
        .flat_map(|c| {
            entities.iter().map(move |e| Mention {
                chunk_id: c.chunk_id.clone(),
                entity_id: (*e).into(),
                count: c.index + 1,
            })
        })
        .collect();
    ParsedDocument {
        document_unix_ms: 0,
        source: Some(source(id, version)),
        title: format!("Title of {id}"),
        chunks,
        entities: entities.iter().map(|e| entity(e, "TOPIC")).collect(),
        mentions,
        relations: vec![],
        embedding_model: "test".into(),
        embedding_dimensions: 4,
        parser: "text/1".into(),
    }
}
