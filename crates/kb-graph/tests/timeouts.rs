//! A graph server that stops answering costs a bounded time: the store is reached through a
//! TCP proxy that the test blackholes (bytes read and dropped, nothing closed: packets lost),
//! inside the window a failpoint holds open. After a deadline the Bolt pool is replaced, so
//! the connection that hung is never drawn again (neo4rs would recycle it with a RESET that
//! has no timeout).
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::time::{Duration, Instant};

use kb_core::failpoint;
use kb_graph::{GraphConfig, GraphStore};
use kb_store::{Applied, Change, MirrorStore, StoreErrorExt as _};
use kb_testkit::{document, FailGuard, TcpProxy};

/// A prepared database, its direct store, and a store of one Bolt connection through a proxy
/// whose applies get 2 s.
async fn proxied() -> (GraphStore, GraphStore, TcpProxy) {
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
        max_connections: 2,
    };
    let direct = GraphStore::connect(&config).await.unwrap();
    direct.prepare().await.unwrap();
    let proxy = TcpProxy::start(kb_testkit::upstream_of(&db.uri).await.unwrap())
        .await
        .unwrap();
    let store = GraphStore::connect(&GraphConfig {
        uri: proxy.rewrite_url(&db.uri),
        max_connections: 1,
        ..config
    })
    .await
    .unwrap()
    .with_apply_timeout(Duration::from_secs(2));
    (direct, store, proxy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blackholed_commit_times_out_and_the_next_apply_gets_a_new_pool() {
    let _fp = FailGuard::new();
    let (direct, store, proxy) = proxied().await;
    let warm = document("warm", 1, 3, 0);
    assert_eq!(
        store.apply(Change::Upsert(&warm)).await.unwrap(),
        Applied::Written
    );

    // The window: everything is written in the transaction; COMMIT is next.
    let doc = document("held", 1, 40, 0);
    failpoint::set("graph.before_commit", "1*pause@held").unwrap();
    let task = tokio::spawn({
        let (store, doc) = (store.clone(), doc.clone());
        async move { store.apply(Change::Upsert(&doc)).await }
    });
    assert!(failpoint::wait_hit("graph.before_commit", Duration::from_secs(20)).await);
    proxy.blackhole();
    let lost_at = Instant::now();
    failpoint::release("graph.before_commit");

    let outcome = tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("the apply must end on its own deadline, not hang")
        .unwrap();
    let waited = lost_at.elapsed();
    let err = outcome.expect_err("a commit into a blackhole cannot succeed");
    assert!(err.is_transient() && err.is_timeout(), "{err}");
    assert!(waited < Duration::from_secs(5), "took {waited:?}");
    proxy.wait_dropped(1, Duration::from_secs(5)).await.unwrap();
    assert_eq!(store.pool_generation(), 1, "the pool was replaced");

    // The network heals: the very next apply works (the hung connection is gone with the
    // old pool; drawn again, its RESET would hang until the deadline).
    proxy.pass().await.unwrap();
    let healed = Instant::now();
    assert_eq!(
        store.apply(Change::Upsert(&doc)).await.unwrap(),
        Applied::Written
    );
    assert!(
        healed.elapsed() < Duration::from_secs(5),
        "{:?}",
        healed.elapsed()
    );

    // Exactly once, and the two stores of this database agree.
    let summaries = direct.summaries().await.unwrap();
    let held = summaries.iter().find(|s| s.source_id == "held").unwrap();
    assert_eq!(
        (held.version, held.chunks, held.status.as_str()),
        (1, 40, "ok")
    );
    assert_eq!(store.summaries().await.unwrap(), summaries);
    assert_eq!(
        store.apply(Change::Upsert(&doc)).await.unwrap(),
        Applied::Stale { current: 1 }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_answers_within_two_seconds_even_when_the_network_does_not() {
    let (_direct, store, proxy) = proxied().await;
    store.probe().await.unwrap();
    proxy.blackhole();
    let started = Instant::now();
    let err = tokio::time::timeout(Duration::from_secs(20), store.probe())
        .await
        .expect("the probe has its own deadline")
        .expect_err("nothing answers");
    assert!(err.is_timeout(), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(store.pool_generation(), 1);
    proxy.pass().await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), store.probe())
        .await
        .unwrap()
        .unwrap();
}
