//! One module per document format, each a [`crate::FormatReader`].

pub mod docx;
pub mod html;
pub mod markdown;
pub mod pdf;
pub mod subtitles;
pub mod text;
pub mod transcript;
pub(crate) mod zipfile;

use crate::error::{ParseError, ParseErrorKind};
use crate::structured::{lines_with_offsets, trim_range, Block, BlockKind};

/// Paragraphs of `text` between `start` and `end` (runs of non-blank lines), as blocks of
/// `kind`, trimmed; shared by the readers whose paragraphs are separated by blank lines.
pub(crate) fn paragraphs(text: &str, kind: &BlockKind) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, usize)> = None;
    for (offset, line) in lines_with_offsets(text) {
        if line.trim().is_empty() {
            if let Some((s, e)) = current.take() {
                push_trimmed(text, s, e, kind, &mut blocks);
            }
        } else {
            let end = offset + line.len();
            current = Some(current.map_or((offset, end), |(s, _)| (s, end)));
        }
    }
    if let Some((s, e)) = current {
        push_trimmed(text, s, e, kind, &mut blocks);
    }
    blocks
}

fn push_trimmed(text: &str, s: usize, e: usize, kind: &BlockKind, out: &mut Vec<Block>) {
    let (start, end) = trim_range(text, s, e);
    if start < end {
        out.push(Block {
            kind: kind.clone(),
            start,
            end,
        });
    }
}

/// Decodes text formats, mapping a failure to the reader's error.
pub(crate) fn decode_text(bytes: &[u8]) -> Result<String, ParseError> {
    let text = crate::decode::decode(bytes)?;
    if text.trim().is_empty() {
        return Err(ParseError::new(ParseErrorKind::Empty, "no text content"));
    }
    Ok(text)
}
