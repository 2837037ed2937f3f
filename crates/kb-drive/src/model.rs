//! The Drive v3 resources this crate reads, with the `fields` selectors that ask for exactly
//! them. int64 values (`size`, `version`) arrive as JSON strings, as the API sends them.

use serde::{Deserialize, Deserializer, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

pub const FOLDER_MIME: &str = "application/vnd.google-apps.folder";
/// Prefix of Google Workspace types (Docs, Sheets, ...), which have no bytes of their own.
pub const GOOGLE_APPS_PREFIX: &str = "application/vnd.google-apps.";

/// The file fields requested everywhere: what change detection and scope checks need, and
/// the link a person opens the file with.
pub const FILE_FIELDS: &str = "id,name,mimeType,parents,trashed,md5Checksum,headRevisionId,modifiedTime,size,version,driveId,webViewLink";

/// `fields` of files.list.
pub fn list_fields() -> String {
    format!("nextPageToken,incompleteSearch,files({FILE_FIELDS})")
}

/// `fields` of changes.list.
pub fn changes_fields() -> String {
    format!(
        "nextPageToken,newStartPageToken,changes(changeType,removed,fileId,time,driveId,file({FILE_FIELDS}))"
    )
}

/// A file or folder (`drive#file`), reduced to [`FILE_FIELDS`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct File {
    pub id: String,
    pub name: String,
    pub mime_type: String,
    pub parents: Vec<String>,
    pub trashed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub md5_checksum: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head_revision_id: Option<String>,
    /// RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub modified_time: Option<String>,
    /// Bytes of blob files; absent for Google Workspace files and folders.
    #[serde(
        deserialize_with = "opt_int64",
        skip_serializing_if = "Option::is_none"
    )]
    pub size: Option<u64>,
    /// Increases with every change to the file, metadata included.
    #[serde(
        deserialize_with = "opt_int64",
        skip_serializing_if = "Option::is_none"
    )]
    pub version: Option<u64>,
    /// Set for items of a shared drive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drive_id: Option<String>,
    /// Where a person opens the file in a browser (Drive's viewer, or the Docs editor for
    /// Workspace files); see [`File::link`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub web_view_link: Option<String>,
}

impl File {
    pub fn is_folder(&self) -> bool {
        self.mime_type == FOLDER_MIME
    }

    /// A Google Docs editors (or other Workspace) file: exported, never downloaded.
    pub fn is_google_apps(&self) -> bool {
        self.mime_type.starts_with(GOOGLE_APPS_PREFIX)
    }

    /// The link a person opens the file with: `webViewLink`, else (the API gave none) the
    /// Drive viewer's address for the file id.
    pub fn link(&self) -> String {
        match self.web_view_link.as_deref().map(str::trim) {
            Some(l) if !l.is_empty() => l.to_string(),
            _ => format!("https://drive.google.com/file/d/{}/view", self.id),
        }
    }

    /// `modifiedTime` in Unix milliseconds, 0 when absent or unreadable.
    pub fn modified_unix_ms(&self) -> i64 {
        self.modified_time
            .as_deref()
            .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
            .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
            .unwrap_or_default()
    }

    /// What says "the content may have changed": the checksum of a blob, else its head
    /// revision, else (Workspace files have neither) the modification time and version.
    pub fn fingerprint(&self) -> String {
        if let Some(md5) = self.md5_checksum.as_deref().filter(|s| !s.is_empty()) {
            return format!("md5:{md5}");
        }
        if let Some(rev) = self.head_revision_id.as_deref().filter(|s| !s.is_empty()) {
            return format!("rev:{rev}");
        }
        format!(
            "mod:{}:{}",
            self.modified_time.as_deref().unwrap_or_default(),
            self.version.unwrap_or_default()
        )
    }
}

/// One page of files.list.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FileList {
    pub next_page_token: Option<String>,
    pub incomplete_search: bool,
    pub files: Vec<File>,
}

/// One entry of the changes feed.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Change {
    /// `file` or `drive` (a shared drive's own metadata).
    pub change_type: String,
    /// The file is gone for these credentials: deleted for good, or access lost.
    pub removed: bool,
    pub file_id: Option<String>,
    /// The file as it is now; absent when removed.
    pub file: Option<File>,
    pub time: Option<String>,
    pub drive_id: Option<String>,
}

/// One page of changes.list. Exactly one of the tokens is set: `next_page_token` while more
/// pages follow, `new_start_page_token` on the last page (where to start next time).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ChangeList {
    pub next_page_token: Option<String>,
    pub new_start_page_token: Option<String>,
    pub changes: Vec<Change>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StartPageToken {
    pub start_page_token: String,
}

/// int64 fields are JSON strings in Drive's answers; numbers are accepted too.
fn opt_int64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Int {
        Text(String),
        Num(u64),
    }
    match Option::<Int>::deserialize(d)? {
        None => Ok(None),
        Some(Int::Num(n)) => Ok(Some(n)),
        Some(Int::Text(s)) => s.parse().map(Some).map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_wire_file_decodes_with_string_int64s() {
        let f: File = serde_json::from_str(
            r#"{"id":"1a","name":"n.txt","mimeType":"text/plain","parents":["p"],
                "trashed":false,"md5Checksum":"abc","size":"1234","version":"7",
                "modifiedTime":"2024-05-01T10:00:00.250Z","kind":"drive#file",
                "webViewLink":"https://drive.google.com/file/d/1a/view?usp=drivesdk"}"#,
        )
        .unwrap();
        assert_eq!(
            f.link(),
            "https://drive.google.com/file/d/1a/view?usp=drivesdk"
        );
        assert_eq!(f.size, Some(1234));
        assert_eq!(f.version, Some(7));
        assert_eq!(f.modified_unix_ms(), 1_714_557_600_250);
        assert_eq!(f.fingerprint(), "md5:abc");
        assert!(!f.is_folder() && !f.is_google_apps());
    }

    #[test]
    fn without_a_web_view_link_the_viewer_address_is_the_link() {
        let mut f = File {
            id: "1a".into(),
            ..Default::default()
        };
        assert_eq!(f.link(), "https://drive.google.com/file/d/1a/view");
        f.web_view_link = Some(" ".into());
        assert_eq!(f.link(), "https://drive.google.com/file/d/1a/view");
        assert!(FILE_FIELDS.split(',').any(|f| f == "webViewLink"));
    }

    #[test]
    fn fingerprints_fall_back_to_revision_then_time_and_version() {
        let mut f = File {
            head_revision_id: Some("r1".into()),
            ..Default::default()
        };
        assert_eq!(f.fingerprint(), "rev:r1");
        f.head_revision_id = None;
        f.modified_time = Some("2024-01-01T00:00:00Z".into());
        f.version = Some(3);
        assert_eq!(f.fingerprint(), "mod:2024-01-01T00:00:00Z:3");
    }
}
