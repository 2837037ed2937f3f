//! [`Dispatcher`]: one shared request pipeline in front of a provider.
//!
//! Every `embed` call (one per document in the embedder service) queues its inputs; a driver
//! task packs queued inputs, across documents, into requests within the provider's input and
//! token limits, and sends them with a bounded number in flight (see [`limit`]). Transient
//! failures are retried with exponential backoff (`backon`), waiting at least the provider's
//! `Retry-After`; a delay longer than `max_backoff` is handed back to the caller instead, so
//! the broker redelivers later rather than a worker sleeping on the message. A request refused
//! for its inputs (HTTP 400/413/422) is split in halves until the offending input stands alone,
//! so one bad chunk fails only its own document.

mod limit;
mod pack;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use tokio::sync::{mpsc, oneshot};

use crate::{estimate_tokens, EmbedError, EmbedErrorExt as _, EmbedErrorKind, Embedder};
use limit::{AdaptiveLimit, Permit};

/// Concurrency and retry policy of a [`Dispatcher`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatchConfig {
    /// Requests in flight at most (halved on 429, grown back on success).
    pub max_in_flight: usize,
    /// Retries of a request after transient failures, before the error goes to the caller.
    pub max_retries: usize,
    pub min_backoff: Duration,
    /// Longest wait between retries; a `Retry-After` beyond it is returned to the caller.
    pub max_backoff: Duration,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        Self {
            max_in_flight: 4,
            max_retries: 5,
            min_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(30),
        }
    }
}

type Reply = oneshot::Sender<Result<Vec<f32>, EmbedError>>;

struct Item {
    text: String,
    tokens: usize,
    reply: Reply,
}

impl pack::Weighed for Item {
    fn tokens(&self) -> usize {
        self.tokens
    }
}

struct Shared {
    inner: Arc<dyn Embedder>,
    limit: Arc<AdaptiveLimit>,
    cfg: DispatchConfig,
}

/// Batches, bounds, retries and splits requests to the wrapped provider; itself an
/// [`Embedder`] that accepts any number of inputs per call.
pub struct Dispatcher {
    shared: Arc<Shared>,
    // One message per call, so a call's inputs are never seen half-queued by the driver.
    tx: mpsc::UnboundedSender<Vec<Item>>,
}

impl Dispatcher {
    /// Starts the driver task; call from within a Tokio runtime.
    pub fn new(inner: Arc<dyn Embedder>, cfg: DispatchConfig) -> Self {
        let shared = Arc::new(Shared {
            inner,
            limit: AdaptiveLimit::new(cfg.max_in_flight),
            cfg,
        });
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(drive(rx, Arc::clone(&shared)));
        Self { shared, tx }
    }

    /// Requests allowed in flight right now (below the maximum after 429s).
    pub fn current_limit(&self) -> usize {
        self.shared.limit.current()
    }
}

#[async_trait::async_trait]
impl Embedder for Dispatcher {
    fn model(&self) -> &str {
        self.shared.inner.model()
    }

    fn dimensions(&self) -> usize {
        self.shared.inner.dimensions()
    }

    /// Any number: the dispatcher splits calls into provider-sized requests itself.
    fn max_batch(&self) -> usize {
        usize::MAX
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let mut items = Vec::with_capacity(texts.len());
        let mut replies = Vec::with_capacity(texts.len());
        for text in texts {
            let (reply, rx) = oneshot::channel();
            items.push(Item {
                tokens: estimate_tokens(text),
                text: text.clone(),
                reply,
            });
            replies.push(rx);
        }
        self.tx
            .send(items)
            .map_err(|_| EmbedError::transient("embedding dispatcher stopped"))?;
        let mut out = Vec::with_capacity(replies.len());
        let mut first_error: Option<EmbedError> = None;
        for rx in replies {
            match rx.await {
                Ok(Ok(v)) => out.push(v),
                Ok(Err(e)) => {
                    // A permanent error outranks a transient one: retrying the call cannot help.
                    let replace = first_error.as_ref().is_none_or(|f| {
                        f.kind == EmbedErrorKind::Transient && e.kind != EmbedErrorKind::Transient
                    });
                    if replace {
                        first_error = Some(e);
                    }
                }
                Err(_) => {
                    first_error.get_or_insert_with(|| {
                        EmbedError::transient("embedding dispatcher stopped mid-request")
                    });
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }
}

async fn drive(mut rx: mpsc::UnboundedReceiver<Vec<Item>>, shared: Arc<Shared>) {
    let max_inputs = shared.inner.max_batch().max(1);
    let max_tokens = shared.inner.max_request_tokens();
    let mut queue: VecDeque<Item> = VecDeque::new();
    loop {
        if queue.is_empty() {
            match rx.recv().await {
                Some(items) => queue.extend(items),
                None => return,
            }
            // A caller queueing texts one by one (the cache layer) is usually mid-burst:
            // let it finish so the first request is not a lone text.
            tokio::task::yield_now().await;
        }
        let permit = shared.limit.acquire().await;
        // Whatever arrived while all slots were busy joins this request.
        while let Ok(items) = rx.try_recv() {
            queue.extend(items);
        }
        // Callers that gave up (cancelled handler) need no vectors.
        queue.retain(|i| !i.reply.is_closed());
        let batch = pack::take(&mut queue, max_inputs, max_tokens);
        if batch.is_empty() {
            continue;
        }
        tokio::spawn(run_batch(Arc::clone(&shared), batch, permit));
    }
}

/// Sends one packed request (and, if its inputs are refused, its halves) and replies to every
/// input's caller.
async fn run_batch(shared: Arc<Shared>, batch: Vec<Item>, permit: Permit) {
    let mut permit = Some(permit);
    let mut work = vec![batch];
    while let Some(mut batch) = work.pop() {
        let texts: Vec<String> = batch.iter().map(|i| i.text.clone()).collect();
        match request(&shared, &texts, &mut permit).await {
            Ok(vectors) if vectors.len() == batch.len() => {
                for (item, v) in batch.into_iter().zip(vectors) {
                    let _ = item.reply.send(Ok(v));
                }
            }
            Ok(vectors) => {
                let e = EmbedError::permanent(format!(
                    "provider returned {} vectors for {} inputs",
                    vectors.len(),
                    batch.len()
                ));
                batch.into_iter().for_each(|i| {
                    let _ = i.reply.send(Err(e.clone()));
                });
            }
            Err(e) if e.is_input_specific() && batch.len() > 1 => {
                tracing::debug!(inputs = batch.len(), error = %e, "request refused; splitting it");
                let right = batch.split_off(batch.len() / 2);
                work.push(right);
                work.push(batch);
            }
            Err(e) => batch.into_iter().for_each(|i| {
                let _ = i.reply.send(Err(e.clone()));
            }),
        }
    }
}

/// One request with retries. The first attempt uses the driver's permit; every retry waits for
/// a slot again, so a halved limit really holds retries back.
async fn request(
    shared: &Shared,
    texts: &[String],
    first: &mut Option<Permit>,
) -> Result<Vec<Vec<f32>>, EmbedError> {
    let cfg = &shared.cfg;
    let backoff = ExponentialBuilder::default()
        .with_min_delay(cfg.min_backoff)
        .with_max_delay(cfg.max_backoff)
        .with_max_times(cfg.max_retries)
        .with_jitter();
    let max_backoff = cfg.max_backoff;
    let attempt = || {
        let given = first.take();
        async move {
            let permit = match given {
                Some(p) => p,
                None => shared.limit.acquire().await,
            };
            let started = Instant::now();
            let result = shared.inner.embed(texts).await;
            let outcome = match &result {
                Ok(_) => {
                    shared.limit.on_success();
                    "ok"
                }
                Err(e) if e.is_throttled() => {
                    shared.limit.on_throttled(permit.epoch(), e.retry_after());
                    "throttled"
                }
                Err(e) if e.is_transient() => "transient",
                Err(_) => "permanent",
            };
            metrics::counter!("kb_embed_requests_total", "outcome" => outcome).increment(1);
            metrics::counter!("kb_embed_request_inputs_total").increment(texts.len() as u64);
            metrics::histogram!("kb_embed_request_seconds").record(started.elapsed().as_secs_f64());
            drop(permit);
            result
        }
    };
    attempt
        .retry(backoff)
        .when(EmbedError::is_transient)
        .adjust(move |e, next| {
            let next = next?;
            match e.retry_after() {
                // Too long to hold the message here: the caller naks it with this delay.
                Some(r) if r > max_backoff => None,
                // At least what the provider asked for, and still growing if it keeps refusing.
                Some(r) => Some(r.max(next)),
                None => Some(next),
            }
        })
        .notify(|e, wait| {
            tracing::warn!(error = %e, wait_ms = wait.as_millis() as u64, inputs = texts.len(), "embedding request failed; retrying");
        })
        .await
}
