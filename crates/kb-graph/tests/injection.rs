//! Relation types come from documents, so they must never become Cypher text.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod common;

use common::fresh;
use kb_store::{Applied, Change, MirrorStore};
use kb_testkit::fixtures::{document_about, relation};

#[tokio::test]
async fn a_hostile_relation_type_is_stored_as_related_to_and_deletes_nothing() {
    let g = fresh().await;
    let victim = document_about("victim", 1, 3, &["alice", "bob"]);
    g.store.apply(Change::Upsert(&victim)).await.unwrap();
    let (nodes, rels) = (g.node_total().await, g.relationship_total().await);

    let mut attack = document_about("attacker", 1, 1, &["alice", "bob"]);
    attack.relations = vec![
        relation("alice", "bob", "X]->() DETACH DELETE n //", 1.0),
        relation(
            "bob",
            "alice",
            "KNOWS`]->(b) WITH b MATCH (n) DETACH DELETE n //",
            1.0,
        ),
    ];
    // Values are parameters too: Cypher in a title or a text is just text.
    attack.title = "') MATCH (n) DETACH DELETE n //".into();
    attack.chunks[0].text = "\"}) MATCH (n) DETACH DELETE n //".into();
    assert_eq!(
        g.store.apply(Change::Upsert(&attack)).await.unwrap(),
        Applied::Written
    );

    // The victim is intact: every node and relationship is still there, plus the attacker's.
    assert_eq!(
        g.count("MATCH (:Source {source_id: 'victim'})-[:HAS_CHUNK]->(c) RETURN count(c) AS n")
            .await,
        3
    );
    // +1 source +1 chunk; +1 HAS_CHUNK +2 MENTIONS +2 relations
    assert_eq!(g.node_total().await, nodes + 2);
    assert_eq!(g.relationship_total().await, rels + 5);
    assert_eq!(
        g.strings("MATCH (:Entity)-[r]->(:Entity) RETURN type(r) AS t", "t")
            .await,
        vec!["RELATED_TO", "RELATED_TO"]
    );
    assert_eq!(
        g.strings(
            "MATCH (s:Source {source_id: 'attacker'}) RETURN s.title AS t",
            "t"
        )
        .await,
        vec!["') MATCH (n) DETACH DELETE n //"]
    );
}
