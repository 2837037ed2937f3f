//! PDF, in pure Rust: lopdf parses the file (and decrypts it when it opens with an empty
//! password), pdf-extract interprets the content streams (fonts, encodings, `ToUnicode`
//! maps) and hands over every glyph with its position, and [`layout`] rebuilds reading order
//! from the positions: columns, rows, words, right-to-left scripts, paragraphs, headings.
//!
//! Failures: a PDF that needs a password is `Encrypted`; a truncated one, or one lopdf cannot
//! parse even with a rebuilt cross-reference table ([`repair`]), is `Corrupt`; more pages than [`Limits::max_pages`] is `TooLarge`; streams that
//! inflate past the budget are a `DecompressionBomb` ([`precheck`]). A page the interpreter
//! cannot read (it panics on some malformed fonts and operators) is skipped; when no page
//! can be read the PDF is `Corrupt`. A PDF without any text (a scan) ends as `Empty`.
//! The interpreter runs on its own thread with a large stack, as it recurses into forms.
//! The document's date is `/CreationDate` of the Info dictionary, when it reads as a date.

mod bidi;
mod glyphs;
mod layout;
mod precheck;
mod repair;

use std::panic::{catch_unwind, AssertUnwindSafe};

use lopdf::Document;

use crate::error::{ParseError, ParseErrorKind};
use crate::limits::Limits;
use crate::structured::{Block, BlockKind, FormatReader, StructuredText};
use glyphs::Collector;

pub struct PdfReader;

/// Stack of the interpreter thread.
const STACK_BYTES: usize = 256 * 1024 * 1024;

impl FormatReader for PdfReader {
    fn parser_name(&self) -> &'static str {
        "pdf/1"
    }

    fn read_limited(&self, bytes: &[u8], limits: &Limits) -> Result<StructuredText, ParseError> {
        precheck::inflate_budget(bytes, limits)?;
        let mut doc = load(bytes)?;
        let pages: Vec<_> = doc
            .page_iter()
            .take(limits.max_pages.saturating_add(1))
            .collect();
        if pages.len() > limits.max_pages {
            return Err(ParseError::new(
                ParseErrorKind::TooLarge,
                format!("the PDF has more than {} pages", limits.max_pages),
            ));
        }
        if pages.is_empty() {
            return Err(corrupt(
                "the PDF has no pages (its page tree is empty or broken)",
            ));
        }
        precheck::check_structure(&mut doc, &pages)?;
        limits.check_time()?;
        let Interpreted {
            pages: page_glyphs,
            failed,
            why,
        } = std::thread::scope(|s| {
            std::thread::Builder::new()
                .name("kb-parse-pdf".into())
                .stack_size(STACK_BYTES)
                .spawn_scoped(s, || interpret(&doc, pages.len(), limits))
                .map_err(|e| corrupt(format!("cannot start the PDF interpreter: {e}")))?
                .join()
                .map_err(|_| corrupt("the PDF interpreter failed"))?
        })?;
        if failed == pages.len() {
            let why = why.unwrap_or_default();
            // a valid file in a font encoding the interpreter lacks (e.g. CJK CMaps of
            // non-embedded fonts): not damaged, just beyond this reader
            if why.contains("unsupported encoding") {
                return Err(ParseError::new(
                    ParseErrorKind::UnsupportedFormat,
                    format!("the PDF's fonts use an encoding this reader does not support ({why})"),
                ));
            }
            return Err(corrupt(format!(
                "none of the {} pages could be read (damaged content or fonts: {why})",
                pages.len()
            )));
        }
        Ok(StructuredText {
            date_unix_ms: creation_date(&doc),
            ..assemble(page_glyphs)
        })
    }
}

/// `/CreationDate` of the trailer's Info dictionary (a text string: PDFDocEncoding or UTF-16BE
/// with a byte order mark).
fn creation_date(doc: &Document) -> Option<i64> {
    let info = doc.trailer.get(b"Info").ok()?;
    let (_, info) = doc.dereference(info).ok()?;
    let value = info.as_dict().ok()?.get(b"CreationDate").ok()?;
    let (_, value) = doc.dereference(value).ok()?;
    let bytes = value.as_str().ok()?;
    let text = match bytes.strip_prefix(b"\xfe\xff") {
        Some(utf16) => String::from_utf16_lossy(
            &utf16
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect::<Vec<_>>(),
        ),
        // dates are ASCII; anything else is not part of one
        None => bytes
            .iter()
            .map(|&b| if b.is_ascii() { char::from(b) } else { '?' })
            .collect(),
    };
    crate::document_date::from_pdf(&text)
}

fn corrupt(message: impl Into<String>) -> ParseError {
    ParseError::new(ParseErrorKind::Corrupt, message)
}

/// Parses (rebuilding a damaged cross-reference table of a complete file) and, when it opens
/// with an empty password, decrypts.
fn load(bytes: &[u8]) -> Result<Document, ParseError> {
    let encrypted = |detail: String| {
        ParseError::new(
            ParseErrorKind::Encrypted,
            format!("the PDF is encrypted and needs a password to open ({detail})"),
        )
    };
    let parse = |b: &[u8]| catch_unwind(|| Document::load_mem(b)).ok();
    let first = parse(bytes);
    let result = match first {
        Some(Err(lopdf::Error::Decryption(_) | lopdf::Error::InvalidPassword)) | Some(Ok(_)) => {
            first
        }
        _ if repair::looks_complete(bytes) => {
            match repair::with_rebuilt_xref(bytes).and_then(|fixed| parse(&fixed)) {
                Some(Ok(doc)) => Some(Ok(doc)),
                _ => first,
            }
        }
        _ => {
            return Err(corrupt(
                "not a readable PDF: the file is truncated (it has no end-of-file marker)",
            ))
        }
    };
    let mut doc = match result {
        Some(Ok(doc)) => doc,
        Some(Err(lopdf::Error::Decryption(e))) => return Err(encrypted(e.to_string())),
        Some(Err(lopdf::Error::InvalidPassword)) => return Err(encrypted("wrong password".into())),
        Some(Err(e)) => return Err(corrupt(format!("not a readable PDF (damaged): {e}"))),
        None => return Err(corrupt("not a readable PDF (the parser gave up)")),
    };
    if doc.is_encrypted() {
        doc.decrypt("").map_err(|e| encrypted(e.to_string()))?;
    }
    Ok(doc)
}

/// What the interpreter drew.
struct Interpreted {
    /// Glyphs of every page (what a failed page drew before failing included).
    pages: Vec<Vec<glyphs::Glyph>>,
    /// Pages that could not be read to the end.
    failed: usize,
    /// Why the first of them could not.
    why: Option<String>,
}

fn interpret(doc: &Document, pages: usize, limits: &Limits) -> Result<Interpreted, ParseError> {
    let mut out = Vec::with_capacity(pages);
    let mut failed = 0;
    let mut why: Option<String> = None;
    for n in 1..=pages {
        let mut c = Collector::new(limits);
        let page = u32::try_from(n).unwrap_or(u32::MAX);
        let result = catch_unwind(AssertUnwindSafe(|| {
            pdf_extract::output_doc_page(doc, &mut c, page)
        }));
        if let Some(e) = c.stopped.take() {
            return Err(e);
        }
        match result {
            Ok(Ok(())) => out.push(c.pages.into_iter().flatten().collect()),
            // a damaged page: what it drew before failing is kept
            Ok(Err(e)) => {
                failed += 1;
                why.get_or_insert_with(|| e.to_string());
                out.push(c.pages.into_iter().flatten().collect());
            }
            Err(panic) => {
                failed += 1;
                why.get_or_insert_with(|| {
                    panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                        .unwrap_or_else(|| "the interpreter gave up".to_owned())
                });
                out.push(c.pages.into_iter().flatten().collect());
            }
        }
    }
    Ok(Interpreted {
        pages: out,
        failed,
        why,
    })
}

/// Pages → lines → paragraphs and headings → one text with blocks.
fn assemble(pages: Vec<Vec<glyphs::Glyph>>) -> StructuredText {
    let body = body_size(&pages);
    let mut column = 0;
    let mut page_lines: Vec<Vec<layout::Line>> = pages
        .into_iter()
        .map(|glyphs| {
            let (lines, next) = layout::page_lines(glyphs, column);
            column = next;
            lines
        })
        .collect();
    layout::drop_running_lines(&mut page_lines);
    let paras: Vec<layout::Para> = page_lines
        .iter()
        .flat_map(|l| layout::paragraphs(l))
        .collect();
    let levels = layout::heading_levels(&paras, body);
    let mut text = String::new();
    let mut blocks = Vec::new();
    for (p, level) in paras.iter().zip(levels) {
        let start = text.len();
        text.push_str(&p.text);
        let kind = match level {
            Some(level) => BlockKind::Heading { level },
            None if p.table => BlockKind::Table,
            None => BlockKind::Paragraph,
        };
        blocks.push(Block {
            kind,
            start,
            end: text.len(),
        });
        text.push_str("\n\n");
    }
    let title = blocks
        .iter()
        .find(|b| matches!(b.kind, BlockKind::Heading { level: 1 }))
        .map(|b| text[b.start..b.end].to_owned());
    StructuredText {
        text,
        blocks,
        title,
        parser: None,
        date_unix_ms: None,
    }
}

/// The font size most characters are set in (rounded to half points).
fn body_size(pages: &[Vec<glyphs::Glyph>]) -> f64 {
    let mut counts: std::collections::BTreeMap<i64, usize> = Default::default();
    for g in pages.iter().flatten() {
        *counts.entry((g.size * 2.0).round() as i64).or_default() += g.text.chars().count();
    }
    counts
        .into_iter()
        .max_by_key(|&(size, n)| (n, -size))
        .map_or(0.0, |(s, _)| s as f64 / 2.0)
}
