//! The consume / ack / retry loop every stage runs.
//!
//! - success: the message is acked (confirmed by the server) only after the handler finished,
//!   i.e. after the stage's output was published or its store committed;
//! - transient failure: retried later with a growing delay (`nak` with delay), and given up to
//!   the dead-letter stream only if the consumer has a finite `max_deliver`;
//! - permanent failure: the reason and the original message go to `kb.v1.dlq.<stage>.<source>`,
//!   then the message is acked, and the stream goes on;
//! - long work sends in-progress acks so JetStream does not redeliver it meanwhile;
//! - on shutdown no new message is taken; work in flight gets a grace period, after which its
//!   messages are simply redelivered.

use crate::error::StreamError;
use crate::progress::now_ms;
use crate::publish::Publisher;
use crate::subjects;
use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use async_nats::jetstream::message::AckKind;
use async_nats::jetstream::stream::Stream as JsStream;
use bytes::Bytes;
use futures::StreamExt;
use kb_core::telemetry::{EventsReceived, EventsSent, ProcessingError};
use kb_proto::{DeadLetter, SourceRef};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// How a stage consumes: durable name, retry policy and parallelism. Explicit on every consumer.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// Telemetry label and durable consumer name, e.g. "parser".
    pub stage: &'static str,
    pub filter_subject: String,
    pub ack_wait: Duration,
    /// -1 = never give up (writers: a store outage must not lose anything).
    pub max_deliver: i64,
    /// Redelivery delays after a missed ack (crashed worker).
    pub backoff: Vec<Duration>,
    /// Messages handled at once by this process.
    pub concurrency: usize,
    /// Unacked messages the server hands out across all processes of this consumer.
    pub max_ack_pending: i64,
}

impl ConsumerSpec {
    fn config(&self) -> pull::Config {
        pull::Config {
            durable_name: Some(self.stage.to_string()),
            description: Some(format!("kb-mirror {}", self.stage)),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::Explicit,
            ack_wait: self.ack_wait,
            max_deliver: self.max_deliver,
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
}

/// How long one pull request waits for messages before the loop asks again (with the slots
/// that are free by then).
const PULL_EXPIRES: Duration = Duration::from_secs(2);

/// One message handed to a handler.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub subject: String,
    pub payload: Bytes,
    pub source_id: String,
    /// 1 on first delivery.
    pub deliveries: u64,
    pub headers: Vec<String>,
}

/// How a handled message ended; the label goes to telemetry and progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub label: &'static str,
    pub version: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandlerErrorKind {
    /// Try again later, after `retry_after` if given (e.g. a store is down).
    Transient { retry_after: Option<Duration> },
    /// Never retry; dead-letter with this machine-readable kind (e.g. "decode").
    Permanent { error_kind: String },
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
    pub fn permanent(error_kind: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            kind: HandlerErrorKind::Permanent {
                error_kind: error_kind.into(),
            },
            reason: reason.into(),
            source: None,
        }
    }
    pub fn with_source(mut self, source: Option<&SourceRef>) -> Self {
        self.source = source.cloned().map(Box::new);
        self
    }
    fn error_kind(&self) -> &str {
        match &self.kind {
            HandlerErrorKind::Transient { .. } => "transient",
            HandlerErrorKind::Permanent { error_kind } => error_kind,
        }
    }
}

impl From<StreamError> for HandlerError {
    fn from(e: StreamError) -> Self {
        use crate::error::StreamErrorKind::*;
        match e.kind {
            Transient => HandlerError::transient(e.to_string()),
            Decode => HandlerError::permanent("decode", e.to_string()),
            NotFound => HandlerError::permanent("body_missing", e.to_string()),
            Config => HandlerError::transient(e.to_string()),
        }
    }
}

#[async_trait::async_trait]
pub trait Handler: Send + Sync + 'static {
    async fn handle(&self, delivery: &Delivery) -> Result<Outcome, HandlerError>;
}

/// Runs the loop until `shutdown`; reconnects the pull subscription when it breaks.
pub async fn run<H: Handler>(
    stream: &JsStream,
    spec: ConsumerSpec,
    handler: Arc<H>,
    publisher: Publisher,
    shutdown: CancellationToken,
) -> Result<(), StreamError> {
    let consumer: async_nats::jetstream::consumer::Consumer<pull::Config> =
        stream.create_consumer(spec.config()).await.map_err(|e| {
            StreamError::with(
                crate::StreamErrorKind::Config,
                format!("cannot create consumer {}", spec.stage),
                e,
            )
        })?;
    let spec = Arc::new(spec);
    let slots = Arc::new(Semaphore::new(spec.concurrency.max(1)));
    tracing::info!(stage = spec.stage, filter = %spec.filter_subject, "consuming");
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
                tracing::warn!(stage = spec.stage, error = %e, "cannot pull, retrying");
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
                    let (handler, publisher, spec) =
                        (handler.clone(), publisher.clone(), spec.clone());
                    tokio::spawn(async move {
                        process(msg, &*handler, &publisher, &spec).await;
                        drop(permit);
                    });
                    if permits.is_empty() {
                        break;
                    }
                }
                Some(Err(e)) => {
                    tracing::warn!(stage = spec.stage, error = %e, "pull failed, retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    break;
                }
                None => break,
            }
        }
    }
    // Grace period for work in flight; what does not finish is redelivered after ack_wait.
    let all = spec.concurrency.max(1) as u32;
    let _ = tokio::time::timeout(Duration::from_secs(20), slots.acquire_many(all)).await;
    tracing::info!(stage = spec.stage, "consumer stopped");
    Ok(())
}

async fn process<H: Handler>(
    msg: async_nats::jetstream::Message,
    handler: &H,
    publisher: &Publisher,
    spec: &ConsumerSpec,
) {
    let started = Instant::now();
    let deliveries = msg.info().map(|i| i.delivered.max(1) as u64).unwrap_or(1);
    let subject = msg.subject.to_string();
    let headers = msg
        .headers
        .as_ref()
        .map(|h| {
            h.iter()
                .flat_map(|(k, vs)| vs.iter().map(move |v| format!("{k}: {v}")))
                .collect()
        })
        .unwrap_or_default();
    let delivery = Delivery {
        source_id: subjects::source_id_of(&subject).to_string(),
        subject,
        payload: msg.payload.clone(),
        deliveries,
        headers,
    };
    let version_hint = msg
        .headers
        .as_ref()
        .and_then(|h| h.get(subjects::HEADER_VERSION))
        .and_then(|v| v.as_str().parse::<u64>().ok())
        .unwrap_or(0);
    EventsReceived {
        stage: spec.stage,
        source_id: &delivery.source_id,
        version: version_hint,
    }
    .emit();

    // Keep the message alive while the handler works.
    let every = (spec.ack_wait / 3).max(Duration::from_millis(500));
    let work = handler.handle(&delivery);
    tokio::pin!(work);
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

    match result {
        Ok(outcome) => {
            if let Err(e) = msg.double_ack().await {
                // The work is done and idempotent; a redelivery will find it done.
                tracing::warn!(stage = spec.stage, source_id = %delivery.source_id, error = %e, "ack not confirmed");
            }
            EventsSent {
                stage: spec.stage,
                source_id: &delivery.source_id,
                version: outcome.version,
                outcome: outcome.label,
                elapsed: started.elapsed(),
            }
            .emit();
        }
        Err(err) => {
            let out_of_tries = spec.max_deliver > 0 && deliveries >= spec.max_deliver as u64;
            match &err.kind {
                HandlerErrorKind::Transient { retry_after } if !out_of_tries => {
                    ProcessingError {
                        stage: spec.stage,
                        source_id: &delivery.source_id,
                        error_kind: err.error_kind(),
                        transient: true,
                        reason: &err.reason,
                    }
                    .emit();
                    let delay = retry_after.unwrap_or_else(|| spec.retry_delay(deliveries));
                    if let Err(e) = msg.ack_with(AckKind::Nak(Some(delay))).await {
                        tracing::warn!(stage = spec.stage, error = %e, "nak failed; redelivery after ack_wait");
                    }
                }
                _ => {
                    let (error_kind, reason) =
                        if out_of_tries && matches!(err.kind, HandlerErrorKind::Transient { .. }) {
                            (
                                "retries_exhausted".to_string(),
                                format!("gave up after {deliveries} deliveries: {}", err.reason),
                            )
                        } else {
                            (err.error_kind().to_string(), err.reason.clone())
                        };
                    ProcessingError {
                        stage: spec.stage,
                        source_id: &delivery.source_id,
                        error_kind: &error_kind,
                        transient: false,
                        reason: &reason,
                    }
                    .emit();
                    let dl = DeadLetter {
                        stage: spec.stage.to_string(),
                        error_kind,
                        reason,
                        original_subject: delivery.subject.clone(),
                        original_payload: delivery.payload.to_vec(),
                        deliveries,
                        failed_unix_ms: now_ms(),
                        source: err.source.as_deref().cloned(),
                        original_headers: delivery.headers.clone(),
                    };
                    match publisher.dead_letter(&dl).await {
                        Ok(()) => {
                            if let Err(e) = msg.ack_with(AckKind::Term).await {
                                tracing::warn!(stage = spec.stage, error = %e, "term failed");
                            }
                        }
                        Err(e) => {
                            // Nothing may be lost: keep the message until the dead letter is stored.
                            tracing::error!(stage = spec.stage, error = %e, "cannot dead-letter; will retry");
                            let _ = msg
                                .ack_with(AckKind::Nak(Some(Duration::from_secs(5))))
                                .await;
                        }
                    }
                }
            }
        }
    }
}
