//! A version never names two contents (issue 15, item 1): the watcher reserves a version in
//! its state before publishing under it, so a stop between the publish and the state write
//! (SIGTERM drops the scan future; here a paused failpoint and an aborted task) can never lead
//! the next scan to publish other content, or a re-created file, under an already used version.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::*;
use kb_proto::mirror_event::Kind;
use kb_watcher::Scanner;
use std::time::Duration;

const MAX: u64 = 1024 * 1024;

/// Runs a scan until it reaches failpoint `name` (armed for `path`), then drops it there, as a
/// stopping process does.
async fn scan_stopped_at(scanner: &Scanner, name: &str, path: &str) {
    kb_core::failpoint::set(name, &format!("1*pause@{path}")).unwrap();
    let scan = {
        let s = scanner.clone();
        tokio::spawn(async move { s.scan().await })
    };
    assert!(
        kb_core::failpoint::wait_hit(name, Duration::from_secs(20)).await,
        "the scan never reached {name}"
    );
    scan.abort();
    assert!(scan.await.unwrap_err().is_cancelled());
}

/// (version, body) of every source event of `rel`, in publish order.
async fn versions_of(env: &Env, rel: &str) -> Vec<(u64, Vec<u8>)> {
    env.source_events()
        .await
        .into_iter()
        .filter(|(s, _)| s.path == rel)
        .map(|(s, b)| (s.version, b))
        .collect()
}

#[tokio::test]
async fn a_stop_after_publishing_never_gives_the_version_to_the_next_content() {
    let _fail = kb_testkit::FailGuard::new();
    let env = setup().await;
    env.write("notes.md", b"first");
    let scanner = env.scanner(MAX);
    scanner.scan().await.unwrap();

    env.write("notes.md", b"second, published and then stopped");
    scan_stopped_at(&scanner, "watcher.after_publish", "notes.md").await;
    // Changed again before the next scan: this content must get a version of its own.
    env.write("notes.md", b"third");
    let report = scanner.scan().await.unwrap();
    assert_eq!(report.published.len(), 1, "{report:?}");
    assert_eq!(report.published[0].version, 3);
    assert_eq!(
        versions_of(&env, "notes.md").await,
        [
            (1, b"first".to_vec()),
            (2, b"second, published and then stopped".to_vec()),
            (3, b"third".to_vec()),
        ]
    );
    let state = env.state(&id("notes.md")).await;
    assert_eq!(state["version"], 3);
    assert_eq!(
        state["content_hash"],
        kb_core::ids::content_hash(b"third").as_str()
    );
    assert!(state.get("pending").is_none(), "{state}");
    // Settled: nothing more to publish.
    let report = scanner.scan().await.unwrap();
    assert!(report.published.is_empty() && report.unchanged == 1);
}

#[tokio::test]
async fn a_stop_before_publishing_publishes_the_reserved_version_at_the_next_scan() {
    let _fail = kb_testkit::FailGuard::new();
    let env = setup().await;
    env.write("notes.md", b"first");
    let scanner = env.scanner(MAX);
    scanner.scan().await.unwrap();

    // Reserved, never published; the file stays as it is.
    env.write("notes.md", b"second");
    scan_stopped_at(&scanner, "watcher.before_publish", "notes.md").await;
    assert_eq!(env.state(&id("notes.md")).await["pending"], true);
    let report = scanner.scan().await.unwrap();
    assert_eq!(report.published.len(), 1, "{report:?}");
    assert_eq!(report.published[0].version, 2);

    // A stop after the publish, content unchanged: the same version again, deduplicated.
    env.write("notes.md", b"third!");
    scan_stopped_at(&scanner, "watcher.after_publish", "notes.md").await;
    let report = scanner.scan().await.unwrap();
    assert_eq!(report.published[0].version, 3);
    assert_eq!(
        versions_of(&env, "notes.md").await,
        [
            (1, b"first".to_vec()),
            (2, b"second".to_vec()),
            (3, b"third!".to_vec()),
        ]
    );
    assert!(env.state(&id("notes.md")).await.get("pending").is_none());
}

#[tokio::test]
async fn a_file_recreated_after_an_unconfirmed_tombstone_gets_a_version_above_it() {
    let _fail = kb_testkit::FailGuard::new();
    let env = setup().await;
    let path = env.write("notes.md", b"content");
    env.write("other.md", b"stays");
    let scanner = env.scanner(MAX);
    scanner.scan().await.unwrap();

    std::fs::remove_file(&path).unwrap();
    scan_stopped_at(&scanner, "watcher.after_publish", "notes.md").await;
    let (_, tombstone) = env.mirror_head(&id("notes.md")).await.expect("tombstone");
    assert_eq!(tombstone.kind, Kind::Delete as i32);
    assert_eq!(tombstone.source.unwrap().version, 2);

    // Back with the very same bytes before the next scan.
    env.write("notes.md", b"content");
    let report = scanner.scan().await.unwrap();
    assert_eq!(report.published.len(), 1, "{report:?}");
    assert_eq!(report.published[0].version, 3);
    assert_eq!(
        versions_of(&env, "notes.md").await,
        [(1, b"content".to_vec()), (3, b"content".to_vec())]
    );
    assert_eq!(env.state(&id("notes.md")).await["deleted"], false);
}

#[tokio::test]
async fn a_tombstone_reserved_but_never_published_goes_out_at_the_next_scan() {
    let _fail = kb_testkit::FailGuard::new();
    let env = setup().await;
    let path = env.write("notes.md", b"content");
    let scanner = env.scanner(MAX);
    scanner.scan().await.unwrap();

    std::fs::remove_file(&path).unwrap();
    // Reserved (the state says deleted), stopped before the mirror publish.
    kb_core::failpoint::set("mirror.before_send", &format!("1*pause@{}", id("notes.md"))).unwrap();
    let scan = {
        let s = scanner.clone();
        tokio::spawn(async move { s.scan().await })
    };
    assert!(kb_core::failpoint::wait_hit("mirror.before_send", Duration::from_secs(20)).await);
    scan.abort();
    let _ = scan.await;
    assert!(env.mirror_head(&id("notes.md")).await.is_none());
    assert_eq!(env.state(&id("notes.md")).await["deleted"], true);

    let report = scanner.scan().await.unwrap();
    assert_eq!(report.deleted.len(), 1, "{report:?}");
    assert_eq!(report.deleted[0].version, 2);
    let (_, head) = env.mirror_head(&id("notes.md")).await.expect("tombstone");
    assert_eq!(head.kind, Kind::Delete as i32);
    assert!(env.state(&id("notes.md")).await.get("pending").is_none());
}
