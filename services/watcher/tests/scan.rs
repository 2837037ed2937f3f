//! The scanner against a real NATS: versions, idempotent rescans, tombstones, restarts,
//! oversized files and concurrent watchers, verified by reading the real streams.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::*;
use kb_proto::mirror_event::Kind;
use kb_watcher::{FileOutcome, Published, WatchErrorKind};
use std::time::{Duration, SystemTime};

const MAX: u64 = 1024 * 1024;

#[tokio::test]
async fn new_files_are_published_once_as_version_1_and_a_rescan_publishes_nothing() {
    let env = setup().await;
    env.write("a.md", b"# Alpha\n\nsome notes");
    let big = "word ".repeat(1000); // larger than the inline limit: goes through the object store
    env.write("sub/deeper/b.txt", big.as_bytes());
    env.write(".hidden.md", b"hidden");
    env.write(".git/config", b"x");
    env.write("draft.md~", b"backup");
    env.write("notes.md.swp", b"swap");
    env.write("~$report.docx", b"lock");
    let scanner = env.scanner(MAX);

    let report = scanner.scan().await.unwrap();
    let paths: Vec<_> = report.published.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, ["a.md", "sub/deeper/b.txt"]);
    assert!(report.published.iter().all(|p| p.version == 1));
    assert!(report.failed.is_empty(), "{:?}", report.failed);

    let mut events = env.source_events().await;
    events.sort_by(|a, b| a.0.path.cmp(&b.0.path));
    assert_eq!(events.len(), 2);
    let (a, a_body) = &events[0];
    assert_eq!(a.source_id, id("a.md"));
    assert_eq!(a.version, 1);
    assert_eq!(a.origin, ORIGIN);
    assert_eq!(a.media_type, "text/markdown");
    assert_eq!(
        a.content_hash,
        kb_core::ids::content_hash(b"# Alpha\n\nsome notes")
    );
    assert_eq!(a.size, a_body.len() as u64);
    assert_eq!(a_body.as_slice(), b"# Alpha\n\nsome notes");
    let (b, b_body) = &events[1];
    assert_eq!(b.path, "sub/deeper/b.txt");
    assert_eq!(b.media_type, "text/plain");
    assert_eq!(b_body, big.as_bytes());

    let state = env.state(&id("a.md")).await;
    assert_eq!(state["version"], 1);
    assert_eq!(state["path"], "a.md");
    assert_eq!(state["deleted"], false);
    assert_eq!(state["content_hash"], a.content_hash.as_str());

    let again = scanner.scan().await.unwrap();
    assert!(again.published.is_empty() && again.deleted.is_empty());
    assert_eq!(again.unchanged, 2);
    assert_eq!(env.source_events().await.len(), 2);
}

#[tokio::test]
async fn an_edit_publishes_the_next_version_and_a_touch_publishes_nothing() {
    let env = setup().await;
    let path = env.write("a.md", b"first version");
    let t0 = SystemTime::now();
    set_mtime(&path, t0);
    let scanner = env.scanner(MAX);
    scanner.scan().await.unwrap();

    // Same size and the very same mtime (a rewrite within the clock's granularity): still seen.
    std::fs::write(&path, b"other version").unwrap();
    set_mtime(&path, t0);
    let report = scanner.scan().await.unwrap();
    assert_eq!(
        report.published,
        [Published {
            source_id: id("a.md"),
            version: 2,
            path: "a.md".into()
        }]
    );

    // Content changes with a new mtime.
    std::fs::write(&path, b"third version, longer").unwrap();
    set_mtime(&path, an_hour_ago() + Duration::from_secs(60));
    let report = scanner.scan().await.unwrap();
    assert_eq!(report.published.len(), 1);
    assert_eq!(report.published[0].version, 3);

    // Touch: new mtime, same bytes.
    let touched = an_hour_ago() + Duration::from_secs(120);
    set_mtime(&path, touched);
    let report = scanner.scan().await.unwrap();
    assert!(report.published.is_empty());
    assert_eq!(report.unchanged, 1);
    let state = env.state(&id("a.md")).await;
    assert_eq!(state["version"], 3);
    let touched_ms = touched
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert_eq!(state["modified_unix_ms"], touched_ms);

    let events = env.source_events().await;
    let versions: Vec<_> = events.iter().map(|(s, _)| s.version).collect();
    assert_eq!(versions, [1, 2, 3]);
    assert_eq!(events[1].1, b"other version");
    assert_eq!(events[2].1, b"third version, longer");
}

#[tokio::test]
async fn a_deleted_file_becomes_a_tombstone_and_a_recreated_one_the_next_version() {
    let env = setup().await;
    let path = env.write("notes/a.md", b"content");
    env.write("b.md", b"stays");
    let scanner = env.scanner(MAX);
    scanner.scan().await.unwrap();

    std::fs::remove_file(&path).unwrap();
    let report = scanner.scan().await.unwrap();
    assert_eq!(
        report.deleted,
        [Published {
            source_id: id("notes/a.md"),
            version: 2,
            path: "notes/a.md".into()
        }]
    );
    assert_eq!(report.unchanged, 1);
    let (_, head) = env.mirror_head(&id("notes/a.md")).await.expect("tombstone");
    assert_eq!(head.kind, Kind::Delete as i32);
    let src = head.source.unwrap();
    assert_eq!(src.version, 2);
    assert_eq!(src.path, "notes/a.md");
    assert!(head.body.is_none());
    assert_eq!(env.state(&id("notes/a.md")).await["deleted"], true);
    assert!(
        env.mirror_head(&id("b.md")).await.is_none(),
        "only deletes go to the mirror"
    );

    // Not deleted twice.
    let report = scanner.scan().await.unwrap();
    assert!(report.deleted.is_empty());

    // Re-created with the same bytes: the tombstone must be overtaken, so it is a new version.
    env.write("notes/a.md", b"content");
    let report = scanner.scan().await.unwrap();
    assert_eq!(report.published.len(), 1);
    assert_eq!(report.published[0].version, 3);
    let last = env.source_events().await.pop().unwrap().0;
    assert_eq!((last.path.as_str(), last.version), ("notes/a.md", 3));
    assert_eq!(env.state(&id("notes/a.md")).await["deleted"], false);
}

#[tokio::test]
async fn a_restart_republishes_nothing_and_notices_deletes_made_while_down() {
    let env = setup().await;
    for i in 0..5 {
        env.write(&format!("doc{i}.md"), format!("document {i}").as_bytes());
    }
    env.scanner(MAX).scan().await.unwrap();
    assert_eq!(env.source_events().await.len(), 5);

    // "While down": a file goes away and another changes.
    std::fs::remove_file(env.dir.path().join("doc3.md")).unwrap();
    env.write("doc4.md", b"document 4, edited");

    let (topo, publisher) = connect(&env.nats.url()).await;
    let restarted = kb_watcher::Scanner::new(&topo, publisher, NAME, ORIGIN, env.root(), MAX);
    let report = restarted.scan().await.unwrap();
    assert_eq!(report.unchanged, 3);
    assert_eq!(report.deleted.len(), 1);
    assert_eq!(report.deleted[0].path, "doc3.md");
    assert_eq!(report.deleted[0].version, 2);
    assert_eq!(report.published.len(), 1);
    assert_eq!(
        (
            report.published[0].path.as_str(),
            report.published[0].version
        ),
        ("doc4.md", 2)
    );
    assert_eq!(env.source_events().await.len(), 6);
    let (_, head) = env.mirror_head(&id("doc3.md")).await.unwrap();
    assert_eq!(head.kind, Kind::Delete as i32);

    // And a second restart over the now unchanged folder publishes nothing at all.
    let (topo, publisher) = connect(&env.nats.url()).await;
    let report = kb_watcher::Scanner::new(&topo, publisher, NAME, ORIGIN, env.root(), MAX)
        .scan()
        .await
        .unwrap();
    assert!(report.published.is_empty() && report.deleted.is_empty());
    assert_eq!(report.unchanged, 4);
    assert_eq!(env.source_events().await.len(), 6);
}

#[tokio::test]
async fn a_too_large_file_fails_once_with_a_dead_letter_until_it_changes() {
    let env = setup().await;
    env.write("small.md", b"fine");
    let big = env.write("huge.txt", &vec![b'x'; 500]);
    let scanner = env.scanner(100);

    let report = scanner.scan().await.unwrap();
    assert_eq!(report.published.len(), 1);
    assert_eq!(
        report.failed,
        [(
            "huge.txt".to_string(),
            "too_large: 500 bytes > limit 100".to_string()
        )]
    );
    let (seq, head) = env
        .mirror_head(&id("huge.txt"))
        .await
        .expect("failed event");
    assert_eq!(head.kind, Kind::Failed as i32);
    assert_eq!(head.error, "too_large: 500 bytes > limit 100");
    assert_eq!(head.source.as_ref().unwrap().version, 1);
    assert_eq!(head.source.as_ref().unwrap().size, 500);
    let dls = env.dead_letters().await;
    assert_eq!(dls.len(), 1);
    assert_eq!(dls[0].stage, "watcher");
    assert_eq!(dls[0].error_kind, "too_large");
    assert_eq!(dls[0].source.as_ref().unwrap().path, "huge.txt");
    // Never read, so never sent to the parser.
    assert!(env
        .source_events()
        .await
        .iter()
        .all(|(s, _)| s.path != "huge.txt"));

    // Not reported again while unchanged, not even by another scanner.
    let report = env.scanner(100).scan().await.unwrap();
    assert!(report.failed.is_empty() && report.published.is_empty());
    assert_eq!(env.mirror_head(&id("huge.txt")).await.unwrap().0, seq);
    assert_eq!(env.dead_letters().await.len(), 1);
    match scanner.publish_file(&big).await.unwrap() {
        FileOutcome::Failed(p, reason) => {
            assert_eq!(p.version, 1);
            assert!(reason.starts_with("too_large"), "{reason}");
        }
        other => panic!("expected the recorded failure, got {other:?}"),
    }

    // Fixed: published as the next version.
    std::fs::write(&big, b"now small").unwrap();
    let report = scanner.scan().await.unwrap();
    assert_eq!(report.published.len(), 1);
    assert_eq!(
        (
            report.published[0].path.as_str(),
            report.published[0].version
        ),
        ("huge.txt", 2)
    );
}

#[tokio::test]
async fn publish_file_publishes_one_file_and_refuses_paths_outside_the_folder() {
    let env = setup().await;
    let path = env.write("in/one.md", b"one");
    let scanner = env.scanner(MAX);

    let first = scanner.publish_file(&path).await.unwrap();
    let expected = Published {
        source_id: id("in/one.md"),
        version: 1,
        path: "in/one.md".into(),
    };
    assert_eq!(first, FileOutcome::Published(expected.clone()));
    assert_eq!(
        scanner.publish_file(&path).await.unwrap(),
        FileOutcome::Unchanged(expected)
    );
    // A later scan agrees it is already published.
    let report = scanner.scan().await.unwrap();
    assert!(report.published.is_empty());
    assert_eq!(report.unchanged, 1);
    assert_eq!(env.source_events().await.len(), 1);

    let outside = tempfile::NamedTempFile::new().unwrap();
    let err = scanner.publish_file(outside.path()).await.unwrap_err();
    assert_eq!(err.kind, WatchErrorKind::Invalid);
    let err = scanner
        .publish_file(&env.dir.path().join("missing.md"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, WatchErrorKind::Io);
}

#[tokio::test]
async fn two_watchers_on_one_folder_never_assign_a_version_twice() {
    let env = setup().await;
    for i in 0..20 {
        env.write(&format!("f{i:02}.md"), format!("file {i}").as_bytes());
    }
    let (topo2, publisher2) = connect(&env.nats.url()).await;
    let one = env.scanner(MAX);
    let two = kb_watcher::Scanner::new(&topo2, publisher2, NAME, ORIGIN, env.root(), MAX);

    let (r1, r2) = tokio::join!(one.scan(), two.scan());
    let (r1, r2) = (r1.unwrap(), r2.unwrap());
    assert_eq!(r1.published.len() + r1.unchanged, 20);
    assert_eq!(r2.published.len() + r2.unchanged, 20);
    let events = env.source_events().await;
    assert_eq!(events.len(), 20, "each file exactly once");
    assert!(events.iter().all(|(s, _)| s.version == 1));

    for i in 0..20 {
        env.write(
            &format!("f{i:02}.md"),
            format!("file {i}, second edition").as_bytes(),
        );
    }
    let (r1, r2) = tokio::join!(one.scan(), two.scan());
    r1.unwrap();
    r2.unwrap();
    let events = env.source_events().await;
    assert_eq!(events.len(), 40);
    let mut second: Vec<_> = events[20..]
        .iter()
        .map(|(s, _)| (s.path.clone(), s.version))
        .collect();
    second.sort();
    assert!(second.iter().all(|(_, v)| *v == 2), "{second:?}");
    second.dedup();
    assert_eq!(second.len(), 20);
    for i in 0..20 {
        assert_eq!(env.state(&id(&format!("f{i:02}.md"))).await["version"], 2);
    }
}

#[tokio::test]
async fn a_broker_outage_fails_the_scan_as_transient_and_the_next_scan_catches_up() {
    let mut env = setup().await;
    env.write("a.md", b"before the outage");
    let scanner = env.scanner(MAX);
    scanner.scan().await.unwrap();

    env.write("b.md", b"during the outage");
    env.nats.stop().await.unwrap();
    let err = scanner.scan().await.unwrap_err();
    assert_eq!(err.kind, WatchErrorKind::Transient, "{err}");
    assert!(err.is_transient());

    env.nats.start().await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let report = loop {
        match scanner.scan().await {
            Ok(r) => break r,
            Err(e) if e.is_transient() && std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(e) => panic!("scan after the broker came back: {e}"),
        }
    };
    let published: Vec<_> = report
        .published
        .iter()
        .map(|p| (p.path.as_str(), p.version))
        .collect();
    assert_eq!(published, [("b.md", 1)]);
    assert_eq!(report.unchanged, 1);
    assert_eq!(env.source_events().await.len(), 2);
}
