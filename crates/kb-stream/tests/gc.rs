//! The blob GC (issue 15, item 8) against a real NATS: only bodies no message refers to go,
//! young ones and names the pipeline does not make stay, and a reference made while the GC
//! is about to delete keeps the body.

use kb_proto::{DeadLetter, Message, ParsedEvent};
use kb_stream::gc::{self, GcReport};
use kb_stream::Change;
use kb_stream::{subjects, Publisher};
use std::time::Duration;

async fn setup() -> anyhow::Result<(kb_testkit::NatsServer, Publisher)> {
    let nats = kb_testkit::stack().await?.nats().await?;
    let (_c, js) = kb_stream::connect(&nats.url(), "gc-test").await?;
    let topo = kb_stream::topology::ensure(&js).await?;
    Ok((nats, Publisher::new(&topo, 1024)))
}

fn big(n: u8) -> Vec<u8> {
    vec![n; 4 * 1024]
}

async fn exists(p: &Publisher, blob: &kb_proto::Blob) -> bool {
    p.blobs().fetch(blob).await.is_ok()
}

#[tokio::test]
async fn only_bodies_no_message_refers_to_are_collected() -> anyhow::Result<()> {
    let (_nats, p) = setup().await?;
    let b = p.blobs();
    // Orphans: a body stored and never published; the old body of a replaced mirror head
    // whose delete failed.
    let orphan = b.wrap_new("parsed", "s1", 1, big(1)).await?;
    let stale_head = b.wrap_new("mirror", "s2", 1, big(2)).await?;
    // Referenced: the mirror head, queued messages, a dead letter.
    let s2 = kb_testkit::document("s2", 2, 2, 0);
    let mut s2 = s2.clone();
    s2.title = "t".repeat(4096);
    p.mirror(Change::Upsert(&s2)).await?;
    let head = p.mirror_body("s2").await?.expect("stored head");
    // A queued source replaced by its next version: KB_SOURCE keeps one message per source,
    // so the first body is referenced by nothing any more.
    let s4_v1 = b.wrap_new("source", "s4", 1, big(4)).await?;
    p.source_event(&kb_testkit::source("s4", 1), s4_v1.clone(), "upsert")
        .await?;
    let s4_v2 = b.wrap_new("source", "s4", 2, big(5)).await?;
    p.source_event(&kb_testkit::source("s4", 2), s4_v2.clone(), "upsert")
        .await?;
    let mut s5 = kb_testkit::document("s5", 1, 1, 0);
    s5.title = "t".repeat(4096);
    p.parsed(&s5).await?;
    let dl_body = b.wrap_new("parsed", "s3", 1, big(3)).await?;
    let original = ParsedEvent {
        source: Some(kb_testkit::source("s3", 1)),
        body: Some(dl_body.clone()),
    };
    p.dead_letter(&DeadLetter {
        stage: "embedder".into(),
        error_kind: "embedding_failed".into(),
        reason: "refused".into(),
        original_subject: subjects::parsed("s3"),
        original_payload: original.encode_to_vec(),
        source: original.source.clone(),
        ..Default::default()
    })
    .await?;
    // Not ours.
    p.topology()
        .blobs
        .put("backup.tar", &mut b"not a body".as_slice())
        .await?;

    // Everything is young: nothing goes.
    let r = gc::collect(p.topology(), Duration::from_secs(3600)).await?;
    assert_eq!(r.deleted, 0, "{r:?}");
    assert_eq!(r.young, r.scanned, "{r:?}");

    let r = gc::collect(p.topology(), Duration::ZERO).await?;
    // Skipped: the name that is not ours.
    assert_eq!(
        r,
        GcReport {
            scanned: 8,
            young: 0,
            referenced: 4,
            skipped: 1,
            deleted: 3
        }
    );
    assert!(!exists(&p, &orphan).await);
    assert!(!exists(&p, &stale_head).await);
    assert!(!exists(&p, &s4_v1).await, "a superseded source body goes");
    assert!(exists(&p, &s4_v2).await, "the queued source body stays");
    assert!(exists(&p, &dl_body).await, "a dead letter's body stays");
    let head_blob = kb_proto::Blob {
        location: Some(kb_proto::blob::Location::Object(head)),
        size: 0,
    };
    assert!(exists(&p, &head_blob).await, "the mirror head's body stays");
    // Twice is harmless.
    let again = gc::collect(p.topology(), Duration::ZERO).await?;
    assert_eq!(again.deleted, 0);
    assert_eq!(again.scanned, 5);
    Ok(())
}

#[tokio::test]
async fn a_reference_made_while_the_gc_is_about_to_delete_keeps_the_body() -> anyhow::Result<()> {
    let _fail = kb_testkit::FailGuard::new();
    let (_nats, p) = setup().await?;
    let body = p.blobs().wrap_new("parsed", "late", 1, big(9)).await?;
    let name = kb_stream::blob::stored_name(Some(&body))
        .expect("stored")
        .to_string();
    kb_core::failpoint::set("gc.before_delete", &format!("1*pause@{name}"))?;
    let gc = {
        let topo = p.topology().clone();
        tokio::spawn(async move { gc::collect(&topo, Duration::ZERO).await })
    };
    assert!(
        kb_core::failpoint::wait_hit("gc.before_delete", Duration::from_secs(10)).await,
        "the GC never got to the delete"
    );
    // A message refers to the body now (e.g. a publisher that stored it just before).
    p.parsed_event(&kb_testkit::source("late", 1), body.clone(), "upsert")
        .await?;
    kb_core::failpoint::release("gc.before_delete");
    let r = gc.await??;
    assert_eq!(r.deleted, 0, "{r:?}");
    assert!(
        exists(&p, &body).await,
        "the body a message now refers to stays"
    );
    Ok(())
}
