//! Stores that stop answering, and documents a store cannot take: every case ends within a
//! bound. A blackholed store (a TCP proxy that drops every byte) yields an error and a retry
//! within the apply deadline and the document lands exactly once when the network heals; a
//! document that keeps timing out while the store answers is dead-lettered as `timeout`; a
//! document the store rejects is dead-lettered and marked failed in that store, and a retry of
//! the same version goes in.
#![allow(clippy::unwrap_used)] // tests: a failed step is a failed test

mod common;

use common::*;
use kb_core::failpoint;
use kb_core::settings::PostgresSettings;
use kb_core::Secret;
use kb_pg::PgStore;
use kb_store::{Applied, Change, MirrorStore, SourceSummary, StoreCounts, StoreError};
use kb_stream::Progress;
use kb_stream::Stage;
use kb_testkit::{FailGuard, TcpProxy};
use kb_writer::WriterOptions;
use std::time::{Duration, Instant};

const DIMS: usize = 8;

/// Waits until `failpoint` was hit at least `n` times.
async fn wait_hits(name: &str, n: u32, timeout: Duration) -> Duration {
    let started = Instant::now();
    while failpoint::hits(name) < n {
        assert!(
            started.elapsed() < timeout,
            "{name} hit {} times in {timeout:?}, expected {n}",
            failpoint::hits(name)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blackholed_store_is_retried_within_the_bound_and_the_document_lands_once() {
    let _fp = FailGuard::new();
    let env = env().await;
    let (pg, url) = fresh_pg(DIMS).await;
    let graph = fresh_graph().await;
    let proxy = TcpProxy::start(kb_testkit::upstream_of(&url).await.unwrap())
        .await
        .unwrap();
    let proxied = PgStore::from_settings(
        &PostgresSettings {
            url: Secret::new(proxy.rewrite_url(&url)),
            max_connections: 2,
            apply_timeout_secs: 2,
            statement_timeout_ms: 1000,
            ..PostgresSettings::default()
        },
        DIMS,
    )
    .await
    .unwrap();
    let options = WriterOptions {
        retry_for: Duration::from_secs(4),
        // Reached while blackholed: the probe does not answer either, so no dead letter.
        max_timeouts_per_document: 2,
        ..WriterOptions::new(1)
    };
    let (stop_pg, pg_task) =
        spawn_writer(Stage::PgWriter, proxied, env.nats.url(), options.clone());
    let (stop_graph, graph_task) =
        spawn_writer(Stage::GraphWriter, graph.clone(), env.nats.url(), options);
    publish(&env.publisher, &document("warm", 1, 2, DIMS)).await;
    wait_for(&pg, "the warm-up document", Duration::from_secs(60), |s| {
        s.len() == 1
    })
    .await;

    // The window: pg-writer's transaction is written and about to commit.
    failpoint::set("pg.before_commit", "1*pause@held").unwrap();
    failpoint::set("writer.apply", "off@pg-writer/held").unwrap();
    let doc = document("held", 1, 30, DIMS);
    publish(&env.publisher, &doc).await;
    assert!(failpoint::wait_hit("pg.before_commit", Duration::from_secs(30)).await);
    proxy.blackhole();
    failpoint::release("pg.before_commit");
    proxy
        .wait_dropped(1, Duration::from_secs(10))
        .await
        .unwrap();

    // An error and a retry within a bound, not never: the apply deadline (2 s + 1 s for the
    // chunks), the probe that finds the store silent too (2 s), the first pause (0.2 s).
    let retried_after = wait_hits("writer.apply", 2, Duration::from_secs(10)).await;
    eprintln!("retried {retried_after:?} after the blackhole");
    // The graph writer is not held up meanwhile.
    wait_for(
        &graph,
        "the graph to have it",
        Duration::from_secs(30),
        |s| s.iter().any(|s| s.source_id == "held"),
    )
    .await;
    // Still retrying later on: each delivery's retries end after 4 s, then a nak, and the
    // message comes back.
    wait_hits("writer.apply", 3, Duration::from_secs(20)).await;

    proxy.pass().await.unwrap();
    let healed = Instant::now();
    let dl = dead_letters(&env.topo).await;
    assert!(dl.is_empty(), "{dl:?}");
    let has_it = |s: &[SourceSummary]| s.iter().any(|s| s.source_id == "held" && s.chunks == 30);
    while !has_it(&pg.summaries().await.unwrap()) {
        if healed.elapsed() > Duration::from_secs(30) {
            panic!(
                "not landed; dead letters: {:?}",
                dead_letters(&env.topo).await
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    eprintln!("landed {:?} after the network healed", healed.elapsed());

    // Exactly once, both stores agree, nothing dead-lettered.
    wait_caught_up(&env.topo, "pg-writer", Duration::from_secs(30)).await;
    wait_caught_up(&env.topo, "graph-writer", Duration::from_secs(30)).await;
    let in_pg = pg.summaries().await.unwrap();
    assert_eq!(in_pg, graph.summaries().await.unwrap());
    let chunks: i64 = sqlx::query_scalar("SELECT count(*) FROM chunks WHERE source_id = 'held'")
        .fetch_one(pg.pool())
        .await
        .unwrap();
    assert_eq!(chunks, 30);
    assert!(dead_letters(&env.topo).await.is_empty());
    stop_pg.cancel();
    stop_graph.cancel();
    pg_task.await.unwrap().unwrap();
    graph_task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_that_always_times_out_is_dead_lettered_and_the_next_one_is_written() {
    let _fp = FailGuard::new();
    let env = env().await;
    let (pg, _) = fresh_pg(DIMS).await;
    let store = pg.clone().with_apply_timeout(Duration::from_secs(1));
    // Every apply of `big` hangs; the store itself answers.
    failpoint::set("writer.apply", "sleep(60000)@pg-writer/big").unwrap();
    let options = WriterOptions {
        max_timeouts_per_document: 3,
        ..WriterOptions::new(1)
    };
    let (stop, task) = spawn_writer(Stage::PgWriter, store, env.nats.url(), options);
    publish(&env.publisher, &document("big", 1, 4, DIMS)).await;
    publish(&env.publisher, &document("next", 1, 4, DIMS)).await;

    let started = Instant::now();
    let states = wait_for(
        &pg,
        "big failed and next written",
        Duration::from_secs(30),
        |s| {
            s.len() == 2
                && s.iter()
                    .all(|s| s.status == if s.source_id == "big" { "failed" } else { "ok" })
        },
    )
    .await;
    eprintln!("settled in {:?}: {states:?}", started.elapsed());
    assert_eq!(
        failpoint::hits("writer.apply"),
        3,
        "three timeouts, then given up"
    );
    let dl = dead_letters(&env.topo).await;
    assert_eq!(dl.len(), 1, "{dl:?}");
    assert_eq!(
        (dl[0].stage.as_str(), dl[0].error_kind.as_str()),
        ("pg-writer", "timeout")
    );
    assert!(
        dl[0].reason.contains("timed out 3 times"),
        "{}",
        dl[0].reason
    );
    let progress = Progress::new(env.topo.progress.clone())
        .get(Stage::PgWriter, "big")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((progress.version, progress.status.as_str()), (1, "failed"));
    assert!(progress.error.unwrap_or_default().contains("timeout"));
    let reason: String = sqlx::query_scalar("SELECT error FROM sources WHERE source_id = 'big'")
        .fetch_one(pg.pool())
        .await
        .unwrap();
    assert!(reason.contains("pg-writer gave up (timeout)"), "{reason}");
    stop.cancel();
    task.await.unwrap().unwrap();
}

/// A document the writer keeps dying on (the failpoint drops the delivery unanswered, as a
/// process killed mid-apply would) is given up by the consume loop itself, as `crashed`, after
/// `writer.crash_limit` deaths: the writer still marks it failed in its store and records
/// progress `failed` at that version, so `kb ingest` ends; the next document is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_the_writer_keeps_dying_on_is_recorded_failed_after_crash_limit() {
    let _fp = FailGuard::new();
    failpoint::set("consume.handle", "4*skip@doomed").unwrap();
    let env = env().await;
    let (pg, _) = fresh_pg(DIMS).await;
    let options = WriterOptions {
        ack_wait: Duration::from_secs(1),
        crash_limit: 3,
        ..WriterOptions::new(1)
    };
    let (stop, task) = spawn_writer(Stage::PgWriter, pg.clone(), env.nats.url(), options);
    publish(&env.publisher, &document("doomed", 1, 2, DIMS)).await;
    publish(&env.publisher, &document("fine", 1, 2, DIMS)).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let dl = loop {
        let dl = dead_letters(&env.topo).await;
        if !dl.is_empty() {
            break dl;
        }
        assert!(Instant::now() < deadline, "no dead letter");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        (dl[0].stage.as_str(), dl[0].error_kind.as_str()),
        ("pg-writer", "crashed")
    );
    let progress = Progress::new(env.topo.progress.clone());
    let deadline = Instant::now() + Duration::from_secs(10);
    let recorded = loop {
        match progress.get(Stage::PgWriter, "doomed").await.unwrap() {
            Some(rec) => break Some(rec),
            None if Instant::now() >= deadline => break None,
            None => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    let recorded = recorded.expect("no progress recorded for the document given up");
    assert_eq!((recorded.version, recorded.status.as_str()), (1, "failed"));
    assert!(
        recorded.error.unwrap_or_default().contains("crashed"),
        "the reason names the give-up"
    );
    wait_for(
        &pg,
        "doomed failed and fine written",
        Duration::from_secs(30),
        |s| {
            s.len() == 2
                && s.iter().all(|s| {
                    s.status
                        == if s.source_id == "doomed" {
                            "failed"
                        } else {
                            "ok"
                        }
                })
        },
    )
    .await;
    stop.cancel();
    task.await.unwrap().unwrap();
}

/// Postgres that refuses one source's upserts as it would refuse a malformed document.
struct Rejecting {
    inner: PgStore,
    source_id: &'static str,
    rejecting: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl MirrorStore for Rejecting {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    async fn prepare(&self) -> Result<(), StoreError> {
        self.inner.prepare().await
    }
    async fn apply(&self, change: Change<'_>) -> Result<Applied, StoreError> {
        let refused = matches!(change, Change::Upsert(d)
            if d.source.as_ref().is_some_and(|s| s.source_id == self.source_id));
        if refused && self.rejecting.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::permanent("injected: vector dimension mismatch"));
        }
        self.inner.apply(change).await
    }
    fn apply_deadline(&self, change: &Change<'_>) -> Duration {
        self.inner.apply_deadline(change)
    }
    async fn probe(&self) -> Result<(), StoreError> {
        self.inner.probe().await
    }
    async fn purge_tombstones(&self, deleted_before_unix_ms: i64) -> Result<u64, StoreError> {
        self.inner.purge_tombstones(deleted_before_unix_ms).await
    }
    async fn summaries(&self) -> Result<Vec<SourceSummary>, StoreError> {
        self.inner.summaries().await
    }
    async fn counts(&self) -> Result<StoreCounts, StoreError> {
        self.inner.counts().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_document_is_marked_failed_in_that_store_and_a_retry_of_it_goes_in() {
    let env = env().await;
    let (pg, _) = fresh_pg(DIMS).await;
    let store = std::sync::Arc::new(Rejecting {
        inner: pg.clone(),
        source_id: "bad",
        rejecting: true.into(),
    });
    let (stop, task) = spawn_writer(
        Stage::PgWriter,
        ArcStore(store.clone()),
        env.nats.url(),
        WriterOptions::new(2),
    );
    let doc = document("bad", 2, 4, DIMS);
    publish(&env.publisher, &doc).await;
    publish(&env.publisher, &document("good", 1, 4, DIMS)).await;
    let states = wait_for(
        &pg,
        "bad failed, good written",
        Duration::from_secs(30),
        |s| {
            s.len() == 2
                && s.iter()
                    .any(|s| s.source_id == "bad" && s.status == "failed")
        },
    )
    .await;
    let bad = states.iter().find(|s| s.source_id == "bad").unwrap();
    assert_eq!((bad.version, bad.chunks), (2, 0));
    let dl = dead_letters(&env.topo).await;
    assert_eq!(dl.len(), 1, "{dl:?}");
    assert_eq!(dl[0].error_kind, "store_rejected");
    let progress = Progress::new(env.topo.progress.clone())
        .get(Stage::PgWriter, "bad")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((progress.version, progress.status.as_str()), (2, "failed"));

    // Fixed; the dead letter is retried as `kb dead-letters retry` does: the original message,
    // the same version, published again to its subject. It goes in.
    store
        .rejecting
        .store(false, std::sync::atomic::Ordering::SeqCst);
    env.topo
        .js
        .publish(
            dl[0].original_subject.clone(),
            dl[0].original_payload.clone().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    wait_for(&pg, "the retried version", Duration::from_secs(30), |s| {
        s.iter()
            .any(|s| s.source_id == "bad" && s.status == "ok" && s.chunks == 4)
    })
    .await;
    stop.cancel();
    task.await.unwrap().unwrap();
}

/// A shared store handed to a writer (which takes its store by value).
struct ArcStore<S>(std::sync::Arc<S>);

#[async_trait::async_trait]
impl<S: MirrorStore> MirrorStore for ArcStore<S> {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    async fn prepare(&self) -> Result<(), StoreError> {
        self.0.prepare().await
    }
    async fn apply(&self, change: Change<'_>) -> Result<Applied, StoreError> {
        self.0.apply(change).await
    }
    fn apply_deadline(&self, change: &Change<'_>) -> Duration {
        self.0.apply_deadline(change)
    }
    async fn probe(&self) -> Result<(), StoreError> {
        self.0.probe().await
    }
    async fn purge_tombstones(&self, deleted_before_unix_ms: i64) -> Result<u64, StoreError> {
        self.0.purge_tombstones(deleted_before_unix_ms).await
    }
    async fn summaries(&self) -> Result<Vec<SourceSummary>, StoreError> {
        self.0.summaries().await
    }
    async fn counts(&self) -> Result<StoreCounts, StoreError> {
        self.0.counts().await
    }
}
