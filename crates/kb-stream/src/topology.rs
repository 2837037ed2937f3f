//! Creates (or brings up to date) every stream, bucket and object store the pipeline uses.
//! Idempotent; every service calls it at start so any of them can be started first.

use crate::error::{StreamError, StreamErrorKind};
use crate::subjects::*;
use async_nats::jetstream::{self, kv, object_store, stream};
use std::time::Duration;

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
    pub blobs: object_store::ObjectStore,
}

fn stream_config(name: &str, subject: &str, retention: stream::RetentionPolicy) -> stream::Config {
    stream::Config {
        name: name.to_string(),
        subjects: vec![subject.to_string()],
        retention,
        storage: stream::StorageType::File,
        // Nats-Msg-Id deduplication window: covers publisher retries after a crash.
        duplicate_window: Duration::from_secs(120),
        allow_direct: true,
        ..Default::default()
    }
}

/// The stream configurations, exposed so docs and tests can check them.
pub fn stream_configs() -> Vec<stream::Config> {
    let work_queue = stream::RetentionPolicy::WorkQueue;
    let mut mirror = stream_config(MIRROR_STREAM, MIRROR_ALL, stream::RetentionPolicy::Limits);
    // The log of record is a compacted changelog: the latest event per source, kept forever,
    // so replaying it yields exactly today's state.
    mirror.max_messages_per_subject = 1;
    let mut dlq = stream_config(DLQ_STREAM, DLQ_ALL, stream::RetentionPolicy::Limits);
    dlq.max_age = Duration::from_secs(30 * 24 * 3600);
    vec![
        stream_config(SOURCE_STREAM, SOURCE_ALL, work_queue),
        stream_config(PARSED_STREAM, PARSED_ALL, work_queue),
        mirror,
        dlq,
    ]
}

async fn upsert_stream(
    js: &jetstream::Context,
    cfg: stream::Config,
) -> Result<stream::Stream, StreamError> {
    let name = cfg.name.clone();
    js.create_or_update_stream(cfg).await.map_err(|e| {
        StreamError::with(
            StreamErrorKind::Config,
            format!("cannot create or update stream {name}"),
            e,
        )
    })?;
    js.get_stream(&name)
        .await
        .map_err(|e| StreamError::transient(format!("cannot open stream {name}"), e))
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

/// Creates a KV bucket, or brings an existing one's settings up to date.
pub async fn upsert_bucket(
    js: &jetstream::Context,
    cfg: kv::Config,
) -> Result<kv::Store, StreamError> {
    let bucket = cfg.bucket.clone();
    js.create_or_update_key_value(cfg).await.map_err(|e| {
        StreamError::with(
            StreamErrorKind::Config,
            format!("cannot create KV bucket {bucket}"),
            e,
        )
    })
}

pub async fn ensure(js: &jetstream::Context) -> Result<Topology, StreamError> {
    let mut streams = Vec::new();
    for cfg in stream_configs() {
        streams.push(upsert_stream(js, cfg).await?);
    }
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
        bucket_config(WATCH_BUCKET, "watcher state: one entry per known source"),
    )
    .await?;
    let progress = upsert_bucket(
        js,
        bucket_config(
            PROGRESS_BUCKET,
            "last version each stage finished, per source",
        ),
    )
    .await?;
    let blobs = match js.get_object_store(BLOB_BUCKET).await {
        Ok(store) => store,
        Err(_) => js
            .create_object_store(object_store::Config {
                bucket: BLOB_BUCKET.to_string(),
                description: Some("message bodies too large for one NATS message".to_string()),
                storage: jetstream::stream::StorageType::File,
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
    Ok(Topology {
        js: js.clone(),
        source,
        parsed,
        mirror,
        dlq,
        watch,
        progress,
        blobs,
    })
}
