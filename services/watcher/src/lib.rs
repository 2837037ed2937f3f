//! The watcher service (`kb-watcher`): keeps a local folder and the pipeline in step. It finds
//! new, changed and deleted files (file notifications plus a periodic full rescan), publishes
//! each new content as the next version of its source to `kb.v1.source.<id>`, deletions as
//! tombstones straight to the mirror stream, and files too large to read as failures with a dead
//! letter. What it has published lives in the JetStream KV bucket `kb_watch`, so a restart (or
//! another machine) republishes nothing unchanged and notices what was deleted meanwhile.
//!
//! With `[drive] enabled`, a Google Drive source runs beside the folder: see [`drive`].
//!
//! [`Scanner`] and [`drive::DriveSource`] are the reusable parts (the `kb ingest` command uses
//! them); [`run`] is the service.

pub mod drive;
pub mod error;
pub mod hold;
mod json_kv;
pub mod media;
mod mirror;
mod notice;
mod notify;
mod reconcile;
pub mod retention;
pub mod scan;
mod service;
pub mod state;
mod telemetry;
pub mod walk;

pub use drive::{DriveSource, SyncReport};
pub use error::{WatchError, WatchErrorKind};
pub use scan::{FileOutcome, Policy, Published, ScanReport, Scanner};
pub use service::{origin, run};
