//! Google Drive as a watcher source. The first sync lists every file below the configured
//! folders (recursively, My Drive and shared drives) and publishes them; later syncs follow the
//! Drive changes feed from the saved page token: new, edited, renamed and moved files become
//! the next version of their source, files trashed, deleted or moved out of scope become
//! tombstones. Google Docs, Sheets and Slides are exported to the configured types; files too
//! large or unreadable become a FAILED mirror event and a dead letter, once per change.
//!
//! Source ids derive from the Drive file id (origin `drive:<name>`), so renames and moves keep
//! the identity. State lives in KV (see [`state`]). A version is reserved in a file's state
//! before anything is published as it and recorded as done after (`commit.rs`), and the page
//! token is saved only after every file of its page is recorded, so a crash anywhere
//! republishes at most the same change as the same version and loses nothing.
//!
//! A file that fails for a reason that may pass (a refused or unauthorised download, a state
//! that kept changing) does not hold the feed back: it is recorded for another attempt at each
//! sync (`retry.rs`) and, after `max_file_attempts`, recorded as FAILED with a dead letter.
//! Every `relist_secs` a full listing replaces the changes feed once, repairing anything the
//! feed missed.

mod changes;
mod commit;
mod listing;
mod reconcile;
mod retry;
mod service;
pub mod state;
mod sync;

pub use service::run_drive;
pub use state::{Cursor, DriveFileState, DriveStore, FileRetry, DRIVE_BUCKET};

use crate::error::{WatchError, WatchErrorKind};
use crate::scan::Published;
use async_nats::jetstream;
use kb_core::settings::DriveSettings;
use kb_drive::{DriveClient, DriveError, DriveErrorKind, ExportFormats};
use kb_stream::Publisher;

/// The origin of a Drive source: `drive:<name>`.
pub fn origin(name: &str) -> String {
    format!("drive:{name}")
}

/// What one source watches and how.
#[derive(Debug, Clone)]
pub struct DriveConfig {
    /// Keys the state and the origin; keep it stable.
    pub name: String,
    pub folder_ids: Vec<String>,
    pub formats: ExportFormats,
    pub max_file_bytes: u64,
    /// A full listing at least this often, besides the changes feed.
    pub relist_secs: u64,
    /// Failed attempts of one file before it is recorded as FAILED.
    pub max_file_attempts: u32,
}

impl DriveConfig {
    pub fn from_settings(s: &DriveSettings) -> Self {
        Self {
            name: s.name.clone(),
            folder_ids: s.folder_ids.clone(),
            formats: ExportFormats::from_settings(s),
            max_file_bytes: s.max_file_bytes,
            relist_secs: s.relist_secs,
            max_file_attempts: s.max_file_attempts,
        }
    }
}

/// A file that could not be published as content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub path: String,
    pub reason: String,
    /// The FAILED version recorded for it; `None` when nothing was recorded (it is tried
    /// again next time, e.g. a download cut short).
    pub version: Option<Published>,
}

/// What one sync (or ingest) did.
#[derive(Debug, Clone, Default)]
pub struct SyncReport {
    /// True when this sync listed everything (first run, the roots changed, or a relist was
    /// due).
    pub full_listing: bool,
    /// Entries read from the changes feed.
    pub changes: usize,
    pub published: Vec<Published>,
    /// Already current: the version, and the reason when that version is a failure.
    pub unchanged: Vec<(Published, Option<String>)>,
    pub deleted: Vec<Published>,
    /// Files not published: recorded as FAILED (`version` set), or to be tried again.
    pub failed: Vec<Failure>,
    /// Files tried again because an earlier attempt failed.
    pub retried: usize,
    /// (path, why): items with nothing to read (forms, shortcuts, ...).
    pub skipped: Vec<(String, String)>,
}

/// One Drive source: a client, the publisher and its KV state.
#[derive(Clone)]
pub struct DriveSource {
    pub(crate) client: DriveClient,
    pub(crate) publisher: Publisher,
    pub(crate) store: DriveStore,
    pub(crate) origin: String,
    pub(crate) roots: Vec<String>,
    pub(crate) formats: ExportFormats,
    pub(crate) max_file_bytes: u64,
    pub(crate) relist_ms: i64,
    pub(crate) max_file_attempts: u32,
}

impl DriveSource {
    pub async fn new(
        js: &jetstream::Context,
        publisher: Publisher,
        client: DriveClient,
        config: DriveConfig,
    ) -> Result<Self, WatchError> {
        if !kb_core::ids::is_valid_token(&config.name) {
            return Err(WatchError::new(
                WatchErrorKind::Invalid,
                format!("Drive source name {:?} is not a valid token", config.name),
            ));
        }
        let mut roots = config.folder_ids;
        roots.sort();
        roots.dedup();
        Ok(Self {
            client,
            publisher,
            store: DriveStore::open(js, &config.name).await?,
            origin: origin(&config.name),
            roots,
            formats: config.formats,
            max_file_bytes: config.max_file_bytes,
            relist_ms: i64::try_from(config.relist_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
            max_file_attempts: config.max_file_attempts.max(1),
        })
    }

    /// Client and configuration from `[drive]`.
    pub async fn from_settings(
        s: &DriveSettings,
        js: &jetstream::Context,
        publisher: Publisher,
    ) -> Result<Self, WatchError> {
        let client = DriveClient::from_settings(s).map_err(drive_error)?;
        Self::new(js, publisher, client, DriveConfig::from_settings(s)).await
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The source id of a Drive file.
    pub fn source_id(&self, file_id: &str) -> String {
        kb_core::ids::source_id(&self.origin, file_id)
    }

    pub fn client(&self) -> &DriveClient {
        &self.client
    }

    pub fn store(&self) -> &DriveStore {
        &self.store
    }
}

/// Drive failures as watcher errors: retry later (`Transient`) or fix the configuration.
pub(crate) fn drive_error(e: DriveError) -> WatchError {
    let kind = match e.kind {
        DriveErrorKind::Transient => WatchErrorKind::Transient,
        DriveErrorKind::NotFound => WatchErrorKind::Io,
        DriveErrorKind::Auth
        | DriveErrorKind::Refused
        | DriveErrorKind::TooLarge
        | DriveErrorKind::Invalid => WatchErrorKind::Invalid,
    };
    WatchError::with(kind, "Drive request failed", e)
}
