//! The contract between the writer services and the stores they mirror into.
//!
//! A store applies [`Change`]s last-writer-wins by source version, so redelivery, out-of-order
//! arrival and replays all converge to the same state, and it can summarize what it holds per
//! source so `kb verify` can compare two stores without knowing either.
//!
//! [`Change`] is the one change type from the stream to the stores: the writers decode a mirror
//! event into the data a `Change` borrows and hand it to [`MirrorStore::apply`] as it is.
//!
//! Every apply has a deadline ([`MirrorStore::apply_deadline`]: the store's base timeout plus
//! one second per [`CHUNKS_PER_EXTRA_SECOND`] chunks), so a store that stops answering yields
//! an error within a bounded time instead of a writer stuck forever.

mod error;
pub mod read;
mod summary;

pub use error::{StoreError, StoreErrorExt, StoreErrorKind};
pub use summary::{SourceSummary, StoreCounts};

use std::time::Duration;

use kb_proto::{ParsedDocument, SourceRef};

/// The apply deadline of a store that sets none: `postgres.apply_timeout_secs` and
/// `neo4j.apply_timeout_secs` default to the same.
pub const DEFAULT_APPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// A document's apply deadline grows by one second per this many chunks (a large document is
/// written in bounded batches of about this size, each a bounded step).
pub const CHUNKS_PER_EXTRA_SECOND: usize = 500;

/// `base` plus one second per started [`CHUNKS_PER_EXTRA_SECOND`] chunks of an upsert.
pub fn scaled_deadline(base: Duration, change: &Change<'_>) -> Duration {
    let chunks = match change {
        Change::Upsert(doc) => doc.chunks.len(),
        Change::Delete(_) | Change::Failed(..) => 0,
    };
    let extra = u64::try_from(chunks.div_ceil(CHUNKS_PER_EXTRA_SECOND)).unwrap_or(u64::MAX);
    base.saturating_add(Duration::from_secs(extra))
}

/// One change to one source, as read from the mirror stream.
#[derive(Debug, Clone, Copy)]
pub enum Change<'a> {
    /// The source exists with this content (chunks carry their embeddings).
    Upsert(&'a ParsedDocument),
    /// The source was deleted at this version.
    Delete(&'a SourceRef),
    /// The source could not be processed at this version; the reason is kept.
    Failed(&'a SourceRef, &'a str),
}

impl Change<'_> {
    pub fn source(&self) -> Option<&SourceRef> {
        match self {
            Change::Upsert(doc) => doc.source.as_ref(),
            Change::Delete(s) | Change::Failed(s, _) => Some(s),
        }
    }

    /// The version this change brings (0 when an upsert names no source).
    pub fn version(&self) -> u64 {
        self.source().map(|s| s.version).unwrap_or(0)
    }
}

/// What applying a change did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The document's content was written (created or replaced).
    Written,
    /// The document and whatever only it referenced were removed.
    Deleted,
    /// The source is recorded as failed with its reason.
    MarkedFailed,
    /// Ignored: the store already holds this or a newer version.
    Stale { current: u64 },
}

/// A store the mirror stream is written into.
#[async_trait::async_trait]
pub trait MirrorStore: Send + Sync {
    /// Short name used in logs, metrics and consumer names: "postgres", "graph".
    fn name(&self) -> &'static str;
    /// Creates schema/constraints; idempotent; called once at start.
    async fn prepare(&self) -> Result<(), StoreError>;
    /// Applies one change in one transaction, last-writer-wins on the source version.
    ///
    /// A store records a failure at version V ([`Change::Failed`]) as a placeholder that the
    /// content or the deletion of the *same* version V still replaces: a writer that gave up on
    /// V marks it failed, and a retry of V (`kb dead-letters retry`) must then go in.
    ///
    /// A store that enforces its own [`Self::apply_deadline`] returns a
    /// [`StoreError::timeout`] when it passes, after making sure nothing it waited on (a
    /// connection that stopped answering) is used again.
    async fn apply(&self, change: Change<'_>) -> Result<Applied, StoreError>;
    /// How long one apply of `change` may take: the store's base timeout plus one second per
    /// [`CHUNKS_PER_EXTRA_SECOND`] chunks ([`scaled_deadline`]). The writer gives every apply
    /// this long (and a little grace for the store to report it itself).
    fn apply_deadline(&self, change: &Change<'_>) -> Duration {
        scaled_deadline(DEFAULT_APPLY_TIMEOUT, change)
    }
    /// Answers a trivial query within a short deadline (`SELECT 1`, `RETURN 1`): the store is
    /// up and answering. The writer asks before it blames a document for its timeouts, so the
    /// default, for a store that cannot tell, is an error: never blame the document.
    async fn probe(&self) -> Result<(), StoreError> {
        Err(StoreError::transient(format!(
            "the {} store cannot be probed",
            self.name()
        )))
    }
    /// Forgets the tombstones of sources deleted before `deleted_before_unix_ms` (the
    /// retention, `nats.tombstone_retention_secs`); returns how many. Past it the stream
    /// side forgets them too and reserves any new version of such a source above every
    /// forgotten one, so nothing older can come back.
    async fn purge_tombstones(&self, deleted_before_unix_ms: i64) -> Result<u64, StoreError>;
    /// One summary per live or failed source (not deleted ones), sorted by source id.
    async fn summaries(&self) -> Result<Vec<SourceSummary>, StoreError>;
    /// Totals over the whole store.
    async fn counts(&self) -> Result<StoreCounts, StoreError>;
    /// Bulk mode for filling an **empty** store from the mirror stream (replay, a writer
    /// catching up into a new database): the store may drop what makes single writes slow,
    /// e.g. a vector index. Returns whether bulk mode is now on; `false` (the default) when the
    /// store holds anything or has nothing to gain. Changes still go through [`Self::apply`].
    async fn begin_bulk(&self) -> Result<bool, StoreError> {
        Ok(false)
    }
    /// Ends bulk mode: rebuilds what [`Self::begin_bulk`] dropped. Idempotent, and safe to
    /// call when bulk mode was never started.
    async fn end_bulk(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_grows_by_a_second_per_500_chunks_of_an_upsert() {
        let base = Duration::from_secs(60);
        let doc = |n: usize| ParsedDocument {
            chunks: vec![kb_proto::Chunk::default(); n],
            ..Default::default()
        };
        let source = SourceRef::default();
        for (chunks, secs) in [(0, 60), (1, 61), (500, 61), (501, 62), (20_000, 100)] {
            let d = doc(chunks);
            assert_eq!(
                scaled_deadline(base, &Change::Upsert(&d)),
                Duration::from_secs(secs),
                "{chunks} chunks"
            );
        }
        assert_eq!(scaled_deadline(base, &Change::Delete(&source)), base);
        assert_eq!(scaled_deadline(base, &Change::Failed(&source, "x")), base);
        assert_eq!(
            scaled_deadline(Duration::MAX, &Change::Upsert(&doc(1))),
            Duration::MAX
        );
    }

    #[test]
    fn a_timeout_is_transient_and_says_so() {
        let e = StoreError::timeout("no answer");
        assert!(e.is_transient() && e.is_timeout());
        assert!(!StoreError::transient("refused").is_timeout());
        assert_eq!(e.to_string(), "no answer");
    }
}
