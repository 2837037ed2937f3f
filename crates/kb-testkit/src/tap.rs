//! A core NATS subscription that records every message published on a subject, for tests
//! that must see each one although the stream keeps only the latest per subject (`KB_SOURCE`,
//! `KB_PARSED`): what was published, not what is still stored.

use std::collections::HashSet;

use anyhow::Context;
use futures::{FutureExt, StreamExt};

/// Records from [`SubjectTap::start`] on.
pub struct SubjectTap {
    client: async_nats::Client,
    state: tokio::sync::Mutex<TapState>,
}

struct TapState {
    sub: async_nats::Subscriber,
    seen: HashSet<String>,
    messages: Vec<async_nats::Message>,
}

impl SubjectTap {
    /// Subscribes to `subject` (wildcards allowed) and waits until the server has the
    /// subscription, so nothing published after this returns is missed.
    pub async fn start(url: &str, subject: &str) -> anyhow::Result<Self> {
        let client = async_nats::connect(url)
            .await
            .with_context(|| format!("cannot connect to {url}"))?;
        let sub = client.subscribe(subject.to_string()).await?;
        client.flush().await?;
        Ok(Self {
            client,
            state: tokio::sync::Mutex::new(TapState {
                sub,
                seen: HashSet::new(),
                messages: Vec::new(),
            }),
        })
    }

    /// Every message published so far, in order; a message whose `Nats-Msg-Id` came before
    /// is left out, as JetStream's deduplication leaves it out of the stream. The server sends
    /// a publish to subscribers before the stream acknowledges it, and a flush's answer after
    /// both, so every publish acknowledged before this call is in the list.
    pub async fn messages(&self) -> anyhow::Result<Vec<async_nats::Message>> {
        self.client.flush().await?;
        let mut state = self.state.lock().await;
        // Unconstrained: tokio's cooperative budget would stop the drain after 128 messages.
        while let Some(Some(m)) = tokio::task::unconstrained(state.sub.next()).now_or_never() {
            let id = m
                .headers
                .as_ref()
                .and_then(|h| h.get("Nats-Msg-Id"))
                .map(|v| v.as_str().to_string());
            if let Some(id) = id {
                if !state.seen.insert(id) {
                    continue;
                }
            }
            state.messages.push(m);
        }
        Ok(state.messages.clone())
    }
}
