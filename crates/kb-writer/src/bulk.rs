//! Catching up into an empty store in bulk mode.
//!
//! A writer that starts on an empty store with a large backlog (a store enabled after a while,
//! a new database, a wiped one) asks the store for bulk mode ([`MirrorStore::begin_bulk`]:
//! Postgres drops its HNSW index), consumes as usual, and once its durable consumer has nothing
//! pending and nothing unacknowledged it ends bulk mode (the index is built once), after which
//! it simply goes on in normal mode. Should the writer stop before that, the next start's
//! `prepare` builds whatever is missing.

use async_nats::jetstream::stream::Stream as JsStream;
use kb_store::MirrorStore;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Backlog (mirror messages, i.e. documents) from which a writer on an empty store fills it in
/// bulk mode. Below it the index is cheap to keep up to date as documents arrive.
pub const DEFAULT_MIN_BACKLOG: u64 = 100;

/// How often the writer checks whether it has caught up.
const POLL: Duration = Duration::from_secs(1);

/// Messages waiting for the durable consumer `stage`: its pending count, or the whole stream
/// when the consumer does not exist yet (it starts at the beginning).
pub async fn backlog(mirror: &JsStream, stage: &str) -> Option<u64> {
    match mirror.consumer_info(stage).await {
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
    stage: &str,
    min_backlog: u64,
) -> bool {
    if min_backlog == 0 {
        return false;
    }
    let Some(waiting) = backlog(mirror, stage).await else {
        return false;
    };
    if waiting < min_backlog {
        return false;
    }
    match store.begin_bulk().await {
        Ok(true) => {
            tracing::info!(
                stage,
                backlog = waiting,
                "empty store and a backlog: bulk mode until caught up"
            );
            true
        }
        Ok(false) => false,
        Err(e) => {
            tracing::warn!(stage, error = %e, "cannot start bulk mode; writing normally");
            false
        }
    }
}

/// Waits until the durable consumer has caught up, then ends bulk mode (retrying transient
/// store errors). Returns early on shutdown.
pub async fn finish_when_caught_up<S: MirrorStore + ?Sized>(
    store: Arc<S>,
    mirror: JsStream,
    stage: &'static str,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(POLL) => {}
        }
        let caught_up = matches!(
            mirror.consumer_info(stage).await,
            Ok(info) if info.num_pending == 0 && info.num_ack_pending == 0
        );
        if !caught_up {
            continue;
        }
        tracing::info!(stage, "caught up: ending bulk mode (building indexes)");
        let started = std::time::Instant::now();
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
