//! Parse workers (`parser.isolation = "process"`): one short-lived child process per document,
//! so a crash, an allocation past `parser.worker_memory_mb` or a runaway parse ends with that
//! process and never with the parser.
//!
//! One process per document rather than a pool of long-lived workers, on purpose: every
//! document starts from a clean heap under its own memory limit (no fragmentation or leak
//! from the documents before it), a kill on timeout or a death costs only that document, and
//! there is no pool to keep healthy. The price is one process start per document (5-8 ms on
//! the corpus in a release build, see docs/ARCHITECTURE.md): which is why `thread` stays the
//! default.

pub mod serve;
pub mod spawn;
pub mod wire;
