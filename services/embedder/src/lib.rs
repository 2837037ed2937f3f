//! The embedder stage: takes parsed documents from `KB_PARSED` (a work queue: any number of
//! embedder processes share the durable consumer `embedder` and split the work), adds an
//! embedding to every chunk, and publishes the document to the mirror stream — unless the mirror
//! already holds a newer version of the source (last-writer-wins at publish time).
//!
//! Per process, the chunks of the documents in flight go through, in order:
//! the shared cache ([`cache`], a JetStream KV bucket, so no worker pays twice for a text),
//! then one [`kb_embed::Dispatcher`] (requests packed across documents, bounded in flight,
//! halved on 429, retried with backoff), then the provider ([`kb_embed::provider`]).
//!
//! A worker that dies leaves its messages unacked; the broker hands them to another worker
//! after `embedder.ack_wait_secs`, and whatever the dead worker already embedded is a cache hit
//! there. Its mirror publish, if it got that far, makes the redelivery a no-op ("superseded").
//! A document the embedder dies on `embedder.crash_limit` times (an abort, an OOM kill) is
//! given up as `crashed`; like any document given up it gets a dead letter and a FAILED record
//! in both stores ([`stage::EmbedStage`]'s `on_give_up`).

pub mod cache;
pub mod stage;

use std::sync::Arc;
use std::time::Duration;

use kb_core::service::Context;
use kb_core::Settings;
use kb_embed::{CachedEmbedder, Dispatcher, EmbedErrorKind, Embedder};
use kb_stream::consume::{self, ConsumerSpec, LoopOptions};
use kb_stream::progress::Progress;
use kb_stream::{subjects, Publisher};

pub use kb_embed::load_embedder;
pub use stage::EmbedStage;

/// How often a process adds its cache hits and misses to the shared totals.
const TOTALS_EVERY: Duration = Duration::from_secs(2);

/// The shared durable consumer. `ack_wait` is how long a dead worker's messages wait before
/// another worker gets them; live workers send in-progress acks every `ack_wait / 3`. A
/// transient failure is given up after 20 deliveries (`retries_exhausted`, counted by the
/// loop; the server never drops a message), a document the embedder keeps dying on after
/// `embedder.crash_limit` deaths (`crashed`).
pub fn consumer_spec(concurrency: usize, ack_wait: Duration) -> ConsumerSpec {
    let ack_wait = ack_wait.max(Duration::from_secs(1));
    ConsumerSpec {
        stage: kb_stream::Stage::Embedder,
        filter_subject: subjects::PARSED_ALL.to_string(),
        ack_wait,
        max_deliver: 20,
        // The server takes its first step as the ack wait; later redeliveries back off.
        backoff: vec![ack_wait, ack_wait * 2, ack_wait * 5],
        concurrency,
        max_ack_pending: 256,
    }
}

/// Probes the provider until it answers (a remote service may start after us), then checks
/// its dimension against `embedder.dimensions`.
async fn probe(embedder: &dyn Embedder, settings: &Settings, ctx: &Context) -> anyhow::Result<()> {
    let expected = settings.embedder.dimensions;
    loop {
        match kb_embed::check_dimensions(embedder, expected).await {
            Ok(()) => return Ok(()),
            Err(e) if e.kind == EmbedErrorKind::Transient => {
                tracing::warn!(error = %e, "embedding provider not reachable yet; retrying in 5 s");
                tokio::select! {
                    _ = ctx.shutdown.cancelled() => anyhow::bail!("stopped before the provider answered"),
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Runs the embedder service until shutdown.
pub async fn run(settings: Settings, ctx: Context) -> anyhow::Result<()> {
    let e = &settings.embedder;
    let raw = load_embedder(&settings)?;
    probe(&*raw, &settings, &ctx).await?;
    tracing::info!(
        provider = %e.provider,
        model = raw.model(),
        dimensions = raw.dimensions(),
        "embedding model ready"
    );
    let (client, js) = kb_stream::connect(&settings.nats, "kb-embedder").await?;
    kb_stream::watch_connection(&ctx.health, client);
    let topo = kb_stream::topology::ensure_with(&js, &settings.nats).await?;
    let publisher = Publisher::new(&topo, settings.nats.inline_max_bytes);

    let dispatcher: Arc<dyn Embedder> =
        Arc::new(Dispatcher::new(raw, kb_embed::provider::dispatch_config(e)));
    let mut reporter = None;
    let embedder: Arc<dyn Embedder> = if e.cache {
        let kv = cache::KvCache::open(&js, e.cache_max_bytes).await?;
        let cached = CachedEmbedder::new(dispatcher, Arc::new(kv));
        // Not a child of the shutdown token: work in flight at shutdown still counts.
        let stop = tokio_util::sync::CancellationToken::new();
        reporter = Some((
            tokio::spawn(cache::report_totals(
                js.clone(),
                cached.counters(),
                TOTALS_EVERY,
                stop.clone(),
            )),
            stop,
        ));
        Arc::new(cached)
    } else {
        dispatcher
    };

    let stage = Arc::new(EmbedStage::new(
        embedder,
        publisher.clone(),
        Progress::new(topo.progress.clone()),
    ));
    ctx.health.set_ready(true);
    let result = consume::run_with(
        &topo.parsed,
        consumer_spec(e.concurrency, Duration::from_secs(e.ack_wait_secs)),
        LoopOptions {
            crash_limit: e.crash_limit,
        },
        stage,
        publisher,
        ctx.shutdown.clone(),
    )
    .await;
    // The last counts go out after the work in flight has finished.
    if let Some((task, stop)) = reporter {
        stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
    result?;
    Ok(())
}
