//! The crash journal in `kb_attempts` (`topology::ATTEMPTS_BUCKET`): whether a stage started
//! a message and never finished it, i.e. died on it (an abort, an OOM kill, a stack overflow),
//! and how often. The consume loop gives a message up as `crashed` after `crash_limit` deaths
//! instead of handing it out forever.
//!
//! Zero cost on the happy path: a first delivery writes nothing. On a redelivery the loop
//! reads the entry `<stage>.<stream>.<stream_seq>` = `{open, crashes}`; `open` means the last
//! start never finished (one more crash). It writes `open = true`, runs the handler, and any
//! finish writes `open = false` (nak) or deletes the entry (ack, term). Conservative by
//! construction: a journal that cannot be read or written never gives anything up, an entry
//! expires after 7 days, a transient nak loop finishes every attempt (no crash), and the
//! first delivery's death is not counted.

use async_nats::jetstream::kv;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// A handler started on this message and has not finished.
    pub open: bool,
    /// Deaths counted so far.
    pub crashes: u32,
}

/// What the loop does with a redelivered message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Run the handler; the journal holds an open entry with this many crashes.
    Run { crashes: u32 },
    /// The stage died `crashes` times on it: give it up without running the handler.
    GiveUp { crashes: u32 },
    /// The journal could not be read or written: run the handler, count nothing.
    Unknown,
}

#[derive(Clone)]
pub struct Journal {
    kv: kv::Store,
}

/// `<stage>.<stream>.<stream_seq>`
pub fn key(stage: &str, stream: &str, stream_sequence: u64) -> String {
    format!("{stage}.{stream}.{stream_sequence}")
}

impl Journal {
    pub fn new(kv: kv::Store) -> Self {
        Self { kv }
    }

    pub async fn get(&self, key: &str) -> Result<Option<Attempt>, String> {
        match self.kv.get(key).await {
            Ok(Some(bytes)) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| format!("bad journal entry {key}: {e}")),
            Ok(None) => Ok(None),
            Err(e) => Err(format!("cannot read journal entry {key}: {e}")),
        }
    }

    async fn put(&self, key: &str, attempt: Attempt) -> Result<(), String> {
        let bytes = serde_json::to_vec(&attempt).map_err(|e| e.to_string())?;
        self.kv
            .put(key, bytes.into())
            .await
            .map(drop)
            .map_err(|e| format!("cannot write journal entry {key}: {e}"))
    }

    /// Before running a redelivered message's handler.
    pub async fn start(&self, key: &str, crash_limit: u32) -> Start {
        let previous = match self.get(key).await {
            Ok(p) => p.unwrap_or_default(),
            Err(e) => {
                tracing::warn!(error = %e, "crash journal unavailable; not counting");
                return Start::Unknown;
            }
        };
        let crashes = previous.crashes + u32::from(previous.open);
        if crashes >= crash_limit.max(1) {
            return Start::GiveUp { crashes };
        }
        match self
            .put(
                key,
                Attempt {
                    open: true,
                    crashes,
                },
            )
            .await
        {
            Ok(()) => Start::Run { crashes },
            Err(e) => {
                tracing::warn!(error = %e, "crash journal unavailable; not counting");
                Start::Unknown
            }
        }
    }

    /// The handler finished and the message was nak'ed: it will come back, not as a crash.
    pub async fn finished_for_now(&self, key: &str, crashes: u32) {
        let closed = Attempt {
            open: false,
            crashes,
        };
        if let Err(e) = self.put(key, closed).await {
            tracing::debug!(error = %e, "cannot close the crash journal entry");
        }
    }

    /// The message was acked or termed: it never comes back.
    pub async fn finished(&self, key: &str) {
        if let Err(e) = self.kv.purge(key).await {
            tracing::debug!(key, error = %e, "cannot remove the crash journal entry");
        }
    }
}
