//! `kb dead-letters` against real dead letters made by the real writer binaries: listed with
//! their stage, source, error kind, reason, time and deliveries; shown in full; and retried
//! once the cause is fixed, which republishes the original message and removes the dead letter.

#[path = "writers/mod.rs"]
mod writers;

use kb_e2e::Pipeline;
use kb_proto::{blob::Location, mirror_event::Kind, Blob, Message, MirrorEvent};
use kb_store::{Change, MirrorStore};
use serde_json::Value;
use std::time::{Duration, Instant};
use writers::*;

const WAIT: Duration = Duration::from_secs(120);

fn list(p: &Pipeline) -> anyhow::Result<Vec<Value>> {
    let out = kb_with(p, &[], &["dead-letters", "list", "--json"])?;
    anyhow::ensure!(out.status.success(), "list failed: {:?}", out);
    Ok(json(&out)?.as_array().cloned().unwrap_or_default())
}

async fn wait_list(p: &Pipeline, n: usize) -> anyhow::Result<Vec<Value>> {
    let deadline = Instant::now() + WAIT;
    loop {
        let l = list(p)?;
        if l.len() == n {
            return Ok(l);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "expected {n} dead letters: {l:#?}\n{}",
            p.logs()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn ids_of(l: &[Value], kind: &str, stage: &str) -> Vec<u64> {
    l.iter()
        .filter(|d| d["error_kind"] == kind && d["stage"] == stage)
        .filter_map(|d| d["id"].as_u64())
        .collect()
}

/// A mirror upsert whose body is an object that is not (yet) in the object store.
fn dangling_upsert(id: &str, version: u64) -> (Vec<u8>, String, Vec<u8>) {
    let doc = document(id, version, 3);
    let object = format!("mirror/{id}/{version}");
    let body = doc.encode_to_vec();
    let ev = MirrorEvent {
        source: doc.source.clone(),
        kind: Kind::Upsert as i32,
        body: Some(Blob {
            size: body.len() as u64,
            location: Some(Location::Object(object.clone())),
        }),
        error: String::new(),
    };
    (ev.encode_to_vec(), object, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_shown_and_retried_after_a_fix() -> anyhow::Result<()> {
    let mut p = Pipeline::new().await?;
    p.start("pg-writer")?;
    p.start("graph-writer")?;
    let js = jetstream(&p).await?;
    assert_eq!(list(&p)?.len(), 0);

    // Two real failures, each dead-lettered by both writers: bytes that are no mirror event,
    // and an upsert whose body never made it to the object store.
    let garbage = b"\x08\x96\x01 garbage".to_vec();
    publish_raw(&js, "junk", 1, garbage.clone(), "t:junk").await?;
    let (payload, object, body) = dangling_upsert("lost", 1);
    publish_raw(&js, "lost", 1, payload.clone(), "t:lost").await?;
    let l = wait_list(&p, 4).await?;
    for d in &l {
        assert!(d["reason"].as_str().is_some_and(|r| !r.is_empty()), "{d:#}");
        assert!(d["deliveries"].as_u64().is_some_and(|n| n >= 1), "{d:#}");
        let at = d["failed_at"].as_str().unwrap_or_default();
        assert!(at.starts_with("20") && at.contains('T'), "{d:#}");
    }
    for stage in WRITERS {
        assert_eq!(ids_of(&l, "decode", stage).len(), 1, "{l:#?}");
        assert_eq!(ids_of(&l, "body_missing", stage).len(), 1, "{l:#?}");
    }
    assert!(l.iter().any(|d| d["source_id"] == "lost"
        && d["version"] == 1
        && d["original_subject"] == "kb.v1.mirror.lost"));

    // The plain listing is a table naming every ID.
    let out = kb_with(&p, &[], &["dead-letters", "list"])?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("STAGE") && text.contains("body_missing"),
        "{text}"
    );

    // Shown in full: the original message, byte for byte, and what it was.
    let pg_lost = ids_of(&l, "body_missing", "pg-writer")[0];
    let out = kb_with(
        &p,
        &[],
        &["dead-letters", "show", &pg_lost.to_string(), "--json"],
    )?;
    let full = json(&out)?;
    assert!(out.status.success(), "{full:#}");
    assert_eq!(full["original_payload_hex"], hex_of(&payload));
    assert_eq!(full["original_mirror_event"]["kind"], "UPSERT");
    assert_eq!(
        full["original_mirror_event"]["body_object"],
        object.as_str()
    );
    assert!(full["original_headers"]
        .as_array()
        .is_some_and(|h| h.iter().any(|x| x == "Kb-Version: 1")));
    let out = kb_with(&p, &[], &["dead-letters", "show", &pg_lost.to_string()])?;
    assert!(String::from_utf8_lossy(&out.stdout).contains("body_missing"));
    let out = kb_with(&p, &[], &["dead-letters", "show", "999999"])?;
    assert_eq!(out.status.code(), Some(1));

    // The fix: the body is put where the message says. Retrying sends the original again and
    // removes the dead letter; both writers then apply the document.
    js.topo
        .blobs
        .put(object.as_str(), &mut body.as_slice())
        .await?;
    let out = kb_with(
        &p,
        &[],
        &["dead-letters", "retry", &pg_lost.to_string(), "--json"],
    )?;
    let retried = json(&out)?;
    assert!(out.status.success(), "{retried:#}");
    assert_eq!(retried[0]["outcome"], "republished");
    assert_eq!(retried[0]["subject"], "kb.v1.mirror.lost");
    let (pg, graph) = p
        .wait_for("the retried document", WAIT, |s| {
            s.iter().any(|x| x.source_id == "lost" && x.chunks == 3)
        })
        .await?;
    assert_eq!(pg, graph);
    let l = list(&p)?;
    assert_eq!(l.len(), 3);
    assert!(l.iter().all(|d| d["id"] != pg_lost));

    // A dead letter whose source moved on is obsolete: retrying sends nothing (the mirror
    // must not go back to an older version) and removes it.
    let (payload2, _, _) = dangling_upsert("moved", 1);
    publish_raw(&js, "moved", 1, payload2, "t:moved").await?;
    let l = wait_list(&p, 5).await?;
    let moved: Vec<u64> = l
        .iter()
        .filter(|d| d["source_id"] == "moved")
        .filter_map(|d| d["id"].as_u64())
        .collect();
    assert_eq!(moved.len(), 2);
    let v2 = document("moved", 2, 2);
    js.publisher.mirror(Change::Upsert(&v2)).await?;
    p.wait_for("moved v2", WAIT, |s| {
        s.iter().any(|x| x.source_id == "moved" && x.version == 2)
    })
    .await?;
    let out = kb_with(
        &p,
        &[],
        &["dead-letters", "retry", &moved[0].to_string(), "--json"],
    )?;
    let retried = json(&out)?;
    assert_eq!(retried[0]["outcome"], "superseded", "{retried:#}");
    assert_eq!(js.publisher.mirror_version("moved").await?, 2);

    // --all: the rest are sent again; the junk fails again (a new dead letter per writer), the
    // rest are now current; nothing is lost and the stores agree.
    let out = kb_with(&p, &[], &["dead-letters", "retry", "--all", "--json"])?;
    let retried = json(&out)?;
    assert!(out.status.success(), "{retried:#}");
    assert_eq!(retried.as_array().map(Vec::len), Some(4), "{retried:#}");
    let l = wait_list(&p, 2).await?;
    for stage in WRITERS {
        assert_eq!(ids_of(&l, "decode", stage).len(), 1, "{l:#?}");
    }
    let pg_store = p.postgres().await?;
    let sources: Vec<String> = pg_store
        .summaries()
        .await?
        .into_iter()
        .map(|s| s.source_id)
        .collect();
    assert_eq!(sources, vec!["lost", "moved"]);
    assert_eq!(
        pg_store.summaries().await?,
        p.graph_store().await?.summaries().await?
    );
    p.stop("pg-writer")?;
    p.stop("graph-writer")?;
    Ok(())
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Issue 15, item 4: a retried parser dead letter is parsed again. The retry is a new version
/// of the same content (the mirror already holds the FAILED record at the old one), reserved
/// with the file's version authority so the watcher never reuses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parser_dead_letter_retried_after_raising_a_limit_is_parsed_and_ok_in_both_stores(
) -> anyhow::Result<()> {
    let mut p = Pipeline::new().await?;
    p.start_instance(
        "parser",
        "parser",
        &[("KB_PARSER__MAX_BYTES".to_string(), "2000".to_string())],
    )?;
    for s in ["embedder", "pg-writer", "graph-writer"] {
        p.start(s)?;
    }
    let js = jetstream(&p).await?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("notes.md");
    let text: String = (0..100)
        .map(|i| format!("Paragraph {i}: the committee reviewed budget line {i} and agreed.\n\n"))
        .collect();
    assert!(text.len() > 5000, "{}", text.len());
    std::fs::write(&file, &text)?;
    let file_arg = file.display().to_string();
    // Bodies above 1 KiB go through the object store, so the retry has to carry one over.
    let small = [("KB_NATS__INLINE_MAX_BYTES", "1024")];
    let ingest = ["ingest", "--json", "--timeout", "120", file_arg.as_str()];
    let out = kb_with(&p, &small, &ingest)?;
    let report = json(&out)?;
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    assert_eq!(report["files"][0]["status"], "failed", "{report:#}");
    let sid = report["files"][0]["source_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let v1 = report["files"][0]["version"].as_u64().unwrap_or_default();
    let l = wait_list(&p, 1).await?;
    assert_eq!(ids_of(&l, "too_large", "parser").len(), 1, "{l:#?}");
    p.wait_for("the failure in both stores", WAIT, |s| {
        s.iter().any(|x| x.source_id == sid && x.status == "failed")
    })
    .await?;

    // The limit goes up; the dead letter is retried.
    p.stop("parser")?;
    p.start("parser")?;
    let out = kb_with(&p, &small, &["dead-letters", "retry", "--all", "--json"])?;
    let retried = json(&out)?;
    assert!(out.status.success(), "{retried:#}");
    assert_eq!(retried[0]["outcome"], "republished", "{retried:#}");

    // The parser parses it (a version above the FAILED one), and both stores hold it.
    // The retried message is in KB_SOURCE (a work queue) once the command returns: when the
    // queue is empty the parser has consumed it, and its progress follows at once.
    let progress = kb_stream::Progress::new(js.topo.progress.clone());
    let deadline = Instant::now() + WAIT;
    let mut consumed_at = None;
    let parsed = loop {
        let rec = progress.get(kb_stream::Stage::Parser, &sid).await?;
        if let Some(rec) = rec
            .as_ref()
            .filter(|r| r.status == "parsed" && r.version > v1)
        {
            break rec.clone();
        }
        if js.topo.source.get_info().await?.state.messages == 0 {
            let since = *consumed_at.get_or_insert_with(Instant::now);
            anyhow::ensure!(
                since.elapsed() < Duration::from_secs(10),
                "the retry was consumed but not parsed (progress {rec:?})\n{}",
                p.logs()
            );
        }
        anyhow::ensure!(Instant::now() < deadline, "never parsed\n{}", p.logs());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (pg, graph) = p
        .wait_for("the retried document in both stores", WAIT, |s| {
            s.iter()
                .any(|x| x.source_id == sid && x.status == "ok" && x.chunks > 0)
        })
        .await?;
    assert_eq!(pg, graph);
    assert!(pg
        .iter()
        .all(|x| x.source_id != sid || x.version == parsed.version));
    assert_eq!(list(&p)?.len(), 0, "the dead letter is gone");

    // The retry's version is the file's: ingesting the unchanged file finds it done.
    let out = kb_with(&p, &small, &ingest)?;
    let report = json(&out)?;
    assert!(out.status.success(), "{report:#}");
    assert_eq!(report["files"][0]["status"], "ok", "{report:#}");
    assert_eq!(report["files"][0]["version"], parsed.version, "{report:#}");
    for s in ["parser", "embedder", "pg-writer", "graph-writer"] {
        p.stop(s)?;
    }
    Ok(())
}
