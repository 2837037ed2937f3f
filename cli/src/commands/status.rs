//! `kb status`: what the pipeline holds and how far behind each consumer is.

use crate::stores;
use futures::TryStreamExt;
use kb_core::display::clean;
use kb_core::{Component, Settings};
use kb_store::{MirrorStore, StoreCounts};
use kb_stream::{subjects, Stage};
use serde::Serialize;
use std::collections::BTreeMap;
use std::process::ExitCode;

#[derive(Serialize)]
struct StreamStatus {
    name: String,
    messages: u64,
    bytes: u64,
}

#[derive(Serialize)]
struct ConsumerStatus {
    stream: String,
    name: String,
    /// Messages not yet delivered to the consumer (its lag).
    pending: u64,
    /// Delivered but not yet acknowledged (in flight).
    ack_pending: usize,
    redelivered: usize,
}

#[derive(Serialize)]
struct StoreStatus {
    enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    counts: Option<StoreCounts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Serialize)]
struct Status {
    streams: Vec<StreamStatus>,
    consumers: Vec<ConsumerStatus>,
    /// Dead letters per stage.
    dead_letters: BTreeMap<String, u64>,
    stores: BTreeMap<String, StoreStatus>,
    /// Embedding cache hits/misses summed over every embedder; null before any used a cache.
    embed_cache: Option<kb_embedder::cache::CacheStatus>,
    /// Raised alerts (`kb_alerts`): conditions that need an operator, e.g. deletions a watcher
    /// holds or links it skips; and the broker's whole store, checked live ([`store_alert`]).
    alerts: Vec<AlertStatus>,
    /// Bytes JetStream holds for this account (every stream, bucket and object store).
    broker_store_bytes: Option<u64>,
}

#[derive(Serialize)]
struct AlertStatus {
    /// `<component>.<name>.<kind>`, e.g. `watcher.inbox.mass_delete`.
    key: String,
    since_ms: i64,
    count: u64,
    message: String,
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    details: serde_json::Value,
}

async fn store_status<S: MirrorStore>(
    enabled: bool,
    open: impl std::future::Future<Output = anyhow::Result<S>>,
) -> StoreStatus {
    if !enabled {
        return StoreStatus {
            enabled,
            counts: None,
            error: None,
        };
    }
    let counts = match open.await {
        Ok(store) => store.counts().await.map_err(anyhow::Error::from),
        Err(e) => Err(e),
    };
    match counts {
        Ok(c) => StoreStatus {
            enabled,
            counts: Some(c),
            error: None,
        },
        Err(e) => StoreStatus {
            enabled,
            counts: None,
            error: Some(format!("{e:#}")),
        },
    }
}

pub async fn run(settings: &Settings, json: bool) -> anyhow::Result<ExitCode> {
    settings.validate(&[Component::Nats])?;
    let (_client, js) = kb_stream::connect(&settings.nats, "kb-cli").await?;
    let topo = kb_stream::topology::ensure(&js).await?;
    let mut streams = Vec::new();
    let mut consumers = Vec::new();
    for (stream, names) in [
        (&topo.source, vec![Stage::Parser]),
        (&topo.parsed, vec![Stage::Embedder]),
        (&topo.mirror, Stage::WRITERS.to_vec()),
        (&topo.dlq, vec![]),
    ] {
        let info = stream.get_info().await?;
        streams.push(StreamStatus {
            name: info.config.name.clone(),
            messages: info.state.messages,
            bytes: info.state.bytes,
        });
        for name in names {
            // A consumer that never ran yet has no durable state: report it as holding everything.
            match stream.consumer_info(name.as_str()).await {
                Ok(ci) => consumers.push(ConsumerStatus {
                    stream: info.config.name.clone(),
                    name: name.to_string(),
                    pending: ci.num_pending,
                    ack_pending: ci.num_ack_pending,
                    redelivered: ci.num_redelivered,
                }),
                Err(_) => consumers.push(ConsumerStatus {
                    stream: info.config.name.clone(),
                    name: name.to_string(),
                    pending: info.state.messages,
                    ack_pending: 0,
                    redelivered: 0,
                }),
            }
        }
    }
    let mut dead_letters = BTreeMap::new();
    let per_subject: Vec<(String, usize)> = topo
        .dlq
        .info_with_subjects(subjects::DLQ_ALL)
        .await?
        .try_collect()
        .await?;
    for (subject, n) in per_subject {
        let stage = subject.split('.').nth(3).unwrap_or("unknown").to_string();
        *dead_letters.entry(stage).or_insert(0) += n as u64;
    }
    let mut stores_status = BTreeMap::new();
    stores_status.insert(
        "postgres".to_string(),
        store_status(settings.postgres.enabled, stores::postgres(settings)).await,
    );
    stores_status.insert(
        "graph".to_string(),
        store_status(settings.neo4j.enabled, stores::graph(settings)).await,
    );
    let embed_cache = match kb_embedder::cache::status(&js).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the embedding cache totals");
            None
        }
    };
    let mut alerts = alerts(&topo).await?;
    alerts.extend(store_alert(&topo, STORE_PROBE_TIMEOUT).await);
    let broker_store_bytes = js.query_account().await.ok().map(|a| a.storage);
    let status = Status {
        streams,
        consumers,
        dead_letters,
        stores: stores_status,
        embed_cache,
        alerts,
        broker_store_bytes,
    };

    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("STREAM       MESSAGES      BYTES");
    for s in &status.streams {
        println!("{:<12} {:>8} {:>10}", s.name, s.messages, s.bytes);
    }
    println!("\nCONSUMER      STREAM       PENDING  IN-FLIGHT  REDELIVERED");
    for c in &status.consumers {
        println!(
            "{:<13} {:<12} {:>7} {:>10} {:>12}",
            c.name, c.stream, c.pending, c.ack_pending, c.redelivered
        );
    }
    println!("\nSTORE     SOURCES  FAILED  CHUNKS  EMBEDDED  ENTITIES  MENTIONS  RELATIONS");
    for (name, s) in &status.stores {
        match (&s.counts, &s.error) {
            (Some(c), _) => println!(
                "{:<9} {:>7} {:>7} {:>7} {:>9} {:>9} {:>9} {:>10}",
                name,
                c.sources,
                c.failed_sources,
                c.chunks,
                c.chunks_with_embeddings,
                c.entities,
                c.mentions,
                c.relations
            ),
            (None, Some(e)) => println!("{name:<9} unreachable: {e}"),
            (None, None) => println!("{name:<9} disabled"),
        }
    }
    match &status.embed_cache {
        Some(c) => println!(
            "\nEMBEDDING CACHE: {} hits, {} misses ({}), {} vectors, {} bytes",
            c.hits,
            c.misses,
            c.hit_rate.map_or("no lookups yet".to_string(), |r| format!(
                "{:.1}% hit rate",
                r * 100.0
            )),
            c.entries,
            c.bytes
        ),
        None => println!("\nEMBEDDING CACHE: not used yet"),
    }
    if let Some(bytes) = status.broker_store_bytes {
        println!("\nBROKER STORE: {bytes} bytes");
    }
    let total: u64 = status.dead_letters.values().sum();
    println!("\nDEAD LETTERS: {total}");
    for (stage, n) in &status.dead_letters {
        println!("  {stage}: {n}");
    }
    print!("\n{}", render_alerts(&status.alerts));
    Ok(ExitCode::SUCCESS)
}

async fn alerts(topo: &kb_stream::Topology) -> anyhow::Result<Vec<AlertStatus>> {
    Ok(kb_stream::alerts::all(&topo.alerts)
        .await?
        .into_iter()
        .map(|(key, a)| AlertStatus {
            key,
            since_ms: a.since_ms,
            count: a.count,
            message: a.message,
            details: a.details,
        })
        .collect())
}

/// The key of the whole-store alert (`<component>.<name>.<kind>` like the others).
const STORE_ALERT_KEY: &str = "broker.jetstream.full";
/// How long the store check waits for the broker to confirm its write.
const STORE_PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The broker's whole store, checked live. A store that refuses every write (JetStream's
/// `max_file_store` reached, the disk under it full) cannot hold an alert about itself:
/// `kb_alerts` is in it. So this makes a write of its own, a purge of [`STORE_ALERT_KEY`] (never
/// stored as a value, so the purge changes nothing), and reports how the broker answered.
async fn store_alert(
    topo: &kb_stream::Topology,
    timeout: std::time::Duration,
) -> Option<AlertStatus> {
    use kb_stream::{StreamError, StreamErrorKind};
    let now = kb_stream::progress::now_ms();
    let alert = |message: String| AlertStatus {
        key: STORE_ALERT_KEY.to_string(),
        since_ms: now,
        count: 1,
        message,
        details: serde_json::Value::Null,
    };
    const WAITS: &str = "nothing is lost: every stage waits and retries, and the pipeline \
                         resumes by itself once there is room";
    match tokio::time::timeout(timeout, topo.alerts.purge(STORE_ALERT_KEY)).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => {
            let e = StreamError::write("the broker refused a write", e);
            match e.kind {
                StreamErrorKind::Full => Some(alert(format!(
                    "the broker's store is full: JetStream refuses every write ({e}); \
                     free space or raise nats.max_store_bytes (JetStream max_file_store), then \
                     reload or restart nats-server; {WAITS}"
                ))),
                StreamErrorKind::BrokerDown => {
                    Some(alert(format!("JetStream does not answer ({e}); {WAITS}")))
                }
                _ => Some(alert(format!(
                    "the broker did not store a write ({e}): if its disk filled up under it \
                     (its log says \"no space left on device\"), free space and restart \
                     nats-server; {WAITS}"
                ))),
            }
        }
        Err(_) => Some(alert(format!(
            "the broker did not confirm a write within {}s: if its disk filled up under it \
             (its log says \"no space left on device\"), free space and restart nats-server; \
             {WAITS}",
            timeout.as_secs()
        ))),
    }
}

/// The ALERTS section. Messages quote file names: never raw control characters on a terminal.
fn render_alerts(alerts: &[AlertStatus]) -> String {
    let mut out = format!("ALERTS: {}\n", alerts.len());
    for a in alerts {
        out.push_str(&format!("  {}: {}\n", clean(&a.key), clean(&a.message)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A broker whose store is full refuses the check's write: the alert says so, and goes
    /// once there is room again.
    #[tokio::test]
    async fn a_full_broker_store_is_an_alert_until_there_is_room() -> anyhow::Result<()> {
        const LIMIT: u64 = 256 * 1024;
        let mut nats = kb_testkit::stack()
            .await?
            .nats_with(kb_testkit::NatsConfig {
                max_file_store: Some(LIMIT),
                ..Default::default()
            })
            .await?;
        // Stream limits reserve their bytes in the broker's store: small enough to fit.
        let settings = kb_core::settings::NatsSettings {
            url: nats.url(),
            source_max_bytes: 16 * 1024,
            parsed_max_bytes: 16 * 1024,
            dlq_max_bytes: 16 * 1024,
            ..Default::default()
        };
        let (_client, js) = kb_stream::connect(&settings, "status-test").await?;
        let topo = kb_stream::topology::ensure_with(&js, &settings).await?;
        let timeout = std::time::Duration::from_secs(5);
        assert!(store_alert(&topo, timeout).await.is_none());
        // Fill the store through the unlimited mirror stream.
        let p = kb_stream::Publisher::new(&topo, 1024 * 1024);
        let mut full = false;
        for i in 0..64 {
            let mut d = kb_testkit::document(&format!("s{i}"), 1, 1, 0);
            d.title = "x".repeat(32 * 1024);
            if let Err(e) = p.mirror(kb_stream::Change::Upsert(&d)).await {
                assert_eq!(e.kind, kb_stream::StreamErrorKind::Full, "{e}");
                full = true;
                break;
            }
        }
        assert!(full, "the store never filled");
        let alert = store_alert(&topo, timeout)
            .await
            .ok_or_else(|| anyhow::anyhow!("no alert for a full store"))?;
        assert_eq!(alert.key, "broker.jetstream.full");
        assert!(alert.message.contains("store is full"), "{}", alert.message);
        assert!(
            alert.message.contains("max_store_bytes"),
            "{}",
            alert.message
        );
        nats.set_max_file_store(4 * LIMIT).await?;
        assert!(store_alert(&topo, timeout).await.is_none());
        Ok(())
    }

    #[tokio::test]
    async fn alerts_are_listed_with_control_characters_escaped() -> anyhow::Result<()> {
        let nats = kb_testkit::stack().await?.nats().await?;
        let (_client, js) = kb_stream::connect(&nats.url(), "status-test").await?;
        let topo = kb_stream::topology::ensure(&js).await?;
        assert_eq!(render_alerts(&alerts(&topo).await?), "ALERTS: 0\n");
        kb_stream::alerts::raise(
            &topo.alerts,
            "watcher",
            "inbox",
            "external_links",
            "1 link skipped (evil\x1b[2J.md)",
            serde_json::Value::Null,
        )
        .await?;
        let listed = alerts(&topo).await?;
        assert_eq!(listed[0].key, "watcher.inbox.external_links");
        let text = render_alerts(&listed);
        assert!(text.starts_with("ALERTS: 1\n"), "{text}");
        assert!(
            text.contains("watcher.inbox.external_links: 1 link skipped (evil\\u{1b}[2J.md)"),
            "{text}"
        );
        assert!(!text.contains('\x1b'));
        Ok(())
    }
}
