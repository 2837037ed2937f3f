//! Turns the bytes of one source document into a [`kb_proto::ParsedDocument`]: title,
//! chunks with importance scores, entities, mentions and relations. Pure and local: no
//! network, no model, no native library; the same bytes always give the same result (ids
//! included).
//!
//! # Pipeline
//! 1. [`detect`] the format by content (magic bytes, zip part names, WebVTT/SRT/HTML
//!    markers, transcript shape), then by file extension.
//! 2. A [`FormatReader`] (one module per format under `formats/`) reads the bytes within the
//!    [`Limits`] of [`ParseOptions`] (time, inflated bytes, pages) and returns a
//!    [`StructuredText`]: the text plus headings, paragraphs, tables, code and speaker turns.
//!    Supported (`ParsedDocument.parser`):
//!    - plain text `text/1` and Markdown `markdown/1` (UTF-8, UTF-16/32 with or without BOM,
//!      legacy 8-bit and CJK encodings detected as browsers do);
//!    - Otter.ai-style transcripts `transcript/1` (`Speaker Name  m:ss` line, then the text);
//!    - HTML `html/1` (scripts, styles and hidden parts dropped; headings, paragraphs,
//!      lists, tables);
//!    - WebVTT `webvtt/1` and SRT `srt/1` (cues → speaker turns with start times, from
//!      `<v Name>` voices or `Name:` prefixes);
//!    - DOCX `docx/1` (paragraphs, headings by style, lists, tables, headers, footers, notes;
//!      images skipped), and DOCX laid out as an Otter transcript `transcript-docx/1`,
//!      recognized by content;
//!    - PDF `pdf/1` (text in reading order: columns, rows, right-to-left scripts, tables,
//!      headings by font size; pure Rust, see `formats/pdf`).
//!
//!    Images, archives, legacy Office, RTF and other binaries are refused by name. Failures
//!    are typed ([`ParseErrorKind`]): `empty`, `too_large`, `unsupported_format`,
//!    `invalid_encoding`, `corrupt`, `encrypted`, `decompression_bomb`, `timeout`.
//!    More chunks than [`ParseOptions::max_chunks`] is `too_large` too.
//! 3. Blocks are split into sentences and packed into chunks of at most
//!    [`ParseOptions::chunk_tokens`] approximate WordPiece tokens ([`tokens`] documents the
//!    rule, `token_count` is that measure of the chunk's text), never cutting inside a word
//!    (except a single word over ~3/4 of a chunk, e.g. a base64 blob):
//!    - a heading (Markdown, HTML, DOCX style, PDF font size) closes the chunk before it and
//!      starts a section; `section` is the heading path (`"Guide > Install"`), and the chunk
//!      text starts with the heading;
//!    - a table goes whole into a chunk when it fits, else it is split between rows;
//!    - a whole paragraph or speaker turn goes into the current chunk if it fits, otherwise
//!      into the next; only a block larger than a chunk is split, at sentence boundaries;
//!    - a new chunk repeats the last whole sentences of the previous one, up to
//!      [`ParseOptions::overlap_tokens`] (not across sections);
//!    - transcript turns and subtitle cues are rendered `Speaker: text`, one turn per line.
//! 4. Entities are extracted by local heuristics (see `entities/`), relations built from
//!    co-occurrence (see [`relations`]), and every chunk scored (see [`importance`]).
//!
//! # Ids
//! `chunk_id` = hash of (source id, index, text); `entity_id` = hash of (type, canonical
//! name), equal across documents (see [`ids`]).
//!
//! # Offsets and times
//! Chunk offsets are byte offsets into the reader's text: the decoded text with line endings
//! normalized to `\n` for text formats, the extracted text for PDF, DOCX, HTML and subtitles. Transcript chunks carry their speakers (first appearance order) and a time range:
//! a turn ends where the next begins, the last one after its words at 150 words a minute;
//! a chunk holding part of a turn gets that part's share by words. Other chunks: -1.
//!
//! # Document dates
//! `document_unix_ms` is when the content happened, as the document itself says, else 0
//! (the date filters then use the source's modified time):
//! - transcripts (text and DOCX): the first date, with its time if given, in the preamble
//!   before the first turn (`Tue, Mar 14, 2023 10:02AM • 52:07`, `March 14, 2023`,
//!   `2023-03-14`); a date without a year (`Mon, 5/17 3:04PM`) only with a year named in its
//!   paragraph. It wins over the DOCX metadata;
//! - DOCX: `dcterms:created` of the core properties (`docProps/core.xml`);
//! - PDF: `/CreationDate` of the Info dictionary (`D:20230314100200+01'00'`);
//! - HTML: `<meta>` `article:published_time`, `date`, `dcterms.date`, `dcterms.created`,
//!   `DC.date`, `DC.date.created`, `citation_publication_date` (first present wins);
//! - Markdown and plain text: front matter `date` (else `created`, `published`,
//!   `publishDate`);
//! - WebVTT, SRT: none.
//!
//! Times without an offset are UTC; a date alone is midnight UTC. Dates that cannot be read,
//! do not exist or fall outside the years 1900..=2200 count as none (the forms are listed in
//! `document_date.rs`).

// tests may unwrap: a panic there is a failing test
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod chunk;
mod decode;
mod document_date;
pub mod entities;
mod error;
mod format;
mod formats;
pub mod ids;
pub mod importance;
mod limits;
mod options;
pub mod relations;
mod render;
mod segment;
mod structured;
mod title;
pub mod tokens;

use std::collections::{BTreeMap, BTreeSet};

use kb_proto::{Mention, ParsedDocument, SourceRef};

pub use entities::{canonical_name, question_names, speaker_canonical, EntityType};
pub use error::{ParseError, ParseErrorKind};
pub use format::{detect, Format};
pub use limits::Limits;
pub use options::{ParseOptions, MIN_CHUNK_TOKENS};
pub use relations::{RelationType, MAX_RELATIONS};
pub use structured::{reader_for, Block, BlockKind, FormatReader, StructuredText};
pub use tokens::estimate_tokens;

use entities::EntityType as Ty;
use importance::{ChunkSignals, DocSignals};

/// A password-protected DOCX/XLSX/PPTX is an OLE compound file holding an
/// `EncryptedPackage` stream (its name is UTF-16 in the directory).
fn is_encrypted_office(bytes: &[u8]) -> bool {
    let name: Vec<u8> = "EncryptedPackage"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    bytes.windows(name.len()).any(|w| w == name.as_slice())
}

/// Parses one document. Every error is permanent (see [`ParseErrorKind`]).
pub fn parse(
    source: &SourceRef,
    bytes: &[u8],
    opts: &ParseOptions,
) -> Result<ParsedDocument, ParseError> {
    if bytes.is_empty() {
        return Err(ParseError::new(ParseErrorKind::Empty, "no bytes"));
    }
    if bytes.len() > opts.max_bytes {
        return Err(ParseError::new(
            ParseErrorKind::TooLarge,
            format!(
                "{} bytes is more than the limit of {}",
                bytes.len(),
                opts.max_bytes
            ),
        ));
    }
    let limits = Limits::new(opts);
    let format = detect(&source.path, bytes);
    if format == Format::OleCompound && is_encrypted_office(bytes) {
        return Err(ParseError::new(
            ParseErrorKind::Encrypted,
            "a password-protected Office document (its content is encrypted)",
        ));
    }
    let reader = reader_for(format)?;
    let doc = reader.read_limited(bytes, &limits)?;
    limits.check_time()?;
    let budget = opts.effective_chunk_tokens();
    let atoms = segment::segment(&doc.text, &doc.blocks, |b| {
        chunk::max_atom_tokens(b, budget)
    });
    if atoms.is_empty() {
        return Err(ParseError::new(
            ParseErrorKind::Empty,
            format!("no text content in this {}", format.name()),
        ));
    }
    let packed = chunk::pack(&doc, &atoms, budget, opts.effective_overlap_tokens());
    if packed.len() > opts.max_chunks {
        return Err(ParseError::new(
            ParseErrorKind::TooLarge,
            format!(
                "{} chunks is more than the limit of {}",
                packed.len(),
                opts.max_chunks
            ),
        ));
    }
    limits.check_time()?;
    let mut chunks = render::render(&source.source_id, &doc, &atoms, &packed, budget);
    let ex = entities::extract(&doc, &atoms);
    limits.check_time()?;

    let chunk_atoms: Vec<Vec<usize>> = packed.iter().map(|p| p.atoms.clone()).collect();
    let mut mentions = Vec::new();
    let topics = ex.types.iter().filter(|t| **t == Ty::Topic).count();
    let doc_signals = DocSignals {
        chunks: chunks.len(),
        topics,
        budget,
    };
    for (ci, chunk) in chunks.iter_mut().enumerate() {
        let mut counts: BTreeMap<usize, u32> = BTreeMap::new();
        let mut turns: BTreeSet<usize> = BTreeSet::new();
        let mut signals = ChunkSignals {
            tokens: chunk.token_count as usize,
            ..ChunkSignals::default()
        };
        for &a in &chunk_atoms[ci] {
            for &e in &ex.atom_hits[a] {
                *counts.entry(e).or_default() += 1;
            }
            if ex.block_speaker[atoms[a].block].is_some() {
                turns.insert(atoms[a].block);
            }
            let s = ex.atom_stats[a];
            signals.stats.words += s.words;
            signals.stats.fillers += s.fillers;
            signals.stats.cues += s.cues;
            signals.stats.questions += s.questions;
        }
        for b in turns {
            if let Some(s) = ex.block_speaker[b] {
                *counts.entry(s).or_default() += 1;
            }
        }
        for (&e, &n) in &counts {
            match ex.types[e] {
                Ty::Topic => {
                    signals.distinct_topics += 1;
                    signals.named_mentions += n as usize;
                }
                Ty::Speaker => {}
                _ => signals.named_mentions += n as usize,
            }
        }
        chunk.importance_score = importance::importance(&signals, &doc_signals, ci);
        mentions.extend(counts.into_iter().map(|(e, count)| Mention {
            chunk_id: chunk.chunk_id.clone(),
            entity_id: ex.entities[e].entity_id.clone(),
            count,
        }));
    }
    let relations = relations::relations(&ex, &atoms, &chunk_atoms);
    Ok(ParsedDocument {
        source: Some(source.clone()),
        title: title::title(&doc, &source.path, &source.source_id),
        chunks,
        entities: ex.entities,
        mentions,
        relations,
        embedding_model: String::new(),
        embedding_dimensions: 0,
        parser: doc.parser.unwrap_or(reader.parser_name()).to_owned(),
        document_unix_ms: doc.date_unix_ms.unwrap_or(0),
    })
}
