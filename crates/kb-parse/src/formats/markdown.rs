//! Markdown, line by line: ATX (`## x`) and setext (`x` over `===`/`---`) headings, fenced
//! code blocks, paragraphs separated by blank lines. Inline markup stays in the text (the
//! embedding model copes with it); thematic breaks are dropped. YAML (`---`) or TOML (`+++`)
//! front matter is metadata, not text: its `title` names the document, its `date` (else
//! `created`, `published`, `publishDate`, `pubDate`) dates it, the rest is skipped.

use super::decode_text;
use crate::error::ParseError;
use crate::limits::Limits;
use crate::structured::{
    lines_with_offsets, trim_range, Block, BlockKind, FormatReader, StructuredText,
};

pub struct MarkdownReader;

impl FormatReader for MarkdownReader {
    fn parser_name(&self) -> &'static str {
        "markdown/1"
    }

    fn read_limited(&self, bytes: &[u8], _: &Limits) -> Result<StructuredText, ParseError> {
        let text = decode_text(bytes)?;
        let front = front_matter(&text);
        let body_start = front.as_ref().map_or(0, |f| f.end);
        let blocks = blocks(&text, body_start);
        let date_unix_ms = front.as_ref().and_then(|f| f.date);
        let title = front.and_then(|f| f.title).or_else(|| {
            blocks
                .iter()
                .find(|b| matches!(b.kind, BlockKind::Heading { .. }))
                .map(|b| clean_heading(&text[b.start..b.end]))
        });
        Ok(StructuredText {
            text,
            blocks,
            title,
            parser: None,
            date_unix_ms,
        })
    }
}

/// Heading text without emphasis and code markers, whitespace collapsed: for titles and
/// section paths.
pub(crate) fn clean_heading(s: &str) -> String {
    s.split_whitespace()
        .map(|w| w.trim_matches(|c| c == '*' || c == '`' || c == '_'))
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Front matter at the very start of a document.
pub(crate) struct FrontMatter {
    /// Where the text after the closing marker line starts.
    pub end: usize,
    pub title: Option<String>,
    /// The document's date (Unix ms) from the first of [`DATE_KEYS`] that holds one.
    pub date: Option<i64>,
}

/// Front matter keys that date a document, most telling first (case-insensitive).
const DATE_KEYS: [&str; 5] = ["date", "created", "published", "publishdate", "pubdate"];

/// Lines a front matter block may have before it is taken for something else.
const MAX_FRONT_MATTER_LINES: usize = 100;

/// `---` (YAML) or `+++` (TOML) alone on the first line, `key: value` / `key = value` lines,
/// the same marker (or `...` for YAML) alone on a line.
pub(crate) fn front_matter(text: &str) -> Option<FrontMatter> {
    let mut lines = lines_with_offsets(text);
    let (_, first) = lines.next()?;
    let marker = first.trim_end();
    let separator = match marker {
        "---" => ':',
        "+++" => '=',
        _ => return None,
    };
    let mut title = None;
    // (rank in DATE_KEYS, date)
    let mut date: Option<(usize, i64)> = None;
    let mut keys = 0;
    for (offset, line) in lines.take(MAX_FRONT_MATTER_LINES) {
        let trimmed = line.trim_end();
        if trimmed == marker || (marker == "---" && trimmed == "...") {
            let end = (offset + line.len() + 1).min(text.len());
            return (keys > 0).then_some(FrontMatter {
                end,
                title,
                date: date.map(|(_, d)| d),
            });
        }
        let Some((key, value)) = line.split_once(separator) else {
            continue;
        };
        let key = key.trim();
        if key.is_empty() || key.contains(char::is_whitespace) || line.starts_with([' ', '\t']) {
            continue;
        }
        keys += 1;
        if key.eq_ignore_ascii_case("title") {
            let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
            title = (!value.is_empty()).then(|| value.to_owned());
        }
        let rank = DATE_KEYS.iter().position(|k| key.eq_ignore_ascii_case(k));
        if let Some(rank) = rank.filter(|&r| date.is_none_or(|(best, _)| r < best)) {
            let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
            if let Some(d) = crate::document_date::from_value(value) {
                date = Some((rank, d));
            }
        }
    }
    None
}

struct Fence {
    marker: u8,
    len: usize,
    start: usize,
}

/// Blocks of the text from byte `from` (a line start) on.
fn blocks(text: &str, from: usize) -> Vec<Block> {
    let mut out = Vec::new();
    let mut para: Option<(usize, usize)> = None;
    let mut fence: Option<Fence> = None;
    for (offset, line) in lines_with_offsets(text).skip_while(|&(o, _)| o < from) {
        let end = offset + line.len();
        let indent = line.len() - line.trim_start_matches(' ').len();
        let body = &line[indent..];
        if let Some(f) = &fence {
            let closing = indent <= 3
                && body.bytes().take_while(|&b| b == f.marker).count() >= f.len
                && body.trim_start_matches(f.marker as char).trim().is_empty();
            if closing {
                push(text, f.start, end, BlockKind::Code, &mut out);
                fence = None;
            }
            continue;
        }
        if indent <= 3 {
            if let Some(f) = opening_fence(body, offset) {
                flush(text, &mut para, &mut out);
                fence = Some(f);
                continue;
            }
            if let Some((level, h_start, h_end)) = atx_heading(body) {
                flush(text, &mut para, &mut out);
                push(
                    text,
                    offset + indent + h_start,
                    offset + indent + h_end,
                    BlockKind::Heading { level },
                    &mut out,
                );
                continue;
            }
            if let (Some((ps, pe)), Some(level)) = (para, setext_level(body)) {
                push(text, ps, pe, BlockKind::Heading { level }, &mut out);
                para = None;
                continue;
            }
            if is_thematic_break(body) {
                flush(text, &mut para, &mut out);
                continue;
            }
        }
        if line.trim().is_empty() {
            flush(text, &mut para, &mut out);
        } else {
            para = Some(para.map_or((offset, end), |(s, _)| (s, end)));
        }
    }
    if let Some(f) = fence {
        // an unclosed fence runs to the end of the document
        push(text, f.start, text.len(), BlockKind::Code, &mut out);
    }
    flush(text, &mut para, &mut out);
    out
}

fn flush(text: &str, para: &mut Option<(usize, usize)>, out: &mut Vec<Block>) {
    if let Some((s, e)) = para.take() {
        push(text, s, e, BlockKind::Paragraph, out);
    }
}

fn push(text: &str, s: usize, e: usize, kind: BlockKind, out: &mut Vec<Block>) {
    let (start, end) = trim_range(text, s, e);
    if start < end {
        out.push(Block { kind, start, end });
    }
}

fn opening_fence(body: &str, offset: usize) -> Option<Fence> {
    let marker = *body.as_bytes().first()?;
    if marker != b'`' && marker != b'~' {
        return None;
    }
    let len = body.bytes().take_while(|&b| b == marker).count();
    (len >= 3).then_some(Fence {
        marker,
        len,
        start: offset,
    })
}

/// `## Title ##` → (2, range of "Title" within `body`).
fn atx_heading(body: &str) -> Option<(u8, usize, usize)> {
    let hashes = body.bytes().take_while(|&b| b == b'#').count();
    if !(1..=6).contains(&hashes) {
        return None;
    }
    let rest = &body[hashes..];
    if !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
        return None;
    }
    let mut content = rest.trim_end();
    // a closing sequence of #s, separated by a space, is not content
    let without = content.trim_end_matches('#');
    if without.is_empty() || without.ends_with([' ', '\t']) {
        content = without;
    }
    let start = hashes + (rest.len() - rest.trim_start().len());
    let end = (hashes + content.len()).max(start);
    u8::try_from(hashes).ok().map(|level| (level, start, end))
}

fn setext_level(body: &str) -> Option<u8> {
    let t = body.trim_end();
    if !t.is_empty() && t.bytes().all(|b| b == b'=') {
        Some(1)
    } else if !t.is_empty() && t.bytes().all(|b| b == b'-') {
        Some(2)
    } else {
        None
    }
}

fn is_thematic_break(body: &str) -> bool {
    let t: Vec<u8> = body.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    t.len() >= 3 && matches!(t[0], b'-' | b'*' | b'_') && t.iter().all(|&b| b == t[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(src: &str) -> (Vec<String>, Option<String>) {
        let doc = MarkdownReader.read(src.as_bytes()).unwrap();
        let blocks = doc
            .blocks
            .iter()
            .map(|b| match b.kind {
                BlockKind::Heading { level } => format!("H{level}:{}", doc.block_text(b)),
                BlockKind::Code => format!("C:{}", doc.block_text(b)),
                _ => format!("P:{}", doc.block_text(b)),
            })
            .collect();
        (blocks, doc.title)
    }

    #[test]
    fn headings_paragraphs_code_and_breaks() {
        let src = "intro line\n\n# **Main** Title #\n\npara one\n- item\n\n---\n\n## Sub\n```rust\n# not a heading\n```\nSetext\n======\n#hashtag is text\n";
        let (blocks, title) = show(src);
        assert_eq!(
            blocks,
            vec![
                "P:intro line",
                "H1:**Main** Title",
                "P:para one\n- item",
                "H2:Sub",
                "C:```rust\n# not a heading\n```",
                "H1:Setext",
                "P:#hashtag is text",
            ]
        );
        assert_eq!(title.as_deref(), Some("Main Title"));
    }

    #[test]
    fn front_matter_names_the_document_and_is_no_text() {
        let yaml = "---\ntitle: \"Harbor Handbook\"\nauthor: Jane Roe\ntags: [ops]\n---\n\n# Intro\n\nText.\n";
        let (blocks, title) = show(yaml);
        assert_eq!(blocks, vec!["H1:Intro", "P:Text."]);
        assert_eq!(title.as_deref(), Some("Harbor Handbook"));
        let toml = "+++\ntitle = 'Pier Notes'\ndraft = false\n+++\nText.\n";
        let (blocks, title) = show(toml);
        assert_eq!(blocks, vec!["P:Text."]);
        assert_eq!(title.as_deref(), Some("Pier Notes"));
        // without a title the first heading names it
        let (_, title) = show("---\nauthor: Jane\n---\n# Heading\n");
        assert_eq!(title.as_deref(), Some("Heading"));
        // a thematic break first, or a block that never closes, is text
        let (blocks, _) = show("---\n\nJust text: after a rule.\n");
        assert_eq!(blocks, vec!["P:Just text: after a rule."]);
        let (blocks, _) = show("---\nkey: value\nno end\n");
        assert_eq!(blocks, vec!["P:key: value\nno end"]);
    }

    #[test]
    fn unclosed_fence_and_empty_heading() {
        let (blocks, title) = show("#\n\ntext\n~~~\ncode\n");
        assert_eq!(blocks, vec!["P:text", "C:~~~\ncode"]);
        assert_eq!(title, None);
    }
}
