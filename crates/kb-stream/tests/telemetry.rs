//! Every consuming stage emits the three stage events with its `stage` label
//! (docs/telemetry.md): `kb_events_received_total`, `kb_events_sent_total` and
//! `kb_processing_errors_total`, counted here by an in-process recorder while the consume loop
//! runs against a real NATS.

use kb_stream::consume::{self, ConsumerSpec, Delivery, Done, Handler, HandlerError, LoopOptions};
use kb_stream::{subjects, DeadLetterKind, OutcomeLabel, Publisher, Stage};
use metrics::{Counter, CounterFn, Gauge, Histogram, Key, KeyName, Metadata, Recorder};
use metrics::{SharedString, Unit};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// (metric name, sorted labels) → count.
type Counts = Arc<Mutex<BTreeMap<(String, Vec<(String, String)>), u64>>>;

struct Counting {
    counts: Counts,
}

struct One {
    counts: Counts,
    key: (String, Vec<(String, String)>),
}

impl CounterFn for One {
    fn increment(&self, value: u64) {
        let mut c = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        *c.entry(self.key.clone()).or_default() += value;
    }
    fn absolute(&self, value: u64) {
        let mut c = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        c.insert(self.key.clone(), value);
    }
}

impl Recorder for Counting {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let mut labels: Vec<(String, String)> = key
            .labels()
            .map(|l| (l.key().to_string(), l.value().to_string()))
            .collect();
        labels.sort();
        Counter::from_arc(Arc::new(One {
            counts: self.counts.clone(),
            key: (key.name().to_string(), labels),
        }))
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

/// How often `name` was counted with every label of `with`.
fn count(counts: &Counts, name: &str, with: &[(&str, &str)]) -> u64 {
    counts
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .filter(|((n, labels), _)| {
            n == name
                && with
                    .iter()
                    .all(|(k, v)| labels.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|(_, n)| *n)
        .sum()
}

/// Succeeds on "good", gives "bad" up.
struct Script;

#[async_trait::async_trait]
impl Handler for Script {
    async fn process(&self, d: &Delivery) -> Result<Done, HandlerError> {
        match d.source_id.as_str() {
            "bad" => Err(HandlerError::permanent(
                DeadLetterKind::Decode,
                "cannot read this",
            )),
            _ => Ok(Done::new(OutcomeLabel::PARSED, 1)),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_consuming_stage_emits_received_sent_and_errors_with_its_label() -> anyhow::Result<()>
{
    let counts = Counts::default();
    metrics::set_global_recorder(Counting {
        counts: counts.clone(),
    })
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    for stage in [
        Stage::Parser,
        Stage::Embedder,
        Stage::PgWriter,
        Stage::GraphWriter,
    ] {
        let nats = kb_testkit::stack().await?.nats().await?;
        let (_client, js) = kb_stream::connect(&nats.url(), "telemetry-test").await?;
        let topo = kb_stream::topology::ensure(&js).await?;
        let publisher = Publisher::new(&topo, 1024);
        for id in ["good", "bad"] {
            js.publish(subjects::source(id), format!("payload-{id}").into())
                .await?
                .await?;
        }
        let spec = ConsumerSpec {
            stage,
            filter_subject: subjects::SOURCE_ALL.into(),
            ack_wait: Duration::from_secs(5),
            max_deliver: 3,
            backoff: vec![Duration::from_secs(5)],
            concurrency: 2,
            max_ack_pending: 10,
        };
        let shutdown = CancellationToken::new();
        let (stream, stop) = (topo.source.clone(), shutdown.clone());
        let task = tokio::spawn(async move {
            consume::run_with(
                &stream,
                spec,
                LoopOptions::default(),
                Arc::new(Script),
                publisher,
                stop,
            )
            .await
        });
        let label = [("stage", stage.as_str())];
        let deadline = Instant::now() + Duration::from_secs(20);
        let seen = || {
            (
                count(&counts, "kb_events_received_total", &label),
                count(&counts, "kb_events_sent_total", &label),
                count(
                    &counts,
                    "kb_processing_errors_total",
                    &[
                        ("stage", stage.as_str()),
                        ("error_kind", "decode"),
                        ("transient", "false"),
                    ],
                ),
            )
        };
        while seen() != (2, 1, 1) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        shutdown.cancel();
        task.await??;
        assert_eq!(seen(), (2, 1, 1), "{stage}: received, sent, errors");
        assert_eq!(
            count(
                &counts,
                "kb_events_sent_total",
                &[("stage", stage.as_str()), ("outcome", "parsed")]
            ),
            1,
            "{stage}: the outcome label"
        );
    }
    Ok(())
}
