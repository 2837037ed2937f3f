//! Tombstone retention (issue 15, item 8: nothing grows for ever) against a real NATS: a
//! deleted source past the retention leaves no message behind on the stream side, only once
//! every writer has it and its authority let it go, and every new version of it is numbered
//! above the forgotten one, even when the file comes back in the middle of a collection.

use async_nats::jetstream::consumer::pull;
use futures::StreamExt;
use kb_proto::SourceRef;
use kb_store::Change;
use kb_stream::progress::ProgressRecord;
use kb_stream::retention::{self, Authority, Forget};
use kb_stream::{subjects, Progress, ProgressStatus, Publisher, Stage, StreamError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

async fn setup() -> anyhow::Result<(kb_testkit::NatsServer, Publisher)> {
    let nats = kb_testkit::stack().await?.nats().await?;
    let (_c, js) = kb_stream::connect(&nats.url(), "retention-test").await?;
    let topo = kb_stream::topology::ensure(&js).await?;
    Ok((nats, Publisher::new(&topo, 1024)))
}

/// An authority that lets go of everything, or of nothing.
struct Lets(AtomicBool);

#[async_trait::async_trait]
impl Authority for Lets {
    async fn forget(&self, _: &SourceRef) -> Result<Forget, StreamError> {
        Ok(if self.0.load(Ordering::SeqCst) {
            Forget::Forgotten
        } else {
            Forget::Kept
        })
    }
}

/// Messages the broker holds on `subject` in `stream`, delete markers included.
async fn messages_on(stream: &async_nats::jetstream::stream::Stream, subject: &str) -> u64 {
    let s = stream.clone();
    match s.info_with_subjects(subject).await {
        Ok(mut subjects) => {
            let mut n = 0;
            while let Some(Ok((_, count))) = subjects.next().await {
                n += count as u64;
            }
            n
        }
        Err(_) => 0,
    }
}

async fn record(progress: &Progress, stage: Stage, sid: &str, version: u64) -> anyhow::Result<()> {
    progress
        .record(
            stage,
            sid,
            &ProgressRecord {
                version,
                status: ProgressStatus::Deleted,
                error: None,
                at_unix_ms: 0,
                path: None,
            },
        )
        .await?;
    Ok(())
}

#[tokio::test]
async fn a_tombstone_past_the_retention_is_forgotten_once_every_writer_has_it() -> anyhow::Result<()>
{
    let (_nats, p) = setup().await?;
    let topo = p.topology().clone();
    let progress = Progress::new(topo.progress.clone());
    let live = kb_testkit::document("live", 3, 1, 0);
    p.mirror(Change::Upsert(&live)).await?;
    p.mirror(Change::Delete(&kb_testkit::source("gone", 5)))
        .await?;
    for stage in [Stage::Parser, Stage::PgWriter] {
        record(&progress, stage, "gone", 5).await?;
    }
    // A writer that has not acknowledged anything yet.
    let writer = topo
        .mirror
        .create_consumer(pull::Config {
            durable_name: Some("slow-writer".into()),
            ..Default::default()
        })
        .await?;
    let authority = Lets(AtomicBool::new(true));

    // Young: nothing is old enough.
    let r = retention::collect(&topo, Duration::from_secs(3600), &authority).await?;
    assert_eq!(r.expired, 0, "{r:?}");

    // Old, but the writer has not applied the deletion: its store still holds the source.
    let r = retention::collect(&topo, Duration::ZERO, &authority).await?;
    assert_eq!((r.expired, r.unapplied, r.forgotten), (1, 1, 0), "{r:?}");
    assert_eq!(p.mirror_version("gone").await?, 5);

    // The writer catches up.
    let mut batch = writer.fetch().max_messages(10).messages().await?;
    while let Some(m) = batch.next().await {
        m.map_err(|e| anyhow::anyhow!(e))?
            .double_ack()
            .await
            .map_err(|e| anyhow::anyhow!(e))?;
    }
    // The authority keeps its state (the file is back): the floor rises, nothing else goes.
    authority.0.store(false, Ordering::SeqCst);
    let r = retention::collect(&topo, Duration::ZERO, &authority).await?;
    assert_eq!((r.expired, r.kept, r.forgotten), (1, 1, 0), "{r:?}");
    assert_eq!(p.mirror_version("gone").await?, 5);
    assert_eq!(retention::version_floor(&topo).await?, 5);

    authority.0.store(true, Ordering::SeqCst);
    let r = retention::collect(&topo, Duration::ZERO, &authority).await?;
    assert_eq!((r.expired, r.forgotten), (1, 1), "{r:?}");
    // Nothing of it is left on the broker, not even a delete marker.
    assert_eq!(
        messages_on(&topo.mirror, &subjects::mirror("gone")).await,
        0
    );
    for stage in [Stage::Parser, Stage::PgWriter] {
        assert!(progress.get(stage, "gone").await?.is_none());
        let key = format!("{}{}.gone", topo.progress.prefix, stage.as_str());
        assert_eq!(messages_on(&topo.progress.stream, &key).await, 0, "{key}");
    }
    // The live source is untouched; a new version of the forgotten one goes above it.
    assert_eq!(p.mirror_version("live").await?, 3);
    assert_eq!(p.mirror_version("gone").await?, 0);
    assert_eq!(p.highest_version("gone").await?, 5);
    assert_eq!(p.highest_version("live").await?, 5);
    // Again: nothing left to do.
    let r = retention::collect(&topo, Duration::ZERO, &authority).await?;
    assert_eq!(r.expired, 0, "{r:?}");
    Ok(())
}

#[tokio::test]
async fn a_source_back_while_its_tombstone_is_forgotten_keeps_its_new_version() -> anyhow::Result<()>
{
    let (_nats, p) = setup().await?;
    let topo = p.topology().clone();
    p.mirror(Change::Delete(&kb_testkit::source("back", 2)))
        .await?;
    let authority = Lets(AtomicBool::new(true));
    // Pause right before the head is purged: the file comes back as version 3 then.
    kb_core::failpoint::set("retention.before_head", "1*pause@back")?;
    let collecting = {
        let topo = topo.clone();
        tokio::spawn(async move { retention::collect(&topo, Duration::ZERO, &authority).await })
    };
    assert!(
        kb_core::failpoint::wait_hit("retention.before_head", Duration::from_secs(10)).await,
        "the collection never reached the head"
    );
    let back = kb_testkit::document("back", 3, 1, 0);
    p.mirror(Change::Upsert(&back)).await?;
    kb_core::failpoint::release("retention.before_head");
    let r = collecting.await??;
    assert_eq!(r.forgotten, 1, "{r:?}");
    // The purge reached only as far as the tombstone it decided on.
    assert_eq!(p.mirror_version("back").await?, 3);
    Ok(())
}
