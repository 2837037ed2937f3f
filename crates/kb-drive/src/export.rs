//! How a file's bytes are obtained: Google Docs, Sheets and Slides have none of their own and
//! are exported to a configured type; other Workspace types (forms, sites, shortcuts,
//! drawings) have nothing the parser could read and are skipped; everything else is
//! downloaded as is.

use crate::model::File;
use kb_core::settings::DriveSettings;

pub const DOCUMENT_MIME: &str = "application/vnd.google-apps.document";
pub const SPREADSHEET_MIME: &str = "application/vnd.google-apps.spreadsheet";
pub const PRESENTATION_MIME: &str = "application/vnd.google-apps.presentation";
pub const DOCX_MIME: &str =
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document";

/// Export targets per Workspace type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportFormats {
    pub document: String,
    pub spreadsheet: String,
    pub presentation: String,
}

impl Default for ExportFormats {
    fn default() -> Self {
        Self::from_settings(&DriveSettings::default())
    }
}

impl ExportFormats {
    pub fn from_settings(s: &DriveSettings) -> Self {
        Self {
            document: s.export_document.clone(),
            spreadsheet: s.export_spreadsheet.clone(),
            presentation: s.export_presentation.clone(),
        }
    }
}

/// What to do for one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetch {
    /// `alt=media`; the media type is the file's own.
    Download,
    /// files.export to this media type.
    Export(String),
    /// Nothing to read (the reason says why).
    Skip(&'static str),
}

pub fn fetch_plan(file: &File, formats: &ExportFormats) -> Fetch {
    match file.mime_type.as_str() {
        DOCUMENT_MIME => Fetch::Export(formats.document.clone()),
        SPREADSHEET_MIME => Fetch::Export(formats.spreadsheet.clone()),
        PRESENTATION_MIME => Fetch::Export(formats.presentation.clone()),
        "application/vnd.google-apps.shortcut" => Fetch::Skip("shortcut"),
        "application/vnd.google-apps.folder" => Fetch::Skip("folder"),
        _ if file.is_google_apps() => Fetch::Skip("Google Workspace type without a text export"),
        _ => Fetch::Download,
    }
}

/// The extension that tells the parser (and people) what an export is.
pub fn extension_for(media_type: &str) -> Option<&'static str> {
    Some(match media_type {
        "text/plain" => "txt",
        "text/markdown" => "md",
        "text/csv" => "csv",
        "text/tab-separated-values" => "tsv",
        "text/html" => "html",
        "application/rtf" => "rtf",
        "application/pdf" => "pdf",
        "application/epub+zip" => "epub",
        "application/vnd.oasis.opendocument.text" => "odt",
        DOCX_MIME => "docx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => "xlsx",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation" => "pptx",
        _ => return None,
    })
}

/// `name` with the export's extension, unless it already ends with it.
pub fn exported_name(name: &str, media_type: &str) -> String {
    match extension_for(media_type) {
        Some(ext) if !name.to_ascii_lowercase().ends_with(&format!(".{ext}")) => {
            format!("{name}.{ext}")
        }
        _ => name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(mime: &str) -> File {
        File {
            mime_type: mime.into(),
            ..Default::default()
        }
    }

    #[test]
    fn workspace_files_export_others_download_the_rest_skip() {
        let f = ExportFormats::default();
        assert_eq!(
            fetch_plan(&file(DOCUMENT_MIME), &f),
            Fetch::Export("text/plain".into())
        );
        assert_eq!(
            fetch_plan(&file(SPREADSHEET_MIME), &f),
            Fetch::Export("text/csv".into())
        );
        assert_eq!(fetch_plan(&file("application/pdf"), &f), Fetch::Download);
        assert!(matches!(
            fetch_plan(&file("application/vnd.google-apps.form"), &f),
            Fetch::Skip(_)
        ));
    }

    #[test]
    fn exported_names_get_the_extension_once() {
        assert_eq!(exported_name("Plan", "text/plain"), "Plan.txt");
        assert_eq!(exported_name("data.CSV", "text/csv"), "data.CSV");
        assert_eq!(exported_name("Plan", DOCX_MIME), "Plan.docx");
        assert_eq!(exported_name("Plan", "application/x-unknown"), "Plan");
    }
}
