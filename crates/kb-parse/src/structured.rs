//! The format-independent middle of the pipeline: every format reader turns bytes into a
//! [`StructuredText`] (one text plus typed blocks pointing into it), and everything after
//! that (chunking, entities, relations, scores) works on blocks only. Adding a format means
//! adding one [`FormatReader`] in `formats/` and one line in [`reader_for`].

use crate::error::{ParseError, ParseErrorKind};
use crate::format::Format;
use crate::formats::{
    docx::DocxReader, html::HtmlReader, markdown::MarkdownReader, pdf::PdfReader,
    subtitles::SubtitleReader, text::TextReader, transcript::TranscriptReader,
};
use crate::limits::Limits;

/// What a block is; decides how it is chunked and rendered.
#[derive(Debug, Clone, PartialEq)]
pub enum BlockKind {
    /// A heading of the given level (1 = top); starts a new section.
    Heading { level: u8 },
    /// Running text; a preferred chunk boundary.
    Paragraph,
    /// Preformatted text (code): split on lines only, no entity extraction.
    Code,
    /// A table, one row per line with cells separated by `" | "`: split between rows only,
    /// entities extracted.
    Table,
    /// One speaker turn of a transcript or subtitle cue; `start_seconds` from the start of the
    /// recording. `speaker` is empty when the source does not say who speaks.
    Turn { speaker: String, start_seconds: f64 },
}

/// A block: its kind and its byte range in [`StructuredText::text`] (trimmed, may be empty).
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    pub kind: BlockKind,
    pub start: usize,
    pub end: usize,
}

/// A document as text plus structure, in reading order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StructuredText {
    /// The parsed text; chunk offsets refer to it.
    pub text: String,
    pub blocks: Vec<Block>,
    /// A title the format itself names (e.g. the first Markdown heading).
    pub title: Option<String>,
    /// The parser name to record when it differs from the reader's (a DOCX that turns out to
    /// be a meeting transcript).
    pub parser: Option<&'static str>,
    /// When the content happened, Unix milliseconds, when the document says (a transcript's
    /// preamble, DOCX core properties, PDF info, HTML meta tags, front matter): becomes
    /// `ParsedDocument.document_unix_ms`.
    pub date_unix_ms: Option<i64>,
}

impl StructuredText {
    /// The text of a block.
    pub fn block_text(&self, block: &Block) -> &str {
        self.text.get(block.start..block.end).unwrap_or_default()
    }
}

/// One document format: bytes in, structured text out.
pub trait FormatReader: Sync {
    /// Name and version recorded in `ParsedDocument.parser`, e.g. `"markdown/1"`.
    fn parser_name(&self) -> &'static str;
    /// Reads a whole document within `limits`. Empty content is the caller's concern (it
    /// checks blocks).
    fn read_limited(&self, bytes: &[u8], limits: &Limits) -> Result<StructuredText, ParseError>;

    /// [`FormatReader::read_limited`] with the default limits.
    fn read(&self, bytes: &[u8]) -> Result<StructuredText, ParseError> {
        self.read_limited(bytes, &Limits::default())
    }
}

/// The reader of a format, or `UnsupportedFormat` naming it.
pub fn reader_for(format: Format) -> Result<&'static dyn FormatReader, ParseError> {
    match format {
        Format::Text => Ok(&TextReader),
        Format::Markdown => Ok(&MarkdownReader),
        Format::Transcript => Ok(&TranscriptReader),
        Format::Html => Ok(&HtmlReader),
        Format::WebVtt => Ok(&SubtitleReader::WEBVTT),
        Format::Srt => Ok(&SubtitleReader::SRT),
        Format::Pdf => Ok(&PdfReader),
        Format::Docx => Ok(&DocxReader),
        other => Err(ParseError::new(
            ParseErrorKind::UnsupportedFormat,
            format!(
                "{} is not a supported document format (detected from the content or file name)",
                other.name()
            ),
        )),
    }
}

/// Byte range of `s[start..end]` without leading and trailing whitespace.
pub(crate) fn trim_range(s: &str, start: usize, end: usize) -> (usize, usize) {
    let slice = &s[start..end];
    let lead = slice.len() - slice.trim_start().len();
    let trimmed = slice.trim();
    (start + lead, start + lead + trimmed.len())
}

/// Lines of `s` with the byte offset where each starts (without the `\n`).
pub(crate) fn lines_with_offsets(s: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut offset = 0;
    s.split('\n').map(move |line| {
        let start = offset;
        offset += line.len() + 1;
        (start, line)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_formats_name_themselves() {
        let e = reader_for(Format::OleCompound).err().unwrap();
        assert_eq!(e.kind, ParseErrorKind::UnsupportedFormat);
        assert!(e.message.contains("legacy Office"), "{}", e.message);
        assert_eq!(
            reader_for(Format::Markdown).unwrap().parser_name(),
            "markdown/1"
        );
    }

    #[test]
    fn helpers() {
        assert_eq!(trim_range("  ab c \n", 0, 8), (2, 6));
        assert_eq!(trim_range("x   ", 1, 4), (4, 4));
        let lines: Vec<_> = lines_with_offsets("a\nbc\n").collect();
        assert_eq!(lines, vec![(0, "a"), (2, "bc"), (5, "")]);
    }
}
