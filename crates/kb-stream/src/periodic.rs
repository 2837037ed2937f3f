//! The loop every background collector runs: wait an interval (at least a second), run once,
//! until shutdown. Each run reports its own outcome; a failed run is simply tried next time.

use std::future::Future;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Calls `run` every `interval` until `shutdown`, the first time after one interval.
pub async fn every<F, Fut>(interval: Duration, shutdown: &CancellationToken, mut run: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let interval = interval.max(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        run().await;
    }
}
