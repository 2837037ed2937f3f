//! Catching up into an empty store in bulk mode.
//!
//! A writer that starts on an empty store with a large backlog (a store enabled after a while,
//! a new database, a wiped one) asks the store for bulk mode ([`MirrorStore::begin_bulk`]:
//! Postgres drops its HNSW index), consumes as usual, and ends bulk mode (the index is built
//! once) as soon as the first of these holds:
//!
//! - the backlog it started with is written: its durable consumer's ack floor reached the
//!   mirror stream's last sequence at the start ([`Bulk::target_seq`]);
//! - its consumer has nothing pending and nothing unacknowledged (the messages of the backlog
//!   may have been replaced by newer versions of their sources meanwhile);
//! - `writer.bulk_max_secs` passed.
//!
//! Under continuous ingest the consumer never runs dry, so only the first and the last end it.
//! After that it simply goes on in normal mode. Should the writer stop before, the next
//! start's `prepare` builds whatever is missing.

use async_nats::jetstream::stream::Stream as JsStream;
use kb_store::MirrorStore;
use kb_stream::Stage;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Backlog (mirror messages, i.e. documents) from which a writer on an empty store fills it in
/// bulk mode. Below it the index is cheap to keep up to date as documents arrive.
pub const DEFAULT_MIN_BACKLOG: u64 = 100;

/// How often the writer checks whether it has caught up.
const POLL: Duration = Duration::from_secs(1);

/// Bulk mode, once started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bulk {
    /// The mirror stream's last sequence when bulk mode began: the backlog ends there.
    pub target_seq: u64,
    pub started: Instant,
}

/// Messages waiting for the durable consumer `stage`: its pending count, or the whole stream
/// when the consumer does not exist yet (it starts at the beginning).
pub async fn backlog(mirror: &JsStream, stage: Stage) -> Option<u64> {
    match mirror.consumer_info(stage.as_str()).await {
        Ok(info) => Some(info.num_pending + info.num_ack_pending as u64),
        Err(_) => {
            let mut stream = mirror.clone();
            stream.info().await.ok().map(|i| i.state.messages)
        }
    }
}

/// Starts bulk mode when the store is empty and the backlog is at least `min_backlog`.
/// Any error just means normal mode: bulk mode is an optimisation.
pub async fn maybe_begin<S: MirrorStore + ?Sized>(
    store: &S,
    mirror: &JsStream,
    stage: Stage,
    min_backlog: u64,
) -> Option<Bulk> {
    if min_backlog == 0 {
        return None;
    }
    let waiting = backlog(mirror, stage).await?;
    let stage = stage.as_str();
    if waiting < min_backlog {
        return None;
    }
    // Read before bulk mode begins: everything up to here is the backlog.
    let mut stream = mirror.clone();
    let target_seq = match stream.info().await {
        Ok(info) => info.state.last_sequence,
        Err(e) => {
            tracing::warn!(stage, error = %e, "cannot read the mirror stream; writing normally");
            return None;
        }
    };
    match store.begin_bulk().await {
        Ok(true) => {
            tracing::info!(
                stage,
                backlog = waiting,
                target_seq,
                "empty store and a backlog: bulk mode until the backlog is written"
            );
            Some(Bulk {
                target_seq,
                started: Instant::now(),
            })
        }
        Ok(false) => None,
        Err(e) => {
            tracing::warn!(stage, error = %e, "cannot start bulk mode; writing normally");
            None
        }
    }
}

/// Whether bulk mode should end now (see the module docs).
async fn should_end(mirror: &JsStream, stage: Stage, bulk: &Bulk, max: Duration) -> bool {
    let stage = stage.as_str();
    if bulk.started.elapsed() >= max {
        tracing::info!(
            stage,
            ?max,
            "bulk mode has lasted writer.bulk_max_secs: ending it"
        );
        return true;
    }
    match mirror.consumer_info(stage).await {
        Ok(info) => {
            info.ack_floor.stream_sequence >= bulk.target_seq
                || (info.num_pending == 0 && info.num_ack_pending == 0)
        }
        Err(_) => false,
    }
}

/// Waits until the backlog is written (or `max` passed), then ends bulk mode (retrying
/// transient store errors). Returns early on shutdown.
pub async fn finish_when_caught_up<S: MirrorStore + ?Sized>(
    store: Arc<S>,
    mirror: JsStream,
    stage: Stage,
    bulk: Bulk,
    max: Duration,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(POLL) => {}
        }
        if !should_end(&mirror, stage, &bulk, max).await {
            continue;
        }
        let stage = stage.as_str();
        tracing::info!(
            stage,
            "backlog written: ending bulk mode (building indexes)"
        );
        let started = Instant::now();
        loop {
            match store.end_bulk().await {
                Ok(()) => {
                    tracing::info!(
                        stage,
                        seconds = started.elapsed().as_secs_f64(),
                        "bulk mode ended"
                    );
                    return;
                }
                Err(e) => {
                    tracing::warn!(stage, error = %e, "cannot end bulk mode yet, retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(POLL * 2) => {}
                    }
                }
            }
        }
    }
}
