//! Issue 15, items 3, 9 and 10 for the parser, against a real NATS: a document that panics
//! the parser, kills it, kills its worker or has too many chunks ends as a dead letter and a
//! FAILED record while the next document is parsed; a lost ack does not lose the input body.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::time::{Duration, Instant};

use common::{settings, start};
use kb_core::settings::Isolation;
use kb_stream::input;

const NOTE: &[u8] = b"# Notes\n\nWe met Ada Lovelace in Oslo to talk about engines.";

/// A panic in a parser library (the failpoint `parser.parse`) is contained: the document is
/// dead-lettered `panicked` and recorded FAILED, and the next document is parsed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_that_panics_the_parser_is_dead_lettered_and_failed() {
    let _fail = kb_testkit::FailGuard::new();
    kb_core::failpoint::set("parser.parse", "panic(pdf library bug)@doomed").unwrap();
    let p = start(settings(Isolation::Thread)).await;
    p.publish("doomed", "doomed.md", NOTE).await;
    p.publish("fine", "fine.md", NOTE).await;
    p.wait_parsed("fine", Duration::from_secs(20)).await;
    let reason = p
        .assert_failed("doomed", "panicked", Duration::from_secs(20))
        .await;
    assert!(reason.contains("pdf library bug"), "{reason}");
    assert!(reason.starts_with("doomed.md: "), "{reason}");
    p.stop().await;
}

/// A document the parser process dies on (the failpoint drops the delivery unanswered, as a
/// dead process would) is given up as `crashed` after `parser.crash_limit` deaths, with a
/// FAILED record; `parser.ack_wait_secs` (1 s here, 60 s by default) paces the redeliveries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_the_parser_dies_on_is_crashed_after_crash_limit() {
    let _fail = kb_testkit::FailGuard::new();
    kb_core::failpoint::set("consume.handle", "4*skip@doomed").unwrap();
    let p = start(settings(Isolation::Thread)).await;
    p.publish("doomed", "doomed.md", NOTE).await;
    p.publish("fine", "fine.md", NOTE).await;
    p.wait_parsed("fine", Duration::from_secs(20)).await;
    let reason = p
        .assert_failed("doomed", "crashed", Duration::from_secs(40))
        .await;
    assert!(reason.contains("died 3 times"), "{reason}");
    let dl = p.dead_letter("doomed", Duration::from_secs(1)).await;
    assert_eq!(
        dl.deliveries, 5,
        "one first delivery, then crash_limit counted deaths"
    );
    assert_eq!(kb_core::failpoint::hits("consume.handle"), 4);
    p.stop().await;
}

/// Process isolation: a document that aborts its worker (as a crashing PDF library or a
/// stack overflow would) kills only the worker; after `parser.crash_limit` worker deaths it is
/// `crashed`, and the parser, which never died, parses the next document in a worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_that_kills_its_worker_is_crashed_and_the_parser_goes_on() {
    let _fail = kb_testkit::FailGuard::new();
    kb_core::failpoint::set("parser.parse", "abort@doomed").unwrap();
    let p = start(settings(Isolation::Process)).await;
    p.publish("doomed", "doomed.md", NOTE).await;
    p.publish("fine", "fine.md", NOTE).await;
    p.wait_parsed("fine", Duration::from_secs(20)).await;
    let reason = p
        .assert_failed("doomed", "crashed", Duration::from_secs(20))
        .await;
    assert!(
        reason.contains("worker died 3 times") && reason.contains("SIGABRT"),
        "{reason}"
    );
    let dl = p.dead_letter("doomed", Duration::from_secs(1)).await;
    assert_eq!(dl.deliveries, 1, "the parser itself never died");
    p.stop().await;
}

/// Item 9: a document of more chunks than `parser.max_chunks` fails as `too_large`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_with_more_chunks_than_the_limit_is_too_large() {
    let mut s = settings(Isolation::Thread);
    s.parser.max_chunks = 10;
    s.parser.chunk_tokens = 64;
    let p = start(s).await;
    let para = "A paragraph long enough to fill a small chunk on its own. ".repeat(6);
    let long = vec![para; 40].join("\n\n");
    p.publish("long", "long.txt", long.as_bytes()).await;
    p.publish("fine", "fine.md", NOTE).await;
    p.wait_parsed("fine", Duration::from_secs(20)).await;
    let reason = p
        .assert_failed("long", "too_large", Duration::from_secs(20))
        .await;
    assert!(reason.contains("more than the limit of 10"), "{reason}");
    p.stop().await;
}

/// Item 10: the input body goes only after the ack is confirmed. With the ack lost, the
/// message comes back and must find its body (before, the parser deleted it before the ack
/// and the redelivery was dead-lettered `body_missing`); after the second, confirmed ack the
/// body is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_ack_finds_the_input_body_again() {
    let _fail = kb_testkit::FailGuard::new();
    kb_core::failpoint::set("consume.before_ack", "1*skip@lostack").unwrap();
    let p = start(settings(Isolation::Thread)).await;
    p.publish("lostack", "lostack.md", NOTE).await;
    let m = p
        .topo
        .source
        .get_last_raw_message_by_subject(&kb_stream::subjects::source("lostack"))
        .await
        .unwrap();
    let body = input::body_of(&m.subject, &m.payload).unwrap();
    assert!(
        p.publisher.blobs().fetch(&body).await.is_ok(),
        "an object body"
    );

    // Wait until the message is settled (acked or termed) after its redelivery.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        // The parser creates its consumer as it starts.
        let consumer = p
            .topo
            .source
            .get_consumer::<async_nats::jetstream::consumer::pull::Config>("parser")
            .await;
        if let Ok(mut consumer) = consumer {
            let info = consumer.info().await.unwrap();
            if kb_core::failpoint::hits("consume.before_ack") >= 1
                && info.delivered.consumer_sequence >= 2
                && info.ack_floor.stream_sequence >= m.sequence
            {
                break;
            }
        }
        assert!(Instant::now() < deadline, "never settled");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !p.has_dead_letter("lostack").await,
        "{:?}",
        p.dead_letter("lostack", Duration::ZERO).await
    );
    p.wait_parsed("lostack", Duration::from_secs(1)).await;
    // The tail deletes the body after the confirmed ack, just after settling.
    let deadline = Instant::now() + Duration::from_secs(10);
    while p.publisher.blobs().fetch(&body).await.is_ok() {
        assert!(Instant::now() < deadline, "the body was never deleted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    p.stop().await;
}
