//! Knobs of [`crate::parse`].

use serde::Deserialize;

/// Limits and chunk sizes. Sizes are in the chunker's approximate tokens (see [`crate::tokens`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ParseOptions {
    /// Documents larger than this many raw bytes fail with `TooLarge`.
    pub max_bytes: usize,
    /// Token budget of one chunk (clamped to at least [`MIN_CHUNK_TOKENS`]).
    pub chunk_tokens: usize,
    /// Tokens of context repeated from the end of the previous chunk (clamped to half a chunk).
    pub overlap_tokens: usize,
    /// Bytes that the compressed parts of one document (zip entries, PDF streams) may inflate
    /// to in total; more fails with `DecompressionBomb`.
    pub max_inflated_bytes: usize,
    /// Pages a PDF may have; more fails with `TooLarge`.
    pub max_pages: usize,
    /// Chunks one document may have; more fails with `TooLarge` (checked once the text is
    /// packed, before entities are extracted), so one huge document cannot monopolise the
    /// stages and stores after the parser.
    pub max_chunks: usize,
    /// Wall-clock budget of one parse in milliseconds (0: none); past it the parse stops with
    /// `Timeout` at its next check.
    pub timeout_ms: u64,
}

/// Smallest budget the chunker accepts; smaller values are raised to it so a speaker label
/// and a sentence fit, and only words over 32 tokens (long ids, base64) are ever cut.
pub const MIN_CHUNK_TOKENS: usize = 64;

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            max_bytes: 64 * 1024 * 1024,
            chunk_tokens: 200,
            overlap_tokens: 30,
            max_inflated_bytes: 256 * 1024 * 1024,
            max_pages: 2000,
            max_chunks: 20_000,
            timeout_ms: 0,
        }
    }
}

impl ParseOptions {
    /// The budget actually used.
    pub fn effective_chunk_tokens(&self) -> usize {
        self.chunk_tokens.max(MIN_CHUNK_TOKENS)
    }

    /// The overlap actually used.
    pub fn effective_overlap_tokens(&self) -> usize {
        self.overlap_tokens.min(self.effective_chunk_tokens() / 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_clamps() {
        let d = ParseOptions::default();
        assert_eq!((d.chunk_tokens, d.overlap_tokens), (200, 30));
        let tiny = ParseOptions {
            chunk_tokens: 3,
            overlap_tokens: 100,
            ..d
        };
        assert_eq!(tiny.effective_chunk_tokens(), MIN_CHUNK_TOKENS);
        assert_eq!(tiny.effective_overlap_tokens(), MIN_CHUNK_TOKENS / 2);
    }
}
