//! Word documents (DOCX): the zip container's main document part, plus its headers, footers,
//! footnotes and endnotes. Paragraphs keep their heading level (from the paragraph style,
//! resolved through `styles.xml`, or its outline level), list items start with `- `, tables
//! become [`BlockKind::Table`] blocks with one `cell | cell` line per row. Headers come first
//! and footers last, each distinct text once (Word repeats them per section).
//!
//! A DOCX laid out as an Otter.ai transcript (a `Speaker Name  m:ss` paragraph, then the
//! turn's text in the next paragraphs) is read as a transcript: the same rules as the text
//! export (see [`super::transcript`]), recognized by content; its parser is
//! `transcript-docx/1`.
//!
//! The document's date is the first date in a transcript's preamble, else `dcterms:created`
//! of the core properties (`docProps/core.xml`); core properties that cannot be read are
//! ignored.

mod body;
mod styles;
mod xml;

use body::{Item, Para};
use quick_xml::events::Event;
use quick_xml::name::{Namespace, ResolveResult};
use quick_xml::NsReader;
use styles::{relationships, resolve_target, Styles};

use super::transcript::{looks_like_transcript, parse_turn_header, preamble_date, turns};
use super::zipfile::Archive;
use crate::error::{ParseError, ParseErrorKind};
use crate::limits::Limits;
use crate::structured::{Block, BlockKind, FormatReader, StructuredText};

pub struct DocxReader;

impl FormatReader for DocxReader {
    fn parser_name(&self) -> &'static str {
        "docx/1"
    }

    fn read_limited(&self, bytes: &[u8], limits: &Limits) -> Result<StructuredText, ParseError> {
        let mut zip = Archive::open(bytes, "DOCX")?;
        let (main, core) = package_parts(&mut zip, limits)?;
        let Some(doc_xml) = zip.read(&main, limits)? else {
            return Err(ParseError::new(
                ParseErrorKind::Corrupt,
                format!("the DOCX has no main document part ({main})"),
            ));
        };
        let styles = match zip.read("word/styles.xml", limits)? {
            Some(x) => Styles::parse(&x, "word/styles.xml")?,
            None => Styles::default(),
        };
        let body = body::read_part(&doc_xml, &main, &styles, limits)?;
        limits.check_time()?;
        let (dir, file) = main.rsplit_once('/').unwrap_or(("", main.as_str()));
        let rels_name = format!("{dir}/_rels/{file}.rels");
        let rels = match zip.read(rels_name.trim_start_matches('/'), limits)? {
            Some(x) => relationships(&x, &rels_name)?,
            None => Vec::new(),
        };
        let mut read_kind = |kind: &str| -> Result<Vec<Item>, ParseError> {
            let mut items: Vec<Item> = Vec::new();
            for (k, target) in &rels {
                if k != kind {
                    continue;
                }
                let name = resolve_target(dir, target);
                if let Some(x) = zip.read(&name, limits)? {
                    for item in body::read_part(&x, &name, &styles, limits)? {
                        // the same header text in several sections is said once
                        if !items.contains(&item) {
                            items.push(item);
                        }
                    }
                }
            }
            Ok(items)
        };
        let headers = read_kind("header")?;
        let notes: Vec<Item> = read_kind("footnotes")?
            .into_iter()
            .chain(read_kind("endnotes")?)
            .collect();
        let footers = read_kind("footer")?;
        let created = created(&mut zip, &core, limits);
        if let Some(t) = as_transcript(&body) {
            // the turns, then what is not a turn: tables, headers, notes, footers
            let mut out = Builder {
                text: t.text,
                blocks: t.blocks,
            };
            let tables = body.iter().filter(|i| matches!(i, Item::Table(_)));
            for item in tables.chain(&headers).chain(&notes).chain(&footers) {
                out.push(item);
            }
            return Ok(StructuredText {
                text: out.text,
                blocks: out.blocks,
                date_unix_ms: t.date_unix_ms.or(created),
                ..t
            });
        }
        let mut out = Builder::default();
        for item in headers.iter().chain(&body).chain(&notes).chain(&footers) {
            out.push(item);
        }
        let title = out.blocks.iter().find_map(|b| match b.kind {
            BlockKind::Heading { .. } => Some(out.text[b.start..b.end].to_owned()),
            _ => None,
        });
        Ok(StructuredText {
            text: out.text,
            blocks: out.blocks,
            title,
            parser: None,
            date_unix_ms: created,
        })
    }
}

/// The main document part and the core properties part named by the package
/// relationships, else their usual names.
fn package_parts(zip: &mut Archive<'_>, limits: &Limits) -> Result<(String, String), ParseError> {
    let rels = match zip.read("_rels/.rels", limits)? {
        Some(x) => relationships(&x, "_rels/.rels")?,
        None => Vec::new(),
    };
    let find = |kind: &str, usual: &str| {
        rels.iter()
            .find(|(k, _)| k == kind)
            .map_or_else(|| usual.to_owned(), |(_, t)| resolve_target("", t))
    };
    Ok((
        find("officeDocument", "word/document.xml"),
        find("core-properties", "docProps/core.xml"),
    ))
}

/// `created` of python-docx's default template: every document that library makes without
/// setting its core properties carries it; it dates the template, not the document.
const PYTHON_DOCX_TEMPLATE_CREATED: &str = "2013-12-23T23:15:00Z";

/// `dcterms:created` of the core properties part; `None` when it is missing, cannot be read
/// (the date is a nicety, never a reason to fail) or is a template's.
fn created(zip: &mut Archive<'_>, part: &str, limits: &Limits) -> Option<i64> {
    const DCTERMS: &[u8] = b"http://purl.org/dc/terms/";
    let xml = zip.read(part, limits).ok()??;
    let mut reader = NsReader::from_reader(xml.as_slice());
    let mut inside = false;
    let mut value = String::new();
    loop {
        let (ns, event) = reader.read_resolved_event().ok()?;
        let dcterms = matches!(ns, ResolveResult::Bound(Namespace(n)) if n == DCTERMS);
        match event {
            Event::Eof => return None,
            Event::Start(e) if dcterms && e.local_name().as_ref() == b"created" => inside = true,
            Event::Text(t) if inside => value.push_str(&t.decode().ok()?),
            Event::End(_) if inside => {
                let value = value.trim();
                return (value != PYTHON_DOCX_TEMPLATE_CREATED)
                    .then(|| crate::document_date::from_value(value))
                    .flatten();
            }
            _ => {}
        }
        if value.len() > 256 {
            return None;
        }
    }
}

#[derive(Default)]
struct Builder {
    text: String,
    blocks: Vec<Block>,
}

impl Builder {
    fn add(&mut self, kind: BlockKind, s: &str) {
        let start = self.text.len();
        self.text.push_str(s);
        self.blocks.push(Block {
            kind,
            start,
            end: self.text.len(),
        });
        self.text.push_str("\n\n");
    }

    fn push(&mut self, item: &Item) {
        match item {
            Item::Para(p) => match p.level {
                Some(level) => self.add(BlockKind::Heading { level }, &one_line(&p.text)),
                None if p.list => self.add(BlockKind::Paragraph, &format!("- {}", p.text)),
                None => self.add(BlockKind::Paragraph, &p.text),
            },
            Item::Table(rows) => {
                let lines: Vec<String> = rows
                    .iter()
                    .map(|r| {
                        r.iter()
                            .map(|c| one_line(c))
                            .collect::<Vec<_>>()
                            .join(" | ")
                    })
                    .collect();
                self.add(BlockKind::Table, &lines.join("\n"));
            }
        }
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Reads the body as an Otter transcript when it is laid out as one: the paragraphs are
/// written out as the text export would have them (speaker line, then its text) and the text
/// transcript rules decide. Speaker lines are bold in Otter's DOCX, but bold is not required:
/// the layout is recognized by content, not styling.
fn as_transcript(body: &[Item]) -> Option<StructuredText> {
    let paras: Vec<&Para> = body
        .iter()
        .filter_map(|i| match i {
            Item::Para(p) => Some(p),
            Item::Table(_) => None,
        })
        .collect();
    let looks_like_header =
        |p: &Para| !p.text.contains('\n') && parse_turn_header(&p.text).is_some();
    // when the speaker lines are bold (as Otter writes them), a plain line is text even if it
    // reads like one ("Call at  10:30")
    let bold_headers = paras.iter().any(|p| looks_like_header(p) && p.all_bold());
    let is_header = |p: &Para| looks_like_header(p) && (p.all_bold() || !bold_headers);
    // cheap test first: most documents have no speaker line at all
    if paras.iter().filter(|p| is_header(p)).take(2).count() < 2 {
        return None;
    }
    let mut text = String::new();
    for (i, p) in paras.iter().enumerate() {
        let next_is_body = paras.get(i + 1).is_some_and(|n| !is_header(n));
        text.push_str(&p.text);
        // a speaker line and its text form one paragraph of the text export
        text.push_str(if is_header(p) && next_is_body {
            "\n"
        } else {
            "\n\n"
        });
    }
    if !looks_like_transcript(&text) {
        return None;
    }
    let mut blocks = turns(&text);
    // a heading before the first turn (the meeting's name) stays a heading: it names the
    // section instead of filling a chunk of its own
    for b in blocks.iter_mut() {
        if matches!(b.kind, BlockKind::Turn { .. }) {
            break;
        }
        let level = paras
            .iter()
            .find(|p| p.text == text[b.start..b.end])
            .and_then(|p| p.level);
        if let Some(level) = level {
            b.kind = BlockKind::Heading { level };
        }
    }
    let title = paras
        .iter()
        .find(|p| p.level.is_some())
        .map(|p| one_line(&p.text));
    let date_unix_ms = preamble_date(&text, &blocks);
    Some(StructuredText {
        text,
        blocks,
        title,
        parser: Some("transcript-docx/1"),
        date_unix_ms,
    })
}
