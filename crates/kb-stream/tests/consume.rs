//! The consume loop against a real NATS: success acks, transient errors are redelivered,
//! permanent errors land on the dead-letter subject with their reason and original payload.

use kb_proto::{DeadLetter, Message};
use kb_stream::consume::{self, ConsumerSpec, Delivery, Handler, HandlerError, Outcome};
use kb_stream::{subjects, Publisher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Fails transiently twice for "flaky", permanently for "broken", succeeds otherwise.
#[derive(Default)]
struct Scripted {
    flaky_attempts: AtomicU64,
    done: AtomicU64,
}

#[async_trait::async_trait]
impl Handler for Scripted {
    async fn handle(&self, d: &Delivery) -> Result<Outcome, HandlerError> {
        match d.source_id.as_str() {
            "broken" => Err(HandlerError::permanent("decode", "cannot read this")),
            "flaky" if self.flaky_attempts.fetch_add(1, Ordering::SeqCst) < 2 => {
                Err(HandlerError {
                    kind: consume::HandlerErrorKind::Transient {
                        retry_after: Some(Duration::from_millis(100)),
                    },
                    reason: "store down".into(),
                    source: None,
                })
            }
            _ => {
                self.done.fetch_add(1, Ordering::SeqCst);
                Ok(Outcome {
                    label: "ok",
                    version: 1,
                })
            }
        }
    }
}

#[tokio::test]
async fn transient_errors_retry_and_permanent_ones_are_dead_lettered() -> anyhow::Result<()> {
    let nats = kb_testkit::stack().await?.nats().await?;
    let (client, js) = kb_stream::connect(&nats.url(), "test").await?;
    let topo = kb_stream::topology::ensure(&js).await?;
    let publisher = Publisher::new(&topo, 64 * 1024);
    for id in ["good", "flaky", "broken"] {
        js.publish(subjects::source(id), format!("payload-{id}").into())
            .await?
            .await?;
    }
    let handler = Arc::new(Scripted::default());
    let spec = ConsumerSpec {
        stage: "parser",
        filter_subject: subjects::SOURCE_ALL.into(),
        ack_wait: Duration::from_secs(5),
        max_deliver: 5,
        backoff: vec![Duration::from_secs(5)],
        concurrency: 2,
        max_ack_pending: 10,
    };
    let shutdown = CancellationToken::new();
    let (handler_for_run, shutdown_for_run) = (handler.clone(), shutdown.clone());
    let stream = topo.source.clone();
    let run = tokio::spawn(async move {
        consume::run(&stream, spec, handler_for_run, publisher, shutdown_for_run).await
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while handler.done.load(Ordering::SeqCst) < 2 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        handler.done.load(Ordering::SeqCst),
        2,
        "good and flaky (after retries) succeed"
    );
    assert_eq!(handler.flaky_attempts.load(Ordering::SeqCst), 3);

    let dl = topo
        .dlq
        .get_last_raw_message_by_subject(&subjects::dead_letter("parser", "broken"))
        .await?;
    let dl = DeadLetter::decode(dl.payload.as_ref())?;
    assert_eq!(dl.error_kind, "decode");
    assert_eq!(dl.reason, "cannot read this");
    assert_eq!(dl.original_payload, b"payload-broken");
    assert_eq!(dl.original_subject, subjects::source("broken"));

    // Everything is acknowledged: the work queue empties (the last ack follows the handler).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while topo.source.get_info().await?.state.messages > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "messages left unacknowledged"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    shutdown.cancel();
    run.await??;
    drop(client);
    Ok(())
}
