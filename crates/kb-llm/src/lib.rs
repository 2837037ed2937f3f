//! The optional LLM extractor: entities, mentions and relations of a parsed document from a
//! chat-completions model (Mistral, or any OpenAI-compatible endpoint), on top of the local
//! extractor of `kb_parse` and merged into the same vocabularies and ids.
//!
//! - [`LlmExtractor::extract`] sends the document's chunks in groups with a strict JSON-schema
//!   `response_format` ([`schema::schema`]), validates every answer (schema, chunk numbers,
//!   names that must occur in their chunk, fixed type vocabularies) and returns an
//!   [`Extraction`] with counters of everything dropped.
//! - [`merge_into`] adds an [`Extraction`] to the [`kb_proto::ParsedDocument`], reusing the
//!   document's entities where they are the same thing, so ids stay those of
//!   `kb_parse::ids`.
//! - [`LlmExtractor::enrich`] does both.
//!
//! Calls retry on 429/5xx/timeouts honouring `Retry-After`, share one concurrency limit,
//! and stay within a per-document token budget (see [`extract`]). The API key is a
//! [`kb_core::Secret`] and never logged. See `docs/llm-extractor.md`.

// tests may unwrap: a panic there is a failing test
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod canon;
mod client;
mod error;
pub mod extract;
mod merge;
mod names;
pub mod prompt;
mod retry_after;
pub mod schema;
mod stats;
mod validate;
mod wire;

pub use error::{LlmError, LlmErrorKind};
pub use extract::{Extraction, LlmEntity, LlmExtractor, LlmMention, LlmRelation};
pub use kb_core::settings::{LlmConfigError, LlmProvider as Provider, LlmSettings};
pub use merge::{merge_into, MergeStats};
pub use stats::ExtractionStats;

/// What [`LlmExtractor::enrich`] did to a document.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Enrichment {
    pub stats: ExtractionStats,
    pub merge: MergeStats,
    /// Some chunks were left to the local extractor alone: budget spent.
    pub budget_exceeded: bool,
    /// Every chunk got a valid answer.
    pub complete: bool,
}

impl LlmExtractor {
    /// Extracts from `doc` and merges the result into it. On error `doc` is unchanged.
    pub async fn enrich(&self, doc: &mut kb_proto::ParsedDocument) -> Result<Enrichment, LlmError> {
        let ex = self.extract(doc).await?;
        let merge = merge_into(doc, &ex);
        Ok(Enrichment {
            complete: ex.is_complete(),
            budget_exceeded: ex.budget_exceeded,
            stats: ex.stats,
            merge,
        })
    }
}
