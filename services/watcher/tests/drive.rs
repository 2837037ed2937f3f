//! The Drive source against a local fake Drive and a real NATS: the first full listing, the
//! changes feed (edits, renames, moves in and out of scope, trash, deletes), paging, failures
//! reported once, quota backoff, shared drives, and restarts in the middle of a change page,
//! verified by reading the real streams and the `kb_drive` bucket.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;
mod drive_support;

use drive_support::*;
use kb_drive::fake::{Fault, Route};
use kb_proto::mirror_event::Kind;
use kb_watcher::WatchErrorKind;
use std::collections::HashMap;

const DOC_MIME: &str = "application/vnd.google-apps.document";

#[tokio::test]
async fn the_first_sync_lists_everything_in_scope_and_the_next_publishes_nothing() {
    let env = setup().await;
    let f = &env.fake;
    let a = f.add_file(&env.root, "a.md", "text/markdown", b"# Alpha\n\nnotes");
    let sub = f.add_folder(Some(&env.root), "Sub");
    let deeper = f.add_folder(Some(&sub), "Deeper");
    let b = f.add_file(&sub, "b.txt", "text/plain", &b"word ".repeat(1000));
    let doc = f.add_doc(&deeper, "Plan", "Q3 plan: ship it");
    let sheet = f.add_sheet(&sub, "Budget", "item,cost\nrent,100\n");
    let slides = f.add_slides(&env.root, "Deck", "Slide one");
    f.add_file(&env.root, "Survey", "application/vnd.google-apps.form", b"");
    let trashed = f.add_file(&env.root, "old.md", "text/markdown", b"old");
    f.trash(&trashed);
    let stranger = f.add_file(&env.outside, "x.md", "text/markdown", b"not watched");
    // an answer without `webViewLink`: the link is the viewer's address for the id
    f.set_web_view_link(&b, None);

    let report = env.source().await.sync().await.unwrap();
    assert!(report.full_listing);
    let mut paths: Vec<_> = report.published.iter().map(|p| p.path.as_str()).collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            "Deck.txt",
            "Sub/Budget.csv",
            "Sub/Deeper/Plan.txt",
            "Sub/b.txt",
            "a.md"
        ]
    );
    assert_eq!(report.skipped.len(), 1, "the form: {:?}", report.skipped);
    assert!(report.failed.is_empty(), "{:?}", report.failed);

    let (src, body) = env.events_of(&a).await.pop().unwrap();
    assert_eq!(src.source_id, env.sid(&a));
    assert_eq!((src.version, src.origin.as_str()), (1, ORIGIN));
    assert_eq!(src.media_type, "text/markdown");
    assert_eq!(
        src.content_hash,
        kb_core::ids::content_hash(b"# Alpha\n\nnotes")
    );
    assert_eq!(body, b"# Alpha\n\nnotes");
    assert!(src.modified_unix_ms > 0);
    assert_eq!(
        src.link,
        format!("https://drive.google.com/file/d/{a}/view?usp=drivesdk"),
        "the file's webViewLink"
    );
    let (src, body) = env.events_of(&b).await.pop().unwrap();
    assert_eq!(
        (src.size, body.len()),
        (5000, 5000),
        "bodies past the inline limit"
    );
    assert_eq!(
        src.link,
        format!("https://drive.google.com/file/d/{b}/view")
    );
    let (src, body) = env.events_of(&doc).await.pop().unwrap();
    assert_eq!(src.media_type, "text/plain");
    assert_eq!(
        src.link,
        format!("https://docs.google.com/document/d/{doc}/edit?usp=drivesdk"),
        "a Google Doc opens in the editor"
    );
    assert_eq!(body, "\u{feff}Q3 plan: ship it".as_bytes());
    let (src, body) = env.events_of(&sheet).await.pop().unwrap();
    assert_eq!(
        (src.media_type.as_str(), body.as_slice()),
        ("text/csv", b"item,cost\nrent,100\n".as_slice())
    );
    assert_eq!(env.events_of(&slides).await.len(), 1);
    assert!(env.events_of(&trashed).await.is_empty());
    assert!(env.events_of(&stranger).await.is_empty());

    let state = env.file_state(&doc).await.unwrap();
    assert_eq!(
        (state.version, state.path.as_str()),
        (1, "Sub/Deeper/Plan.txt")
    );
    assert_eq!(state.parent, deeper);
    assert!(!state.deleted && state.failure.is_none());
    assert!(env.cursor().await.is_some());

    let again = env.source().await.sync().await.unwrap();
    assert!(!again.full_listing);
    assert!(again.published.is_empty() && again.deleted.is_empty());
    assert_eq!(env.source_events().await.len(), 5);
}

#[tokio::test]
async fn edits_renames_moves_trash_and_deletes_follow_the_changes_feed() {
    let env = setup().await;
    let f = &env.fake;
    let edited = f.add_file(&env.root, "edited.md", "text/markdown", b"v1");
    let renamed = f.add_file(&env.root, "before.md", "text/markdown", b"same");
    let touched = f.add_file(&env.root, "touched.md", "text/markdown", b"same bytes");
    let trashed = f.add_file(&env.root, "trashed.md", "text/markdown", b"bin me");
    let deleted = f.add_file(&env.root, "deleted.md", "text/markdown", b"delete me");
    let leaving = f.add_file(&env.root, "leaving.md", "text/markdown", b"bye");
    let arriving = f.add_file(&env.outside, "arriving.md", "text/markdown", b"hello");
    let doc = f.add_doc(&env.root, "Notes", "first draft");
    let source = env.source().await;
    source.sync().await.unwrap();

    f.set_content(&edited, b"v2, longer");
    f.rename(&renamed, "after.md");
    f.touch(&touched);
    f.trash(&trashed);
    f.delete(&deleted);
    f.move_to(&leaving, &env.outside);
    f.move_to(&arriving, &env.root);
    f.set_content(&doc, b"second draft");
    let report = source.sync().await.unwrap();
    assert!(!report.full_listing);
    assert_eq!(report.changes, 8);

    let (src, body) = env.events_of(&edited).await.pop().unwrap();
    assert_eq!(
        (src.version, body.as_slice()),
        (2, b"v2, longer".as_slice())
    );
    assert_eq!(
        src.link,
        format!("https://drive.google.com/file/d/{edited}/view?usp=drivesdk"),
        "from the changes feed too"
    );
    let (src, _) = env.events_of(&renamed).await.pop().unwrap();
    assert_eq!(
        (src.version, src.path.as_str()),
        (2, "after.md"),
        "same id, new path"
    );
    assert_eq!(
        env.events_of(&touched).await.len(),
        1,
        "same bytes: not republished"
    );
    assert!(env
        .file_state(&touched)
        .await
        .unwrap()
        .fingerprint
        .starts_with("md5:"));
    for gone in [&trashed, &deleted, &leaving] {
        assert_eq!(
            env.mirror_kind(gone).await,
            Some((Kind::Delete, 2)),
            "{gone}"
        );
        assert!(env.file_state(gone).await.unwrap().deleted);
    }
    let (src, body) = env.events_of(&arriving).await.pop().unwrap();
    assert_eq!(
        (src.version, src.path.as_str(), body.as_slice()),
        (1, "arriving.md", b"hello".as_slice())
    );
    let (src, body) = env.events_of(&doc).await.pop().unwrap();
    assert_eq!(
        (src.version, body.as_slice()),
        (2, "\u{feff}second draft".as_bytes())
    );

    // Back from the trash: the next version after the tombstone.
    f.untrash(&trashed);
    let report = source.sync().await.unwrap();
    assert_eq!(report.published.len(), 1);
    let (src, _) = env.events_of(&trashed).await.pop().unwrap();
    assert_eq!(src.version, 3);

    // Nothing new: nothing published, the cursor stays where it is.
    let cursor = env.cursor().await.unwrap();
    let report = source.sync().await.unwrap();
    assert!(report.published.is_empty() && report.deleted.is_empty());
    assert_eq!(env.cursor().await.unwrap(), cursor);
}

#[tokio::test]
async fn folders_moving_in_and_out_of_scope_take_their_files_along() {
    let env = setup().await;
    let f = &env.fake;
    let team = f.add_folder(Some(&env.outside), "Team");
    let t1 = f.add_file(&team, "t1.md", "text/markdown", b"one");
    let nested = f.add_folder(Some(&team), "Nested");
    let t2 = f.add_file(&nested, "t2.md", "text/markdown", b"two");
    let stay = f.add_folder(Some(&env.root), "Stay");
    let s1 = f.add_file(&stay, "s1.md", "text/markdown", b"s1");
    let source = env.source().await;
    assert_eq!(source.sync().await.unwrap().published.len(), 1);

    // Only the folder shows up in the feed; its contents come with it.
    f.move_to(&team, &env.root);
    let report = source.sync().await.unwrap();
    let mut paths: Vec<_> = report.published.iter().map(|p| p.path.clone()).collect();
    paths.sort();
    assert_eq!(paths, ["Team/Nested/t2.md", "Team/t1.md"]);

    // A renamed folder changes every path below it.
    f.rename(&team, "Crew");
    source.sync().await.unwrap();
    let (src, _) = env.events_of(&t2).await.pop().unwrap();
    assert_eq!((src.version, src.path.as_str()), (2, "Crew/Nested/t2.md"));

    // Moved out: every file below it is tombstoned.
    f.move_to(&team, &env.outside);
    let report = source.sync().await.unwrap();
    assert_eq!(report.deleted.len(), 2);
    assert_eq!(env.mirror_kind(&t1).await, Some((Kind::Delete, 3)));
    assert_eq!(env.mirror_kind(&t2).await, Some((Kind::Delete, 3)));

    // A trashed folder (the feed reports the folder only): its files are tombstoned too.
    f.trash(&stay);
    source.sync().await.unwrap();
    assert_eq!(env.mirror_kind(&s1).await, Some((Kind::Delete, 2)));

    // A folder deleted for good while known: the same.
    f.untrash(&stay);
    source.sync().await.unwrap();
    assert_eq!(env.events_of(&s1).await.pop().unwrap().0.version, 3);
    f.delete(&stay);
    source.sync().await.unwrap();
    assert_eq!(env.mirror_kind(&s1).await, Some((Kind::Delete, 4)));
}

#[tokio::test]
async fn paging_through_250_files_and_a_feed_of_many_pages() {
    let env = setup().await;
    let mut settings = env.settings.clone();
    settings.page_size = 50;
    let mut ids = Vec::new();
    for i in 0..250 {
        ids.push(env.fake.add_file(
            &env.root,
            &format!("n{i:03}.md"),
            "text/markdown",
            format!("# Note {i}").as_bytes(),
        ));
    }
    let source = env.source_with(&settings).await;
    let report = source.sync().await.unwrap();
    assert_eq!(report.published.len(), 250);
    assert!(report.published.iter().all(|p| p.version == 1));
    assert_eq!(env.fake.requests(Route::FilesList), 5);

    for id in ids.iter().take(120) {
        env.fake.set_content(id, b"edited");
    }
    let report = source.sync().await.unwrap();
    assert_eq!((report.changes, report.published.len()), (120, 120));
    assert_eq!(env.fake.requests(Route::Changes), 3);
    let events = env.source_events().await;
    assert_eq!(events.len(), 370);
    let v2: Vec<_> = events.iter().filter(|(s, _)| s.version == 2).collect();
    assert_eq!(v2.len(), 120);
    assert!(v2.iter().all(|(_, body)| body == b"edited"));
}

#[tokio::test]
async fn a_restart_in_the_middle_of_a_change_page_publishes_every_change_exactly_once() {
    let env = setup().await;
    let mut settings = env.settings.clone();
    settings.page_size = 2;
    let ids: Vec<String> = (0..6)
        .map(|i| {
            env.fake.add_file(
                &env.root,
                &format!("f{i}.md"),
                "text/markdown",
                format!("{i}").as_bytes(),
            )
        })
        .collect();
    let first = env.source_with(&settings).await;
    first.sync().await.unwrap();
    let start = env.cursor().await.unwrap().page_token;

    for id in &ids[..5] {
        env.fake.set_content(id, format!("edited {id}").as_bytes());
    }
    // The fourth edit (second item of the second page) cannot be downloaded: the sync stops
    // in the middle of that page, after publishing its first item.
    env.fake
        .fail(Route::Media, Some(&ids[3]), Fault::Unavailable, usize::MAX);
    let err = first.sync().await.unwrap_err();
    assert_eq!(err.kind, WatchErrorKind::Transient, "{err}");
    let mid = env.cursor().await.unwrap().page_token;
    assert_ne!(mid, start, "the first page is done and saved");
    for id in &ids[..3] {
        assert_eq!(
            env.events_of(id).await.len(),
            2,
            "{id} published before the stop"
        );
    }
    assert_eq!(env.events_of(&ids[3]).await.len(), 1);
    drop(first);

    // While no watcher runs, a file is deleted for good.
    env.fake.delete(&ids[5]);
    env.fake.clear_faults();
    let restarted = env.source_with(&settings).await;
    let report = restarted.sync().await.unwrap();
    assert_eq!(
        report.published.len(),
        2,
        "the rest of the page and the next one"
    );
    assert_eq!(report.deleted.len(), 1);

    for id in &ids[..5] {
        let events = env.events_of(id).await;
        let versions: Vec<u64> = events.iter().map(|(s, _)| s.version).collect();
        assert_eq!(versions, [1, 2], "{id}: each change once");
        assert_eq!(events[1].1, format!("edited {id}").as_bytes());
    }
    assert_eq!(env.mirror_kind(&ids[5]).await, Some((Kind::Delete, 2)));
    let end = env.cursor().await.unwrap().page_token;
    let again = env.source_with(&settings).await.sync().await.unwrap();
    assert_eq!(again.changes, 0);
    assert_eq!(env.cursor().await.unwrap().page_token, end);
}

#[tokio::test]
async fn two_watchers_on_the_same_state_publish_each_change_once() {
    let env = setup().await;
    let ids: Vec<String> = (0..10)
        .map(|i| {
            env.fake
                .add_file(&env.root, &format!("c{i}.md"), "text/markdown", b"v1")
        })
        .collect();
    let a = env.source().await;
    a.sync().await.unwrap();
    for id in &ids {
        env.fake.set_content(id, format!("v2 of {id}").as_bytes());
    }
    let b = env.source().await;
    let (ra, rb) = tokio::join!(a.sync(), b.sync());
    // One may lose the race for the cursor; it then leaves the page to the other.
    for r in [&ra, &rb] {
        if let Err(e) = r {
            assert_eq!(e.kind, WatchErrorKind::Conflict, "{e}");
        }
    }
    a.sync().await.unwrap();
    b.sync().await.unwrap();
    for id in &ids {
        let versions: Vec<u64> = env
            .events_of(id)
            .await
            .iter()
            .map(|(s, _)| s.version)
            .collect();
        assert_eq!(versions, [1, 2], "{id}");
    }
}

#[tokio::test]
async fn too_large_and_undownloadable_files_are_reported_once_and_not_retried() {
    let env = setup().await;
    let mut settings = env.settings.clone();
    settings.max_file_bytes = 1000;
    let big = env.fake.add_file(
        &env.root,
        "big.bin",
        "application/octet-stream",
        &[1u8; 5000],
    );
    let locked = env
        .fake
        .add_file(&env.root, "locked.md", "text/markdown", b"no download");
    let fine = env
        .fake
        .add_file(&env.root, "fine.md", "text/markdown", b"ok");
    env.fake.set_downloadable(&locked, false);
    let source = env.source_with(&settings).await;

    let report = source.sync().await.unwrap();
    assert_eq!(report.published.len(), 1);
    let mut failed: Vec<_> = report
        .failed
        .iter()
        .map(|f| (f.path.as_str(), f.version.is_some()))
        .collect();
    failed.sort();
    assert_eq!(failed, [("big.bin", true), ("locked.md", true)]);
    assert_eq!(env.mirror_kind(&big).await, Some((Kind::Failed, 1)));
    let head = env.mirror_head(&big).await.unwrap();
    assert!(
        head.error.contains("too_large: 5000 bytes > limit 1000"),
        "{}",
        head.error
    );
    assert_eq!(
        head.source.as_ref().unwrap().link,
        format!("https://drive.google.com/file/d/{big}/view?usp=drivesdk"),
        "a failure names where to open the file"
    );
    let dls = env.dead_letters().await;
    let kinds: HashMap<String, String> = dls
        .iter()
        .map(|d| {
            (
                d.source.as_ref().unwrap().path.clone(),
                d.error_kind.clone(),
            )
        })
        .collect();
    assert_eq!(kinds["big.bin"], "too_large");
    assert_eq!(kinds["locked.md"], "unreadable");
    assert!(env
        .file_state(&locked)
        .await
        .unwrap()
        .failure
        .unwrap()
        .contains("cannotDownloadFile"));
    assert!(env.events_of(&fine).await.len() == 1);

    // Touching other files does not retry the failed ones.
    let media_before = env.fake.requests(Route::Media);
    env.fake.set_content(&fine, b"ok 2");
    source.sync().await.unwrap();
    assert_eq!(env.dead_letters().await.len(), 2);
    assert_eq!(env.fake.requests(Route::Media), media_before + 1);

    // Once it fits, it is published as the next version.
    env.fake.set_content(&big, b"small now");
    source.sync().await.unwrap();
    let (src, body) = env.events_of(&big).await.pop().unwrap();
    assert_eq!((src.version, body.as_slice()), (2, b"small now".as_slice()));
    assert!(env.file_state(&big).await.unwrap().failure.is_none());
}

#[tokio::test]
async fn quota_errors_are_ridden_out_with_backoff() {
    let env = setup().await;
    let a = env.fake.add_file(&env.root, "a.md", "text/markdown", b"a");
    env.fake.fail(
        Route::FilesList,
        None,
        Fault::RateLimit("userRateLimitExceeded"),
        2,
    );
    env.fake.fail(Route::Media, None, Fault::TooManyRequests, 1);
    env.fake.fail(
        Route::StartPageToken,
        None,
        Fault::RateLimit("rateLimitExceeded"),
        1,
    );
    let report = env.source().await.sync().await.unwrap();
    assert_eq!(report.published.len(), 1);
    assert_eq!(env.events_of(&a).await.len(), 1);
    assert_eq!(env.fake.requests(Route::FilesList), 3);
    assert_eq!(env.fake.requests(Route::Media), 2);
}

#[tokio::test]
async fn a_shared_drive_is_watched_like_a_folder() {
    let env = setup().await;
    let drive = env.fake.add_shared_drive("Engineering");
    let specs = env.fake.add_folder(Some(&drive), "Specs");
    let spec = env
        .fake
        .add_file(&specs, "api.md", "text/markdown", b"# API");
    let mut settings = env.settings.clone();
    settings.folder_ids = vec![drive.clone()];
    let source = env.source_with(&settings).await;
    let report = source.sync().await.unwrap();
    assert_eq!(report.published.len(), 1);
    assert_eq!(report.published[0].path, "Specs/api.md");

    env.fake.set_content(&spec, b"# API v2");
    env.fake.add_shared_drive("Another team");
    let report = source.sync().await.unwrap();
    assert_eq!(report.changes, 2);
    assert_eq!(
        report.published.len(),
        1,
        "the new drive's own change is skipped"
    );
    assert_eq!(env.events_of(&spec).await.pop().unwrap().1, b"# API v2");
}

#[tokio::test]
async fn changing_the_roots_relists_and_tombstones_what_left_the_scope() {
    let env = setup().await;
    let kept = env
        .fake
        .add_file(&env.root, "kept.md", "text/markdown", b"k");
    let other = env
        .fake
        .add_file(&env.outside, "other.md", "text/markdown", b"o");
    env.source().await.sync().await.unwrap();

    let mut settings = env.settings.clone();
    settings.folder_ids = vec![env.outside.clone()];
    let report = env.source_with(&settings).await.sync().await.unwrap();
    assert!(report.full_listing);
    assert_eq!(report.published.len(), 1);
    assert_eq!(env.events_of(&other).await.len(), 1);
    assert_eq!(env.mirror_kind(&kept).await, Some((Kind::Delete, 2)));
}

#[tokio::test]
async fn a_root_that_cannot_be_read_is_an_error_not_a_mass_deletion() {
    let env = setup().await;
    let a = env.fake.add_file(&env.root, "a.md", "text/markdown", b"a");
    env.source().await.sync().await.unwrap();
    let mut settings = env.settings.clone();
    settings.folder_ids = vec![env.root.clone(), "1NoSuchFolder".into()];
    let err = env.source_with(&settings).await.sync().await.unwrap_err();
    assert_eq!(err.kind, WatchErrorKind::Io, "{err}");
    assert_eq!(env.mirror_kind(&a).await, None, "nothing tombstoned");
}

#[tokio::test]
async fn ingest_publishes_a_folder_once_and_shares_state_with_the_watcher() {
    let env = setup().await;
    let a = env.fake.add_file(&env.root, "a.md", "text/markdown", b"a");
    let doc = env.fake.add_file(&env.root, "Doc", DOC_MIME, b"text");
    let source = env.source().await;
    let report = source
        .ingest(std::slice::from_ref(&env.root))
        .await
        .unwrap();
    assert_eq!(report.published.len(), 2);
    assert!(
        env.cursor().await.is_none(),
        "ingest leaves the feed to the watcher"
    );

    let again = source
        .ingest(std::slice::from_ref(&env.root))
        .await
        .unwrap();
    assert!(again.published.is_empty());
    assert_eq!(again.unchanged.len(), 2);
    // The watcher's first listing finds both current.
    let report = source.sync().await.unwrap();
    assert!(report.published.is_empty());
    assert_eq!(env.events_of(&a).await.len(), 1);
    assert_eq!(env.events_of(&doc).await.len(), 1);
}

#[tokio::test]
async fn the_service_runs_the_drive_source_beside_the_folder_until_shutdown() {
    use kb_core::service::Context;
    use kb_core::telemetry::Health;
    use std::time::{Duration, Instant};
    let env = setup().await;
    let a = env.fake.add_file(&env.root, "a.md", "text/markdown", b"a");
    let dir = tempfile::tempdir().unwrap();
    let mut settings = kb_core::Settings::default();
    settings.nats.url = env.nats.url();
    settings.watcher.dir = dir.path().join("inbox");
    std::fs::create_dir_all(&settings.watcher.dir).unwrap();
    std::fs::write(settings.watcher.dir.join("local.md"), b"# Local\n\nnotes").unwrap();
    settings.drive = env.settings.clone();
    settings.drive.poll_secs = 1;
    let ctx = Context {
        name: "kb-watcher",
        shutdown: tokio_util::sync::CancellationToken::new(),
        health: Health::default(),
    };
    let shutdown = ctx.shutdown.clone();
    let task = tokio::spawn(kb_watcher::run(settings, ctx));

    let deadline = Instant::now() + Duration::from_secs(20);
    while env.events_of(&a).await.is_empty() {
        assert!(
            Instant::now() < deadline,
            "the first listing never published"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let b = env.fake.add_file(&env.root, "b.md", "text/markdown", b"b");
    let added = Instant::now();
    while env.events_of(&b).await.is_empty() {
        assert!(
            added.elapsed() < Duration::from_secs(30),
            "the poll never saw the new file"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("Drive change to publish: {:?}", added.elapsed());
    // a Drive file carries its link, a local file none
    let (src, _) = env.events_of(&b).await.pop().unwrap();
    assert_eq!(
        src.link,
        format!("https://drive.google.com/file/d/{b}/view?usp=drivesdk")
    );
    let local = loop {
        let events = env.source_events().await;
        if let Some((src, _)) = events
            .into_iter()
            .find(|(s, _)| s.origin.starts_with("folder:"))
        {
            break src;
        }
        assert!(
            Instant::now() < deadline + Duration::from_secs(30),
            "the local file was never published"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!((local.path.as_str(), local.link.as_str()), ("local.md", ""));
    shutdown.cancel();
    let result = tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("run ends soon after shutdown")
        .unwrap();
    assert!(result.is_ok(), "{result:?}");
}
