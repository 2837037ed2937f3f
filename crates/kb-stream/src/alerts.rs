//! Alerts in the `kb_alerts` bucket (`topology::ALERTS_BUCKET`): conditions an operator must
//! see in `kb status`, raised and cleared by the component that notices them. An alert is not
//! an outage: nothing stops while one is raised.
//!
//! Key `<component>.<name>.<kind>` (e.g. `broker.KB_PARSED.full`), value [`Alert`].

use crate::error::{StreamError, StreamErrorKind};
use crate::progress::now_ms;
use async_nats::jetstream::kv;
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};

/// One raised condition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// When it was first raised (kept while it is raised again).
    pub since_ms: i64,
    /// What an operator reads, with what to do.
    pub message: String,
    /// How many times it was raised since `since_ms`.
    pub count: u64,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub details: serde_json::Value,
}

/// `<component>.<name>.<kind>`; characters a KV key cannot hold become `_`.
pub fn key(component: &str, name: &str, kind: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '_') {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    format!("{}.{}.{}", clean(component), clean(name), clean(kind))
}

/// Raises (or raises again) an alert.
pub async fn raise(
    kv: &kv::Store,
    component: &str,
    name: &str,
    kind: &str,
    message: &str,
    details: serde_json::Value,
) -> Result<(), StreamError> {
    let key = key(component, name, kind);
    let previous = get(kv, &key).await.ok().flatten();
    let alert = Alert {
        since_ms: previous.as_ref().map(|a| a.since_ms).unwrap_or_else(now_ms),
        message: message.to_string(),
        count: previous.map(|a| a.count).unwrap_or(0) + 1,
        details,
    };
    let bytes = serde_json::to_vec(&alert)
        .map_err(|e| StreamError::with(StreamErrorKind::Decode, "cannot encode an alert", e))?;
    kv.put(key, bytes.into())
        .await
        .map_err(|e| StreamError::write("cannot raise an alert", e))?;
    Ok(())
}

/// Clears an alert (nothing happens when it is not raised).
pub async fn clear(
    kv: &kv::Store,
    component: &str,
    name: &str,
    kind: &str,
) -> Result<(), StreamError> {
    kv.purge(key(component, name, kind))
        .await
        .map_err(|e| StreamError::write("cannot clear an alert", e))
}

async fn get(kv: &kv::Store, key: &str) -> Result<Option<Alert>, StreamError> {
    let Some(bytes) = kv
        .get(key)
        .await
        .map_err(|e| StreamError::transient("cannot read an alert", e))?
    else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| StreamError::decode("bad alert", e))
}

/// Every raised alert, by key.
pub async fn all(kv: &kv::Store) -> Result<Vec<(String, Alert)>, StreamError> {
    let keys: Vec<String> = kv
        .keys()
        .await
        .map_err(|e| StreamError::transient("cannot list alerts", e))?
        .try_collect()
        .await
        .map_err(|e| StreamError::transient("cannot list alerts", e))?;
    let mut out = Vec::new();
    for k in keys {
        if let Some(alert) = get(kv, &k).await? {
            out.push((k, alert));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_three_tokens() {
        assert_eq!(key("broker", "KB_PARSED", "full"), "broker.KB_PARSED.full");
        assert_eq!(
            key("watcher", "my inbox.x", "mass_delete"),
            "watcher.my_inbox_x.mass_delete"
        );
    }

    #[tokio::test]
    async fn raised_again_keeps_its_start_and_counts() -> anyhow::Result<()> {
        let nats = kb_testkit::stack().await?.nats().await?;
        let (_client, js) = crate::connect(&nats.url(), "alerts-test").await?;
        let topo = crate::topology::ensure(&js).await?;
        let kv = &topo.alerts;
        assert!(all(kv).await?.is_empty());
        raise(
            kv,
            "broker",
            "KB_SOURCE",
            "full",
            "first",
            serde_json::Value::Null,
        )
        .await?;
        let first = all(kv).await?;
        raise(
            kv,
            "broker",
            "KB_SOURCE",
            "full",
            "again",
            serde_json::json!({"n": 1}),
        )
        .await?;
        let again = all(kv).await?;
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].0, "broker.KB_SOURCE.full");
        assert_eq!(again[0].1.since_ms, first[0].1.since_ms);
        assert_eq!(again[0].1.count, 2);
        assert_eq!(again[0].1.message, "again");
        clear(kv, "broker", "KB_SOURCE", "full").await?;
        assert!(all(kv).await?.is_empty());
        Ok(())
    }
}
