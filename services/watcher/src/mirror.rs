//! The version a folder source publishes next.

use crate::error::WatchError;
use kb_stream::Publisher;

/// The version after `last`; for a source without state, after whatever the mirror holds and
/// every forgotten tombstone ([`Publisher::highest_version`]), so neither a lost or wiped state
/// bucket nor a forgotten deletion can make new versions lose to old ones.
pub(crate) async fn next_version(
    publisher: &Publisher,
    source_id: &str,
    last: Option<u64>,
) -> Result<u64, WatchError> {
    Ok(match last {
        Some(v) => v + 1,
        None => publisher.highest_version(source_id).await? + 1,
    })
}
