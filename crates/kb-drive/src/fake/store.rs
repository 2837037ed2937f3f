//! The fake's data: files with parents, a change log with sequence numbers (the page tokens),
//! issued access tokens, registered credentials, injected faults and request counts.

use md5::{Digest, Md5};
use rsa::RsaPublicKey;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{Fault, Route};
use crate::model::FOLDER_MIME;

#[derive(Debug, Clone)]
pub(crate) struct FakeFile {
    pub id: String,
    pub name: String,
    pub mime_type: String,
    pub parents: Vec<String>,
    pub trashed: bool,
    pub content: Vec<u8>,
    pub modified_ms: i64,
    pub version: u64,
    pub revision: u64,
    pub drive_id: Option<String>,
    pub downloadable: bool,
    /// `webViewLink`; `None` leaves it out of answers (the API's form is the default).
    pub web_view_link: Option<String>,
}

/// The `webViewLink` Drive gives an item of this type.
pub(crate) fn web_view_link(id: &str, mime_type: &str) -> String {
    use crate::export::{DOCUMENT_MIME, PRESENTATION_MIME, SPREADSHEET_MIME};
    match mime_type {
        FOLDER_MIME => format!("https://drive.google.com/drive/folders/{id}"),
        DOCUMENT_MIME => format!("https://docs.google.com/document/d/{id}/edit?usp=drivesdk"),
        SPREADSHEET_MIME => {
            format!("https://docs.google.com/spreadsheets/d/{id}/edit?usp=drivesdk")
        }
        PRESENTATION_MIME => {
            format!("https://docs.google.com/presentation/d/{id}/edit?usp=drivesdk")
        }
        _ => format!("https://drive.google.com/file/d/{id}/view?usp=drivesdk"),
    }
}

impl FakeFile {
    pub fn is_folder(&self) -> bool {
        self.mime_type == FOLDER_MIME
    }
    pub fn is_google_apps(&self) -> bool {
        self.mime_type.starts_with(crate::model::GOOGLE_APPS_PREFIX)
    }
}

#[derive(Debug, Clone)]
pub(crate) enum ChangeKind {
    File { file_id: String, removed: bool },
    Drive { drive_id: String },
}

#[derive(Debug, Clone)]
pub(crate) struct ChangeEntry {
    pub seq: u64,
    pub kind: ChangeKind,
    pub time_ms: i64,
}

#[derive(Debug, Clone)]
pub(crate) struct FaultRule {
    pub route: Route,
    pub file_id: Option<String>,
    pub fault: Fault,
    pub remaining: usize,
}

pub(crate) struct Store {
    pub files: BTreeMap<String, FakeFile>,
    pub changes: Vec<ChangeEntry>,
    pub next_seq: u64,
    next_id: u64,
    clock_ms: i64,
    pub tokens: HashMap<String, Instant>,
    pub token_lifetime: Duration,
    pub service_accounts: HashMap<String, RsaPublicKey>,
    pub oauth_clients: Vec<(String, String, String)>,
    pub faults: Vec<FaultRule>,
    pub counts: HashMap<Route, usize>,
    pub tokens_issued: usize,
    pub shared_drives: Vec<String>,
    /// Edits made while set are left out of the changes feed.
    pub feed_off: bool,
}

pub(crate) fn rfc3339(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

impl Store {
    pub fn new() -> Self {
        Self {
            files: BTreeMap::new(),
            changes: Vec::new(),
            // Tokens are opaque to clients; not starting at 1 keeps tests from assuming so.
            next_seq: 1000,
            next_id: 1,
            clock_ms: now_ms(),
            tokens: HashMap::new(),
            token_lifetime: Duration::from_secs(3600),
            service_accounts: HashMap::new(),
            oauth_clients: Vec::new(),
            faults: Vec::new(),
            counts: HashMap::new(),
            tokens_issued: 0,
            shared_drives: Vec::new(),
            feed_off: false,
        }
    }

    fn tick(&mut self) -> i64 {
        self.clock_ms = now_ms().max(self.clock_ms + 1);
        self.clock_ms
    }

    fn new_id(&mut self) -> String {
        let id = format!("1Fk{:06}xYz", self.next_id);
        self.next_id += 1;
        id
    }

    fn record(&mut self, kind: ChangeKind) {
        if self.feed_off {
            return;
        }
        let time_ms = self.clock_ms;
        self.changes.push(ChangeEntry {
            seq: self.next_seq,
            kind,
            time_ms,
        });
        self.next_seq += 1;
    }

    fn record_file(&mut self, id: &str, removed: bool) {
        self.record(ChangeKind::File {
            file_id: id.to_string(),
            removed,
        });
    }

    /// The shared drive a new item under `parent` belongs to.
    fn drive_of(&self, parent: Option<&str>) -> Option<String> {
        parent
            .and_then(|p| self.files.get(p))
            .and_then(|f| f.drive_id.clone())
    }

    pub fn create(
        &mut self,
        parent: Option<&str>,
        name: &str,
        mime_type: &str,
        content: Vec<u8>,
    ) -> String {
        let id = self.new_id();
        let modified_ms = self.tick();
        let file = FakeFile {
            id: id.clone(),
            name: name.to_string(),
            mime_type: mime_type.to_string(),
            parents: parent.map(|p| vec![p.to_string()]).unwrap_or_default(),
            trashed: false,
            content,
            modified_ms,
            version: 1,
            revision: 1,
            drive_id: self.drive_of(parent),
            downloadable: true,
            web_view_link: Some(web_view_link(&id, mime_type)),
        };
        self.files.insert(id.clone(), file);
        self.record_file(&id, false);
        id
    }

    pub fn create_shared_drive(&mut self, name: &str) -> String {
        let id = format!("0AFk{:06}Uk9PVA", self.next_id);
        self.next_id += 1;
        let modified_ms = self.tick();
        self.files.insert(
            id.clone(),
            FakeFile {
                id: id.clone(),
                name: name.to_string(),
                mime_type: FOLDER_MIME.to_string(),
                parents: Vec::new(),
                trashed: false,
                content: Vec::new(),
                modified_ms,
                version: 1,
                revision: 1,
                drive_id: Some(id.clone()),
                downloadable: true,
                web_view_link: Some(web_view_link(&id, FOLDER_MIME)),
            },
        );
        self.shared_drives.push(id.clone());
        self.record(ChangeKind::Drive {
            drive_id: id.clone(),
        });
        id
    }

    /// Applies `edit` to a file and records the change; `content` edits bump the revision.
    pub fn modify(&mut self, id: &str, content_changed: bool, edit: impl FnOnce(&mut FakeFile)) {
        let now = self.tick();
        let drive_of_new_parent = {
            let Some(f) = self.files.get_mut(id) else {
                return;
            };
            edit(f);
            f.version += 1;
            if content_changed {
                f.revision += 1;
                f.modified_ms = now;
            }
            f.parents.first().cloned()
        };
        let drive = self.drive_of(drive_of_new_parent.as_deref());
        if let Some(f) = self.files.get_mut(id) {
            if !self.shared_drives.contains(&f.id) {
                f.drive_id = drive;
            }
        }
        self.record_file(id, false);
    }

    /// Deleted for good: the item and, for a folder, everything below it.
    pub fn delete(&mut self, id: &str) {
        let mut gone = vec![id.to_string()];
        let mut i = 0;
        while i < gone.len() {
            let cur = gone[i].clone();
            for f in self.files.values() {
                if f.parents.contains(&cur) && !gone.contains(&f.id) {
                    gone.push(f.id.clone());
                }
            }
            i += 1;
        }
        self.tick();
        for g in gone {
            if self.files.remove(&g).is_some() {
                self.record_file(&g, true);
            }
        }
    }

    /// Trashed itself or below a trashed folder (Drive trashes the contents with a folder,
    /// without a change entry for each of them).
    pub fn effectively_trashed(&self, f: &FakeFile) -> bool {
        let mut cur = Some(f);
        for _ in 0..256 {
            let Some(c) = cur else {
                return false;
            };
            if c.trashed {
                return true;
            }
            cur = c.parents.first().and_then(|p| self.files.get(p));
        }
        false
    }

    pub fn file_json(&self, f: &FakeFile) -> Value {
        let mut v = json!({
            "kind": "drive#file",
            "id": f.id,
            "name": f.name,
            "mimeType": f.mime_type,
            "parents": f.parents,
            "trashed": self.effectively_trashed(f),
            "explicitlyTrashed": f.trashed,
            "modifiedTime": rfc3339(f.modified_ms),
            "version": f.version.to_string(),
        });
        if !f.is_folder() && !f.is_google_apps() {
            v["md5Checksum"] = json!(hex_md5(&f.content));
            v["headRevisionId"] = json!(format!("0B{}r{}", f.id, f.revision));
            v["size"] = json!(f.content.len().to_string());
        }
        if let Some(d) = &f.drive_id {
            v["driveId"] = json!(d);
        }
        if let Some(l) = &f.web_view_link {
            v["webViewLink"] = json!(l);
        }
        v
    }

    /// Takes one matching fault, if any is armed.
    pub fn take_fault(&mut self, route: Route, file_id: Option<&str>) -> Option<Fault> {
        let rule = self.faults.iter_mut().find(|r| {
            r.route == route
                && r.remaining > 0
                && (r.file_id.is_none() || r.file_id.as_deref() == file_id)
        })?;
        rule.remaining -= 1;
        let fault = rule.fault.clone();
        self.faults.retain(|r| r.remaining > 0);
        Some(fault)
    }

    pub fn count(&mut self, route: Route) {
        *self.counts.entry(route).or_default() += 1;
    }

    pub fn token_valid(&self, token: &str) -> bool {
        self.tokens
            .get(token)
            .is_some_and(|expiry| Instant::now() < *expiry)
    }

    pub fn issue_token(&mut self) -> (String, u64) {
        self.tokens_issued += 1;
        let token = format!("ya29.fake-{}-{}", self.tokens_issued, self.next_id);
        self.tokens
            .insert(token.clone(), Instant::now() + self.token_lifetime);
        (token, self.token_lifetime.as_secs())
    }
}

fn hex_md5(bytes: &[u8]) -> String {
    Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
