//! A store the read side depends on, which may be away. Every call has a deadline; a store
//! that misses it, or fails to answer, is taken as away at once, so the next queries answer
//! from the other store without waiting, and a background probe brings it back when it
//! answers again. A stopped process that still holds its port (a blackhole) costs one query
//! one deadline, not every query.
//!
//! Calls in flight per store are bounded (its connection pool's size): under more load than
//! the machine can answer, queries wait their turn here rather than inside the store, and
//! one that cannot get a turn within the deadline is answered without that store ("busy")
//! without taking the store as away — overload must not turn into an outage.

use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use kb_store::{StoreError, StoreErrorKind};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

/// How a slot gets its store and checks it answers.
#[async_trait::async_trait]
pub trait Connector<T: ?Sized>: Send + Sync {
    /// A client for the store (may be lazy).
    async fn connect(&self) -> Result<Arc<T>, StoreError>;
    /// A trivial round trip to the server.
    async fn probe(&self, store: &T) -> Result<(), StoreError>;
}

/// What `/readyz` reports about one store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct StoreStatus {
    pub store: String,
    pub up: bool,
    /// Why it is taken as away.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

struct State<T: ?Sized> {
    client: Option<Arc<T>>,
    up: bool,
    reason: Option<String>,
}

/// Why a call did not get an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Away(pub String);

pub struct Slot<T: ?Sized> {
    name: &'static str,
    deadline: Duration,
    /// Drop a client that failed and make a new one (a Bolt pool whose connections may be
    /// left mid-message by a timeout), rather than keep it (a pool that heals itself).
    drop_failed_client: bool,
    state: RwLock<State<T>>,
    turns: tokio::sync::Semaphore,
}

impl<T: ?Sized + Send + Sync> Slot<T> {
    /// A slot with no client yet: away until a probe succeeds. At most `concurrency` calls
    /// run at once (the store's pool size).
    pub fn new(
        name: &'static str,
        deadline: Duration,
        drop_failed_client: bool,
        concurrency: usize,
    ) -> Self {
        Self {
            name,
            deadline,
            drop_failed_client,
            turns: tokio::sync::Semaphore::new(concurrency.max(1)),
            state: RwLock::new(State {
                client: None,
                up: false,
                reason: Some("not connected yet".into()),
            }),
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// A slot holding `client`, taken as up (tests, and callers that just connected).
    pub fn with_client(name: &'static str, deadline: Duration, client: Arc<T>) -> Self {
        let slot = Self::new(name, deadline, false, 16);
        slot.set_up(client);
        slot
    }

    pub fn status(&self) -> StoreStatus {
        let s = self.state.read().unwrap_or_else(|e| e.into_inner());
        StoreStatus {
            store: self.name.to_owned(),
            up: s.up,
            reason: if s.up { None } else { s.reason.clone() },
        }
    }

    pub fn is_up(&self) -> bool {
        self.status().up
    }

    fn set_up(&self, client: Arc<T>) {
        let mut s = self.state.write().unwrap_or_else(|e| e.into_inner());
        if !s.up {
            tracing::info!(store = self.name, "store is answering");
        }
        s.client = Some(client);
        s.up = true;
        s.reason = None;
        metrics::gauge!("kb_query_store_up", "store" => self.name).set(1.0);
    }

    /// Takes the store as away.
    pub fn set_down(&self, reason: String) {
        let mut s = self.state.write().unwrap_or_else(|e| e.into_inner());
        if s.up {
            tracing::warn!(store = self.name, %reason, "store taken as away");
        }
        s.up = false;
        s.reason = Some(reason);
        if self.drop_failed_client {
            s.client = None;
        }
        metrics::gauge!("kb_query_store_up", "store" => self.name).set(0.0);
    }

    fn client_if_up(&self) -> Result<Arc<T>, Away> {
        let s = self.state.read().unwrap_or_else(|e| e.into_inner());
        match (&s.client, s.up) {
            (Some(c), true) => Ok(c.clone()),
            _ => Err(Away(s.reason.clone().unwrap_or_else(|| "away".into()))),
        }
    }

    /// Runs `op` against the store within the deadline. A store taken as away is not asked.
    /// A timeout or an unreachable store marks it away; a query the store rejects does not
    /// (the next query may be fine), but this one still gets no answer.
    pub async fn call<R, F, Fut>(&self, op: F) -> Result<R, Away>
    where
        F: FnOnce(Arc<T>) -> Fut,
        Fut: Future<Output = Result<R, StoreError>>,
    {
        let client = self.client_if_up()?;
        let started = tokio::time::Instant::now();
        let Ok(Ok(_turn)) = tokio::time::timeout(self.deadline, self.turns.acquire()).await else {
            metrics::counter!("kb_query_store_busy_total", "store" => self.name).increment(1);
            return Err(Away(format!(
                "busy: no turn within {:?} (more queries than it answers)",
                self.deadline
            )));
        };
        // The store gets what is left of the deadline after the wait for a turn.
        let left = self.deadline.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, op(client)).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => {
                let reason = format!("{e}");
                if e.kind != StoreErrorKind::Permanent {
                    self.set_down(reason.clone());
                } else {
                    tracing::warn!(store = self.name, error = %reason, "store rejected a query");
                }
                Err(Away(reason))
            }
            Err(_) => {
                let reason = format!("did not answer within {:?}", self.deadline);
                self.set_down(reason.clone());
                Err(Away(reason))
            }
        }
    }

    /// One connect-and-probe round: what the monitor does, and what a one-shot command does
    /// before its query.
    pub async fn check(&self, connector: &dyn Connector<T>) {
        let existing = {
            let s = self.state.read().unwrap_or_else(|e| e.into_inner());
            s.client.clone()
        };
        let attempt = async {
            let client = match existing {
                Some(c) => c,
                None => connector.connect().await?,
            };
            connector.probe(&client).await?;
            Ok::<_, StoreError>(client)
        };
        match tokio::time::timeout(self.deadline, attempt).await {
            Ok(Ok(client)) => self.set_up(client),
            Ok(Err(e)) => self.set_down(format!("{e}")),
            Err(_) => self.set_down(format!("did not answer within {:?}", self.deadline)),
        }
    }
}

/// Checks the slot every `interval` until `shutdown`: brings an away store back, and notices
/// one that went away while nobody asked.
pub fn spawn_monitor<T: ?Sized + Send + Sync + 'static>(
    slot: Arc<Slot<T>>,
    connector: Arc<dyn Connector<T>>,
    interval: Duration,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            slot.check(connector.as_ref()).await;
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Conn {
        connects: AtomicUsize,
        fail: std::sync::atomic::AtomicBool,
    }

    #[async_trait::async_trait]
    impl Connector<String> for Conn {
        async fn connect(&self) -> Result<Arc<String>, StoreError> {
            self.connects.fetch_add(1, Ordering::SeqCst);
            Ok(Arc::new("client".into()))
        }
        async fn probe(&self, _: &String) -> Result<(), StoreError> {
            if self.fail.load(Ordering::SeqCst) {
                Err(StoreError::transient("refused"))
            } else {
                Ok(())
            }
        }
    }

    #[tokio::test]
    async fn a_slow_store_is_away_at_once_and_comes_back_on_probe() {
        let slot = Slot::<String>::new("pg", Duration::from_millis(50), true, 4);
        let conn = Conn {
            connects: AtomicUsize::new(0),
            fail: false.into(),
        };
        assert!(
            slot.call(|_| async { Ok(1) }).await.is_err(),
            "not connected yet"
        );
        slot.check(&conn).await;
        assert_eq!(slot.call(|_| async { Ok(1) }).await, Ok(1));

        // A blackhole: the call waits for its deadline once, then the store is away.
        let r: Result<(), Away> = slot
            .call(|_| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok(())
            })
            .await;
        assert!(r.unwrap_err().0.contains("within"));
        assert!(!slot.is_up());
        let started = std::time::Instant::now();
        assert!(slot.call(|_| async { Ok(1) }).await.is_err());
        assert!(
            started.elapsed() < Duration::from_millis(40),
            "no second wait"
        );

        conn.fail.store(true, Ordering::SeqCst);
        slot.check(&conn).await;
        assert!(!slot.is_up());
        assert_eq!(slot.status().reason.as_deref(), Some("refused"));
        conn.fail.store(false, Ordering::SeqCst);
        slot.check(&conn).await;
        assert!(slot.is_up());
        // a failed client is dropped (drop_failed_client) and made anew by each later check
        assert_eq!(conn.connects.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn more_calls_than_turns_wait_and_the_late_ones_are_busy_not_away() {
        let slot = Arc::new(Slot::<String>::new(
            "graph",
            Duration::from_millis(300),
            false,
            1,
        ));
        slot.set_up(Arc::new(String::new()));
        let release = Arc::new(tokio::sync::Notify::new());
        let holder = {
            let (slot, release) = (slot.clone(), release.clone());
            tokio::spawn(async move {
                slot.call(|_| async move {
                    release.notified().await;
                    Ok(())
                })
                .await
            })
        };
        tokio::task::yield_now().await;
        // The one turn is taken: this call waits out its deadline for a turn.
        let busy = slot.call(|_| async { Ok(()) }).await.unwrap_err();
        assert!(busy.0.starts_with("busy"), "{busy:?}");
        assert!(slot.is_up(), "overload is not an outage");
        release.notify_one();
        assert_eq!(holder.await.unwrap(), Ok(()));
        assert_eq!(slot.call(|_| async { Ok(7) }).await, Ok(7));
    }

    #[tokio::test]
    async fn a_rejected_query_does_not_take_the_store_away() {
        let slot = Slot::with_client("graph", Duration::from_secs(1), Arc::new(String::new()));
        let r: Result<(), Away> = slot
            .call(|_| async { Err(StoreError::permanent("bad value")) })
            .await;
        assert!(r.is_err());
        assert!(slot.is_up());
    }
}
