//! The service loop: file notifications drive publishing, the shutdown token ends it.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::*;
use kb_core::service::Context;
use kb_core::telemetry::Health;
use kb_core::Settings;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn run_publishes_a_dropped_file_through_notifications_and_stops_on_shutdown() {
    let env = setup().await;
    let dir = env.dir.path().join("inbox-not-yet-there");
    let mut settings = Settings::default();
    settings.nats.url = env.nats.url();
    settings.watcher.dir = dir.clone();
    settings.watcher.name = NAME.into();
    // An hour: within this test only notifications can trigger a scan after the first one.
    settings.watcher.rescan_secs = 3600;
    settings.watcher.debounce_ms = 100;
    let ctx = Context {
        name: "kb-watcher",
        shutdown: CancellationToken::new(),
        health: Health::default(),
    };
    let (shutdown, health) = (ctx.shutdown.clone(), ctx.health.clone());
    let task = tokio::spawn(kb_watcher::run(settings, ctx));

    wait_for("the watcher to start", Duration::from_secs(20), || {
        let ready = health.is_ready() && dir.is_dir();
        async move { ready }
    })
    .await;
    // Let the initial (empty) scan finish so the file below can only be found by a notification.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(env.source_events().await.is_empty());

    let started = Instant::now();
    std::fs::create_dir_all(dir.join("new")).unwrap();
    std::fs::write(dir.join("new/dropped.md"), b"# Dropped\n\nhello").unwrap();
    wait_for(
        "the dropped file to be published",
        Duration::from_secs(30),
        || async { !env.source_events().await.is_empty() },
    )
    .await;
    let latency = started.elapsed();
    let events = env.source_events().await;
    assert_eq!(events.len(), 1);
    let (src, body) = &events[0];
    assert_eq!(src.path, "new/dropped.md");
    assert_eq!(src.source_id, id("new/dropped.md"));
    assert_eq!(src.version, 1);
    assert_eq!(body, b"# Dropped\n\nhello");
    eprintln!("notification to publish: {latency:?}");

    // A deletion is noticed the same way.
    std::fs::remove_file(dir.join("new/dropped.md")).unwrap();
    wait_for("the tombstone", Duration::from_secs(30), || async {
        env.mirror_head(&id("new/dropped.md")).await.is_some()
    })
    .await;

    shutdown.cancel();
    let result = tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("run ends soon after shutdown")
        .unwrap();
    assert!(result.is_ok(), "{result:?}");
}

#[tokio::test]
async fn the_running_watcher_collects_orphan_bodies_and_keeps_referenced_ones() {
    use kb_stream::Change;
    let env = setup().await;
    // Referenced: a mirror head with a stored body, made first so it is the older of the two.
    let mut doc = kb_testkit::document("kept", 1, 2, 0);
    doc.title = "t".repeat(4096);
    env.publisher.mirror(Change::Upsert(&doc)).await.unwrap();
    let head = env.publisher.mirror_body("kept").await.unwrap().unwrap();
    let referenced = kb_proto::Blob {
        location: Some(kb_proto::blob::Location::Object(head)),
        size: 0,
    };
    // An orphan: stored, never published (a crash in between).
    let orphan = env
        .publisher
        .blobs()
        .wrap_new("parsed", "lost", 1, vec![7; 4096])
        .await
        .unwrap();

    let mut settings = Settings::default();
    settings.nats.url = env.nats.url();
    settings.watcher.dir = env.root();
    settings.watcher.name = NAME.into();
    settings.watcher.rescan_secs = 3600;
    // Below what validation allows in production, so the test is quick.
    settings.nats.blob_gc_interval_secs = 1;
    settings.nats.blob_gc_grace_secs = 1;
    let ctx = Context {
        name: "kb-watcher",
        shutdown: CancellationToken::new(),
        health: Health::default(),
    };
    let shutdown = ctx.shutdown.clone();
    let task = tokio::spawn(kb_watcher::run(settings, ctx));

    let blobs = env.publisher.blobs().clone();
    wait_for(
        "the orphan to be collected",
        Duration::from_secs(30),
        || {
            let (blobs, orphan) = (blobs.clone(), orphan.clone());
            async move { blobs.fetch(&orphan).await.is_err() }
        },
    )
    .await;
    assert!(
        env.publisher.blobs().fetch(&referenced).await.is_ok(),
        "a body the mirror refers to was collected"
    );
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("run ends soon after shutdown")
        .unwrap()
        .unwrap();
}
