//! Stream limits (issue 15, item 8): a work queue keeps one message per source, a full stream
//! refuses publishes with a clear error instead of trimming, and recovers once there is room.

use kb_stream::{subjects, Publisher, StreamErrorKind};

/// The stream holds one message, and it is version 5 of `subject`.
async fn newest_only(
    stream: &async_nats::jetstream::stream::Stream,
    subject: &str,
    what: &str,
) -> anyhow::Result<()> {
    let info = stream.get_info().await?;
    assert_eq!(
        info.state.messages, 1,
        "only the newest {what} version waits"
    );
    let last = stream.get_last_raw_message_by_subject(subject).await?;
    assert_eq!(
        last.headers
            .get(kb_stream::Header::Version.as_str())
            .map(|v| v.as_str().to_string()),
        Some("5".to_string()),
        "{what}"
    );
    Ok(())
}

/// A work queue keeps one message per source: while the embedder is slow or down, a newer
/// parsed version replaces the queued older one (which would be superseded anyway).
/// `KB_SOURCE` does the same for raw versions waiting for the parser.
#[tokio::test]
async fn five_queued_versions_of_one_source_keep_only_the_newest() -> anyhow::Result<()> {
    let nats = kb_testkit::stack().await?.nats().await?;
    let (_c, js) = kb_stream::connect(&nats.url(), "test").await?;
    let topo = kb_stream::topology::ensure(&js).await?;
    let p = Publisher::new(&topo, 64 * 1024);
    for v in 1..=5 {
        p.parsed(&kb_testkit::document("queued", v, 2, 0)).await?;
        p.source(&kb_testkit::source("queued", v), vec![b'x'; 1024])
            .await?;
    }
    newest_only(&topo.source, &subjects::source("queued"), "raw").await?;
    newest_only(&topo.parsed, &subjects::parsed("queued"), "parsed").await?;
    Ok(())
}

#[tokio::test]
async fn a_full_stream_refuses_and_recovers() -> anyhow::Result<()> {
    let nats = kb_testkit::stack().await?.nats().await?;
    let settings = kb_core::settings::NatsSettings {
        url: nats.url(),
        parsed_max_bytes: 64 * 1024,
        ..Default::default()
    };
    let (_c, js) = kb_stream::connect(&settings, "test").await?;
    let topo = kb_stream::topology::ensure_with(&js, &settings).await?;
    // A service without settings keeps the limit another one set.
    let topo2 = kb_stream::topology::ensure(&js).await?;
    let mut parsed = topo2.parsed.clone();
    let config = parsed.info().await?.config.clone();
    assert_eq!(config.max_bytes, 64 * 1024);
    assert_eq!(
        config.discard,
        async_nats::jetstream::stream::DiscardPolicy::New
    );

    let p = Publisher::new(&topo, 256 * 1024);
    let doc = |i: u64| {
        let mut d = kb_testkit::document(&format!("s{i}"), 1, 4, 0);
        d.title = "x".repeat(8 * 1024);
        d
    };
    let mut refused = None;
    for i in 0..64 {
        match p.parsed(&doc(i)).await {
            Ok(()) => {}
            Err(e) => {
                refused = Some((i, e));
                break;
            }
        }
    }
    let (sent, e) = refused.ok_or_else(|| anyhow::anyhow!("the stream never filled"))?;
    assert!(sent >= 4, "refused after {sent}");
    assert_eq!(e.kind, StreamErrorKind::Full, "{e}");
    assert!(e.is_transient());
    assert!(e.to_string().contains("free space"), "{e}");
    // Nothing was trimmed: every accepted message is still there.
    assert_eq!(topo.parsed.get_info().await?.state.messages, sent);
    let alerts = kb_stream::alerts::all(&topo.alerts).await?;
    assert!(
        alerts.iter().any(|(k, _)| k == "broker.KB_PARSED.full"),
        "{alerts:?}"
    );

    // Room again: publishes go through and the alert clears.
    topo.parsed.purge().await?;
    p.parsed(&doc(100)).await?;
    let alerts = kb_stream::alerts::all(&topo.alerts).await?;
    assert!(alerts.is_empty(), "{alerts:?}");
    Ok(())
}
