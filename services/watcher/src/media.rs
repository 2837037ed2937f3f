//! A best-effort media type from the file extension. The parser decides the real format from
//! the content; this is a hint for it and for operators.

/// The media type for `path`, `application/octet-stream` when the extension is unknown.
pub fn media_type(path: &str) -> &'static str {
    let name = path.rsplit('/').next().unwrap_or(path);
    let ext = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => ext.to_ascii_lowercase(),
        _ => return "application/octet-stream",
    };
    match ext.as_str() {
        "md" | "markdown" | "mdown" | "mkd" => "text/markdown",
        "txt" | "text" | "log" => "text/plain",
        "html" | "htm" | "xhtml" => "text/html",
        "csv" => "text/csv",
        "tsv" => "text/tab-separated-values",
        "vtt" => "text/vtt",
        "srt" => "application/x-subrip",
        "rtf" => "application/rtf",
        "json" => "application/json",
        "xml" => "application/xml",
        "yaml" | "yml" => "application/yaml",
        "pdf" => "application/pdf",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "odt" => "application/vnd.oasis.opendocument.text",
        "doc" => "application/msword",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::media_type;

    #[test]
    fn known_extensions_any_case_and_unknown_ones() {
        assert_eq!(media_type("notes/a.MD"), "text/markdown");
        assert_eq!(media_type("meeting.txt"), "text/plain");
        assert_eq!(media_type("x/y/report.pdf"), "application/pdf");
        assert_eq!(
            media_type("t.docx"),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        );
        assert_eq!(media_type("README"), "application/octet-stream");
        assert_eq!(media_type("a.weird"), "application/octet-stream");
        // A dot in a directory name is not an extension.
        assert_eq!(media_type("v1.2/README"), "application/octet-stream");
    }
}
