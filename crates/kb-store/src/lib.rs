//! The contract between the writer services and the stores they mirror into.
//!
//! A store applies [`Change`]s last-writer-wins by source version, so redelivery, out-of-order
//! arrival and replays all converge to the same state, and it can summarize what it holds per
//! source so `kb verify` can compare two stores without knowing either.

mod error;
pub mod read;
mod summary;

pub use error::{StoreError, StoreErrorKind};
pub use summary::{SourceSummary, StoreCounts};

use kb_proto::{ParsedDocument, SourceRef};

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
    async fn apply(&self, change: Change<'_>) -> Result<Applied, StoreError>;
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
