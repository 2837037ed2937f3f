//! A provider-independent token estimate for packing requests under a token budget.
//!
//! Remote tokenizers differ (Mistral's, OpenAI's, each Ollama model's) and are not available
//! offline, so requests are packed on an estimate that errs high: one token per 3 bytes of
//! UTF-8. English runs at ~4 bytes per token and CJK at ~3, so the estimate stays above the
//! real count and a full request stays under the provider's limit. Should a provider still
//! count more, its 400 answer splits the request (see the dispatcher).

/// Estimated tokens of `text` (at least 1, since every input costs the provider something).
pub fn estimate_tokens(text: &str) -> usize {
    text.len().div_ceil(3).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errs_high_for_english_and_never_zero() {
        assert_eq!(estimate_tokens(""), 1);
        // 9 words, ~11 real tokens with a BPE tokenizer.
        let s = "The committee approved the budget for the new library.";
        assert!(estimate_tokens(s) >= 15, "{}", estimate_tokens(s));
        // 3 CJK characters, 9 bytes: about one token each.
        assert_eq!(estimate_tokens("日本語"), 3);
    }
}
