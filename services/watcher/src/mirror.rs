//! Publishing a state change (failure, tombstone) straight to the mirror stream, shared by the
//! folder and the Drive source.

use crate::error::{WatchError, WatchErrorKind};
use kb_proto::{mirror_event::Kind, SourceRef};
use kb_stream::{MirrorPublish, Publisher};

/// Attempts before giving up on a mirror that keeps moving ahead.
const ATTEMPTS: usize = 5;

/// Publishes `kind` for `source` to the mirror stream. Should the mirror already hold a newer
/// version (the state fell behind it), publishes again just above that one. Returns the
/// version that was published.
pub(crate) async fn publish_mirror(
    publisher: &Publisher,
    mut source: SourceRef,
    kind: Kind,
    error: &str,
) -> Result<u64, WatchError> {
    for _ in 0..ATTEMPTS {
        match publisher.mirror(&source, kind, None, error).await? {
            MirrorPublish::Published => return Ok(source.version),
            MirrorPublish::Superseded { current } => {
                tracing::warn!(source_id = %source.source_id, state = source.version, mirror = current,
                    "the mirror is ahead of the watcher state; publishing above it");
                source.version = current + 1;
            }
        }
    }
    Err(WatchError::new(
        WatchErrorKind::Conflict,
        format!("mirror of {} kept moving ahead", source.source_id),
    ))
}
