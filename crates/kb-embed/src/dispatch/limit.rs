//! How many requests may be in flight: up to a maximum, halved when the provider answers 429,
//! then grown back by one after each run of `limit` successes (additive increase,
//! multiplicative decrease, as TCP does), and paused for the provider's `Retry-After`.
//!
//! Only a 429 to a request sent after the last cut cuts again: the others were sent under the
//! old limit, and one burst of congestion is one signal.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

#[derive(Debug)]
struct State {
    limit: usize,
    in_flight: usize,
    successes: usize,
    paused_until: Option<Instant>,
    /// Counts cuts; a permit remembers the epoch it was taken in.
    epoch: u64,
}

#[derive(Debug)]
pub(crate) struct AdaptiveLimit {
    max: usize,
    state: Mutex<State>,
    changed: Notify,
}

/// One request slot; released on drop.
pub(crate) struct Permit {
    limit: Arc<AdaptiveLimit>,
    epoch: u64,
}

impl Permit {
    /// The limit's epoch when this slot was taken (see [`AdaptiveLimit::on_throttled`]).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut s = self.limit.lock();
        s.in_flight = s.in_flight.saturating_sub(1);
        drop(s);
        self.limit.changed.notify_waiters();
    }
}

impl AdaptiveLimit {
    pub fn new(max: usize) -> Arc<Self> {
        let max = max.max(1);
        Arc::new(Self {
            max,
            state: Mutex::new(State {
                limit: max,
                in_flight: 0,
                successes: 0,
                paused_until: None,
                epoch: 0,
            }),
            changed: Notify::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent under every panic point (plain field updates).
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for a free slot and for any rate-limit pause to end.
    pub async fn acquire(self: &Arc<Self>) -> Permit {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            // Registered before the check, so a release between check and await is not missed.
            notified.as_mut().enable();
            let pause = {
                let mut s = self.lock();
                match s.paused_until {
                    Some(t) if t > Instant::now() => Some(t),
                    _ => {
                        s.paused_until = None;
                        if s.in_flight < s.limit {
                            s.in_flight += 1;
                            return Permit {
                                limit: Arc::clone(self),
                                epoch: s.epoch,
                            };
                        }
                        None
                    }
                }
            };
            match pause {
                Some(until) => tokio::select! {
                    _ = tokio::time::sleep_until(until) => {}
                    _ = &mut notified => {}
                },
                None => notified.await,
            }
        }
    }

    /// A request went through: after `limit` of them in a row, allow one more in flight.
    pub fn on_success(&self) {
        let mut s = self.lock();
        s.successes += 1;
        if s.successes >= s.limit && s.limit < self.max {
            s.limit += 1;
            s.successes = 0;
            drop(s);
            self.changed.notify_waiters();
        }
    }

    /// The provider said 429 to a request sent in `epoch`: halve the limit (once per epoch)
    /// and hold new requests for `retry_after`.
    pub fn on_throttled(&self, epoch: u64, retry_after: Option<Duration>) {
        let now = Instant::now();
        let mut s = self.lock();
        if epoch == s.epoch {
            s.limit = (s.limit / 2).max(1);
            s.epoch += 1;
        }
        s.successes = 0;
        if let Some(d) = retry_after {
            let until = now + d;
            s.paused_until = Some(s.paused_until.map_or(until, |p| p.max(until)));
        }
        let limit = s.limit;
        drop(s);
        metrics::gauge!("kb_embed_in_flight_limit").set(limit as f64);
    }

    pub fn current(&self) -> usize {
        self.lock().limit
    }

    #[cfg(test)]
    pub fn in_flight(&self) -> usize {
        self.lock().in_flight
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bounds_in_flight_and_releases_on_drop() {
        let l = AdaptiveLimit::new(2);
        let a = l.acquire().await;
        let _b = l.acquire().await;
        assert_eq!(l.in_flight(), 2);
        let waiter = {
            let l = Arc::clone(&l);
            tokio::spawn(async move { l.acquire().await })
        };
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(!waiter.is_finished(), "a third request got a slot");
        drop(a);
        let _c = tokio::time::timeout(Duration::from_secs(2), waiter)
            .await
            .expect("slot freed")
            .expect("task");
        assert_eq!(l.in_flight(), 2);
    }

    #[tokio::test]
    async fn halves_on_429_then_recovers_additively() {
        let l = AdaptiveLimit::new(8);
        let (a, b) = (l.acquire().await, l.acquire().await);
        l.on_throttled(a.epoch(), None);
        assert_eq!(l.current(), 4);
        // Another 429 to a request sent before the cut is the same signal.
        l.on_throttled(b.epoch(), None);
        assert_eq!(l.current(), 4);
        drop((a, b));
        let c = l.acquire().await;
        l.on_throttled(c.epoch(), None);
        assert_eq!(l.current(), 2);
        drop(c);
        (0..2).for_each(|_| l.on_success());
        assert_eq!(l.current(), 3);
        (0..3 + 4 + 5 + 100).for_each(|_| l.on_success());
        assert_eq!(l.current(), 8, "back to the maximum, never above");
    }

    #[tokio::test]
    async fn retry_after_pauses_new_requests() {
        let l = AdaptiveLimit::new(4);
        let started = Instant::now();
        l.on_throttled(0, Some(Duration::from_millis(300)));
        let _p = l.acquire().await;
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "{:?}",
            started.elapsed()
        );
    }
}
