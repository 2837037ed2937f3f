//! `FailGuard`: tests of one binary that arm in-process failpoints take turns, and each starts
//! and ends with nothing armed, even after a failure.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kb_core::failpoint::{self, Flow};
use kb_testkit::FailGuard;

static INSIDE: AtomicBool = AtomicBool::new(false);

/// What a test using failpoints looks like: arm, prove the window opened, release.
async fn a_test_body(name: &'static str) {
    let _guard = FailGuard::new();
    assert!(
        !INSIDE.swap(true, Ordering::SeqCst),
        "two tests hold the guard"
    );
    assert!(!failpoint::armed(), "the previous test left nothing armed");
    failpoint::set(name, "1*pause@doc").unwrap();
    let site = tokio::spawn(async move {
        match name {
            "fg.a" => kb_core::failpoint!("fg.a", "doc.md"),
            _ => kb_core::failpoint!("fg.b", "doc.md"),
        }
    });
    assert!(failpoint::wait_hit(name, Duration::from_secs(5)).await);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!site.is_finished());
    failpoint::release(name);
    assert_eq!(site.await.unwrap(), Flow::Continue);
    INSIDE.store(false, Ordering::SeqCst);
}

#[tokio::test]
async fn tests_take_turns_a() {
    a_test_body("fg.a").await;
}

#[tokio::test]
async fn tests_take_turns_b() {
    a_test_body("fg.b").await;
}

#[test]
fn a_failed_test_leaves_nothing_armed_and_its_pause_released() {
    let paused = std::thread::spawn(|| {
        let _guard = FailGuard::new();
        failpoint::set("fg.c", "pause").unwrap();
        let site = std::thread::spawn(|| kb_core::failpoint_blocking!("fg.c"));
        while failpoint::hits("fg.c") == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
        // The test fails here; the guard's drop clears the failpoint and frees the site.
        let _site = site;
        panic!("a failing test");
    });
    assert!(paused.join().is_err());
    let _guard = FailGuard::new();
    assert!(!failpoint::armed());
}
