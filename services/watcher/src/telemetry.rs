//! The watcher's stage telemetry, emitted the same way by the folder and the Drive source.

use crate::scan::STAGE;
use kb_core::telemetry::{EventsSent, ProcessingError};
use kb_stream::DeadLetterKind;
use std::time::Instant;

/// One version of `source_id` went out (`outcome`: "published", "deleted", "failed").
pub(crate) fn sent(source_id: &str, version: u64, outcome: &str, started: Instant) {
    EventsSent {
        stage: STAGE.as_str(),
        source_id,
        version,
        outcome,
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
    sent(source_id, version, "failed", started);
}
