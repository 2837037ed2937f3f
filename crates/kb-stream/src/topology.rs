//! Creates (or brings up to date) every stream, bucket and object store the pipeline uses.
//! Idempotent; every service calls it at start so any of them can be started first.

use crate::error::{StreamError, StreamErrorKind};
use crate::subjects::*;
use async_nats::jetstream::{self, kv, object_store, stream};
use kb_core::settings::NatsSettings;
use std::time::Duration;

/// Alerts: conditions an operator must see (`kb status`), not outages. Key
/// `<component>.<name>.<kind>`.
pub const ALERTS_BUCKET: &str = "kb_alerts";
/// The crash journal: per stage and stream sequence, whether a handler started and never
/// finished. Key `<stage>.<stream>.<stream_seq>`.
pub const ATTEMPTS_BUCKET: &str = "kb_attempts";
/// Journal entries expire: a document that stops crashing for a week starts its count afresh.
const ATTEMPTS_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// Handles to everything [`ensure`] created.
#[derive(Clone)]
pub struct Topology {
    pub js: jetstream::Context,
    pub source: stream::Stream,
    pub parsed: stream::Stream,
    pub mirror: stream::Stream,
    pub dlq: stream::Stream,
    pub watch: kv::Store,
    pub progress: kv::Store,
    pub alerts: kv::Store,
    pub attempts: kv::Store,
    pub blobs: object_store::ObjectStore,
}

/// Byte limits of the streams and the object store, from `[nats]` (0 = unlimited). A stream
/// at its limit refuses publishes (discard new): nothing is ever trimmed, work waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamLimits {
    pub source_max_bytes: u64,
    pub parsed_max_bytes: u64,
    pub dlq_max_bytes: u64,
    pub mirror_max_bytes: u64,
    pub blobs_max_bytes: u64,
}

impl From<&NatsSettings> for StreamLimits {
    fn from(n: &NatsSettings) -> Self {
        Self {
            source_max_bytes: n.source_max_bytes,
            parsed_max_bytes: n.parsed_max_bytes,
            dlq_max_bytes: n.dlq_max_bytes,
            mirror_max_bytes: n.mirror_max_bytes,
            blobs_max_bytes: n.blobs_max_bytes,
        }
    }
}

impl Default for StreamLimits {
    fn default() -> Self {
        Self::from(&NatsSettings::default())
    }
}

/// JetStream's "no limit".
fn bytes_limit(max: u64) -> i64 {
    if max == 0 {
        -1
    } else {
        i64::try_from(max).unwrap_or(i64::MAX)
    }
}

/// Dead letters kept per stage and source: one source cannot flood the DLQ.
pub const DLQ_PER_SOURCE: i64 = 10;

/// Messages `KB_SOURCE` keeps per source: one. A newer version replaces a queued older one
/// (which the parser would skip as superseded anyway), so a file edited many times while the
/// parser is behind costs one message and one body, and the replaced body is referenced by
/// nothing: the blob GC collects it.
pub const SOURCE_MESSAGES_PER_SUBJECT: i64 = 1;

fn stream_config(
    name: &str,
    subject: &str,
    retention: stream::RetentionPolicy,
    max_bytes: u64,
) -> stream::Config {
    stream::Config {
        name: name.to_string(),
        subjects: vec![subject.to_string()],
        retention,
        storage: stream::StorageType::File,
        // Nats-Msg-Id deduplication window: covers publisher retries after a crash.
        duplicate_window: Duration::from_secs(120),
        allow_direct: true,
        max_bytes: bytes_limit(max_bytes),
        // Full means refused, never trimmed (the per-subject limits still replace the older
        // message of a subject: discard_new_per_subject is off).
        discard: stream::DiscardPolicy::New,
        ..Default::default()
    }
}

/// The stream configurations with the default limits, exposed so docs and tests can check
/// them.
pub fn stream_configs() -> Vec<stream::Config> {
    stream_configs_with(&StreamLimits::default())
}

/// The stream configurations with `limits`.
pub fn stream_configs_with(limits: &StreamLimits) -> Vec<stream::Config> {
    let work_queue = stream::RetentionPolicy::WorkQueue;
    // One message per source in the work queues: a newer version replaces a queued older one,
    // which would have been superseded anyway (and stays with the parser or embedder that
    // holds it, whose ack then fails harmlessly).
    let mut source = stream_config(
        SOURCE_STREAM,
        SOURCE_ALL,
        work_queue,
        limits.source_max_bytes,
    );
    source.max_messages_per_subject = SOURCE_MESSAGES_PER_SUBJECT;
    let mut parsed = stream_config(
        PARSED_STREAM,
        PARSED_ALL,
        work_queue,
        limits.parsed_max_bytes,
    );
    parsed.max_messages_per_subject = 1;
    let mut mirror = stream_config(
        MIRROR_STREAM,
        MIRROR_ALL,
        stream::RetentionPolicy::Limits,
        limits.mirror_max_bytes,
    );
    // The log of record is a compacted changelog: the latest event per source, kept forever,
    // so replaying it yields exactly today's state.
    mirror.max_messages_per_subject = 1;
    let mut dlq = stream_config(
        DLQ_STREAM,
        DLQ_ALL,
        stream::RetentionPolicy::Limits,
        limits.dlq_max_bytes,
    );
    dlq.max_age = Duration::from_secs(30 * 24 * 3600);
    dlq.max_messages_per_subject = DLQ_PER_SOURCE;
    vec![source, parsed, mirror, dlq]
}

async fn upsert_stream(
    js: &jetstream::Context,
    cfg: stream::Config,
) -> Result<stream::Stream, StreamError> {
    let name = cfg.name.clone();
    // An unchanged stream is left alone: the broker counts a stream's own byte limit twice
    // when checking an update against its store, so on a store mostly reserved by the limits
    // (a small disk) even a no-op update is refused and a service could not start.
    // Boxed: callers' futures (a service's start) stay small enough for a test thread's stack.
    if let Some(existing) = Box::pin(unchanged_stream(js, &cfg)).await {
        return Ok(existing);
    }
    js.create_or_update_stream(cfg)
        .await
        .map_err(|e| create_error(format!("cannot create or update stream {name}"), e))?;
    js.get_stream(&name)
        .await
        .map_err(|e| StreamError::transient(format!("cannot open stream {name}"), e))
}

/// The stream, when it exists with `want`'s settings already.
async fn unchanged_stream(
    js: &jetstream::Context,
    want: &stream::Config,
) -> Option<stream::Stream> {
    let mut existing = js.get_stream(&want.name).await.ok()?;
    let info = existing.info().await.ok()?;
    same_stream(&info.config, want).then_some(existing)
}

/// Whether `have` already is `want` in everything [`stream_configs_with`] sets.
fn same_stream(have: &stream::Config, want: &stream::Config) -> bool {
    have.subjects == want.subjects
        && have.retention == want.retention
        && have.storage == want.storage
        && have.duplicate_window == want.duplicate_window
        && have.allow_direct == want.allow_direct
        && have.max_bytes == want.max_bytes
        && have.discard == want.discard
        && have.max_messages_per_subject == want.max_messages_per_subject
        && have.max_age == want.max_age
}

/// The byte limit an existing stream has, if it exists.
async fn existing_max_bytes(js: &jetstream::Context, name: &str) -> Option<i64> {
    let mut stream = js.get_stream(name).await.ok()?;
    stream.info().await.ok().map(|i| i.config.max_bytes)
}

/// How many copies of streams and buckets [`ensure_configs`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replicas {
    /// Whatever each one has already (1 for a new one): callers without settings (tools,
    /// tests) never scale a cluster's streams down.
    Keep,
    /// `nats.replicas`, applied to new and existing ones.
    Set(usize),
}

impl Replicas {
    async fn for_stream(self, js: &jetstream::Context, name: &str) -> usize {
        match self {
            Replicas::Set(n) => n,
            Replicas::Keep => match js.get_stream(name).await {
                Ok(mut stream) => stream
                    .info()
                    .await
                    .map(|i| i.config.num_replicas.max(1))
                    .unwrap_or(1),
                Err(_) => 1,
            },
        }
    }
}

/// A KV bucket as the pipeline keeps them all: the last value per key, on disk.
pub fn bucket_config(bucket: &str, description: &str) -> kv::Config {
    kv::Config {
        bucket: bucket.to_string(),
        description: description.to_string(),
        history: 1,
        storage: stream::StorageType::File,
        ..Default::default()
    }
}

/// Creates a KV bucket, or brings an existing one's settings up to date. A config with no
/// replica count (0, as [`bucket_config`] makes it) gets the mirror stream's, which every
/// service sets to `nats.replicas` at start.
pub async fn upsert_bucket(
    js: &jetstream::Context,
    mut cfg: kv::Config,
) -> Result<kv::Store, StreamError> {
    if cfg.num_replicas == 0 {
        cfg.num_replicas = Replicas::Keep.for_stream(js, MIRROR_STREAM).await;
    }
    let bucket = cfg.bucket.clone();
    // Unchanged: left alone, as for streams (see `upsert_stream`).
    if let Some(existing) = Box::pin(unchanged_bucket(js, &cfg)).await {
        return Ok(existing);
    }
    js.create_or_update_key_value(cfg)
        .await
        .map_err(|e| create_error(format!("cannot create KV bucket {bucket}"), e))
}

/// The bucket, when it exists with `want`'s settings already.
async fn unchanged_bucket(js: &jetstream::Context, want: &kv::Config) -> Option<kv::Store> {
    let existing = js.get_key_value(&want.bucket).await.ok()?;
    let status = existing.status().await.ok()?;
    let have = &status.info.config;
    let limit = |n: i64| if n == 0 { -1 } else { n };
    (status.history() == want.history
        && status.max_age() == want.max_age
        && have.max_bytes == limit(want.max_bytes)
        && have.storage == want.storage)
        .then_some(existing)
}

/// A refused create, naming the fix when the byte limit is what did not fit: the broker
/// reserves every stream's `max_bytes` in its store, so limits above the store's size (a small
/// disk) refuse to create.
pub fn create_error(
    what: String,
    e: impl std::error::Error + Send + Sync + 'static,
) -> StreamError {
    let what = if e.to_string().contains("insufficient storage resources") {
        format!(
            "{what}: the byte limits of the streams and buckets add up to more than the \
             broker's store holds (JetStream max_file_store, nats.max_store_bytes): lower \
             nats.*_max_bytes and embedder.cache_max_bytes, or give the broker more room"
        )
    } else {
        what
    };
    StreamError::with(StreamErrorKind::Config, what, e)
}

/// Creates or updates everything, keeping the byte limits of streams that exist already (a
/// service with settings set them, see [`ensure_with`]); new streams get the default limits.
pub async fn ensure(js: &jetstream::Context) -> Result<Topology, StreamError> {
    ensure_replicated(js, Replicas::Keep).await
}

/// [`ensure`] with `nats.replicas` applied to every stream, bucket and the object store (the
/// byte limits as in [`ensure`]). Services call this at start.
pub async fn ensure_replicated(
    js: &jetstream::Context,
    replicas: Replicas,
) -> Result<Topology, StreamError> {
    settled(|| Box::pin(ensure_once(js, replicas))).await
}

/// Runs `ensure` until JetStream gives a settled answer. A cluster that is still electing its
/// leaders, or a broker under load, answers JetStream requests late or "insufficient
/// resources" for a while: wait it out (about a minute) instead of exiting at start. Callers
/// box `ensure`'s future: it is large, and inline it overflowed 2 MiB debug-build test stacks.
async fn settled<F, Fut>(ensure: F) -> Result<Topology, StreamError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Topology, StreamError>>,
{
    use backon::{ExponentialBuilder, Retryable};
    ensure
        .retry(
            ExponentialBuilder::default()
                .with_max_delay(Duration::from_secs(5))
                .with_max_times(15),
        )
        .when(not_settled_yet)
        .notify(|e, after| tracing::warn!(error = %e, ?after, "JetStream not ready for the topology yet"))
        .await
}

/// The JetStream answers of a broker or cluster that is still starting.
fn not_settled_yet(e: &StreamError) -> bool {
    let text = format!("{e:#}").to_lowercase();
    [
        "timed out",
        "insufficient resources",
        // A single server's reservation check (error code 10047), which services creating
        // and updating the same streams at once can trip for a moment; a store really too
        // small still fails, with its hint, once the retries are spent.
        "insufficient storage resources",
        "no responders",
        "not available",
        "no suitable peers",
    ]
    .iter()
    .any(|s| text.contains(s))
}

async fn ensure_once(js: &jetstream::Context, replicas: Replicas) -> Result<Topology, StreamError> {
    let defaults = StreamLimits::default();
    let mut configs = stream_configs_with(&defaults);
    for cfg in &mut configs {
        if let Some(max) = existing_max_bytes(js, &cfg.name).await {
            cfg.max_bytes = max;
        }
    }
    let blobs_max = match existing_max_bytes(js, BLOBS_STREAM).await {
        Some(max) => max,
        None => bytes_limit(defaults.blobs_max_bytes),
    };
    ensure_configs(js, configs, blobs_max, replicas).await
}

/// [`ensure`] with the byte limits of `[nats]` (`nats.*_max_bytes`) applied to every stream
/// and the object store.
pub async fn ensure_with(
    js: &jetstream::Context,
    nats: &NatsSettings,
) -> Result<Topology, StreamError> {
    let limits = StreamLimits::from(nats);
    settled(|| {
        Box::pin(ensure_configs(
            js,
            stream_configs_with(&limits),
            bytes_limit(limits.blobs_max_bytes),
            Replicas::Set(nats.replicas),
        ))
    })
    .await
}

/// The stream behind the object store `kb_blobs`.
const BLOBS_STREAM: &str = "OBJ_kb_blobs";

async fn ensure_configs(
    js: &jetstream::Context,
    configs: Vec<stream::Config>,
    blobs_max_bytes: i64,
    replicas: Replicas,
) -> Result<Topology, StreamError> {
    let mut streams = Vec::new();
    for mut cfg in configs {
        cfg.num_replicas = replicas.for_stream(js, &cfg.name).await;
        streams.push(upsert_stream(js, cfg).await?);
    }
    let bucket = |name: &str, description: &str| {
        let name = name.to_string();
        let description = description.to_string();
        async move {
            let mut cfg = bucket_config(&name, &description);
            cfg.num_replicas = replicas.for_stream(js, &format!("KV_{name}")).await;
            cfg
        }
    };
    let mut it = streams.into_iter();
    let (Some(source), Some(parsed), Some(mirror), Some(dlq)) =
        (it.next(), it.next(), it.next(), it.next())
    else {
        return Err(StreamError::new(
            StreamErrorKind::Config,
            "stream list changed",
        ));
    };
    let watch = upsert_bucket(
        js,
        bucket(WATCH_BUCKET, "watcher state: one entry per known source").await,
    )
    .await?;
    let progress = upsert_bucket(
        js,
        bucket(
            PROGRESS_BUCKET,
            "last version each stage finished, per source",
        )
        .await,
    )
    .await?;
    let alerts = upsert_bucket(
        js,
        bucket(
            ALERTS_BUCKET,
            "conditions an operator must see, per component",
        )
        .await,
    )
    .await?;
    let attempts = upsert_bucket(
        js,
        kv::Config {
            max_age: ATTEMPTS_MAX_AGE,
            ..bucket(
                ATTEMPTS_BUCKET,
                "crash journal: handler starts that never finished, per stage and message",
            )
            .await
        },
    )
    .await?;
    let blobs_replicas = replicas.for_stream(js, BLOBS_STREAM).await;
    let blobs = match js.get_object_store(BLOB_BUCKET).await {
        Ok(store) => store,
        Err(_) => js
            .create_object_store(object_store::Config {
                bucket: BLOB_BUCKET.to_string(),
                description: Some("message bodies too large for one NATS message".to_string()),
                storage: jetstream::stream::StorageType::File,
                max_bytes: blobs_max_bytes,
                num_replicas: blobs_replicas,
                ..Default::default()
            })
            .await
            .map_err(|e| {
                StreamError::with(
                    StreamErrorKind::Config,
                    "cannot create object store kb_blobs",
                    e,
                )
            })?,
    };
    limit_blobs(js, blobs_max_bytes, blobs_replicas).await?;
    Ok(Topology {
        js: js.clone(),
        source,
        parsed,
        mirror,
        dlq,
        watch,
        progress,
        alerts,
        attempts,
        blobs,
    })
}

/// Brings the object store's byte limit (and discard-new) and replicas up to date.
async fn limit_blobs(
    js: &jetstream::Context,
    max_bytes: i64,
    replicas: usize,
) -> Result<(), StreamError> {
    let mut stream = js
        .get_stream(BLOBS_STREAM)
        .await
        .map_err(|e| StreamError::transient("cannot open the object store's stream", e))?;
    let info = stream
        .info()
        .await
        .map_err(|e| StreamError::transient("cannot read the object store's stream", e))?;
    let mut config = info.config.clone();
    if config.max_bytes == max_bytes
        && config.discard == stream::DiscardPolicy::New
        && config.num_replicas == replicas
    {
        return Ok(());
    }
    config.max_bytes = max_bytes;
    config.num_replicas = replicas;
    config.discard = stream::DiscardPolicy::New;
    js.update_stream(config).await.map_err(|e| {
        StreamError::with(
            StreamErrorKind::Config,
            "cannot set the object store's limit",
            e,
        )
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_starting_cluster_is_waited_for_and_a_refusal_is_not() {
        let timeout = StreamError::with(
            StreamErrorKind::Config,
            "cannot create KV bucket kb_attempts",
            std::io::Error::other("JetStream error: jetstream request timed out"),
        );
        assert!(not_settled_yet(&timeout));
        let refused = StreamError::new(
            StreamErrorKind::Config,
            "cannot create or update stream KB_MIRROR: replicas > 1 not supported in non-clustered mode",
        );
        assert!(!not_settled_yet(&refused));
        // The refusal every service at start saw on a fresh-clone CI run while the others
        // were updating the same streams: waited out, not a reason to exit.
        let reserved = create_error(
            "cannot create or update stream KB_SOURCE".into(),
            std::io::Error::other(
                "jetstream error: insufficient storage resources available (code 500, error code 10047)",
            ),
        );
        assert!(not_settled_yet(&reserved), "{reserved}");
    }

    #[tokio::test]
    async fn ensure_makes_the_alert_and_attempt_buckets_and_is_idempotent() -> anyhow::Result<()> {
        let nats = kb_testkit::stack().await?.nats().await?;
        let (_client, js) = crate::connect(&nats.url(), "topology-test").await?;
        ensure(&js).await?;
        let topo = ensure(&js).await?;
        let alerts = topo.alerts.status().await?;
        assert_eq!(alerts.bucket(), ALERTS_BUCKET);
        assert_eq!(alerts.history(), 1);
        let attempts = topo.attempts.status().await?;
        assert_eq!(attempts.bucket(), ATTEMPTS_BUCKET);
        assert_eq!(attempts.max_age(), ATTEMPTS_MAX_AGE);
        topo.attempts.put("parser.KB_SOURCE.7", "{}".into()).await?;
        assert!(topo.attempts.get("parser.KB_SOURCE.7").await?.is_some());
        Ok(())
    }
}
