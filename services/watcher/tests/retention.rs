//! The watcher as the version authority under tombstone retention, against a real NATS: a
//! deleted file past the retention leaves no state behind, a file that came back keeps its
//! state, and a file re-created after being forgotten is numbered above its old tombstone (a
//! store may still hold that tombstone, and would refuse anything at or below it).

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::*;
use kb_stream::retention;
use kb_watcher::retention::StateAuthority;
use std::time::Duration;

#[tokio::test]
async fn a_forgotten_deleted_file_comes_back_above_its_old_tombstone() {
    let env = setup().await;
    let gone = env.write("gone.md", b"content");
    let back = env.write("back.md", b"back");
    let scanner = env.scanner(1024 * 1024);
    scanner.scan().await.unwrap();
    std::fs::remove_file(&gone).unwrap();
    std::fs::remove_file(&back).unwrap();
    let report = scanner.scan().await.unwrap();
    assert_eq!(report.deleted.len(), 2);
    // One of them is back before the retention runs: its state moved on, so it is kept.
    env.write("back.md", b"back again");
    scanner.scan().await.unwrap();
    assert_eq!(env.state(&id("back.md")).await["version"], 3);

    let authority = StateAuthority::new(&env.topo.js, env.topo.watch.clone()).await;
    let r = retention::collect(&env.topo, Duration::ZERO, &authority)
        .await
        .unwrap();
    assert_eq!((r.expired, r.forgotten, r.kept), (2, 1, 1), "{r:?}");
    assert!(env.mirror_head(&id("gone.md")).await.is_none());
    let key = format!("{NAME}.{}", id("gone.md"));
    assert!(env.topo.watch.entry(key.as_str()).await.unwrap().is_none());
    assert_eq!(env.state(&id("back.md")).await["deleted"], false);
    assert!(env.mirror_head(&id("back.md")).await.is_some());

    // Re-created with the same bytes after it was forgotten: above the old tombstone (v2).
    env.write("gone.md", b"content");
    let report = scanner.scan().await.unwrap();
    assert_eq!(report.published.len(), 1, "{report:?}");
    assert_eq!(report.published[0].version, 3, "{report:?}");
}
