//! A Google Drive v3 client for kb-mirror's watcher: authentication (service-account key with
//! the RS256 JWT bearer grant, or an OAuth refresh token), folder listings, the changes feed,
//! downloads and exports with size limits, and exponential backoff on quota errors. No
//! OpenSSL: signing uses `ring`.
//!
//! - [`DriveClient`]: files.get / files.list / changes.getStartPageToken / changes.list /
//!   `alt=media` / files.export, all with `supportsAllDrives` so shared drives work.
//! - [`Scope`]: which folders are watched and the readable path of a file inside them.
//! - [`export`]: how a file's bytes are obtained (download, export to a configured type, skip).
//! - `fake` (feature `fake`): a local fake Drive server for tests.

pub mod auth;
mod client;
pub mod error;
pub mod export;
mod http;
pub mod model;
pub mod scope;

#[cfg(feature = "fake")]
pub mod fake;

pub use auth::{Credentials, TokenSource};
pub use client::{ClientConfig, DriveClient};
pub use error::{DriveError, DriveErrorExt, DriveErrorKind};
pub use export::{ExportFormats, Fetch};
pub use http::RetryPolicy;
pub use model::{Change, ChangeList, File, FileList};
pub use scope::{Folder, Scope};
