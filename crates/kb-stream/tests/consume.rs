//! The consume loop against a real NATS: success acks, transient errors are redelivered,
//! permanent errors land on the dead-letter subject with their reason and original payload.

use kb_proto::{DeadLetter, Message};
use kb_stream::consume::{
    self, ConsumerSpec, Delivery, Done, GiveUp, Handler, HandlerError, LoopOptions,
};
use kb_stream::{subjects, Publisher};
use kb_stream::{DeadLetterKind, OutcomeLabel};
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
    async fn process(&self, d: &Delivery) -> Result<Done, HandlerError> {
        match d.source_id.as_str() {
            "broken" => Err(HandlerError::permanent(
                kb_stream::DeadLetterKind::Decode,
                "cannot read this",
            )),
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
                Ok(Done::new(OutcomeLabel::Other("ok"), 1))
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
        stage: kb_stream::Stage::Parser,
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

// ---- issue 15: panics, process deaths, lost terms and acks, the give-up hook, the tail ----

/// Counts what the loop asked of it: panics for "boom", fails for good for "broken", and its
/// give-up hook fails transiently `hook_failures` times first.
#[derive(Default)]
struct Counting {
    handled: AtomicU64,
    hook_failures: AtomicU64,
    gave_up: std::sync::Mutex<Vec<(String, GiveUp)>>,
}

impl Counting {
    fn gave_up(&self) -> Vec<(String, GiveUp)> {
        self.gave_up
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

#[async_trait::async_trait]
impl Handler for Counting {
    async fn process(&self, d: &Delivery) -> Result<Done, HandlerError> {
        self.handled.fetch_add(1, Ordering::SeqCst);
        match d.source_id.as_str() {
            "boom" => panic!("the handler blew up on {}", d.source_id),
            "broken" => Err(HandlerError::permanent(
                kb_stream::DeadLetterKind::Decode,
                "cannot read this",
            )),
            _ => Ok(Done::new(OutcomeLabel::PARSED, 1)),
        }
    }

    async fn on_give_up(&self, d: &Delivery, g: &GiveUp) -> Result<(), HandlerError> {
        self.gave_up
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((d.source_id.clone(), g.clone()));
        let left = self.hook_failures.load(Ordering::SeqCst);
        if left > 0 {
            self.hook_failures.store(left - 1, Ordering::SeqCst);
            return Err(HandlerError {
                kind: consume::HandlerErrorKind::Transient {
                    retry_after: Some(Duration::from_millis(100)),
                },
                reason: "the mirror is away".into(),
                source: None,
            });
        }
        Ok(())
    }
}

struct Running {
    topo: kb_stream::Topology,
    publisher: Publisher,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), kb_stream::StreamError>>,
    _nats: kb_testkit::NatsServer,
}

impl Running {
    async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.task.await??;
        Ok(())
    }
}

fn spec(ack_wait: Duration, max_deliver: i64) -> ConsumerSpec {
    ConsumerSpec {
        stage: kb_stream::Stage::Parser,
        filter_subject: subjects::SOURCE_ALL.into(),
        ack_wait,
        max_deliver,
        backoff: vec![ack_wait],
        concurrency: 2,
        max_ack_pending: 10,
    }
}

/// A private broker with one raw message per id on its source subject, and the loop running.
async fn start<H: Handler>(
    handler: Arc<H>,
    spec: ConsumerSpec,
    options: LoopOptions,
    ids: &[&str],
) -> anyhow::Result<Running> {
    let nats = kb_testkit::stack().await?.nats().await?;
    let (_client, js) = kb_stream::connect(&nats.url(), "test").await?;
    let topo = kb_stream::topology::ensure(&js).await?;
    let publisher = Publisher::new(&topo, 1024);
    for id in ids {
        js.publish(subjects::source(id), format!("payload-{id}").into())
            .await?
            .await?;
    }
    let shutdown = CancellationToken::new();
    let stream = topo.source.clone();
    let (stop, p) = (shutdown.clone(), publisher.clone());
    let task =
        tokio::spawn(
            async move { consume::run_with(&stream, spec, options, handler, p, stop).await },
        );
    Ok(Running {
        topo,
        publisher,
        shutdown,
        task,
        _nats: nats,
    })
}

/// Every dead letter of `stage` for `id`.
async fn dead_letters(
    topo: &kb_stream::Topology,
    stage: &str,
    id: &str,
) -> anyhow::Result<Vec<DeadLetter>> {
    use async_nats::jetstream::consumer::pull::OrderedConfig;
    use futures::StreamExt;
    let mut consumer = topo
        .dlq
        .create_consumer(OrderedConfig {
            filter_subject: subjects::dead_letter(stage, id),
            ..Default::default()
        })
        .await?;
    let pending = consumer.info().await?.num_pending;
    let mut out = Vec::new();
    if pending == 0 {
        return Ok(out);
    }
    let mut messages = consumer.messages().await?;
    while (out.len() as u64) < pending {
        let Ok(Some(m)) = tokio::time::timeout(Duration::from_secs(5), messages.next()).await
        else {
            break;
        };
        out.push(DeadLetter::decode(m?.payload.as_ref())?);
    }
    Ok(out)
}

/// The dead letters for `id` once there are `n` (or what there is after `timeout`).
async fn wait_dead_letters(
    topo: &kb_stream::Topology,
    id: &str,
    n: usize,
    timeout: Duration,
) -> anyhow::Result<Vec<DeadLetter>> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let dls = dead_letters(topo, "parser", id).await?;
        if dls.len() >= n || std::time::Instant::now() > deadline {
            return Ok(dls);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the work queue is empty: every message acked or termed.
async fn wait_empty(topo: &kb_stream::Topology, timeout: Duration) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + timeout;
    while topo.source.get_info().await?.state.messages > 0 {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "messages left unacknowledged"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

#[tokio::test]
async fn a_panicking_handler_is_dead_lettered_once_and_gives_up() -> anyhow::Result<()> {
    let handler = Arc::new(Counting::default());
    let run = start(
        handler.clone(),
        spec(Duration::from_secs(1), 10),
        LoopOptions::default(),
        &["boom", "fine"],
    )
    .await?;
    let dls = wait_dead_letters(&run.topo, "boom", 1, Duration::from_secs(10)).await?;
    assert_eq!(dls.len(), 1, "one dead letter for the panicking document");
    assert_eq!(dls[0].error_kind, "panicked");
    assert!(
        dls[0].reason.contains("the handler blew up on boom"),
        "{}",
        dls[0].reason
    );
    assert_eq!(dls[0].deliveries, 1, "a panic is not retried");
    wait_empty(&run.topo, Duration::from_secs(10)).await?;
    assert_eq!(
        handler.handled.load(Ordering::SeqCst),
        2,
        "the stage went on"
    );
    let gave_up = handler.gave_up();
    assert_eq!(gave_up.len(), 1, "on_give_up called once");
    assert_eq!(gave_up[0].0, "boom");
    assert_eq!(gave_up[0].1.kind, DeadLetterKind::Panicked);
    run.stop().await
}

#[tokio::test]
async fn a_handler_that_kills_its_process_is_dead_lettered_after_crash_limit() -> anyhow::Result<()>
{
    let _fail = kb_testkit::FailGuard::new();
    // At this site `skip` drops the delivery with no ack and no nak: what a dead process leaves.
    kb_core::failpoint::set("consume.handle", "4*skip@doomed")?;
    let handler = Arc::new(Counting::default());
    // max_deliver 3 < the 5 deliveries it takes: the server must not stop delivering.
    let run = start(
        handler.clone(),
        spec(Duration::from_secs(1), 3),
        LoopOptions { crash_limit: 3 },
        &["doomed"],
    )
    .await?;
    let dls = wait_dead_letters(&run.topo, "doomed", 1, Duration::from_secs(20)).await?;
    assert_eq!(dls.len(), 1, "dead-lettered after the crash limit");
    assert_eq!(dls[0].error_kind, "crashed");
    assert!(dls[0].reason.contains("died 3 times"), "{}", dls[0].reason);
    assert_eq!(
        dls[0].deliveries, 5,
        "the first death is not counted: 1 + 3 deaths, then give up"
    );
    assert_eq!(kb_core::failpoint::hits("consume.handle"), 4);
    assert_eq!(
        handler.handled.load(Ordering::SeqCst),
        0,
        "the handler never ran"
    );
    let gave_up = handler.gave_up();
    assert_eq!(gave_up.len(), 1);
    assert_eq!(gave_up[0].1.kind, DeadLetterKind::Crashed);
    wait_empty(&run.topo, Duration::from_secs(10)).await?;
    // The journal entry went with the message.
    let mut keys = run.topo.attempts.keys().await?;
    assert!(
        futures::StreamExt::next(&mut keys).await.is_none(),
        "journal emptied"
    );
    let mut consumer = run
        .topo
        .source
        .get_consumer::<async_nats::jetstream::consumer::pull::Config>("parser")
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    assert_eq!(consumer.info().await?.config.max_deliver, -1);
    run.stop().await
}

#[tokio::test]
async fn a_dead_letter_whose_term_was_lost_is_not_stored_twice() -> anyhow::Result<()> {
    let _fail = kb_testkit::FailGuard::new();
    kb_core::failpoint::set("consume.before_term", "1*skip@broken")?;
    let handler = Arc::new(Counting::default());
    let run = start(
        handler.clone(),
        spec(Duration::from_secs(1), 10),
        LoopOptions::default(),
        &["broken"],
    )
    .await?;
    // The first term is lost: the message comes back after ack_wait and fails again.
    wait_empty(&run.topo, Duration::from_secs(15)).await?;
    assert_eq!(kb_core::failpoint::hits("consume.before_term"), 1);
    assert_eq!(handler.handled.load(Ordering::SeqCst), 2, "handled twice");
    let dls = dead_letters(&run.topo, "parser", "broken").await?;
    assert_eq!(
        dls.len(),
        1,
        "the second dead letter is a duplicate of the first"
    );
    run.stop().await
}

#[tokio::test]
async fn a_give_up_that_cannot_be_recorded_yet_keeps_the_message() -> anyhow::Result<()> {
    let handler = Arc::new(Counting::default());
    handler.hook_failures.store(1, Ordering::SeqCst);
    let run = start(
        handler.clone(),
        spec(Duration::from_secs(5), 10),
        LoopOptions::default(),
        &["broken"],
    )
    .await?;
    wait_empty(&run.topo, Duration::from_secs(15)).await?;
    assert_eq!(handler.gave_up().len(), 2, "tried again after the nak");
    let dls = dead_letters(&run.topo, "parser", "broken").await?;
    assert_eq!(dls.len(), 1);
    assert_eq!(dls[0].deliveries, 2, "dead-lettered on the second delivery");
    run.stop().await
}

/// Takes a source event in like the parser does, and leaves its body to the loop.
#[derive(Default)]
struct Tail {
    ran: AtomicU64,
}

#[async_trait::async_trait]
impl Handler for Tail {
    async fn process(&self, d: &Delivery) -> Result<Done, HandlerError> {
        self.ran.fetch_add(1, Ordering::SeqCst);
        kb_stream::input::on_fresh::<kb_proto::SourceEvent, _>(
            &d_publisher(),
            d,
            |input| async move {
                Ok(Done::new(OutcomeLabel::PARSED, input.source.version)
                    .with_progress(&input.source)
                    .discarding(Some(input.body)))
            },
        )
        .await
    }
}

static PUBLISHER: std::sync::OnceLock<Publisher> = std::sync::OnceLock::new();

fn d_publisher() -> Publisher {
    PUBLISHER.get().cloned().expect("publisher set")
}

/// Item 10d: the input body is deleted only after the ack is confirmed, so a redelivery after
/// a lost ack still finds it (before, it was deleted before the ack: `body_missing`).
#[tokio::test]
async fn a_lost_ack_keeps_the_input_body_for_the_redelivery() -> anyhow::Result<()> {
    let _fail = kb_testkit::FailGuard::new();
    kb_core::failpoint::set("consume.before_ack", "1*skip@big")?;
    let handler = Arc::new(Tail::default());
    let run = start(
        handler.clone(),
        spec(Duration::from_secs(1), 10),
        LoopOptions::default(),
        &[],
    )
    .await?;
    PUBLISHER.get_or_init(|| run.publisher.clone());
    let src = kb_testkit::source("big", 1);
    run.publisher.source(&src, vec![7u8; 10 * 1024]).await?;
    let last = run
        .topo
        .source
        .get_last_raw_message_by_subject(&subjects::source("big"))
        .await?;
    let body = kb_stream::input::body_of(&last.subject, &last.payload)
        .ok_or_else(|| anyhow::anyhow!("no body"))?;
    assert!(
        kb_stream::blob::stored_name(Some(&body)).is_some(),
        "stored, not inline"
    );
    wait_empty(&run.topo, Duration::from_secs(15)).await?;
    assert_eq!(kb_core::failpoint::hits("consume.before_ack"), 1);
    assert_eq!(
        handler.ran.load(Ordering::SeqCst),
        2,
        "handled again after the lost ack"
    );
    assert!(
        dead_letters(&run.topo, "parser", "big").await?.is_empty(),
        "no body_missing"
    );
    // After the confirmed ack the body goes, and the progress is recorded.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while run.publisher.blobs().fetch(&body).await.is_ok() {
        anyhow::ensure!(std::time::Instant::now() < deadline, "body never deleted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rec = kb_stream::Progress::new(run.topo.progress.clone())
        .get(kb_stream::Stage::Parser, "big")
        .await?
        .ok_or_else(|| anyhow::anyhow!("no progress"))?;
    assert_eq!(rec.status, "parsed");
    assert_eq!(rec.version, 1);
    run.stop().await
}

/// Durables made before the loop decided on its own keep working: the server-side consumer is
/// updated to never give a message up (it would drop the last delivery's crash).
#[tokio::test]
async fn an_existing_durable_is_updated_to_never_give_up() -> anyhow::Result<()> {
    let nats = kb_testkit::stack().await?.nats().await?;
    let (_client, js) = kb_stream::connect(&nats.url(), "test").await?;
    let topo = kb_stream::topology::ensure(&js).await?;
    let old = async_nats::jetstream::consumer::pull::Config {
        max_deliver: 10,
        ..spec(Duration::from_secs(5), 10).config()
    };
    topo.source.create_consumer(old).await?;
    let shutdown = CancellationToken::new();
    let (stream, stop) = (topo.source.clone(), shutdown.clone());
    let publisher = Publisher::new(&topo, 1024);
    let handler = Arc::new(Counting::default());
    let task = tokio::spawn(async move {
        consume::run(
            &stream,
            spec(Duration::from_secs(5), 10),
            handler,
            publisher,
            stop,
        )
        .await
    });
    js.publish(subjects::source("one"), "x".into())
        .await?
        .await?;
    wait_empty(&topo, Duration::from_secs(10)).await?;
    let mut consumer = topo
        .source
        .get_consumer::<async_nats::jetstream::consumer::pull::Config>("parser")
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    assert_eq!(consumer.info().await?.config.max_deliver, -1);
    shutdown.cancel();
    task.await??;
    Ok(())
}
