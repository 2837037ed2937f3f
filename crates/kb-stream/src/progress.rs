//! Per stage and source, the last version the stage finished and how it ended, in the KV bucket
//! `kb_progress` (key `<stage>.<source_id>`). `kb ingest` waits on it; `kb status` counts it.

use crate::error::{StreamError, StreamErrorKind};
use crate::wire::{ProgressStatus, Stage};
use async_nats::jetstream::kv;
use kb_proto::SourceRef;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgressRecord {
    pub version: u64,
    /// Stored as its name ("written", "deleted", "failed", "stale", "parsed", "embedded",
    /// "superseded"); a record with any other word does not read ("unknown progress status").
    pub status: ProgressStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub at_unix_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

#[derive(Clone)]
pub struct Progress {
    kv: kv::Store,
}

fn key(stage: Stage, source_id: &str) -> String {
    format!("{stage}.{source_id}")
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

impl Progress {
    pub fn new(kv: kv::Store) -> Self {
        Self { kv }
    }

    pub async fn record(
        &self,
        stage: Stage,
        source_id: &str,
        rec: &ProgressRecord,
    ) -> Result<(), StreamError> {
        let bytes = serde_json::to_vec(rec)
            .map_err(|e| StreamError::decode("cannot encode progress", e))?;
        self.kv
            .put(key(stage, source_id), bytes.into())
            .await
            .map_err(|e| StreamError::write("cannot write progress", e))?;
        Ok(())
    }

    /// Records that `stage` finished `source`'s version with `status`, now. Progress is
    /// advisory (it feeds `kb ingest` and `kb status`), so a failed write is only logged.
    pub async fn finished(
        &self,
        stage: Stage,
        source: &SourceRef,
        status: ProgressStatus,
        error: Option<String>,
    ) {
        let rec = ProgressRecord {
            version: source.version,
            status,
            error,
            at_unix_ms: now_ms(),
            path: Some(source.path.clone()),
        };
        if let Err(e) = self.record(stage, &source.source_id, &rec).await {
            tracing::warn!(%stage, error = %e, "cannot record progress");
        }
    }

    pub async fn get(
        &self,
        stage: Stage,
        source_id: &str,
    ) -> Result<Option<ProgressRecord>, StreamError> {
        let Some(bytes) = self
            .kv
            .get(key(stage, source_id))
            .await
            .map_err(|e| StreamError::transient("cannot read progress", e))?
        else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StreamError::with(StreamErrorKind::Decode, "bad progress record", e))
    }

    /// Every record of one stage, keyed by source id.
    pub async fn all(&self, stage: Stage) -> Result<Vec<(String, ProgressRecord)>, StreamError> {
        use futures::TryStreamExt;
        let prefix = format!("{stage}.");
        let keys: Vec<String> = self
            .kv
            .keys()
            .await
            .map_err(|e| StreamError::transient("cannot list progress", e))?
            .try_collect()
            .await
            .map_err(|e| StreamError::transient("cannot list progress", e))?;
        let mut out = Vec::new();
        for k in keys.into_iter().filter(|k| k.starts_with(&prefix)) {
            let sid = k[prefix.len()..].to_string();
            if let Some(rec) = self.get(stage, &sid).await? {
                out.push((sid, rec));
            }
        }
        Ok(out)
    }
}
