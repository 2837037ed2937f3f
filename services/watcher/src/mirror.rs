//! Publishing a state change (failure, tombstone) straight to the mirror stream, and the
//! version a source publishes next, shared by the folder and the Drive source.

use crate::error::{WatchError, WatchErrorKind};
use crate::scan::STAGE;
use kb_proto::{mirror_event::Kind, DeadLetter, SourceRef};
use kb_stream::progress::now_ms;
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

/// The version after `last`; for a source without state, after whatever the mirror holds, so a
/// lost or wiped state bucket cannot make new versions lose to old ones.
pub(crate) async fn next_version(
    publisher: &Publisher,
    source_id: &str,
    last: Option<u64>,
) -> Result<u64, WatchError> {
    Ok(match last {
        Some(v) => v + 1,
        None => publisher.mirror_version(source_id).await? + 1,
    })
}

/// A file that cannot be read: a FAILED mirror event with `reason`, and a dead letter for it.
/// Returns the version published.
pub(crate) async fn publish_failure(
    publisher: &Publisher,
    source: SourceRef,
    error_kind: &str,
    reason: &str,
) -> Result<u64, WatchError> {
    let version = publish_mirror(publisher, source.clone(), Kind::Failed, reason).await?;
    publisher
        .dead_letter(&DeadLetter {
            stage: STAGE.to_string(),
            error_kind: error_kind.to_string(),
            reason: reason.to_string(),
            failed_unix_ms: now_ms(),
            source: Some(SourceRef { version, ..source }),
            ..Default::default()
        })
        .await?;
    Ok(version)
}

/// The tombstone of source `source_id` (last at `path`, as `media_type`): a DELETE as the
/// version after `last_version`. Returns the version published.
pub(crate) async fn publish_tombstone(
    publisher: &Publisher,
    source_id: &str,
    origin: &str,
    path: &str,
    media_type: &str,
    last_version: u64,
) -> Result<u64, WatchError> {
    let source = SourceRef {
        link: String::new(),
        source_id: source_id.to_string(),
        version: last_version + 1,
        origin: origin.to_string(),
        path: path.to_string(),
        content_hash: String::new(),
        media_type: media_type.to_string(),
        modified_unix_ms: now_ms(),
        size: 0,
    };
    publish_mirror(publisher, source, Kind::Delete, "").await
}
