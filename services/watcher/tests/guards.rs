//! What a scan refuses to do without being told (issue 15): delete most of a folder at once
//! (an unmounted share, an emptied sync folder) and read files that symbolic links lead to
//! outside the folder. Both are visible as alerts in `kb_alerts` (what `kb status` shows).

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::*;
use kb_proto::mirror_event::Kind;
use kb_stream::alerts::Alert;
use kb_watcher::hold::MassDelete;
use kb_watcher::{Policy, Scanner};

const MAX: u64 = 1024 * 1024;

async fn alert(env: &Env, kind: &str) -> Option<Alert> {
    let key = kb_stream::alerts::key("watcher", NAME, kind);
    let bytes = env.topo.alerts.get(key).await.unwrap()?;
    Some(serde_json::from_slice(&bytes).unwrap())
}

fn twelve(env: &Env, dir: &str) -> Vec<String> {
    (0..12)
        .map(|i| {
            let rel = format!("{dir}f{i:02}.md");
            env.write(&rel, format!("file {dir}{i}").as_bytes());
            rel
        })
        .collect()
}

async fn tombstoned(env: &Env, rel: &str) -> bool {
    env.mirror_head(&id(rel))
        .await
        .is_some_and(|(_, e)| e.kind == Kind::Delete as i32)
}

#[tokio::test]
async fn an_emptied_folder_is_held_with_an_alert_until_the_files_return() {
    let env = setup().await;
    let files = twelve(&env, "");
    let scanner = env.scanner(MAX);
    scanner.scan().await.unwrap();

    // The share is unmounted: every file seems gone.
    for rel in &files {
        std::fs::remove_file(env.dir.path().join(rel)).unwrap();
    }
    let report = scanner.scan().await.unwrap();
    assert!(report.deleted.is_empty(), "{report:?}");
    assert_eq!(report.held, files);
    for rel in &files {
        assert!(!tombstoned(&env, rel).await, "{rel} was deleted");
        assert_eq!(env.state(&id(rel)).await["deleted"], false);
    }
    let raised = alert(&env, "mass_delete").await.expect("the alert");
    assert!(
        raised.message.contains("holding 12 deletions"),
        "{}",
        raised.message
    );
    assert!(raised.message.contains("kb watcher confirm-deletes"));
    assert_eq!(raised.details["held"], 12);
    // Still held at the next scan, the alert not rewritten.
    let report = scanner.scan().await.unwrap();
    assert_eq!(report.held.len(), 12);
    assert_eq!(alert(&env, "mass_delete").await.unwrap().count, 1);

    // Mounted again: nothing was lost, nothing is republished, the alert clears.
    let files = twelve(&env, "");
    let report = scanner.scan().await.unwrap();
    assert!(report.held.is_empty() && report.published.is_empty());
    assert_eq!(report.unchanged, files.len());
    assert!(alert(&env, "mass_delete").await.is_none());
}

#[tokio::test]
async fn a_few_deletions_go_at_once() {
    let env = setup().await;
    let files = twelve(&env, "");
    let scanner = env.scanner(MAX);
    scanner.scan().await.unwrap();

    for rel in &files[..2] {
        std::fs::remove_file(env.dir.path().join(rel)).unwrap();
    }
    let report = scanner.scan().await.unwrap();
    assert_eq!(report.deleted.len(), 2, "{report:?}");
    assert!(report.held.is_empty());
    assert!(tombstoned(&env, &files[0]).await && tombstoned(&env, &files[1]).await);
    assert!(alert(&env, "mass_delete").await.is_none());
}

#[tokio::test]
async fn confirmed_or_allowed_mass_deletions_go_through() {
    let env = setup().await;
    let files = twelve(&env, "gone/");
    let scanner = env.scanner(MAX);
    scanner.scan().await.unwrap();
    std::fs::remove_dir_all(env.dir.path().join("gone")).unwrap();
    assert_eq!(scanner.scan().await.unwrap().held.len(), 12);

    // `kb watcher confirm-deletes`.
    let confirmed = kb_watcher::hold::confirm(&env.topo, NAME).await.unwrap();
    assert_eq!(confirmed.expect("something held").details["held"], 12);
    let report = scanner.scan().await.unwrap();
    assert_eq!(report.deleted.len(), 12, "{report:?}");
    assert!(report.held.is_empty());
    for rel in &files {
        assert!(tombstoned(&env, rel).await, "{rel}");
    }
    assert!(alert(&env, "mass_delete").await.is_none());

    // The confirmation was used up: the next emptying is held again...
    let files = twelve(&env, "again/");
    scanner.scan().await.unwrap();
    std::fs::remove_dir_all(env.dir.path().join("again")).unwrap();
    assert_eq!(scanner.scan().await.unwrap().held.len(), 12);
    // ...unless the settings allow it.
    let allowed = scanner.clone().with_policy(Policy {
        mass_delete: MassDelete {
            allow: true,
            ..MassDelete::default()
        },
        ..Policy::default()
    });
    let report = allowed.scan().await.unwrap();
    assert_eq!(report.deleted.len(), files.len());
}

#[tokio::test]
async fn a_moved_directory_is_not_a_mass_deletion() {
    let env = setup().await;
    let files = twelve(&env, "old/");
    let scanner = env.scanner(MAX);
    scanner.scan().await.unwrap();
    std::fs::rename(env.dir.path().join("old"), env.dir.path().join("new")).unwrap();
    let report = scanner.scan().await.unwrap();
    assert!(report.held.is_empty(), "{report:?}");
    assert_eq!(report.deleted.len(), files.len());
    assert_eq!(report.published.len(), files.len());
}

fn with_links(env: &Env) -> tempfile::TempDir {
    use std::os::unix::fs::symlink;
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(
        outside.path().join("id_rsa"),
        b"-----BEGIN PRIVATE KEY-----",
    )
    .unwrap();
    env.write("notes/real.md", b"real notes");
    symlink(
        env.dir.path().join("notes/real.md"),
        env.dir.path().join("inside.md"),
    )
    .unwrap();
    symlink(
        outside.path().join("id_rsa"),
        env.dir.path().join("key\x1b[2J.md"),
    )
    .unwrap();
    outside
}

#[tokio::test]
async fn links_out_of_the_folder_are_skipped_with_an_alert_links_inside_are_read() {
    let env = setup().await;
    let _outside = with_links(&env);
    let scanner = env.scanner(MAX);
    let report = scanner.scan().await.unwrap();
    let mut published: Vec<_> = report.published.iter().map(|p| p.path.as_str()).collect();
    published.sort();
    assert_eq!(published, ["inside.md", "notes/real.md"]);
    assert_eq!(report.skipped_links, ["key\x1b[2J.md"]);
    let bodies: Vec<_> = env
        .source_events()
        .await
        .into_iter()
        .map(|(_, b)| b)
        .collect();
    assert!(bodies.iter().all(|b| !b.starts_with(b"-----BEGIN")));
    assert!(bodies.contains(&b"real notes".to_vec()));
    let raised = alert(&env, "external_links").await.expect("the alert");
    assert!(
        raised.message.contains("key\\u{1b}[2J.md"),
        "{}",
        raised.message
    );
    assert!(!raised.message.contains('\x1b'));
    assert!(raised.message.contains("watcher.follow_external_symlinks"));
    // `kb ingest` of the link refuses it the same way.
    let err = scanner
        .publish_file(&env.dir.path().join("key\x1b[2J.md"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, kb_watcher::WatchErrorKind::Invalid);

    // The link goes: the alert clears.
    std::fs::remove_file(env.dir.path().join("key\x1b[2J.md")).unwrap();
    let report = scanner.scan().await.unwrap();
    assert!(report.skipped_links.is_empty());
    assert!(alert(&env, "external_links").await.is_none());
}

#[tokio::test]
async fn follow_external_symlinks_reads_them_and_turning_it_off_deletes_them() {
    let env = setup().await;
    let _outside = with_links(&env);
    let follow = env.scanner(MAX).with_policy(Policy {
        follow_external_symlinks: true,
        ..Policy::default()
    });
    let report = follow.scan().await.unwrap();
    assert_eq!(report.published.len(), 3, "{report:?}");
    assert!(report.skipped_links.is_empty());
    let key = env
        .source_events()
        .await
        .into_iter()
        .find(|(s, _)| s.path == "key\x1b[2J.md")
        .expect("the link was read");
    assert_eq!(key.1, b"-----BEGIN PRIVATE KEY-----");

    // Back to the default: what was read through the link leaves the stores.
    let strict: Scanner = env.scanner(MAX);
    let report = strict.scan().await.unwrap();
    assert_eq!(report.deleted.len(), 1, "{report:?}");
    assert_eq!(report.deleted[0].path, "key\x1b[2J.md");
    assert_eq!(report.unchanged, 2);
}
