//! The mirror stream's promises, against a real NATS JetStream: last-writer-wins at publish
//! time (even under concurrent out-of-order publishers), one message per source, big bodies
//! through the object store and cleaned up when replaced.

use kb_proto::{mirror_event::Kind, Chunk, Message, MirrorEvent, ParsedDocument, SourceRef};
use kb_stream::{subjects, Change, Mirrored, Publisher};

use kb_testkit::source;

fn doc(src: &SourceRef, text_len: usize) -> ParsedDocument {
    ParsedDocument {
        source: Some(src.clone()),
        chunks: vec![Chunk {
            chunk_id: "c0".into(),
            text: "x".repeat(text_len),
            ..Default::default()
        }],
        ..Default::default()
    }
}

async fn setup(inline_max: usize) -> anyhow::Result<(kb_testkit::NatsServer, Publisher)> {
    let nats = kb_testkit::stack().await?.nats().await?;
    let (_c, js) = kb_stream::connect(&nats.url(), "test").await?;
    let topo = kb_stream::topology::ensure(&js).await?;
    Ok((nats, Publisher::new(&topo, inline_max)))
}

async fn head(p: &Publisher, id: &str) -> anyhow::Result<MirrorEvent> {
    let m = p
        .topology()
        .mirror
        .get_last_raw_message_by_subject(&subjects::mirror(id))
        .await?;
    Ok(MirrorEvent::decode(m.payload.as_ref())?)
}

#[tokio::test]
async fn an_older_version_never_replaces_a_newer_one() -> anyhow::Result<()> {
    let (_nats, p) = setup(64 * 1024).await?;
    let v2 = source("s1", 2);
    assert_eq!(
        p.mirror(Change::Upsert(&doc(&v2, 10))).await?,
        Mirrored::Published
    );
    let v1 = source("s1", 1);
    assert_eq!(
        p.mirror(Change::Upsert(&doc(&v1, 10))).await?,
        Mirrored::Superseded { current: 2 }
    );
    // A tombstone with a newer version wins; the same version again is a no-op.
    let v3 = source("s1", 3);
    assert_eq!(p.mirror(Change::Delete(&v3)).await?, Mirrored::Published);
    assert_eq!(
        p.mirror(Change::Delete(&v3)).await?,
        Mirrored::Superseded { current: 3 }
    );
    let h = head(&p, "s1").await?;
    assert_eq!(h.kind, Kind::Delete as i32);
    assert_eq!(h.source.map(|s| s.version), Some(3));
    assert_eq!(p.mirror_version("s1").await?, 3);
    assert_eq!(p.mirror_version("never-seen").await?, 0);
    Ok(())
}

#[tokio::test]
async fn concurrent_out_of_order_publishers_converge_on_the_newest() -> anyhow::Result<()> {
    let (_nats, p) = setup(64 * 1024).await?;
    let mut tasks = Vec::new();
    for worker in 0..4u64 {
        let p = p.clone();
        tasks.push(tokio::spawn(async move {
            // Each worker publishes its share of versions newest-first, racing the others.
            for v in (1..=40u64).rev().filter(|v| v % 4 == worker) {
                let s = source("race", v);
                p.mirror(Change::Upsert(&doc(&s, 5))).await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    assert_eq!(p.mirror_version("race").await?, 40);
    let info = p.topology().mirror.get_info().await?;
    assert_eq!(info.state.messages, 1, "one message per source subject");
    Ok(())
}

#[tokio::test]
async fn big_bodies_go_through_the_object_store_and_are_cleaned_up() -> anyhow::Result<()> {
    let (_nats, p) = setup(4 * 1024).await?;
    let v1 = source("big", 1);
    let d1 = doc(&v1, 3 * 1024 * 1024); // far above the 1 MiB message limit
    assert_eq!(p.mirror(Change::Upsert(&d1)).await?, Mirrored::Published);
    let h1 = head(&p, "big").await?;
    let blob1 = h1.body.clone().ok_or_else(|| anyhow::anyhow!("no body"))?;
    assert!(matches!(
        blob1.location,
        Some(kb_proto::blob::Location::Object(_))
    ));
    let back = ParsedDocument::decode(p.blobs().fetch(&blob1).await?.as_slice())?;
    assert_eq!(back, d1);

    let v2 = source("big", 2);
    p.mirror(Change::Upsert(&doc(&v2, 2 * 1024 * 1024))).await?;
    // The replaced state's object is gone; fetching it says so with a typed error.
    let err = p
        .blobs()
        .fetch(&blob1)
        .await
        .expect_err("old object deleted");
    assert_eq!(err.kind, kb_stream::StreamErrorKind::NotFound);
    Ok(())
}

/// Item 2 of issue 15: two publishers of one version (a redelivery while the first still works,
/// a duplicate parse). The loser must not delete the body the winner's message points to.
#[tokio::test]
async fn two_publishers_of_one_version_never_delete_the_winners_body() -> anyhow::Result<()> {
    let _fail = kb_testkit::FailGuard::new();
    let (_nats, p) = setup(1024).await?;
    let v1 = source("twice", 1);
    let d1 = doc(&v1, 10 * 1024);
    kb_core::failpoint::set("mirror.before_send", "1*pause@twice")?;
    // A stops after storing its body, before sending.
    let a = {
        let (p, d1) = (p.clone(), d1.clone());
        tokio::spawn(async move { p.mirror(Change::Upsert(&d1)).await })
    };
    assert!(
        kb_core::failpoint::wait_hit("mirror.before_send", std::time::Duration::from_secs(10))
            .await,
        "A never reached its send"
    );
    // B publishes the same version to completion.
    assert_eq!(p.mirror(Change::Upsert(&d1)).await?, Mirrored::Published);
    kb_core::failpoint::release("mirror.before_send");
    assert!(matches!(a.await??, Mirrored::Superseded { current: 1 }));
    let h = head(&p, "twice").await?;
    let body = h.body.ok_or_else(|| anyhow::anyhow!("no body"))?;
    let back = ParsedDocument::decode(p.blobs().fetch(&body).await?.as_slice())?;
    assert_eq!(back, d1, "the mirror's body is still there");
    Ok(())
}

/// Bodies are named per attempt: a version published again with other bytes (the window of
/// issue 15's item 1, or a redelivered parse) never overwrites the body a queued message
/// points to, and the deduplicated second attempt's body is deleted at once.
#[tokio::test]
async fn a_version_published_again_never_overwrites_the_queued_body() -> anyhow::Result<()> {
    use futures::TryStreamExt;
    let (_nats, p) = setup(1024).await?;
    let v1 = source("again", 1);
    p.source(&v1, vec![b'x'; 10 * 1024]).await?;
    p.source(&v1, vec![b'y'; 10 * 1024]).await?;
    let topo = p.topology();
    assert_eq!(
        topo.source.get_info().await?.state.messages,
        1,
        "deduplicated"
    );
    let m = topo
        .source
        .get_last_raw_message_by_subject(&subjects::source("again"))
        .await?;
    let ev = kb_proto::SourceEvent::decode(m.payload.as_ref())?;
    let body = ev.body.ok_or_else(|| anyhow::anyhow!("no body"))?;
    assert_eq!(p.blobs().fetch(&body).await?, vec![b'x'; 10 * 1024]);
    let objects: Vec<String> = topo
        .blobs
        .list()
        .await?
        .map_ok(|o| o.name)
        .try_collect()
        .await?;
    assert_eq!(objects.len(), 1, "the duplicate's body went: {objects:?}");
    Ok(())
}

/// The mirror in the form of one change type: upsert, failure and tombstone.
#[tokio::test]
async fn changes_reach_the_mirror_last_writer_wins() -> anyhow::Result<()> {
    use kb_store::Change;
    use kb_stream::Mirrored;
    let (_nats, p) = setup(64 * 1024).await?;
    let v1 = source("c", 1);
    assert_eq!(
        p.mirror(Change::Upsert(&doc(&v1, 10))).await?,
        Mirrored::Published
    );
    let v2 = source("c", 2);
    assert_eq!(
        p.mirror(Change::Failed(&v2, "broken")).await?,
        Mirrored::Published
    );
    let h = head(&p, "c").await?;
    assert_eq!(h.kind, Kind::Failed as i32);
    assert_eq!(h.error, "broken");
    assert_eq!(
        p.mirror(Change::Delete(&v1)).await?,
        Mirrored::Superseded { current: 2 }
    );
    assert!(p.mirror(Change::Delete(&source("", 3))).await.is_err());
    Ok(())
}
