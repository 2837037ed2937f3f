//! The version a folder source publishes next.

use crate::error::WatchError;
use kb_stream::Publisher;

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
