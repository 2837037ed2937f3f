//! JSON values in a JetStream KV bucket, read in one pass and written by compare-and-set on the
//! entry's revision: the storage under both the folder state (`kb_watch`) and the Drive state
//! (`kb_drive`). `what` names the state in errors ("watcher state", "Drive state").

use crate::error::{WatchError, WatchErrorKind};
use async_nats::jetstream::consumer::{pull, DeliverPolicy};
use async_nats::jetstream::kv::{self, CreateErrorKind, Operation, UpdateErrorKind};
use futures::StreamExt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;
use std::time::Duration;

/// A value and the revision a compare-and-set must name.
#[derive(Debug, Clone)]
pub struct Entry<T> {
    pub value: T,
    pub revision: u64,
}

/// How long one message of a full listing may take before the broker counts as unavailable.
const LIST_TIMEOUT: Duration = Duration::from_secs(15);

pub(crate) fn transient(
    what: &str,
    e: impl std::error::Error + Send + Sync + 'static,
) -> WatchError {
    WatchError::with(WatchErrorKind::Transient, what.to_string(), e)
}

fn decode<T: DeserializeOwned>(what: &str, key: &str, bytes: &[u8]) -> Result<T, WatchError> {
    serde_json::from_slice(bytes).map_err(|e| {
        WatchError::with(
            WatchErrorKind::Corrupt,
            format!("undecodable {what} under {key}"),
            e,
        )
    })
}

pub(crate) fn encode<T: Serialize>(what: &str, value: &T) -> Result<Vec<u8>, WatchError> {
    serde_json::to_vec(value)
        .map_err(|e| WatchError::with(WatchErrorKind::Corrupt, format!("cannot encode {what}"), e))
}

/// The live value under `key`, if any.
pub(crate) async fn get<T: DeserializeOwned>(
    kv: &kv::Store,
    what: &str,
    key: String,
) -> Result<Option<Entry<T>>, WatchError> {
    let entry = kv
        .entry(key.clone())
        .await
        .map_err(|e| transient(&format!("cannot read {what}"), e))?;
    match entry {
        Some(e) if e.operation == Operation::Put => Ok(Some(Entry {
            value: decode(what, &key, &e.value)?,
            revision: e.revision,
        })),
        _ => Ok(None),
    }
}

/// Writes `value` if the entry is still at `expected` (`None`: must not exist, or be deleted).
/// Returns the new revision; a lost race is a `Conflict`.
pub(crate) async fn put_cas<T: Serialize>(
    kv: &kv::Store,
    what: &str,
    key: &str,
    value: &T,
    expected: Option<u64>,
) -> Result<u64, WatchError> {
    let bytes = encode(what, value)?.into();
    let lost_race = |how: &str| {
        WatchError::new(
            WatchErrorKind::Conflict,
            format!("{key} {how} concurrently"),
        )
    };
    let failed = format!("cannot write {what}");
    match expected {
        None => kv.create(key, bytes).await.map_err(|e| match e.kind() {
            CreateErrorKind::AlreadyExists => lost_race("was created"),
            _ => transient(&failed, e),
        }),
        Some(rev) => kv
            .update(key, bytes, rev)
            .await
            .map_err(|e| match e.kind() {
                UpdateErrorKind::WrongLastRevision => lost_race("changed"),
                _ => transient(&failed, e),
            }),
    }
}

/// Every live value whose key starts with `key_prefix`, by the rest of its key. An undecodable
/// entry is skipped here; it is reported as a failure when it is looked up.
pub(crate) async fn all<T: DeserializeOwned>(
    kv: &kv::Store,
    what: &str,
    key_prefix: &str,
) -> Result<HashMap<String, Entry<T>>, WatchError> {
    let mut out = HashMap::new();
    for (rest, payload, revision) in last_values(kv, key_prefix).await? {
        match decode(what, &format!("{key_prefix}{rest}"), &payload) {
            Ok(value) => {
                out.insert(rest, Entry { value, revision });
            }
            Err(e) => tracing::warn!(error = %e, "skipping {what} entry"),
        }
    }
    Ok(out)
}

/// The live entries whose keys start with `key_prefix` in one pass over a bucket (a consumer
/// on the last value per key, not one request per key): (rest of the key, value, revision).
async fn last_values(
    kv: &kv::Store,
    key_prefix: &str,
) -> Result<Vec<(String, bytes::Bytes, u64)>, WatchError> {
    let subject_prefix = format!("{}{key_prefix}", kv.prefix);
    let consumer = kv
        .stream
        .create_consumer(pull::OrderedConfig {
            filter_subject: format!("{subject_prefix}>"),
            deliver_policy: DeliverPolicy::LastPerSubject,
            ..Default::default()
        })
        .await
        .map_err(|e| transient("cannot list watcher state", e))?;
    let mut out = Vec::new();
    if consumer.cached_info().num_pending == 0 {
        return Ok(out);
    }
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| transient("cannot list watcher state", e))?;
    loop {
        let msg = match tokio::time::timeout(LIST_TIMEOUT, messages.next()).await {
            Err(elapsed) => return Err(transient("listing watcher state timed out", elapsed)),
            Ok(None) => break,
            Ok(Some(Err(e))) => return Err(transient("cannot list watcher state", e)),
            Ok(Some(Ok(msg))) => msg,
        };
        let info = msg
            .info()
            .map_err(|e| WatchError::new(WatchErrorKind::Transient, e.to_string()))?;
        let (revision, pending) = (info.stream_sequence, info.pending);
        // Deletes and purges carry a KV-Operation header; values do not.
        let is_put = msg
            .headers
            .as_ref()
            .and_then(|h| h.get("KV-Operation"))
            .is_none();
        if let Some(rest) = msg.subject.as_str().strip_prefix(&subject_prefix) {
            if is_put {
                out.push((rest.to_string(), msg.payload.clone(), revision));
            }
        }
        if pending == 0 {
            break;
        }
    }
    Ok(out)
}
