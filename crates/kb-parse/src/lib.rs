//! Turns the bytes of one source document into a [`kb_proto::ParsedDocument`]: title,
//! chunks with importance scores, entities, mentions and relations. Pure and local: no
//! network, no model, the same bytes always give the same result (ids included).
//!
//! # Pipeline
//! 1. [`detect`] the format by content (magic bytes, transcript shape), then by extension.
//! 2. A [`FormatReader`] (one module per format under `formats/`) decodes the bytes
//!    (UTF-8, UTF-16 with BOM, else Latin-1 if it looks like text) and returns a
//!    [`StructuredText`]: the text plus headings, paragraphs, code and speaker turns.
//!    Supported: plain text (`text/1`), Markdown (`markdown/1`), Otter.ai-style transcripts
//!    (`transcript/1`). PDF, DOCX, HTML, WebVTT, SRT and binaries are detected and refused
//!    with `UnsupportedFormat`; each can be added as one more reader.
//! 3. Blocks are split into sentences and packed into chunks of at most
//!    [`ParseOptions::chunk_tokens`] approximate WordPiece tokens ([`tokens`] documents the
//!    rule, `token_count` is that measure of the chunk's text), never cutting inside a word
//!    (except a single word over ~3/4 of a chunk, e.g. a base64 blob):
//!    - a Markdown heading closes the chunk before it and starts a section; `section` is the
//!      heading path (`"Guide > Install"`), and the chunk text starts with the heading;
//!    - a whole paragraph or speaker turn goes into the current chunk if it fits, otherwise
//!      into the next; only a block larger than a chunk is split, at sentence boundaries;
//!    - a new chunk repeats the last whole sentences of the previous one, up to
//!      [`ParseOptions::overlap_tokens`] (not across sections);
//!    - transcript turns are rendered `Speaker: text`, one turn per line.
//! 4. Entities are extracted by local heuristics (see `entities/`), relations built from
//!    co-occurrence (see [`relations`]), and every chunk scored (see [`importance`]).
//!
//! # Ids
//! `chunk_id` = hash of (source id, index, text); `entity_id` = hash of (type, canonical
//! name), equal across documents (see [`ids`]).
//!
//! # Offsets and times
//! Chunk offsets are byte offsets into the decoded text with line endings normalized to
//! `\n`. Transcript chunks carry their speakers (first appearance order) and a time range:
//! a turn ends where the next begins, the last one after its words at 150 words a minute;
//! a chunk holding part of a turn gets that part's share by words. Other chunks: -1.

// tests may unwrap: a panic there is a failing test
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod chunk;
mod decode;
pub mod entities;
mod error;
mod format;
mod formats;
pub mod ids;
pub mod importance;
mod options;
pub mod relations;
mod render;
mod segment;
mod structured;
mod title;
pub mod tokens;

use std::collections::{BTreeMap, BTreeSet};

use kb_proto::{Mention, ParsedDocument, SourceRef};

pub use entities::{canonical_name, speaker_canonical, EntityType};
pub use error::{ParseError, ParseErrorKind};
pub use format::{detect, Format};
pub use options::{ParseOptions, MIN_CHUNK_TOKENS};
pub use relations::{RelationType, MAX_RELATIONS};
pub use structured::{reader_for, Block, BlockKind, FormatReader, StructuredText};
pub use tokens::estimate_tokens;

use entities::EntityType as Ty;
use importance::{ChunkSignals, DocSignals};

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
    let reader = reader_for(detect(&source.path, bytes))?;
    let doc = reader.read(bytes)?;
    let budget = opts.effective_chunk_tokens();
    let atoms = segment::segment(&doc.text, &doc.blocks, |b| {
        chunk::max_atom_tokens(b, budget)
    });
    if atoms.is_empty() {
        return Err(ParseError::new(ParseErrorKind::Empty, "no text content"));
    }
    let packed = chunk::pack(&doc, &atoms, budget, opts.effective_overlap_tokens());
    let mut chunks = render::render(&source.source_id, &doc, &atoms, &packed, budget);
    let ex = entities::extract(&doc, &atoms);

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
        parser: reader.parser_name().to_owned(),
    })
}
