//! The alerts a scan raises and clears (`kb_alerts`, shown by `kb status`), written only when
//! what they say changes: a scan runs every few seconds and must not rewrite them each time.

use async_nats::jetstream::kv;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// An alert's content: (message, details).
pub(crate) type Said = (String, serde_json::Value);

/// What this process last wrote per alert kind; a kind not in the map is unknown (cleared once
/// at the first scan, so a stale alert from an earlier run goes away).
#[derive(Clone, Default)]
pub(crate) struct Notices {
    last: Arc<Mutex<HashMap<&'static str, Option<Said>>>>,
}

impl Notices {
    /// Raises (`Some`) or clears (`None`) alert `watcher.<name>.<kind>` if that changes what it
    /// says. Returns true when it changed. A failed write is logged and tried at the next scan.
    pub(crate) async fn set(
        &self,
        kv: &kv::Store,
        name: &str,
        kind: &'static str,
        now: Option<Said>,
    ) -> bool {
        let changed = {
            let last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
            last.get(kind) != Some(&now)
        };
        if !changed {
            return false;
        }
        let written = match &now {
            Some((message, details)) => {
                kb_stream::alerts::raise(kv, "watcher", name, kind, message, details.clone()).await
            }
            None => kb_stream::alerts::clear(kv, "watcher", name, kind).await,
        };
        match written {
            Ok(()) => {
                self.last
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(kind, now);
            }
            Err(e) => tracing::warn!(error = %e, kind, "cannot update a watcher alert"),
        }
        true
    }
}
