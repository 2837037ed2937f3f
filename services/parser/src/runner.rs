//! Where and how one parse runs (`parser.isolation`):
//!
//! - `thread`: on a blocking thread of the parser process. The parse checks its deadline
//!   between steps and stops itself with `timeout`; the stage stops waiting for it
//!   [`HARD_TIMEOUT_GRACE`] after `parser.timeout_secs` in any case. A panic is contained
//!   (`panicked`). What it cannot contain: a parse stuck where no deadline is checked keeps
//!   its thread (and a core) busy until it returns, and an abort, a stack overflow or an
//!   out-of-memory kill takes the whole parser down (the crash journal then gives the
//!   document up as `crashed` after `parser.crash_limit` deaths).
//! - `process`: in a worker process per document ([`crate::worker`]) under an address-space
//!   limit (`parser.worker_memory_mb`), killed at the same deadline. A worker that dies is
//!   replaced at once for another try; after `parser.crash_limit` deaths the document fails
//!   as `crashed`. Nothing a document does can take the parser down or keep a core busy.

use std::sync::Arc;
use std::time::Duration;

use kb_core::failpoint::Flow;
use kb_core::settings::{Isolation, ParserSettings};
use kb_parse::{ParseError, ParseErrorKind, ParseOptions};
use kb_proto::{ParsedDocument, SourceRef};
use kb_stream::DeadLetterKind;

use crate::worker::spawn::{self, Died, WorkerConfig, WorkerError};

/// Margin past the parse's own deadline before the stage stops waiting for it (thread) or
/// kills it (process): the parse checks its deadline between steps, so it normally ends
/// itself first.
pub const HARD_TIMEOUT_GRACE: Duration = Duration::from_secs(2);

/// Why a document failed, for its dead letter and its FAILED record.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseFailure {
    pub kind: DeadLetterKind,
    pub reason: String,
}

impl ParseFailure {
    pub fn new(kind: DeadLetterKind, reason: impl Into<String>) -> Self {
        Self {
            kind,
            reason: reason.into(),
        }
    }

    fn timeout(budget: Duration) -> Self {
        Self::new(
            DeadLetterKind::Timeout,
            format!("timeout: parsing took longer than {budget:?}"),
        )
    }
}

impl From<ParseError> for ParseFailure {
    fn from(e: ParseError) -> Self {
        Self::new(dead_letter_kind(e.kind), e.to_string())
    }
}

/// The dead-letter kind of a parse error (same name).
fn dead_letter_kind(kind: ParseErrorKind) -> DeadLetterKind {
    match kind {
        ParseErrorKind::Empty => DeadLetterKind::Empty,
        ParseErrorKind::TooLarge => DeadLetterKind::TooLarge,
        ParseErrorKind::UnsupportedFormat => DeadLetterKind::UnsupportedFormat,
        ParseErrorKind::InvalidEncoding => DeadLetterKind::InvalidEncoding,
        ParseErrorKind::Corrupt => DeadLetterKind::Corrupt,
        ParseErrorKind::Encrypted => DeadLetterKind::Encrypted,
        ParseErrorKind::DecompressionBomb => DeadLetterKind::DecompressionBomb,
        ParseErrorKind::Timeout => DeadLetterKind::Timeout,
    }
}

/// How a parse did not give a document.
#[derive(Debug, Clone, PartialEq)]
pub enum RunFailure {
    /// The document failed: dead letter and FAILED record.
    Document(ParseFailure),
    /// The worker could not be started (a missing `parser.worker_bin`, no processes left):
    /// nothing is wrong with the document, so it is retried once an operator fixes it.
    Start(String),
}

impl From<ParseFailure> for RunFailure {
    fn from(f: ParseFailure) -> Self {
        RunFailure::Document(f)
    }
}

/// The parse itself, as a thread and a worker run it. Failpoint `parser.parse` (tests), keyed
/// by the source id: `panic`, `abort`, `spin`, `sleep` stand for a parser library that
/// panics, crashes the process, or runs away.
pub fn parse_document(
    source: &SourceRef,
    bytes: &[u8],
    opts: &ParseOptions,
) -> Result<ParsedDocument, ParseError> {
    if let Flow::Err(m) = kb_core::failpoint_blocking!("parser.parse", &source.source_id) {
        return Err(ParseError::new(
            kb_parse::ParseErrorKind::Corrupt,
            format!("failpoint: {m}"),
        ));
    }
    kb_parse::parse(source, bytes, opts)
}

/// Runs parses as the settings say.
#[derive(Debug, Clone)]
pub struct Runner {
    options: ParseOptions,
    /// Wall-clock budget of one document (`parser.timeout_secs`).
    budget: Duration,
    /// `None`: on a thread.
    worker: Option<WorkerConfig>,
    crash_limit: u32,
}

impl Runner {
    /// From `[parser]`; `worker_bin` unset is this program.
    pub fn new(cfg: &ParserSettings) -> Result<Self, String> {
        let worker = match cfg.isolation {
            Isolation::Thread => None,
            Isolation::Process => {
                let bin = match &cfg.worker_bin {
                    Some(b) => b.clone(),
                    None => std::env::current_exe()
                        .map_err(|e| format!("cannot find the parser's own program: {e}"))?,
                };
                // A wrong path stops the start instead of failing every document.
                if !bin.is_file() {
                    return Err(format!(
                        "parser.worker_bin {} is not a program file",
                        bin.display()
                    ));
                }
                Some(WorkerConfig {
                    bin,
                    memory_bytes: cfg.worker_memory_mb.saturating_mul(1024 * 1024),
                })
            }
        };
        Ok(Self {
            options: crate::parse_options(cfg),
            budget: Duration::from_secs(cfg.timeout_secs.max(1)),
            worker,
            crash_limit: cfg.crash_limit.max(1),
        })
    }

    pub fn options(&self) -> &ParseOptions {
        &self.options
    }

    /// Parses `bytes` within the budget.
    pub async fn parse(
        &self,
        source: &SourceRef,
        bytes: Arc<Vec<u8>>,
    ) -> Result<ParsedDocument, RunFailure> {
        match &self.worker {
            None => parse_on_thread(source.clone(), bytes, self.options.clone(), self.budget)
                .await
                .map_err(RunFailure::Document),
            Some(w) => self.parse_in_workers(w, source, &bytes).await,
        }
    }

    /// One worker per try; a worker's death is another try, up to `crash_limit` deaths.
    async fn parse_in_workers(
        &self,
        w: &WorkerConfig,
        source: &SourceRef,
        bytes: &[u8],
    ) -> Result<ParsedDocument, RunFailure> {
        let mut last: Option<Died> = None;
        for attempt in 1..=self.crash_limit {
            match spawn::parse(w, source, bytes, &self.options, self.budget).await {
                Ok(Ok(doc)) => return Ok(doc),
                Ok(Err(failure)) => return Err(failure.into()),
                Err(WorkerError::Timeout) => {
                    let mut f = ParseFailure::timeout(self.budget);
                    f.reason.push_str("; the worker was killed");
                    return Err(f.into());
                }
                Err(WorkerError::Start(e)) => return Err(RunFailure::Start(e)),
                Err(WorkerError::Died(died)) => {
                    metrics::counter!("kb_parser_worker_deaths_total").increment(1);
                    tracing::warn!(source_id = %source.source_id, attempt, crash_limit = self.crash_limit, how = %died, "a parse worker died");
                    last = Some(died);
                }
            }
        }
        let how = last.map(|d| d.describe(w)).unwrap_or_default();
        Err(ParseFailure::new(
            DeadLetterKind::Crashed,
            format!(
                "the parse worker died {} times on this document (parser.crash_limit): {how}",
                self.crash_limit
            ),
        )
        .into())
    }
}

/// Parses on a blocking thread within `budget` (plus a grace): a parse that does not end in
/// time is a `timeout` failure, and the caller goes on while the thread winds down at its
/// next deadline check; a panic in a parser is `panicked`.
pub async fn parse_on_thread(
    source: SourceRef,
    bytes: Arc<Vec<u8>>,
    opts: ParseOptions,
    budget: Duration,
) -> Result<ParsedDocument, ParseFailure> {
    let parsed = tokio::time::timeout(
        budget + HARD_TIMEOUT_GRACE,
        tokio::task::spawn_blocking(move || parse_document(&source, &bytes, &opts)),
    )
    .await;
    match parsed {
        Err(_) => Err(ParseFailure::timeout(budget)),
        Ok(Err(join)) => {
            let text = match join.try_into_panic() {
                Ok(payload) => panic_text(&*payload),
                Err(join) => join.to_string(),
            };
            Err(ParseFailure::new(
                DeadLetterKind::Panicked,
                format!("the parser panicked: {text}"),
            ))
        }
        Ok(Ok(result)) => result.map_err(ParseFailure::from),
    }
}

/// The text of a panic's payload.
pub fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}
