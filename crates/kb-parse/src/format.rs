//! Which format a document is in: by content first (magic bytes, transcript shape), by
//! file extension second.

use crate::decode::{is_wide_text, sniff_text};
use crate::formats::transcript::looks_like_transcript;

/// Formats the detector knows. Only [`Format::is_supported`] ones can be parsed; the others
/// are recognized to refuse them with a clear reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Text,
    Markdown,
    /// Otter.ai-style meeting transcript: `Speaker Name  m:ss` lines, then the turn's text.
    Transcript,
    Html,
    WebVtt,
    Srt,
    Rtf,
    Pdf,
    Docx,
    /// A zip archive other than a Word document (xlsx, pptx, odt, plain zip).
    Zip,
    Gzip,
    Image,
    /// Legacy Office (doc, xls, ppt) compound files.
    OleCompound,
    /// Anything else with NUL bytes.
    Binary,
}

impl Format {
    /// Human-readable name, used in error messages.
    pub fn name(self) -> &'static str {
        match self {
            Format::Text => "plain text",
            Format::Markdown => "Markdown",
            Format::Transcript => "meeting transcript",
            Format::Html => "HTML",
            Format::WebVtt => "WebVTT subtitles",
            Format::Srt => "SRT subtitles",
            Format::Rtf => "RTF",
            Format::Pdf => "PDF",
            Format::Docx => "DOCX (Word)",
            Format::Zip => "zip archive",
            Format::Gzip => "gzip archive",
            Format::Image => "image",
            Format::OleCompound => "legacy Office document (OLE)",
            Format::Binary => "binary data",
        }
    }

    /// Whether [`crate::parse`] can read it in this version.
    pub fn is_supported(self) -> bool {
        matches!(
            self,
            Format::Text
                | Format::Markdown
                | Format::Transcript
                | Format::Html
                | Format::WebVtt
                | Format::Srt
                | Format::Pdf
                | Format::Docx
        )
    }
}

/// How many leading bytes the content checks look at.
const SNIFF_BYTES: usize = 64 * 1024;

/// Detects the format of `bytes` named `path`.
pub fn detect(path: &str, bytes: &[u8]) -> Format {
    if let Some(f) = detect_magic(path, bytes) {
        return f;
    }
    let head = &bytes[..bytes.len().min(8 * 1024)];
    if head.contains(&0) && !is_wide_text(bytes) {
        return Format::Binary;
    }
    let text = sniff_text(bytes, SNIFF_BYTES);
    let trimmed = text.trim_start();
    if trimmed.starts_with("WEBVTT") {
        return Format::WebVtt;
    }
    if looks_like_transcript(&text) {
        return Format::Transcript;
    }
    if looks_like_srt(trimmed) {
        return Format::Srt;
    }
    if looks_like_html(trimmed) {
        return Format::Html;
    }
    match extension(path).as_deref() {
        Some("md" | "markdown" | "mdown" | "mkd" | "mkdn") => Format::Markdown,
        Some("html" | "htm" | "xhtml") => Format::Html,
        Some("vtt") => Format::WebVtt,
        Some("srt") => Format::Srt,
        Some("rtf") => Format::Rtf,
        Some("txt" | "text") if looks_like_markdown(&text) => Format::Markdown,
        // a known text extension (or binary-format names whose content turned out to be text)
        Some(_) => Format::Text,
        None if looks_like_markdown(&text) => Format::Markdown,
        None => Format::Text,
    }
}

fn detect_magic(path: &str, bytes: &[u8]) -> Option<Format> {
    let head = &bytes[..bytes.len().min(1024)];
    if bytes.starts_with(b"%PDF-") || find(head, b"%PDF-").is_some() {
        return Some(Format::Pdf);
    }
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        // part names are plain text in the local headers (start) and the central directory (end)
        let start = &bytes[..bytes.len().min(SNIFF_BYTES)];
        let end = &bytes[bytes.len().saturating_sub(SNIFF_BYTES)..];
        let is_word = find(start, b"word/").is_some()
            || find(end, b"word/").is_some()
            || extension(path).as_deref() == Some("docx");
        return Some(if is_word { Format::Docx } else { Format::Zip });
    }
    let magic: &[(&[u8], Format)] = &[
        (b"\x1F\x8B", Format::Gzip),
        (b"\x89PNG\r\n\x1A\n", Format::Image),
        (b"\xFF\xD8\xFF", Format::Image),
        (b"GIF87a", Format::Image),
        (b"GIF89a", Format::Image),
        (b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1", Format::OleCompound),
        (b"{\\rtf", Format::Rtf),
    ];
    magic
        .iter()
        .find(|(m, _)| bytes.starts_with(m))
        .map(|&(_, f)| f)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Lowercase extension of the last path component, if any.
fn extension(path: &str) -> Option<String> {
    let name = path.rsplit(['/', '\\']).next().unwrap_or(path);
    let (stem, ext) = name.rsplit_once('.')?;
    (!stem.is_empty() && !ext.is_empty()).then(|| ext.to_ascii_lowercase())
}

/// `1` then `00:00:01,000 --> 00:00:04,000` on the next line.
fn looks_like_srt(text: &str) -> bool {
    let mut lines = text.lines();
    let first = lines.next().unwrap_or("").trim();
    let second = lines.next().unwrap_or("");
    !first.is_empty() && first.bytes().all(|b| b.is_ascii_digit()) && second.contains("-->")
}

/// A doctype or `<html>` first (after an XML prolog and comments), or markup that opens with
/// a tag and has a `<body>`, `<head>` or `<p>` early on.
fn looks_like_html(text: &str) -> bool {
    let head: String = text
        .chars()
        .take(1024)
        .collect::<String>()
        .to_ascii_lowercase();
    let mut rest = head.trim_start();
    loop {
        if let Some(after) = rest.strip_prefix("<?xml") {
            rest = after.split_once("?>").map_or("", |(_, r)| r).trim_start();
        } else if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.split_once("-->").map_or("", |(_, r)| r).trim_start();
        } else {
            break;
        }
    }
    rest.starts_with("<!doctype html")
        || rest.starts_with("<html")
        || (rest.starts_with('<')
            && ["<body", "<head", "<p>", "<div", "<title"]
                .iter()
                .any(|t| rest.contains(t)))
}

/// At least two Markdown marks at line starts: ATX headings (`## x`) or code fences.
fn looks_like_markdown(text: &str) -> bool {
    let marks = text
        .lines()
        .take(2000)
        .filter(|l| {
            let t = l.trim_start_matches(' ');
            let hashes = t.bytes().take_while(|&b| b == b'#').count();
            ((1..=6).contains(&hashes) && t[hashes..].starts_with(' ')) || t.starts_with("```")
        })
        .take(2)
        .count();
    marks >= 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_bytes_win_over_extensions() {
        assert_eq!(detect("a.txt", b"%PDF-1.7\n..."), Format::Pdf);
        assert_eq!(detect("a.docx", b"PK\x03\x04rest"), Format::Docx);
        assert_eq!(
            detect("a.bin", b"PK\x03\x04..word/document.xml"),
            Format::Docx
        );
        assert_eq!(detect("a.zip", b"PK\x03\x04xl/workbook.xml"), Format::Zip);
        assert_eq!(detect("x.md", b"\x89PNG\r\n\x1A\n\0\0"), Format::Image);
        assert_eq!(detect("x.txt", b"abc\0def"), Format::Binary);
        assert_eq!(detect("x.txt", b"{\\rtf1 hello}"), Format::Rtf);
    }

    #[test]
    fn transcripts_by_content_whatever_the_name() {
        let t = b"Alice Smith  0:00\nHello there.\n\nBob  0:05\nHi Alice.\n\n";
        assert_eq!(detect("notes.md", t), Format::Transcript);
        assert_eq!(detect("no-extension", t), Format::Transcript);
        // the same in UTF-16 without a BOM, as some Windows tools save it
        let wide: Vec<u8> = String::from_utf8_lossy(t)
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert_eq!(detect("notes.txt", &wide), Format::Transcript);
        assert_eq!(
            detect("x.txt", b"Just a note at 10:30\nwith text\n"),
            Format::Text
        );
    }

    #[test]
    fn text_formats_by_content_then_extension() {
        assert_eq!(
            detect("a.txt", b"WEBVTT\n\n00:01.000 --> 00:02.000\nhi"),
            Format::WebVtt
        );
        assert_eq!(
            detect("a.txt", b"1\n00:00:01,000 --> 00:00:02,000\nhi\n"),
            Format::Srt
        );
        assert_eq!(detect("a", b"<!DOCTYPE html><html></html>"), Format::Html);
        assert_eq!(
            detect(
                "a",
                b"<?xml version=\"1.0\"?>\n<!-- c -->\n<html xmlns=\"x\">"
            ),
            Format::Html
        );
        assert_eq!(detect("a.txt", b"<div><p>hi</p></div>"), Format::Html);
        assert_eq!(detect("a.txt", b"<b>not a page</b>"), Format::Text);
        assert_eq!(detect("README.MD", b"plain words"), Format::Markdown);
        assert_eq!(detect("page.htm", b"hello"), Format::Html);
        assert_eq!(
            detect("notes.txt", b"# just one heading-like line"),
            Format::Text
        );
        assert_eq!(
            detect("notes", b"## Intro\n\n## Setup\nrun it"),
            Format::Markdown
        );
        assert_eq!(
            detect("plan.txt", b"# Plan\n\n```\ncode\n```\n"),
            Format::Markdown
        );
        assert_eq!(detect("notes", b"intro\n\n## Setup\nrun it"), Format::Text);
        assert_eq!(detect("dir.d/notes", b"plain"), Format::Text);
        assert_eq!(detect(".bashrc", b"plain"), Format::Text);
    }
}
