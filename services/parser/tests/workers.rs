//! Process isolation with real worker processes (`parser.isolation = "process"`): a worker
//! parses as a thread does, a panic in it is `panicked`, a document past its memory limit
//! kills only the worker (`crashed`), and a runaway parse is killed at the deadline, its
//! process gone (issue 15, items 3 and 10).

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{source, WORKER_BIN};
use kb_core::settings::{Isolation, ParserSettings};
use kb_parser::runner::{RunFailure, Runner};
use kb_stream::DeadLetterKind;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus");

fn process_settings() -> ParserSettings {
    ParserSettings {
        isolation: Isolation::Process,
        worker_bin: Some(WORKER_BIN.into()),
        ..ParserSettings::default()
    }
}

fn failure(r: Result<kb_proto::ParsedDocument, RunFailure>) -> kb_parser::ParseFailure {
    match r {
        Err(RunFailure::Document(f)) => f,
        other => panic!("not a document failure: {other:?}"),
    }
}

#[tokio::test]
async fn a_worker_parses_as_a_thread_does() {
    let thread = Runner::new(&ParserSettings::default()).unwrap();
    let process = Runner::new(&process_settings()).unwrap();
    for file in [
        "pdf/multicolumn.pdf",
        "docx/test.docx",
        "transcripts/TS3010a.txt",
    ] {
        let bytes = Arc::new(std::fs::read(format!("{CORPUS}/{file}")).unwrap());
        let s = source("s1", file);
        let a = thread.parse(&s, bytes.clone()).await.unwrap();
        let b = process.parse(&s, bytes).await.unwrap();
        assert_eq!(a, b, "{file}");
    }
    // and fails as a thread does
    let empty = process
        .parse(&source("s2", "e.txt"), Arc::new(Vec::new()))
        .await;
    assert_eq!(failure(empty).kind, DeadLetterKind::Empty);
}

#[tokio::test]
async fn a_panic_in_a_worker_is_panicked() {
    let _fail = kb_testkit::FailGuard::new();
    kb_core::failpoint::set("parser.parse", "panic(bad table)@boom").unwrap();
    let process = Runner::new(&process_settings()).unwrap();
    let f = failure(
        process
            .parse(&source("boom", "b.md"), Arc::new(b"# B\n\ntext".to_vec()))
            .await,
    );
    assert_eq!(f.kind, DeadLetterKind::Panicked);
    assert!(f.reason.contains("bad table"), "{}", f.reason);
}

/// A document whose parse needs more than `parser.worker_memory_mb` kills its worker, not the
/// parser: `crashed`, naming the memory limit. The same worker limit parses a normal file.
#[tokio::test]
async fn a_document_past_the_memory_limit_kills_only_its_worker() {
    let mut cfg = process_settings();
    cfg.worker_memory_mb = 256;
    cfg.max_bytes = 1024 * 1024 * 1024;
    cfg.crash_limit = 2;
    let process = Runner::new(&cfg).unwrap();
    let fine = std::fs::read(format!("{CORPUS}/docx/test.docx")).unwrap();
    process
        .parse(&source("fine", "test.docx"), Arc::new(fine))
        .await
        .unwrap();

    // 200 MiB of text: the worker holds it, and decoding it needs as much again.
    let huge = Arc::new(b"word ".repeat(40 * 1024 * 1024));
    let started = Instant::now();
    let f = failure(process.parse(&source("huge", "huge.txt"), huge).await);
    assert_eq!(f.kind, DeadLetterKind::Crashed, "{}", f.reason);
    assert!(
        f.reason.contains("died 2 times")
            && f.reason.contains("memory allocation of")
            && f.reason.contains("worker_memory_mb = 256"),
        "{}",
        f.reason
    );
    eprintln!(
        "memory limit hit twice in {:?}: {}",
        started.elapsed(),
        f.reason
    );
}

/// A parse that runs away without checking its deadline (the failpoint spins) is killed at
/// `parser.timeout_secs` plus the grace: `timeout`, and its process is gone, not burning a
/// core. (On a thread it would spin on until the parser stops.)
#[tokio::test]
async fn a_runaway_worker_is_killed_at_the_deadline() {
    let _fail = kb_testkit::FailGuard::new();
    kb_core::failpoint::set("parser.parse", "spin@runaway").unwrap();
    let mut cfg = process_settings();
    cfg.timeout_secs = 1;
    let process = Runner::new(&cfg).unwrap();
    let started = Instant::now();
    let task = tokio::spawn(async move {
        process
            .parse(
                &source("runaway", "r.md"),
                Arc::new(b"# R\n\ntext".to_vec()),
            )
            .await
    });
    // The worker names its document on its command line.
    let pid = loop {
        if let Some(pid) = worker_of("runaway") {
            break pid;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no worker started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let f = failure(task.await.unwrap());
    let took = started.elapsed();
    assert_eq!(f.kind, DeadLetterKind::Timeout, "{}", f.reason);
    assert!(f.reason.contains("killed"), "{}", f.reason);
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "worker {pid} still exists"
    );
}

/// The process id of a live parse worker whose command line names `source_id`.
fn worker_of(source_id: &str) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let is_worker =
            args.contains(&&b"parse-worker"[..]) && args.contains(&source_id.as_bytes());
        is_worker.then_some(pid)
    })
}
