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
