//! A Postgres that stops answering costs a bounded time, never a writer stuck for good: the
//! store is reached through a TCP proxy that the test blackholes (bytes read and dropped, no
//! connection closed: packets lost), inside the window a failpoint holds open.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::time::{Duration, Instant};

use kb_core::failpoint;
use kb_core::settings::PostgresSettings;
use kb_core::Secret;
use kb_pg::PgStore;
use kb_store::{Applied, Change, MirrorStore, StoreErrorExt as _};
use kb_testkit::{document, FailGuard, TcpProxy};

const DIMS: usize = 8;

/// A prepared database, its direct store, and a store of one connection through a proxy with
/// short limits: applies get 2 s, statements and idle transactions 1 s on the server.
async fn proxied() -> (PgStore, PgStore, TcpProxy) {
    let url = kb_testkit::stack()
        .await
        .unwrap()
        .fresh_postgres()
        .await
        .unwrap();
    let direct = PgStore::connect(&url, DIMS, 2).await.unwrap();
    direct.prepare().await.unwrap();
    let proxy = TcpProxy::start(kb_testkit::upstream_of(&url).await.unwrap())
        .await
        .unwrap();
    let settings = PostgresSettings {
        url: Secret::new(proxy.rewrite_url(&url)),
        max_connections: 1,
        apply_timeout_secs: 2,
        statement_timeout_ms: 1000,
        ..PostgresSettings::default()
    };
    let store = PgStore::from_settings(&settings, DIMS).await.unwrap();
    (direct, store, proxy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blackholed_commit_times_out_and_the_next_apply_gets_a_fresh_connection() {
    let _fp = FailGuard::new();
    let (direct, store, proxy) = proxied().await;
    let warm = document("warm", 1, 3, DIMS);
    assert_eq!(
        store.apply(Change::Upsert(&warm)).await.unwrap(),
        Applied::Written
    );

    // The window: the transaction holds the source's lock and all its rows; COMMIT is next.
    let doc = document("held", 1, 40, DIMS);
    failpoint::set("pg.before_commit", "1*pause@held").unwrap();
    let task = tokio::spawn({
        let (store, doc) = (store.clone(), doc.clone());
        async move { store.apply(Change::Upsert(&doc)).await }
    });
    assert!(failpoint::wait_hit("pg.before_commit", Duration::from_secs(20)).await);
    proxy.blackhole();
    let lost_at = Instant::now();
    failpoint::release("pg.before_commit");

    let outcome = tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("the apply must end on its own deadline, not hang")
        .unwrap();
    let waited = lost_at.elapsed();
    let err = outcome.expect_err("a commit into a blackhole cannot succeed");
    assert!(err.is_transient() && err.is_timeout(), "{err}");
    assert!(waited < Duration::from_secs(5), "took {waited:?}");
    // Proof the COMMIT went into the hole (nothing else was sent meanwhile).
    proxy.wait_dropped(1, Duration::from_secs(5)).await.unwrap();

    // The network heals. The dead connection was closed, not pooled: with a pool of one, a
    // connection handed back would be pinged forever and the next apply would find none.
    proxy.pass().await.unwrap();
    let before = proxy.stats().accepted;
    let healed = Instant::now();
    let applied = loop {
        // The server ends the abandoned transaction (idle_in_transaction_session_timeout,
        // 1 s) and with it the source's lock; until then the lock wait may time out (1 s).
        match store.apply(Change::Upsert(&doc)).await {
            Ok(a) => break a,
            Err(e) if e.is_transient() && healed.elapsed() < Duration::from_secs(10) => {
                eprintln!("retrying after {e}");
            }
            Err(e) => panic!("no recovery after the network healed: {e}"),
        }
    };
    assert_eq!(applied, Applied::Written);
    assert!(
        healed.elapsed() < Duration::from_secs(5),
        "{:?}",
        healed.elapsed()
    );
    assert!(proxy.stats().accepted > before, "a new connection was made");

    // Exactly once: one version, each chunk once.
    let summaries = direct.summaries().await.unwrap();
    let held = summaries.iter().find(|s| s.source_id == "held").unwrap();
    assert_eq!(
        (held.version, held.chunks, held.status.as_str()),
        (1, 40, "ok")
    );
    let chunks: i64 = sqlx::query_scalar("SELECT count(*) FROM chunks WHERE source_id = 'held'")
        .fetch_one(direct.pool())
        .await
        .unwrap();
    assert_eq!(chunks, 40);
    assert_eq!(
        store.apply(Change::Upsert(&doc)).await.unwrap(),
        Applied::Stale { current: 1 }
    );
}

/// Waits until the pool holds its connection idle again (handed back and checked).
async fn idle(store: &PgStore) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.pool().num_idle() == 0 {
        assert!(Instant::now() < deadline, "the connection never came back");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_answers_within_two_seconds_even_when_the_network_does_not() {
    let (_direct, store, proxy) = proxied().await;
    store.probe().await.unwrap();
    // Blackholed while idle in the pool: taking it out again tests it first (a ping).
    idle(&store).await;
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
    proxy.pass().await.unwrap();
    // The pool's only connection was closed, so this one is new and answers.
    tokio::time::timeout(Duration::from_secs(10), store.probe())
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_ends_a_statement_past_postgres_statement_timeout_ms() {
    let (_direct, store, _proxy) = proxied().await;
    let started = Instant::now();
    let err = sqlx::query("SELECT pg_sleep(10)")
        .execute(store.pool())
        .await
        .expect_err("statement_timeout is 1 s");
    let code = err
        .as_database_error()
        .and_then(|d| d.code())
        .map(|c| c.into_owned());
    assert_eq!(code.as_deref(), Some("57014"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // Schema work lifts the limit for its own session and restores it after.
    store.end_bulk().await.unwrap();
    let limit: String = sqlx::query_scalar("SHOW statement_timeout")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(limit, "1s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_handed_back_into_a_blackhole_frees_its_pool_slot() {
    let (_direct, store, proxy) = proxied().await;
    // The pool's only connection, in use when the network dies; handing it back pings it.
    let conn = store.pool().acquire().await.unwrap();
    proxy.blackhole();
    drop(conn);
    proxy
        .wait_dropped(1, Duration::from_secs(10))
        .await
        .unwrap();
    proxy.pass().await.unwrap();
    // Without a bound on that ping, the slot stays taken until the kernel gives up on the
    // socket (minutes) and nothing can be applied meanwhile.
    let started = Instant::now();
    let doc = document("after", 1, 2, DIMS);
    let applied = loop {
        match store.apply(Change::Upsert(&doc)).await {
            Ok(a) => break a,
            Err(e) if started.elapsed() < Duration::from_secs(15) => eprintln!("retrying: {e}"),
            Err(e) => panic!("the pool slot never came back: {e}"),
        }
    };
    assert_eq!(applied, Applied::Written);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}
