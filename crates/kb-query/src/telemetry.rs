//! The read side's internal events: each logs and counts at once, like the stages' events.

use std::time::Duration;

use crate::api::{Mode, Retriever};

/// A search was answered (or could not be).
pub struct QueryServed<'a> {
    pub mode: Mode,
    pub degraded: &'a [Retriever],
    pub elapsed: Duration,
}

impl QueryServed<'_> {
    pub fn emit(&self) {
        let mode = self.mode.as_str();
        tracing::debug!(
            mode,
            degraded = ?self.degraded,
            ms = self.elapsed.as_millis() as u64,
            "search answered"
        );
        metrics::counter!("kb_query_searches_total", "mode" => mode, "outcome" => if self.degraded.is_empty() { "ok" } else { "degraded" })
            .increment(1);
        for r in self.degraded {
            metrics::counter!("kb_query_degraded_total", "retriever" => r.as_str()).increment(1);
        }
        metrics::histogram!("kb_query_seconds", "mode" => mode).record(self.elapsed.as_secs_f64());
    }

    /// No store could answer.
    pub fn unavailable(mode: Mode) -> Unavailable {
        Unavailable(mode)
    }
}

pub struct Unavailable(Mode);

impl Unavailable {
    pub fn emit(&self) {
        tracing::warn!(
            mode = self.0.as_str(),
            "search unanswered: no store reachable"
        );
        metrics::counter!("kb_query_searches_total", "mode" => self.0.as_str(), "outcome" => "unavailable")
            .increment(1);
    }
}
