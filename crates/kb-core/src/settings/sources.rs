//! The sources: the `[watcher]` section (a folder) and the `[drive]` section (Google Drive).

use std::path::PathBuf;

use serde::Deserialize;

use super::string_list;
use crate::secret::Secret;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WatcherSettings {
    pub dir: PathBuf,
    /// Names the folder as an origin: source ids derive from it, so keep it stable.
    pub name: String,
    /// Full rescan period, a safety net under file-system notifications.
    pub rescan_secs: u64,
    /// Quiet time after a change before a file is read (editors write in several steps).
    pub debounce_ms: u64,
    /// Larger files are reported as failed, not read.
    pub max_file_bytes: u64,
    /// A scan holds the deletions under a directory holding at least this many sources...
    pub mass_delete_min_sources: usize,
    /// ...when more than this share of them would go (an unmounted share, an emptied folder).
    pub mass_delete_ratio: f64,
    /// Delete without holding (or confirm with `kb watcher confirm-deletes`).
    pub allow_mass_delete: bool,
    /// Read files that symbolic links lead to outside the folder (refused by default).
    pub follow_external_symlinks: bool,
}

impl Default for WatcherSettings {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("./inbox"),
            name: "inbox".into(),
            rescan_secs: 60,
            debounce_ms: 300,
            max_file_bytes: 64 * 1024 * 1024,
            mass_delete_min_sources: 10,
            mass_delete_ratio: 0.5,
            allow_mass_delete: false,
            follow_external_symlinks: false,
        }
    }
}

impl WatcherSettings {
    /// Validation problems of this section.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !crate::ids::is_valid_token(&self.name) {
            p.push("watcher.name must be letters, digits, '-' or '_'".into());
        }
        if self.rescan_secs == 0 {
            p.push("watcher.rescan_secs must be at least 1".into());
        }
        if self.mass_delete_min_sources == 0 {
            p.push("watcher.mass_delete_min_sources must be at least 1".into());
        }
        // 1.0 would never hold anything: that is what allow_mass_delete says openly.
        if !(self.mass_delete_ratio > 0.0 && self.mass_delete_ratio < 1.0) {
            p.push(
                "watcher.mass_delete_ratio must be between 0 and 1 (exclusive); to never hold \
                 deletions set watcher.allow_mass_delete = true"
                    .into(),
            );
        }
        p
    }
}

/// The watcher's Google Drive source. Credentials: a service-account key or an
/// `authorized_user` JSON (`credentials_file`, `credentials_json`, else the file named by
/// `GOOGLE_APPLICATION_CREDENTIALS`), or the OAuth installed-app trio `client_id`,
/// `client_secret`, `refresh_token`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DriveSettings {
    /// The watcher runs the Drive source only when this is on.
    pub enabled: bool,
    /// Names the source as an origin (`drive:<name>`): source ids derive from it, keep it stable.
    pub name: String,
    /// Folders (or shared drive ids) mirrored recursively; a list or one comma-separated string.
    #[serde(deserialize_with = "string_list")]
    pub folder_ids: Vec<String>,
    pub credentials_file: Option<PathBuf>,
    /// The same JSON as `credentials_file`, inline (e.g. handed in by a secret store).
    pub credentials_json: Secret,
    pub client_id: String,
    pub client_secret: Secret,
    pub refresh_token: Secret,
    /// A service account with domain-wide delegation acts as this user.
    pub subject: Option<String>,
    /// OAuth scope requested; read-only is all the watcher needs.
    pub scope: String,
    /// Drive v3 API base URL and OAuth token endpoint (empty: the key file's `token_uri`, else
    /// Google's); both configurable so tests can point them at a local server.
    pub api_url: String,
    pub token_url: String,
    /// How often the changes feed is polled.
    pub poll_secs: u64,
    /// Items per files.list / changes.list page (1..=1000).
    pub page_size: u32,
    /// Larger files are reported as failed, not downloaded.
    pub max_file_bytes: u64,
    /// Export media types of Google Docs, Sheets and Slides (what the parser reads).
    pub export_document: String,
    pub export_spreadsheet: String,
    pub export_presentation: String,
    /// Retries of one request on quota errors (403 rate limits, 429) and 5xx, backing off
    /// exponentially between these bounds.
    pub max_retries: usize,
    pub backoff_min_ms: u64,
    pub backoff_max_ms: u64,
    pub request_timeout_secs: u64,
    /// A full listing this often (besides the changes feed) repairs anything the feed missed.
    pub relist_secs: u64,
    /// Failures of one file (e.g. its download) before it is recorded as failed with a
    /// dead letter; until then it is retried at every sync.
    pub max_file_attempts: u32,
}

impl Default for DriveSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            name: "drive".into(),
            folder_ids: Vec::new(),
            credentials_file: None,
            credentials_json: Secret::default(),
            client_id: String::new(),
            client_secret: Secret::default(),
            refresh_token: Secret::default(),
            subject: None,
            scope: "https://www.googleapis.com/auth/drive.readonly".into(),
            api_url: "https://www.googleapis.com/drive/v3".into(),
            token_url: String::new(),
            poll_secs: 30,
            page_size: 200,
            max_file_bytes: 64 * 1024 * 1024,
            export_document: "text/plain".into(),
            export_spreadsheet: "text/csv".into(),
            export_presentation: "text/plain".into(),
            max_retries: 8,
            backoff_min_ms: 500,
            backoff_max_ms: 64_000,
            request_timeout_secs: 120,
            relist_secs: 86_400,
            max_file_attempts: 5,
        }
    }
}

impl DriveSettings {
    /// Validation problems of this section.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !crate::ids::is_valid_token(&self.name) {
            p.push("drive.name must be letters, digits, '-' or '_'".into());
        }
        if self.folder_ids.is_empty() {
            p.push("drive.folder_ids (KB_DRIVE__FOLDER_IDS) names no folder".into());
        }
        for id in self
            .folder_ids
            .iter()
            .filter(|id| !crate::ids::is_valid_token(id))
        {
            p.push(format!("drive.folder_ids: {id:?} is not a Drive id"));
        }
        let oauth = [
            self.client_id.is_empty(),
            self.client_secret.is_empty(),
            self.refresh_token.is_empty(),
        ];
        if oauth.contains(&true) && oauth.contains(&false) {
            p.push(
                "drive.client_id, drive.client_secret and drive.refresh_token go together".into(),
            );
        }
        if self.poll_secs == 0 {
            p.push("drive.poll_secs must be at least 1".into());
        }
        if !(1..=1000).contains(&self.page_size) {
            p.push("drive.page_size must be between 1 and 1000".into());
        }
        if self.backoff_min_ms == 0 || self.backoff_max_ms < self.backoff_min_ms {
            p.push(
                "drive.backoff_min_ms must be at least 1 and at most drive.backoff_max_ms".into(),
            );
        }
        if self.relist_secs == 0 || self.max_file_attempts == 0 {
            p.push("drive.relist_secs and drive.max_file_attempts must be at least 1".into());
        }
        for (key, url) in [("api_url", &self.api_url), ("token_url", &self.token_url)] {
            if !url.is_empty() && !url.starts_with("https://") && !url.starts_with("http://") {
                p.push(format!("drive.{key} must be an http(s) URL, got {url:?}"));
            }
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watcher_defaults_are_valid_and_the_guard_is_checked() {
        assert!(WatcherSettings::default().problems().is_empty());
        for ratio in [0.0, 1.0, f64::NAN, -0.5] {
            let w = WatcherSettings {
                mass_delete_ratio: ratio,
                ..WatcherSettings::default()
            };
            assert_eq!(w.problems().len(), 1, "{ratio}");
        }
        let w = WatcherSettings {
            mass_delete_min_sources: 0,
            rescan_secs: 0,
            ..WatcherSettings::default()
        };
        assert_eq!(w.problems().len(), 2);
    }

    #[test]
    fn drive_retry_knobs_are_checked() {
        let d = DriveSettings {
            folder_ids: vec!["f".into()],
            max_file_attempts: 0,
            ..DriveSettings::default()
        };
        assert_eq!(d.problems().len(), 1, "{:?}", d.problems());
    }
}
