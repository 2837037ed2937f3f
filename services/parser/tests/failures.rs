//! The parser stage against a real NATS: every kind of bad file ends as a dead letter with
//! its reason and a `FAILED` mirror event, good files are parsed, and a slow file times out
//! without stalling the files behind it.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::io::Write;
use std::time::{Duration, Instant};

use kb_core::service::Context;
use kb_core::telemetry::Health;
use kb_core::Settings;
use kb_proto::{mirror_event::Kind, DeadLetter, Message, MirrorEvent, SourceRef};
use kb_stream::{subjects, Publisher};
use tokio_util::sync::CancellationToken;

// the shared corpus beside the repository
const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus");

fn corpus(file: &str) -> Vec<u8> {
    std::fs::read(format!("{CORPUS}/{file}")).unwrap()
}

/// A DOCX whose document part is 16 MiB of spaces (deflates ~1000:1).
fn docx_bomb() -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default();
    w.start_file("word/document.xml", opts).unwrap();
    w.write_all(b"<w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\"><w:body><w:p><w:r><w:t>")
        .unwrap();
    w.write_all(&vec![b' '; 16 * 1024 * 1024]).unwrap();
    w.write_all(b"</w:t></w:r></w:p></w:body></w:document>")
        .unwrap();
    w.finish().unwrap().into_inner()
}

#[tokio::test]
async fn bad_files_are_dead_lettered_with_their_reason_and_the_stage_goes_on() {
    let nats = kb_testkit::stack().await.unwrap().nats().await.unwrap();
    let (_client, js) = kb_stream::connect(&nats.url(), "parser-test")
        .await
        .unwrap();
    let topo = kb_stream::topology::ensure(&js).await.unwrap();
    let publisher = Publisher::new(&topo, 256 * 1024);

    let mut settings = Settings::default();
    settings.nats.url = nats.url();
    // The slow file needs ~35 s in a debug build (~4 s optimised); the good PDF ~0.1 s: a
    // budget of 3 s tells them apart with room for a loaded machine.
    settings.parser.timeout_secs = 3;
    // one at a time: the files after the slow one can only pass if it lets go
    settings.parser.concurrency = 1;
    settings.parser.max_bytes = 12 * 1024 * 1024;
    let shutdown = CancellationToken::new();
    let ctx = Context {
        name: "kb-parser",
        shutdown: shutdown.clone(),
        health: Health::default(),
    };
    let task = tokio::spawn(kb_parser::run(settings, ctx));

    let transcript = corpus("transcripts/covid_2.txt");
    let slow: Vec<u8> = transcript.repeat(10 * 1024 * 1024 / transcript.len());
    let docx = corpus("docx/test.docx");
    let cases: Vec<(&str, Vec<u8>, Option<&str>)> = vec![
        ("slow.txt", slow, Some("timeout")),
        ("notes.md", b"# Notes\n\nWe met in Oslo.".to_vec(), None),
        (
            "locked.pdf",
            corpus("pdf/libreoffice-writer-password.pdf"),
            Some("encrypted"),
        ),
        (
            "half.docx",
            docx[..docx.len() / 2].to_vec(),
            Some("corrupt"),
        ),
        ("empty.txt", Vec::new(), Some("empty")),
        (
            "blob.bin",
            [0u8, 159, 146, 150, 0, 1].repeat(50),
            Some("unsupported_format"),
        ),
        ("bomb.docx", docx_bomb(), Some("decompression_bomb")),
        ("huge.txt", vec![b'a'; 13 * 1024 * 1024], Some("too_large")),
        ("paper.pdf", corpus("pdf/multicolumn.pdf"), None),
    ];
    let started = Instant::now();
    for (i, (path, bytes, _)) in cases.iter().enumerate() {
        let source = SourceRef {
            source_id: format!("src{i}"),
            version: 1,
            origin: "test".into(),
            path: (*path).into(),
            ..SourceRef::default()
        };
        publisher.source(&source, bytes.clone()).await.unwrap();
    }

    let failures = cases.iter().filter(|c| c.2.is_some()).count();
    let mut dead: Vec<DeadLetter> = Vec::new();
    let mut parsed = 0;
    let deadline = Instant::now() + Duration::from_secs(180);
    while dead.len() < failures || parsed < cases.len() - failures {
        assert!(
            Instant::now() < deadline,
            "dead letters {dead:?}, parsed {parsed}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        dead = Vec::new();
        let mut dlq = topo.dlq.clone();
        let state = dlq.info().await.unwrap().state.clone();
        for seq in state.first_sequence..=state.last_sequence {
            if let Ok(m) = dlq.get_raw_message(seq).await {
                dead.push(DeadLetter::decode(m.payload.as_ref()).unwrap());
            }
        }
        parsed = 0;
        for (i, (_, _, want)) in cases.iter().enumerate() {
            let subject = subjects::parsed(&format!("src{i}"));
            if want.is_none()
                && topo
                    .parsed
                    .get_last_raw_message_by_subject(&subject)
                    .await
                    .is_ok()
            {
                parsed += 1;
            }
        }
    }
    eprintln!(
        "all {} files settled in {:?}",
        cases.len(),
        started.elapsed()
    );

    for (i, (path, _, want)) in cases.iter().enumerate() {
        let Some(kind) = want else { continue };
        let sid = format!("src{i}");
        let dl = dead
            .iter()
            .find(|d| d.source.as_ref().is_some_and(|s| s.source_id == sid))
            .unwrap_or_else(|| panic!("no dead letter for {path}"));
        assert_eq!(dl.error_kind, *kind, "{path}: {}", dl.reason);
        assert_eq!(dl.stage, "parser");
        assert!(dl.reason.contains(path), "{path}: {}", dl.reason);
        // the failure is on the mirror stream for both stores to record
        let m = topo
            .mirror
            .get_last_raw_message_by_subject(&subjects::mirror(&sid))
            .await
            .unwrap();
        let ev = MirrorEvent::decode(m.payload.as_ref()).unwrap();
        assert_eq!(ev.kind(), Kind::Failed, "{path}");
        assert_eq!(ev.error, dl.reason);
    }
    let reason = |kind: &str| {
        dead.iter()
            .find(|d| d.error_kind == kind)
            .unwrap()
            .reason
            .clone()
    };
    assert!(reason("encrypted").contains("password"));
    assert!(reason("timeout").contains("longer than"));
    assert!(reason("too_large").contains("limit"));

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
