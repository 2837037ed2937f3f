//! The watcher's stage telemetry, emitted the same way by the folder and the Drive source.

use crate::scan::STAGE;
use kb_core::telemetry::{EventsSent, ProcessingError};
use kb_stream::DeadLetterKind;
use std::time::Instant;

/// How the watcher finished one version of a file: the `outcome` label of its
/// `kb_events_sent_total` (docs/telemetry.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Sent {
    /// A source event (a new or changed file) went out.
    Published,
    /// A deletion went out.
    Deleted,
    /// The file is recorded as FAILED (it cannot be read).
    Failed,
}

impl Sent {
    /// The label on the wire of telemetry.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Sent::Published => "published",
            Sent::Deleted => "deleted",
            Sent::Failed => "failed",
        }
    }
}

/// One version of `source_id` went out.
pub(crate) fn sent(source_id: &str, version: u64, outcome: Sent, started: Instant) {
    EventsSent {
        stage: STAGE.as_str(),
        source_id,
        version,
        outcome: outcome.as_str(),
        elapsed: started.elapsed(),
    }
    .emit();
}

/// A file that cannot be read (at `path`), recorded as the FAILED `version`: not retried until
/// it changes.
pub(crate) fn failed(
    source_id: &str,
    version: u64,
    error_kind: &DeadLetterKind,
    path: &str,
    reason: &str,
    started: Instant,
) {
    ProcessingError {
        stage: STAGE.as_str(),
        source_id,
        error_kind: error_kind.as_str(),
        transient: false,
        reason: &format!("{}: {reason}", kb_core::display::clean(path)),
    }
    .emit();
    sent(source_id, version, Sent::Failed, started);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_keep_their_labels() {
        let all = [Sent::Published, Sent::Deleted, Sent::Failed];
        let labels: Vec<_> = all.iter().map(|o| o.as_str()).collect();
        assert_eq!(labels, ["published", "deleted", "failed"]);
    }
}
