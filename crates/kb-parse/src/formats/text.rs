//! Plain text: paragraphs separated by blank lines. Front matter (as in Markdown) stays text
//! but dates the document (see [`super::markdown::front_matter`]).

use super::{decode_text, paragraphs};
use crate::error::ParseError;
use crate::limits::Limits;
use crate::structured::{BlockKind, FormatReader, StructuredText};

pub struct TextReader;

impl FormatReader for TextReader {
    fn parser_name(&self) -> &'static str {
        "text/1"
    }

    fn read_limited(&self, bytes: &[u8], _: &Limits) -> Result<StructuredText, ParseError> {
        let text = decode_text(bytes)?;
        let blocks = paragraphs(&text, &BlockKind::Paragraph);
        let date_unix_ms = super::markdown::front_matter(&text).and_then(|f| f.date);
        Ok(StructuredText {
            text,
            blocks,
            title: None,
            parser: None,
            date_unix_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ParseErrorKind;

    #[test]
    fn paragraphs_are_blocks_with_trimmed_ranges() {
        let doc = TextReader
            .read(b"  First line\nsecond line  \n\n\n Third.\n")
            .unwrap();
        let texts: Vec<_> = doc.blocks.iter().map(|b| doc.block_text(b)).collect();
        assert_eq!(texts, vec!["First line\nsecond line", "Third."]);
        assert!(doc.blocks.iter().all(|b| b.kind == BlockKind::Paragraph));
        assert_eq!(
            TextReader.read(b" \n\t\n").unwrap_err().kind,
            ParseErrorKind::Empty
        );
    }
}
