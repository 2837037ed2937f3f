//! The typed error of [`crate::parse`]. Every kind is permanent: the same bytes fail the
//! same way on every retry, so the parser service dead-letters them instead of retrying.

use kb_core::error::{Class, Error, ErrorKind};
use std::fmt;

/// Why a document could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParseErrorKind {
    /// No bytes, or only whitespace once decoded.
    Empty,
    /// Larger than [`crate::ParseOptions::max_bytes`], more PDF pages than
    /// [`crate::ParseOptions::max_pages`] or more chunks than [`crate::ParseOptions::max_chunks`].
    TooLarge,
    /// A format this version cannot read (images, archives, legacy Office, RTF, other binaries).
    UnsupportedFormat,
    /// Text in no encoding that could be decoded (not UTF-8, UTF-16, UTF-32, nor legacy text).
    InvalidEncoding,
    /// The bytes claim a format but break its rules (truncated, damaged, unreadable).
    Corrupt,
    /// Password-protected (a PDF that needs a user password).
    Encrypted,
    /// A compressed part inflates beyond [`crate::ParseOptions::max_inflated_bytes`] or at an
    /// implausible ratio (a zip or PDF stream built to exhaust memory).
    DecompressionBomb,
    /// Parsing ran past [`crate::ParseOptions::timeout_ms`].
    Timeout,
}

impl ParseErrorKind {
    /// Short machine-readable name, used as the dead letter's `error_kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            ParseErrorKind::Empty => "empty",
            ParseErrorKind::TooLarge => "too_large",
            ParseErrorKind::UnsupportedFormat => "unsupported_format",
            ParseErrorKind::InvalidEncoding => "invalid_encoding",
            ParseErrorKind::Corrupt => "corrupt",
            ParseErrorKind::Encrypted => "encrypted",
            ParseErrorKind::DecompressionBomb => "decompression_bomb",
            ParseErrorKind::Timeout => "timeout",
        }
    }

    /// Always `false`: parsing is a pure function of the bytes (and the limits), so retrying
    /// cannot help; a timeout is permanent too, as the same bytes take as long next time.
    pub fn is_transient(self) -> bool {
        false
    }
}

impl fmt::Display for ParseErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ErrorKind for ParseErrorKind {
    const SUBSYSTEM: &'static str = "parser";

    /// Always permanent (see [`ParseErrorKind::is_transient`]).
    fn class(self) -> Class {
        Class::Permanent
    }

    /// `kind: message`.
    fn describe(e: &ParseError, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", e.kind, e.message)
    }
}

/// A parse failure: its kind and a human-readable reason.
pub type ParseError = Error<ParseErrorKind>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_have_snake_case_names_and_display_includes_message() {
        let all = [
            (ParseErrorKind::Empty, "empty"),
            (ParseErrorKind::TooLarge, "too_large"),
            (ParseErrorKind::UnsupportedFormat, "unsupported_format"),
            (ParseErrorKind::InvalidEncoding, "invalid_encoding"),
            (ParseErrorKind::Corrupt, "corrupt"),
            (ParseErrorKind::Encrypted, "encrypted"),
            (ParseErrorKind::DecompressionBomb, "decompression_bomb"),
            (ParseErrorKind::Timeout, "timeout"),
        ];
        for (kind, name) in all {
            assert_eq!(kind.as_str(), name);
            assert!(!kind.is_transient());
        }
        let e = ParseError::new(ParseErrorKind::TooLarge, "12 bytes > 10");
        assert_eq!(e.to_string(), "too_large: 12 bytes > 10");
    }
}
