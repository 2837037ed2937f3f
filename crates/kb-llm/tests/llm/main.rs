//! kb-llm against a local server that speaks the chat-completions wire format.
#![allow(clippy::unwrap_used)]

mod budget;
mod fake;
mod http;
mod merge;
mod output;
mod wire;

use kb_core::Secret;
use kb_llm::{LlmExtractor, LlmSettings, Provider};
use kb_parse::ParseOptions;
use kb_proto::{ParsedDocument, SourceRef};

/// Names the fake model knows in [`TEXT`].
pub const NAMES: &[(&str, &str)] = &[
    ("Ada Lovelace", "person"),
    ("Acme Corp", "organization"),
    ("London", "place"),
    ("March 5, 2020", "date"),
    ("budget review", "topic"),
    ("Grace Hopper", "person"),
    ("Navy Research Lab", "organization"),
    ("compiler design", "topic"),
];

pub const RELATIONS: &[(&str, &str, &str, f64)] = &[
    ("Ada Lovelace", "Acme Corp", "belongs_to", 0.9),
    ("Ada Lovelace", "budget review", "discusses", 0.8),
    ("Grace Hopper", "Navy Research Lab", "belongs_to", 0.7),
    ("Grace Hopper", "compiler design", "discusses", 0.6),
];

/// Four paragraphs; with 64-token chunks each is its own chunk.
pub const TEXT: &str =
    "Ada Lovelace works for Acme Corp in London. On March 5, 2020 she led the budget review \
with the finance team, and the budget review went well for everyone involved in it.

Grace Hopper joined the Navy Research Lab to work on compiler design. Her notes on compiler design \
were shared widely across the lab and many teams adopted them within the year.

The budget review continued in London with Ada Lovelace presenting the numbers to the board. \
The board asked many questions about spending, hiring plans and the office lease.

Grace Hopper answered questions about compiler design at the Navy Research Lab seminar. \
Several students stayed long after the talk to discuss the details with her.";

pub fn doc(text: &str) -> ParsedDocument {
    let source = SourceRef {
        source_id: "src-1".into(),
        version: 1,
        origin: "test".into(),
        path: "notes.txt".into(),
        ..SourceRef::default()
    };
    let opts = ParseOptions {
        chunk_tokens: 64,
        overlap_tokens: 0,
        ..ParseOptions::default()
    };
    kb_parse::parse(&source, text.as_bytes(), &opts).unwrap()
}

pub fn settings(base_url: &str) -> LlmSettings {
    LlmSettings {
        enabled: true,
        provider: Provider::Mistral,
        base_url: base_url.into(),
        model: "fake-model".into(),
        api_key: Secret::new("sk-test-secret"),
        max_retries: 3,
        retry_base_delay_ms: 10,
        timeout_secs: 10,
        chunks_per_request: 1,
        ..LlmSettings::default()
    }
}

pub fn extractor(s: LlmSettings) -> LlmExtractor {
    LlmExtractor::with_env(s, |_| None).unwrap()
}
