//! The Drive source under faults, against a local fake Drive and a real NATS: a stop between
//! publishing and recording a version (a failpoint in that window), downloads refused once or
//! for good, drift the changes feed never reports, and file names that try to take over a
//! terminal.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;
mod drive_support;

use drive_support::*;
use kb_core::failpoint;
use kb_drive::fake::{Fault, Route};
use kb_proto::mirror_event::Kind;
use kb_testkit::FailGuard;
use kb_watcher::WatchErrorKind;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const STOP: &str = "drive.after_publish";

/// Every version of a file's source events names one content.
async fn assert_one_content_per_version(env: &DriveEnv, file_id: &str) {
    let mut seen = std::collections::HashMap::new();
    for (src, body) in env.events_of(file_id).await {
        let previous = seen.insert(src.version, body.clone());
        if let Some(previous) = previous {
            assert_eq!(previous, body, "version {} names two contents", src.version);
        }
    }
}

#[tokio::test]
async fn a_stop_between_publishing_and_recording_never_gives_the_version_to_other_content() {
    let env = setup().await;
    let f = &env.fake;
    let edited = f.add_file(&env.root, "stop-edited.md", "text/markdown", b"one");
    let same = f.add_file(&env.root, "stop-same.md", "text/markdown", b"same one");
    let source = env.source().await;
    source.sync().await.unwrap();

    let _guard = FailGuard::new();
    failpoint::set(STOP, "1*err(stopped)@stop-edited").unwrap();
    f.set_content(&edited, b"two");
    let err = source.sync().await.unwrap_err();
    assert_eq!(err.kind, WatchErrorKind::Transient, "{err}");
    assert_eq!(failpoint::hits(STOP), 1, "the stop hit the window");
    let state = env.file_state(&edited).await.unwrap();
    assert!(state.pending && state.version == 2, "reserved: {state:?}");
    assert_eq!(env.events_of(&edited).await.pop().unwrap().1, b"two");

    // Edited again before the next sync: the new content gets a new version.
    f.set_content(&edited, b"three");
    let report = source.sync().await.unwrap();
    assert_eq!(report.published.len(), 1, "{report:?}");
    let versions: Vec<(u64, Vec<u8>)> = env
        .events_of(&edited)
        .await
        .into_iter()
        .map(|(s, b)| (s.version, b))
        .collect();
    assert_eq!(
        versions,
        [
            (1, b"one".to_vec()),
            (2, b"two".to_vec()),
            (3, b"three".to_vec())
        ]
    );
    let state = env.file_state(&edited).await.unwrap();
    assert_eq!((state.version, state.pending), (3, false));
    assert_eq!(state.content_hash, kb_core::ids::content_hash(b"three"));

    // Unchanged after the stop: the same change is published as the same version, once.
    failpoint::set(STOP, "1*err(stopped)@stop-same").unwrap();
    f.set_content(&same, b"same two");
    source.sync().await.unwrap_err();
    assert_eq!(failpoint::hits(STOP), 1);
    source.sync().await.unwrap();
    let versions: Vec<u64> = env
        .events_of(&same)
        .await
        .iter()
        .map(|(s, _)| s.version)
        .collect();
    assert_eq!(versions, [1, 2], "deduplicated, not a third version");
    let state = env.file_state(&same).await.unwrap();
    assert_eq!((state.version, state.pending), (2, false));
    assert_one_content_per_version(&env, &edited).await;
    assert_one_content_per_version(&env, &same).await;
}

#[tokio::test]
async fn a_stop_after_a_tombstone_then_the_file_back_publishes_it_above_the_tombstone() {
    let env = setup().await;
    let f = &env.fake;
    let a = f.add_file(&env.root, "stop-binned.md", "text/markdown", b"kept");
    let source = env.source().await;
    source.sync().await.unwrap();

    let _guard = FailGuard::new();
    failpoint::set(STOP, "1*err(stopped)@stop-binned").unwrap();
    f.trash(&a);
    source.sync().await.unwrap_err();
    assert_eq!(failpoint::hits(STOP), 1);
    assert_eq!(env.mirror_kind(&a).await, Some((Kind::Delete, 2)));

    // Back from the trash with the same bytes before the next sync.
    f.untrash(&a);
    let report = source.sync().await.unwrap();
    assert_eq!(report.published.len(), 1, "{report:?}");
    let (src, body) = env.events_of(&a).await.pop().unwrap();
    assert_eq!((src.version, body.as_slice()), (3, b"kept".as_slice()));
    let state = env.file_state(&a).await.unwrap();
    assert_eq!(
        (state.version, state.deleted, state.pending),
        (3, false, false)
    );
}

#[tokio::test]
async fn a_download_refused_once_is_published_at_the_next_sync() {
    let env = setup().await;
    let f = &env.fake;
    let flaky = f.add_file(&env.root, "flaky.md", "text/markdown", b"v1");
    let other = f.add_file(&env.root, "other.md", "text/markdown", b"v1");
    let source = env.source().await;
    source.sync().await.unwrap();

    f.set_content(&flaky, b"flaky v2");
    f.set_content(&other, b"other v2");
    f.fail(
        Route::Media,
        Some(&flaky),
        Fault::Forbidden("insufficientFilePermissions"),
        1,
    );
    let report = source.sync().await.unwrap();
    assert_eq!(report.published.len(), 1, "{report:?}");
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].path, "flaky.md");
    assert!(report.failed[0].version.is_none(), "nothing recorded yet");
    let retry = env
        .retry(&flaky)
        .await
        .expect("waiting for another attempt");
    assert_eq!(retry.attempts, 1);
    assert!(
        retry.reason.contains("insufficientFilePermissions"),
        "{}",
        retry.reason
    );
    assert!(env.dead_letters().await.is_empty());

    // The feed moved on; the file did not get lost with it.
    let report = source.sync().await.unwrap();
    assert_eq!((report.changes, report.retried), (0, 1), "{report:?}");
    assert_eq!(report.published.len(), 1);
    let (src, body) = env.events_of(&flaky).await.pop().unwrap();
    assert_eq!((src.version, body.as_slice()), (2, b"flaky v2".as_slice()));
    assert!(env.retry(&flaky).await.is_none());
    let report = source.sync().await.unwrap();
    assert!(report.published.is_empty() && report.retried == 0);
}

#[tokio::test]
async fn a_file_that_always_fails_is_recorded_failed_after_max_file_attempts() {
    let env = setup().await;
    let mut settings = env.settings.clone();
    settings.max_file_attempts = 3;
    let f = &env.fake;
    let stuck = f.add_file(&env.root, "stuck.md", "text/markdown", b"locked away");
    let fine = f.add_file(&env.root, "fine.md", "text/markdown", b"fine");
    f.fail(
        Route::Media,
        Some(&stuck),
        Fault::Forbidden("insufficientFilePermissions"),
        usize::MAX,
    );
    let source = env.source_with(&settings).await;
    for attempt in 1..=2 {
        let report = source.sync().await.unwrap();
        assert_eq!(report.failed.len(), 1, "{report:?}");
        assert!(report.failed[0].version.is_none());
        assert_eq!(env.retry(&stuck).await.unwrap().attempts, attempt);
        assert_eq!(env.mirror_kind(&stuck).await, None);
    }
    let report = source.sync().await.unwrap();
    let failed = &report.failed[0];
    assert_eq!(failed.version.as_ref().map(|p| p.version), Some(1));
    assert!(
        failed.reason.contains("failed 3 times"),
        "{}",
        failed.reason
    );
    assert_eq!(env.mirror_kind(&stuck).await, Some((Kind::Failed, 1)));
    let dls = env.dead_letters().await;
    assert_eq!(dls.len(), 1);
    assert_eq!(dls[0].error_kind, "unreadable");
    assert!(
        dls[0].reason.contains("insufficientFilePermissions"),
        "{}",
        dls[0].reason
    );
    assert_eq!(dls[0].source.as_ref().unwrap().path, "stuck.md");
    assert!(env.retry(&stuck).await.is_none());
    assert_eq!(env.events_of(&fine).await.len(), 1);

    // Recorded: not tried again until it changes.
    let media = env.fake.requests(Route::Media);
    let report = source.sync().await.unwrap();
    assert!(report.failed.is_empty() && report.retried == 0);
    assert_eq!(env.fake.requests(Route::Media), media);
    assert_eq!(env.dead_letters().await.len(), 1);

    env.fake.clear_faults();
    env.fake.set_content(&stuck, b"open now");
    source.sync().await.unwrap();
    let (src, body) = env.events_of(&stuck).await.pop().unwrap();
    assert_eq!((src.version, body.as_slice()), (2, b"open now".as_slice()));
}

/// Four watcher starts and syncs in one test make a deep future in a debug build: it runs on a
/// thread with more stack than the test harness gives.
#[test]
fn a_relist_repairs_what_the_changes_feed_missed() {
    std::thread::Builder::new()
        .stack_size(16 * 1024 * 1024)
        .spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(relist_repairs())
        })
        .unwrap()
        .join()
        .unwrap();
}

async fn relist_repairs() {
    let env = setup().await;
    let f = &env.fake;
    let edited = f.add_file(&env.root, "edited.md", "text/markdown", b"v1");
    let removed = f.add_file(&env.root, "removed.md", "text/markdown", b"v1");
    let kept = f.add_file(&env.root, "kept.md", "text/markdown", b"v1");
    env.source().await.sync().await.unwrap();

    f.without_feed(|f| {
        f.set_content(&edited, b"v2, unreported");
        f.delete(&removed);
    });
    // The feed has nothing: without a relist nothing changes.
    let report = env.source().await.sync().await.unwrap();
    assert!(!report.full_listing);
    assert_eq!(report.changes, 0);
    assert!(report.published.is_empty() && report.deleted.is_empty());

    let mut settings = env.settings.clone();
    settings.relist_secs = 1;
    let listed = env.cursor().await.unwrap().listed_unix_ms;
    assert!(listed > 0);
    // The relist falls due one second after the last listing began.
    let deadline = Instant::now() + Duration::from_secs(5);
    while kb_stream::progress::now_ms() < listed + 1000 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let report = env.source_with(&settings).await.sync().await.unwrap();
    assert!(report.full_listing);
    assert_eq!(report.published.len(), 1, "{report:?}");
    let (src, body) = env.events_of(&edited).await.pop().unwrap();
    assert_eq!(
        (src.version, body.as_slice()),
        (2, b"v2, unreported".as_slice())
    );
    assert_eq!(env.mirror_kind(&removed).await, Some((Kind::Delete, 2)));
    assert_eq!(
        env.events_of(&kept).await.len(),
        1,
        "unchanged: not republished"
    );
    assert!(env.cursor().await.unwrap().listed_unix_ms >= listed + 1000);
}

/// Log lines as a plain subscriber writes them: field values as they come.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn control_characters_in_drive_names_never_reach_the_log_raw() {
    use kb_core::service::Context;
    use kb_core::telemetry::Health;
    let env = setup().await;
    let name = "evil\u{1b}[2J\u{202e}dm.txt\nforged line.md";
    let evil = env.fake.add_file(&env.root, name, "text/markdown", b"text");
    env.fake.fail(
        Route::Media,
        Some(&evil),
        Fault::Forbidden("insufficientFilePermissions"),
        usize::MAX,
    );
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _log = tracing::subscriber::set_default(subscriber);

    let ctx = Context {
        name: "kb-watcher",
        shutdown: tokio_util::sync::CancellationToken::new(),
        health: Health::default(),
    };
    let shutdown = ctx.shutdown.clone();
    let source = env.source().await;
    let stop = async {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !captured.text().contains("Drive sync done") {
            assert!(Instant::now() < deadline, "{}", captured.text());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        shutdown.cancel();
    };
    let (ran, ()) = tokio::join!(
        kb_watcher::drive::run_drive(source, Duration::from_secs(60), ctx),
        stop
    );
    ran.unwrap();
    let text = captured.text();
    assert!(text.contains("Drive file not published"), "{text}");
    assert!(
        text.contains("evil\\u{1b}[2J\\u{202e}dm.txt\\u{a}forged line.md"),
        "{text}"
    );
    for raw in ['\u{1b}', '\u{202e}'] {
        assert!(!text.contains(raw), "raw {raw:?} in {text:?}");
    }
    assert!(
        !text.lines().any(|l| l.starts_with("forged")),
        "a name forged a log line: {text:?}"
    );
}
