//! The consume / ack / retry loop every stage runs.
//!
//! - success: the message is acked (confirmed by the server) only after the handler finished,
//!   i.e. after the stage's output was published or its store committed; then the stage tail
//!   runs: progress is recorded and the input bodies the handler no longer needs are deleted
//!   (only once the ack is confirmed: a redelivery must still find them);
//! - transient failure: retried later with a growing delay (`nak` with delay), and given up
//!   as `retries_exhausted` once the stage's `max_deliver` is reached;
//! - permanent failure, a panic (`panicked`), or a stage that died on the message
//!   `crash_limit` times (`crashed`, see [`crate::journal`]): the stage's
//!   [`Handler::on_give_up`] records the failure (e.g. a FAILED mirror event), then the reason
//!   and the original message go to `kb.v1.dlq.<stage>.<source>` (deduplicated per stream
//!   message), then the message is termed, and the stream goes on;
//! - the server never gives a message up (`max_deliver = -1` on every consumer): the loop
//!   decides, so the last delivery's crash is not lost;
//! - long work sends in-progress acks so JetStream does not redeliver it meanwhile;
//! - on shutdown no new message is taken; work in flight gets a grace period, after which its
//!   messages are simply redelivered.

use crate::error::{StreamError, StreamErrorKind};
use crate::journal::{self, Journal, Start};
use crate::progress::{now_ms, Progress};
use crate::publish::{dead_letter_id_for, Publisher};
use crate::subjects;
use crate::wire::{DeadLetterKind, Header, OutcomeLabel, Stage};
use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use async_nats::jetstream::message::AckKind;
use async_nats::jetstream::stream::Stream as JsStream;
use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use kb_core::error::{Class, Error, ErrorKind};
use kb_core::failpoint::Flow;
use kb_core::telemetry::{EventsReceived, EventsSent, ProcessingError};
use kb_proto::{Blob, DeadLetter, SourceRef};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Deaths of a stage on one message before it is given up as `crashed`, unless the stage
/// says otherwise ([`LoopOptions`]).
pub const DEFAULT_CRASH_LIMIT: u32 = 3;

/// How a stage consumes: durable name, retry policy and parallelism. Explicit on every consumer.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// Telemetry label and durable consumer name.
    pub stage: Stage,
    pub filter_subject: String,
    pub ack_wait: Duration,
    /// Deliveries after which a transient failure is given up (`retries_exhausted`); -1 (or
    /// 0) = never (writers: a store outage must not lose anything). Enforced by the loop: the
    /// server's consumer never gives up.
    pub max_deliver: i64,
    /// Redelivery delays after a missed ack (crashed worker).
    pub backoff: Vec<Duration>,
    /// Messages handled at once by this process.
    pub concurrency: usize,
    /// Unacked messages the server hands out across all processes of this consumer.
    pub max_ack_pending: i64,
}

impl ConsumerSpec {
    /// The server-side consumer. `max_deliver` is always -1: a server that stops delivering
    /// drops the message silently, and the crash on its last delivery with it.
    pub fn config(&self) -> pull::Config {
        pull::Config {
            durable_name: Some(self.stage.as_str().to_string()),
            description: Some(format!("kb-mirror {}", self.stage)),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::Explicit,
            ack_wait: self.ack_wait,
            max_deliver: -1,
            backoff: self.backoff.clone(),
            filter_subject: self.filter_subject.clone(),
            max_ack_pending: self.max_ack_pending,
            ..Default::default()
        }
    }

    /// Delay before the next attempt after a transient failure (exponential, capped).
    pub fn retry_delay(&self, deliveries: u64) -> Duration {
        let exp = deliveries.saturating_sub(1).min(6) as u32;
        Duration::from_secs(1u64 << exp).min(Duration::from_secs(60))
    }

    fn out_of_tries(&self, deliveries: u64) -> bool {
        self.max_deliver > 0 && deliveries >= self.max_deliver as u64
    }
}

/// What the loop needs besides the consumer.
#[derive(Debug, Clone)]
pub struct LoopOptions {
    /// Deaths of the stage on one message before it is given up as `crashed`
    /// (`parser.crash_limit`, `embedder.crash_limit`, `writer.crash_limit`).
    pub crash_limit: u32,
}

impl Default for LoopOptions {
    fn default() -> Self {
        Self {
            crash_limit: DEFAULT_CRASH_LIMIT,
        }
    }
}

/// How long one pull request waits for messages before the loop asks again (with the slots
/// that are free by then).
const PULL_EXPIRES: Duration = Duration::from_secs(2);

/// How long a message whose dead letter or give-up could not be stored waits before it is
/// tried again (unless the error says longer).
const GIVE_UP_RETRY: Duration = Duration::from_secs(5);

/// One message handed to a handler.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub subject: String,
    pub payload: Bytes,
    pub source_id: String,
    /// 1 on first delivery.
    pub deliveries: u64,
    /// Its headers as a dead letter keeps them ([`crate::wire::header_lines`]).
    pub headers: Vec<String>,
    /// The stream it came from and its sequence there (the message's identity).
    pub stream: String,
    pub stream_sequence: u64,
}

impl Delivery {
    /// The source the message names, decoded from its payload by subject (see
    /// [`crate::input::source_of`]); `None` when it does not decode.
    pub fn source(&self) -> Option<SourceRef> {
        crate::input::source_of(&self.subject, &self.payload)
    }
}

/// How a handled message ended, and the stage tail the loop runs for it: ack (confirmed by
/// the server), then the progress record, then the deletion of the bodies in `discard` (only
/// if the ack was confirmed), then telemetry.
#[derive(Debug, Clone, PartialEq)]
pub struct Done {
    pub label: OutcomeLabel,
    pub version: u64,
    /// The source whose progress to record (status: the label's), with the error if any.
    pub progress: Option<(SourceRef, Option<String>)>,
    /// Stored bodies nothing needs once the message is acked (typically the input's).
    pub discard: Vec<Blob>,
}

impl Done {
    pub fn new(label: impl Into<OutcomeLabel>, version: u64) -> Self {
        Self {
            label: label.into(),
            version,
            progress: None,
            discard: Vec::new(),
        }
    }

    /// Records `source`'s progress with this outcome's status after the ack.
    pub fn with_progress(mut self, source: &SourceRef) -> Self {
        self.progress = Some((source.clone(), None));
        self
    }

    /// Deletes `body` once the ack is confirmed (nothing happens for an inline body).
    pub fn discarding(mut self, body: Option<Blob>) -> Self {
        self.discard.extend(body);
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandlerErrorKind {
    /// Try again later, after `retry_after` if given (e.g. a store is down).
    Transient { retry_after: Option<Duration> },
    /// Never retry; dead-letter with this kind.
    Permanent { error_kind: DeadLetterKind },
}

#[derive(Debug, Clone)]
pub struct HandlerError {
    pub kind: HandlerErrorKind,
    pub reason: String,
    pub source: Option<Box<SourceRef>>,
}

impl HandlerError {
    pub fn transient(reason: impl Into<String>) -> Self {
        Self {
            kind: HandlerErrorKind::Transient { retry_after: None },
            reason: reason.into(),
            source: None,
        }
    }
    pub fn permanent(error_kind: DeadLetterKind, reason: impl Into<String>) -> Self {
        Self {
            kind: HandlerErrorKind::Permanent { error_kind },
            reason: reason.into(),
            source: None,
        }
    }
    pub fn with_source(mut self, source: Option<&SourceRef>) -> Self {
        self.source = source.cloned().map(Box::new);
        self
    }
    pub fn is_transient(&self) -> bool {
        matches!(self.kind, HandlerErrorKind::Transient { .. })
    }
    /// The `error_kind` label of its telemetry: "transient", or the dead-letter kind.
    fn error_kind(&self) -> &str {
        match &self.kind {
            HandlerErrorKind::Transient { .. } => "transient",
            HandlerErrorKind::Permanent { error_kind } => error_kind.as_str(),
        }
    }
    /// The dead-letter kind of a permanent error (`retries_exhausted` for a transient one).
    pub fn dead_letter_kind(&self) -> DeadLetterKind {
        match &self.kind {
            HandlerErrorKind::Transient { .. } => DeadLetterKind::RetriesExhausted,
            HandlerErrorKind::Permanent { error_kind } => error_kind.clone(),
        }
    }
}

impl HandlerError {
    /// The one conversion of a typed error into the loop's, by its [`Class`]: a transient
    /// error is retried (after the delay it asks for), one that needs an operator is retried
    /// too, so a fix lets the message through, and a permanent one is dead-lettered as
    /// `dead_letter`.
    pub fn from_error<K: ErrorKind>(e: &Error<K>, dead_letter: DeadLetterKind) -> Self {
        match e.class() {
            Class::Transient => HandlerError {
                kind: HandlerErrorKind::Transient {
                    retry_after: e.retry_after(),
                },
                reason: e.to_string(),
                source: None,
            },
            Class::Configuration => {
                HandlerError::transient(format!("{} misconfigured: {e}", K::SUBSYSTEM))
            }
            Class::Permanent => HandlerError::permanent(dead_letter, e.to_string()),
        }
    }
}

impl From<StreamError> for HandlerError {
    fn from(e: StreamError) -> Self {
        let dead_letter = match e.kind {
            StreamErrorKind::NotFound => DeadLetterKind::BodyMissing,
            _ => DeadLetterKind::Decode,
        };
        HandlerError::from_error(&e, dead_letter)
    }
}

/// A message the loop gives up on, as the stage's [`Handler::on_give_up`] sees it.
#[derive(Debug, Clone)]
pub struct GiveUp {
    pub kind: DeadLetterKind,
    pub reason: String,
    /// The version given up: from the handler's error, else decoded from the message; `None`
    /// when the message does not decode.
    pub source: Option<SourceRef>,
    pub deliveries: u64,
}

#[async_trait::async_trait]
pub trait Handler: Send + Sync + 'static {
    /// Handles one message and says how it ended; the loop then runs the stage tail ([`Done`]:
    /// ack, progress, bodies to delete, telemetry). Handlers decode, work and return.
    async fn process(&self, delivery: &Delivery) -> Result<Done, HandlerError>;

    /// Called once before the loop dead-letters a message (a permanent error, retries
    /// exhausted, a panic, a stage that died on it `crash_limit` times): the stage records the
    /// failure where it belongs (a FAILED mirror event, its store, progress `failed`) so
    /// `kb ingest` ends with "failed", not "timeout". A transient error keeps the message
    /// (nak'ed, everything is tried again later); any other is logged and the dead letter is
    /// written anyway. The default records nothing: the loop only dead-letters.
    async fn on_give_up(&self, delivery: &Delivery, give_up: &GiveUp) -> Result<(), HandlerError> {
        let _ = (delivery, give_up);
        Ok(())
    }
}

/// Runs the loop until `shutdown`, with the default [`LoopOptions`].
pub async fn run<H: Handler>(
    stream: &JsStream,
    spec: ConsumerSpec,
    handler: Arc<H>,
    publisher: Publisher,
    shutdown: CancellationToken,
) -> Result<(), StreamError> {
    run_with(
        stream,
        spec,
        LoopOptions::default(),
        handler,
        publisher,
        shutdown,
    )
    .await
}

/// What every message's task shares.
struct Shared<H> {
    handler: Arc<H>,
    publisher: Publisher,
    spec: ConsumerSpec,
    options: LoopOptions,
    progress: Progress,
    journal: Journal,
}

/// Runs the loop until `shutdown`; reconnects the pull subscription when it breaks.
pub async fn run_with<H: Handler>(
    stream: &JsStream,
    spec: ConsumerSpec,
    options: LoopOptions,
    handler: Arc<H>,
    publisher: Publisher,
    shutdown: CancellationToken,
) -> Result<(), StreamError> {
    let consumer: async_nats::jetstream::consumer::Consumer<pull::Config> =
        stream.create_consumer(spec.config()).await.map_err(|e| {
            StreamError::with(
                StreamErrorKind::Config,
                format!("cannot create consumer {}", spec.stage),
                e,
            )
        })?;
    let topo = publisher.topology().clone();
    let concurrency = spec.concurrency.max(1);
    let stage = spec.stage.as_str();
    let shared = Arc::new(Shared {
        handler,
        publisher,
        spec,
        options,
        progress: Progress::new(topo.progress.clone()),
        journal: Journal::new(topo.attempts.clone()),
    });
    let slots = Arc::new(Semaphore::new(concurrency));
    tracing::info!(stage, filter = %shared.spec.filter_subject, "consuming");
    'outer: while !shutdown.is_cancelled() {
        // Pull only as many messages as there are free slots. A message fetched ahead would
        // wait here without in-progress acks, outlive ack_wait and be redelivered to another
        // worker, which would then do (and pay for) the same work a second time.
        let first = tokio::select! {
            _ = shutdown.cancelled() => break 'outer,
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break 'outer },
        };
        let mut permits = vec![first];
        while let Ok(p) = slots.clone().try_acquire_owned() {
            permits.push(p);
        }
        let mut batch = match consumer
            .batch()
            .max_messages(permits.len())
            .expires(PULL_EXPIRES)
            .messages()
            .await
        {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(stage, error = %e, "cannot pull, retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => break 'outer,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue 'outer,
                }
            }
        };
        loop {
            let next = tokio::select! {
                _ = shutdown.cancelled() => break 'outer,
                n = batch.next() => n,
            };
            match next {
                Some(Ok(msg)) => {
                    let Some(permit) = permits.pop() else {
                        // More than asked for cannot happen; it is redelivered after ack_wait.
                        break;
                    };
                    let shared = shared.clone();
                    tokio::spawn(async move {
                        deliver(msg, &shared).await;
                        drop(permit);
                    });
                    if permits.is_empty() {
                        break;
                    }
                }
                Some(Err(e)) => {
                    tracing::warn!(stage, error = %e, "pull failed, retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    break;
                }
                None => break,
            }
        }
    }
    // Grace period for work in flight; what does not finish is redelivered after ack_wait.
    let _ = tokio::time::timeout(
        Duration::from_secs(20),
        slots.acquire_many(concurrency as u32),
    )
    .await;
    tracing::info!(stage, "consumer stopped");
    Ok(())
}

/// The text of a panic's payload.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}

/// One message: its crash journal entry (redeliveries only), the handler (panics contained,
/// in-progress acks meanwhile), then the tail, a retry, or the give-up.
async fn deliver<H: Handler>(msg: async_nats::jetstream::Message, shared: &Shared<H>) {
    let spec = &shared.spec;
    let started = Instant::now();
    let (stream, stream_sequence, deliveries) = match msg.info() {
        Ok(i) => (
            i.stream.to_string(),
            i.stream_sequence,
            i.delivered.max(1) as u64,
        ),
        Err(_) => (String::new(), 0, 1),
    };
    let subject = msg.subject.to_string();
    let headers = msg
        .headers
        .as_ref()
        .map(crate::wire::header_lines)
        .unwrap_or_default();
    let delivery = Delivery {
        source_id: subjects::source_id_of(&subject).to_string(),
        subject,
        payload: msg.payload.clone(),
        deliveries,
        headers,
        stream,
        stream_sequence,
    };
    let version_hint = msg
        .headers
        .as_ref()
        .and_then(|h| h.get(Header::Version.as_str()))
        .and_then(|v| v.as_str().parse::<u64>().ok())
        .unwrap_or(0);
    EventsReceived {
        stage: spec.stage.as_str(),
        source_id: &delivery.source_id,
        version: version_hint,
    }
    .emit();

    // A redelivery may mean the stage died on this message: count it, and stop at the limit.
    let journal_key = journal::key(spec.stage.as_str(), &delivery.stream, stream_sequence);
    let mut journaled = None;
    if deliveries >= 2 && stream_sequence > 0 {
        match shared
            .journal
            .start(&journal_key, shared.options.crash_limit)
            .await
        {
            Start::Run { crashes } => journaled = Some(crashes),
            Start::Unknown => {}
            Start::GiveUp { crashes } => {
                let reason = format!(
                    "the {} stage died {crashes} times on this message (crash_limit {})",
                    spec.stage, shared.options.crash_limit
                );
                let err = HandlerError::permanent(DeadLetterKind::Crashed, reason);
                let finish = give_up(&msg, &delivery, shared, err).await;
                finish_journal(shared, &journal_key, Some(crashes), finish).await;
                return;
            }
        }
    }

    // The handler, with panics contained; `None` is a delivery dropped on purpose (a
    // failpoint standing for a process that died here).
    let work = async {
        match kb_core::failpoint!("consume.handle", &delivery.source_id) {
            Flow::Skip => return None,
            Flow::Err(m) => return Some(Err(HandlerError::transient(m))),
            Flow::Continue => {}
        }
        Some(shared.handler.process(&delivery).await)
    };
    let work = AssertUnwindSafe(work).catch_unwind();
    tokio::pin!(work);
    // Keep the message alive while the handler works.
    let every = (spec.ack_wait / 3).max(Duration::from_millis(500));
    let result = loop {
        tokio::select! {
            r = &mut work => break r,
            _ = tokio::time::sleep(every) => {
                if let Err(e) = msg.ack_with(AckKind::Progress).await {
                    tracing::debug!(error = %e, "in-progress ack failed");
                }
            }
        }
    };
    let result = match result {
        Ok(Some(r)) => r,
        Ok(None) => {
            tracing::warn!(stage = %spec.stage, source_id = %delivery.source_id, "delivery dropped (failpoint consume.handle)");
            return;
        }
        Err(panic) => {
            let text = panic_text(&*panic);
            tracing::error!(stage = %spec.stage, source_id = %delivery.source_id, panic = %text, "the handler panicked");
            Err(HandlerError::permanent(
                DeadLetterKind::Panicked,
                format!("the handler panicked: {text}"),
            ))
        }
    };

    let finish = match result {
        Ok(done) => {
            tail(&msg, &delivery, shared, done, started).await;
            Finish::Gone
        }
        Err(err) if err.is_transient() && !spec.out_of_tries(deliveries) => {
            ProcessingError {
                stage: spec.stage.as_str(),
                source_id: &delivery.source_id,
                error_kind: err.error_kind(),
                transient: true,
                reason: &err.reason,
            }
            .emit();
            let delay = match &err.kind {
                HandlerErrorKind::Transient {
                    retry_after: Some(d),
                } => *d,
                _ => spec.retry_delay(deliveries),
            };
            if let Err(e) = msg.ack_with(AckKind::Nak(Some(delay))).await {
                tracing::warn!(stage = %spec.stage, error = %e, "nak failed; redelivery after ack_wait");
            }
            Finish::Back
        }
        Err(err) => {
            let err = if err.is_transient() {
                HandlerError {
                    kind: HandlerErrorKind::Permanent {
                        error_kind: DeadLetterKind::RetriesExhausted,
                    },
                    reason: format!("gave up after {deliveries} deliveries: {}", err.reason),
                    source: err.source,
                }
            } else {
                err
            };
            give_up(&msg, &delivery, shared, err).await
        }
    };
    finish_journal(shared, &journal_key, journaled, finish).await;
}

/// How a delivery left the loop, for the crash journal.
enum Finish {
    /// Acked or termed: it never comes back.
    Gone,
    /// Nak'ed (or its term was lost): it comes back, and that is not a crash.
    Back,
}

async fn finish_journal<H>(shared: &Shared<H>, key: &str, crashes: Option<u32>, finish: Finish) {
    let Some(crashes) = crashes else {
        return;
    };
    match finish {
        Finish::Gone => shared.journal.finished(key).await,
        Finish::Back => shared.journal.finished_for_now(key, crashes).await,
    }
}

/// The stage tail: ack (confirmed), progress, then the bodies nothing needs (only after a
/// confirmed ack: a redelivery must still find them), then telemetry.
async fn tail<H: Handler>(
    msg: &async_nats::jetstream::Message,
    delivery: &Delivery,
    shared: &Shared<H>,
    done: Done,
    started: Instant,
) {
    let spec = &shared.spec;
    let acked = match kb_core::failpoint!("consume.before_ack", &delivery.source_id) {
        // The ack is lost on its way: the message comes back after ack_wait.
        Flow::Skip => false,
        _ => match msg.double_ack().await {
            Ok(()) => true,
            Err(e) => {
                // The work is done and idempotent; a redelivery will find it done.
                tracing::warn!(stage = %spec.stage, source_id = %delivery.source_id, error = %e, "ack not confirmed");
                false
            }
        },
    };
    if let (Some(status), Some((source, error))) = (done.label.progress_status(), &done.progress) {
        shared
            .progress
            .finished(spec.stage, source, status, error.clone())
            .await;
    }
    if acked {
        for body in &done.discard {
            shared.publisher.blobs().discard(Some(body)).await;
        }
    }
    EventsSent {
        stage: spec.stage.as_str(),
        source_id: &delivery.source_id,
        version: done.version,
        outcome: done.label.as_str(),
        elapsed: started.elapsed(),
    }
    .emit();
}

/// Gives a message up: the stage's `on_give_up`, then the dead letter (one per stream
/// message), then the term. Anything that cannot be stored keeps the message (nak).
async fn give_up<H: Handler>(
    msg: &async_nats::jetstream::Message,
    delivery: &Delivery,
    shared: &Shared<H>,
    err: HandlerError,
) -> Finish {
    let spec = &shared.spec;
    let kind = err.dead_letter_kind();
    ProcessingError {
        stage: spec.stage.as_str(),
        source_id: &delivery.source_id,
        error_kind: kind.as_str(),
        transient: false,
        reason: &err.reason,
    }
    .emit();
    let source = err.source.as_deref().cloned().or_else(|| delivery.source());
    let g = GiveUp {
        kind,
        reason: err.reason,
        source,
        deliveries: delivery.deliveries,
    };
    let hook = AssertUnwindSafe(shared.handler.on_give_up(delivery, &g))
        .catch_unwind()
        .await;
    match hook {
        Ok(Ok(())) => {}
        Ok(Err(e)) if e.is_transient() => {
            // Nothing may be lost: the failure record is not stored yet, so keep the message.
            tracing::warn!(stage = %spec.stage, source_id = %delivery.source_id, error = %e.reason, "cannot record the give-up yet; will retry");
            let delay = match e.kind {
                HandlerErrorKind::Transient {
                    retry_after: Some(d),
                } => d,
                _ => GIVE_UP_RETRY,
            };
            let _ = msg.ack_with(AckKind::Nak(Some(delay))).await;
            return Finish::Back;
        }
        Ok(Err(e)) => {
            tracing::error!(stage = %spec.stage, source_id = %delivery.source_id, error = %e.reason, "the give-up hook failed; dead-lettering anyway");
        }
        Err(panic) => {
            tracing::error!(stage = %spec.stage, source_id = %delivery.source_id, panic = %panic_text(&*panic), "the give-up hook panicked; dead-lettering anyway");
        }
    }
    let dl = DeadLetter {
        stage: spec.stage.as_str().to_string(),
        error_kind: g.kind.as_str().to_string(),
        reason: g.reason,
        original_subject: delivery.subject.clone(),
        original_payload: delivery.payload.to_vec(),
        deliveries: delivery.deliveries,
        failed_unix_ms: now_ms(),
        source: g.source,
        original_headers: delivery.headers.clone(),
    };
    let stored = if delivery.stream_sequence > 0 {
        let id = dead_letter_id_for(
            spec.stage.as_str(),
            &delivery.stream,
            delivery.stream_sequence,
        );
        shared.publisher.dead_letter_with_id(&dl, &id).await
    } else {
        // No stream position to key it by (cannot happen for a JetStream message).
        shared.publisher.dead_letter(&dl).await
    };
    match stored {
        Ok(()) => {
            if let Flow::Skip = kb_core::failpoint!("consume.before_term", &delivery.source_id) {
                // The term is lost on its way: the message comes back after ack_wait.
                return Finish::Back;
            }
            if let Err(e) = msg.ack_with(AckKind::Term).await {
                tracing::warn!(stage = %spec.stage, error = %e, "term failed");
            }
            Finish::Gone
        }
        Err(e) => {
            // Nothing may be lost: keep the message until the dead letter is stored.
            tracing::error!(stage = %spec.stage, error = %e, "cannot dead-letter; will retry");
            let delay = e.retry_after().unwrap_or(GIVE_UP_RETRY);
            let _ = msg.ack_with(AckKind::Nak(Some(delay))).await;
            Finish::Back
        }
    }
}
