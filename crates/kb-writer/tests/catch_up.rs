//! Catching up and rebuilding: a transient store error is handed back to JetStream and retried,
//! an empty store behind a backlog is filled without its vector index which is built once at
//! the end (also under continuous ingest, and after `writer.bulk_max_secs` at the latest), and
//! a replay of the mirror stream into an empty store equals the live store.
#![allow(clippy::unwrap_used)] // tests: a failed step is a failed test

mod common;

use common::*;
use kb_store::read::{ChunkFilter, TextIndex};
use kb_store::{Applied, Change, MirrorStore, SourceSummary, StoreCounts, StoreError};
use kb_stream::Stage;
use kb_writer::replay::{ReplayFrom, ReplayOptions};
use kb_writer::WriterOptions;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The real store, with faults injected at its door: the first `fail_first` applies fail as a
/// transient outage would, and applies wait while the gate is closed.
struct Faulty<S> {
    inner: S,
    fail_first: u32,
    applies: Arc<AtomicU32>,
    gate: watch::Receiver<bool>,
}

#[async_trait::async_trait]
impl<S: MirrorStore> MirrorStore for Faulty<S> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    async fn prepare(&self) -> Result<(), StoreError> {
        self.inner.prepare().await
    }
    async fn apply(&self, change: Change<'_>) -> Result<Applied, StoreError> {
        let mut gate = self.gate.clone();
        let _ = gate.wait_for(|open| *open).await;
        if self.applies.fetch_add(1, Ordering::SeqCst) < self.fail_first {
            return Err(StoreError::transient("injected: connection refused"));
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
    async fn begin_bulk(&self) -> Result<bool, StoreError> {
        self.inner.begin_bulk().await
    }
    async fn end_bulk(&self) -> Result<(), StoreError> {
        self.inner.end_bulk().await
    }
}

fn faulty<S>(
    inner: S,
    fail_first: u32,
    open: bool,
) -> (Faulty<S>, Arc<AtomicU32>, watch::Sender<bool>) {
    let (tx, rx) = watch::channel(open);
    let applies = Arc::new(AtomicU32::new(0));
    (
        Faulty {
            inner,
            fail_first,
            applies: applies.clone(),
            gate: rx,
        },
        applies,
        tx,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_store_error_is_nacked_and_redelivered_not_dead_lettered() {
    let env = env().await;
    let (pg, _) = fresh_pg(8).await;
    let (store, applies, _gate) = faulty(pg.clone(), 2, true);
    let options = WriterOptions {
        // No in-process retry: every failure goes back to JetStream as a nak with delay.
        retry_for: Duration::ZERO,
        ..WriterOptions::new(1)
    };
    publish(&env.publisher, &document("flaky", 1, 4, 8)).await;
    let (stop, task) = spawn_writer(Stage::PgWriter, store, env.nats.url(), options);
    let started = Instant::now();
    wait_for(&pg, "flaky applied", Duration::from_secs(60), |s| {
        s.len() == 1
    })
    .await;
    // Redelivered by the naks (1 s, then 2 s), before ack_wait (30 s) would have.
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(applies.load(Ordering::SeqCst), 3);
    wait_caught_up(&env.topo, "pg-writer", Duration::from_secs(30)).await;
    assert!(dead_letters(&env.topo).await.is_empty());
    stop.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_store_behind_a_backlog_is_filled_without_the_index_then_indexed() {
    let env = env().await;
    let (pg, _) = fresh_pg(8).await;
    for i in 0..12 {
        publish(&env.publisher, &document(&format!("doc{i:02}"), 1, 5, 8)).await;
    }
    // Below the threshold, or on a store that holds something, nothing changes.
    pg.prepare().await.unwrap();
    let mirror = &env.topo.mirror;
    assert!(
        kb_writer::bulk::maybe_begin(&pg, mirror, Stage::PgWriter, 13)
            .await
            .is_none()
    );
    assert!(pg.has_vector_index().await.unwrap());
    let (other, _) = fresh_pg(8).await;
    other.prepare().await.unwrap();
    other
        .apply(Change::Upsert(&document("x", 1, 1, 8)))
        .await
        .unwrap();
    assert!(
        kb_writer::bulk::maybe_begin(&other, mirror, Stage::PgWriter, 1)
            .await
            .is_none()
    );
    assert!(other.has_vector_index().await.unwrap());

    // Applies are held back, so the writer is still catching up while we look.
    let (store, _, gate) = faulty(pg.clone(), 0, false);
    let options = WriterOptions {
        bulk_min_backlog: 10,
        ..WriterOptions::new(4)
    };
    let (stop, task) = spawn_writer(Stage::PgWriter, store, env.nats.url(), options);
    let deadline = Instant::now() + Duration::from_secs(60);
    while pg.has_vector_index().await.unwrap() {
        assert!(
            Instant::now() < deadline,
            "bulk mode never dropped the index"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    gate.send(true).unwrap();
    wait_for(&pg, "12 documents", Duration::from_secs(120), |s| {
        s.len() == 12
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !pg.has_vector_index().await.unwrap() {
        assert!(
            Instant::now() < deadline,
            "the index was not built after catching up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Normal mode from here: a new document lands with the index in place.
    publish(&env.publisher, &document("late", 1, 5, 8)).await;
    wait_for(&pg, "the late document", Duration::from_secs(60), |s| {
        s.len() == 13
    })
    .await;
    assert!(pg.has_vector_index().await.unwrap());
    let hits = pg
        .nearest(&chunk_vector("late", 1, 2, 8), &ChunkFilter::default(), 1)
        .await
        .unwrap();
    assert_eq!(hits[0].chunk_id, "late-v1-c2");
    stop.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_into_an_empty_store_equals_the_live_store() {
    let env = env().await;
    let p = &env.publisher;
    publish(p, &document("a", 1, 6, 8)).await;
    publish(p, &document("b", 1, 6, 8)).await;
    publish(p, &document("b", 2, 4, 8)).await;
    publish(p, &document("c", 1, 6, 8)).await;
    p.mirror(Change::Delete(&source("c", 2))).await.unwrap();
    p.mirror(Change::Failed(&source("d", 1), "empty file"))
        .await
        .unwrap();

    let (live, _) = fresh_pg(8).await;
    let (stop, task) = spawn_writer(
        Stage::PgWriter,
        live.clone(),
        env.nats.url(),
        WriterOptions::new(4),
    );
    wait_caught_up(&env.topo, "pg-writer", Duration::from_secs(120)).await;
    let live_state = live.summaries().await.unwrap();
    assert_eq!(live_state.len(), 3, "{live_state:?}");

    let (rebuilt, _) = fresh_pg(8).await;
    let events = std::sync::Mutex::new(Vec::new());
    let report = kb_writer::replay(p, &rebuilt, &ReplayOptions::default(), |e| {
        events.lock().unwrap().push(e)
    })
    .await
    .unwrap();
    assert!(report.bulk);
    assert_eq!(
        (
            report.messages,
            report.written,
            report.deleted,
            report.marked_failed
        ),
        (4, 2, 1, 1)
    );
    assert!(report.skipped.is_empty());
    assert_eq!(rebuilt.summaries().await.unwrap(), live_state);
    assert_eq!(
        rebuilt.counts().await.unwrap(),
        live.counts().await.unwrap()
    );
    assert!(rebuilt.has_vector_index().await.unwrap());
    let events = events.into_inner().unwrap();
    assert!(matches!(
        events.first(),
        Some(kb_writer::ReplayEvent::Started {
            total: 4,
            bulk: true
        })
    ));
    assert!(events.contains(&kb_writer::ReplayEvent::Applied { done: 4, total: 4 }));
    // The tombstone came along: an older upsert arriving late still loses.
    assert_eq!(
        rebuilt
            .apply(Change::Upsert(&document("c", 1, 6, 8)))
            .await
            .unwrap(),
        Applied::Stale { current: 2 }
    );

    // Replaying again changes nothing and needs no bulk mode.
    let again = kb_writer::replay(p, &rebuilt, &ReplayOptions::default(), |_| {})
        .await
        .unwrap();
    assert!(!again.bulk);
    assert_eq!((again.messages, again.stale), (4, 4));
    assert_eq!(rebuilt.summaries().await.unwrap(), live_state);

    // --since: only what changed from then on.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let since = time::OffsetDateTime::now_utc();
    publish(p, &document("e", 1, 3, 8)).await;
    let (backfill, _) = fresh_pg(8).await;
    let options = ReplayOptions {
        from: ReplayFrom::Since(since),
        ..Default::default()
    };
    let report = kb_writer::replay(p, &backfill, &options, |_| {})
        .await
        .unwrap();
    assert_eq!((report.messages, report.written), (1, 1));
    let ids: Vec<String> = backfill
        .summaries()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.source_id)
        .collect();
    assert_eq!(ids, vec!["e"]);
    stop.cancel();
    task.await.unwrap().unwrap();
}

/// The real store, with every apply of a source whose id starts with `slow` taking 300 ms.
struct Slow<S>(S);

#[async_trait::async_trait]
impl<S: MirrorStore> MirrorStore for Slow<S> {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    async fn prepare(&self) -> Result<(), StoreError> {
        self.0.prepare().await
    }
    async fn apply(&self, change: Change<'_>) -> Result<Applied, StoreError> {
        if change
            .source()
            .is_some_and(|s| s.source_id.starts_with("slow"))
        {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        self.0.apply(change).await
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
    async fn begin_bulk(&self) -> Result<bool, StoreError> {
        self.0.begin_bulk().await
    }
    async fn end_bulk(&self) -> Result<(), StoreError> {
        self.0.end_bulk().await
    }
}

/// The stream sequence up to which `stage` has acknowledged everything.
async fn ack_floor(topo: &kb_stream::Topology, stage: &str) -> u64 {
    match topo.mirror.consumer_info(stage).await {
        Ok(info) => info.ack_floor.stream_sequence,
        Err(_) => 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_mode_ends_under_continuous_ingest() {
    let env = env().await;
    let (pg, _) = fresh_pg(8).await;
    for i in 0..150 {
        publish(&env.publisher, &document(&format!("doc{i:03}"), 1, 2, 8)).await;
    }
    let target = {
        let mut mirror = env.topo.mirror.clone();
        mirror.info().await.unwrap().state.last_sequence
    };
    // The schema (and the index) exists, so its absence below means bulk mode.
    pg.prepare().await.unwrap();
    let (stop, task) = spawn_writer(
        Stage::PgWriter,
        Slow(pg.clone()),
        env.nats.url(),
        WriterOptions::new(1),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while pg.has_vector_index().await.unwrap() {
        assert!(Instant::now() < deadline, "bulk mode never began");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // From now on a source changes every 100 ms and takes the writer 300 ms each time: the
    // writer never runs out of messages, so it is never "caught up".
    let feeding = tokio::spawn({
        let publisher = env.publisher.clone();
        async move {
            for i in 0u64.. {
                let doc = document(&format!("slow{}", i % 20), i / 20 + 1, 2, 8);
                publish(&publisher, &doc).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    // The backlog the writer started with is written...
    let deadline = Instant::now() + Duration::from_secs(60);
    while ack_floor(&env.topo, "pg-writer").await < target {
        assert!(Instant::now() < deadline, "the backlog was never written");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let written = Instant::now();
    // ...while the writer is still behind the live changes.
    let info = env.topo.mirror.consumer_info("pg-writer").await.unwrap();
    assert!(info.num_pending > 0, "{info:?}");
    while !pg.has_vector_index().await.unwrap() {
        assert!(
            written.elapsed() < Duration::from_secs(10),
            "bulk mode did not end after the backlog was written"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "index built {:?} after the backlog was written",
        written.elapsed()
    );
    feeding.abort();
    stop.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_mode_ends_after_bulk_max_secs_even_if_the_backlog_is_not_written() {
    let env = env().await;
    let (pg, _) = fresh_pg(8).await;
    for i in 0..12 {
        publish(&env.publisher, &document(&format!("doc{i:02}"), 1, 2, 8)).await;
    }
    pg.prepare().await.unwrap();
    // Nothing can be written: the backlog stays.
    let (store, _, gate) = faulty(pg.clone(), 0, false);
    let options = WriterOptions {
        bulk_min_backlog: 10,
        bulk_max: Duration::from_secs(2),
        ..WriterOptions::new(1)
    };
    let (stop, task) = spawn_writer(Stage::PgWriter, store, env.nats.url(), options);
    let deadline = Instant::now() + Duration::from_secs(30);
    while pg.has_vector_index().await.unwrap() {
        assert!(Instant::now() < deadline, "bulk mode never began");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let began = Instant::now();
    while !pg.has_vector_index().await.unwrap() {
        assert!(
            began.elapsed() < Duration::from_secs(10),
            "bulk mode outlasted bulk_max"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        began.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        began.elapsed()
    );
    assert!(
        pg.summaries().await.unwrap().is_empty(),
        "nothing was written yet"
    );
    gate.send(true).unwrap();
    wait_for(&pg, "the backlog", Duration::from_secs(60), |s| {
        s.len() == 12
    })
    .await;
    stop.cancel();
    task.await.unwrap().unwrap();
}
