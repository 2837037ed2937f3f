//! Failures are classified so callers know whether to retry.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod common;

use common::fresh;
use kb_graph::{GraphConfig, GraphStore};
use kb_store::{Change, MirrorStore, StoreErrorKind};
use kb_testkit::fixtures::document_about;

#[tokio::test]
async fn an_unreachable_server_is_transient() {
    // A port nothing listens on: bind one, note it, let it go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = GraphConfig::new(format!("bolt://127.0.0.1:{port}"), "neo4j", "x");
    let err = GraphStore::connect(&cfg)
        .await
        .err()
        .expect("connect must fail");
    assert_eq!(err.kind, StoreErrorKind::Transient, "{err}");
}

#[tokio::test]
async fn a_wrong_password_is_a_configuration_error() {
    let g = fresh().await;
    let mut cfg = g.config.clone();
    cfg.password = "not-the-password".into();
    let err = GraphStore::connect(&cfg)
        .await
        .err()
        .expect("connect must fail");
    assert_eq!(err.kind, StoreErrorKind::Config, "{err}");
}

#[tokio::test]
async fn a_malformed_document_is_permanent_and_writes_nothing() {
    let g = fresh().await;
    let mut doc = document_about("doc-m", 1, 2, &["alice"]);
    doc.mentions[0].entity_id = "nobody".into();
    let err = g.store.apply(Change::Upsert(&doc)).await.unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::Permanent, "{err}");

    let mut doc = document_about("doc-m", 1, 2, &[]);
    doc.source = None;
    let err = g.store.apply(Change::Upsert(&doc)).await.unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::Permanent, "{err}");

    assert_eq!(g.node_total().await, 0);
}
