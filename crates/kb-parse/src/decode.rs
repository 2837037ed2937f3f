//! Bytes to text: UTF-8 (with or without BOM), UTF-16 with a BOM, else Windows-1252 /
//! Latin-1 when the result looks like text. Line endings are normalized to `\n`; every
//! byte offset in a parsed document refers to this normalized text.

use std::borrow::Cow;

use crate::error::{ParseError, ParseErrorKind};

/// Windows-1252 meanings of 0x80..=0x9F (the rest of Latin-1 maps byte to code point).
/// `None` marks the five undefined slots, which count as control characters.
const CP1252_HIGH: [Option<char>; 32] = [
    Some('€'),
    None,
    Some('‚'),
    Some('ƒ'),
    Some('„'),
    Some('…'),
    Some('†'),
    Some('‡'),
    Some('ˆ'),
    Some('‰'),
    Some('Š'),
    Some('‹'),
    Some('Œ'),
    None,
    Some('Ž'),
    None,
    None,
    Some('‘'),
    Some('’'),
    Some('“'),
    Some('”'),
    Some('•'),
    Some('–'),
    Some('—'),
    Some('˜'),
    Some('™'),
    Some('š'),
    Some('›'),
    Some('œ'),
    None,
    Some('ž'),
    Some('Ÿ'),
];

/// Decodes a whole document. Fails with `InvalidEncoding` when no encoding fits.
pub(crate) fn decode(bytes: &[u8]) -> Result<String, ParseError> {
    let text = decode_raw(bytes)?;
    Ok(normalize_newlines(text))
}

fn decode_raw(bytes: &[u8]) -> Result<String, ParseError> {
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return std::str::from_utf8(rest).map(str::to_owned).map_err(|e| {
            invalid(format!(
                "UTF-8 BOM but invalid UTF-8 at byte {}",
                e.valid_up_to() + 3
            ))
        });
    }
    if let Some(big_endian) = utf16_bom(bytes) {
        return decode_utf16(&bytes[2..], big_endian);
    }
    if let Ok(s) = std::str::from_utf8(bytes) {
        return Ok(s.to_owned());
    }
    let latin = decode_cp1252(bytes);
    if looks_like_text(&latin) {
        Ok(latin)
    } else {
        Err(invalid(
            "not UTF-8, no UTF-16 byte order mark, and not Latin-1 text",
        ))
    }
}

fn invalid(message: impl Into<String>) -> ParseError {
    ParseError::new(ParseErrorKind::InvalidEncoding, message)
}

/// `Some(true)` for a big-endian BOM, `Some(false)` for little-endian.
pub(crate) fn utf16_bom(bytes: &[u8]) -> Option<bool> {
    match bytes {
        [0xFE, 0xFF, ..] => Some(true),
        [0xFF, 0xFE, ..] => Some(false),
        _ => None,
    }
}

fn decode_utf16(body: &[u8], big_endian: bool) -> Result<String, ParseError> {
    if !body.chunks_exact(2).remainder().is_empty() {
        return Err(invalid("UTF-16 text with an odd number of bytes"));
    }
    let units = body.chunks_exact(2).map(|p| {
        if big_endian {
            u16::from_be_bytes([p[0], p[1]])
        } else {
            u16::from_le_bytes([p[0], p[1]])
        }
    });
    char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .map_err(|e| {
            invalid(format!(
                "UTF-16 with an unpaired surrogate {:#06x}",
                e.unpaired_surrogate()
            ))
        })
}

fn decode_cp1252(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| match b {
            0x80..=0x9F => CP1252_HIGH[usize::from(b - 0x80)].unwrap_or('\u{FFFD}'),
            _ => char::from(b),
        })
        .collect()
}

/// Text has few control characters; binary decoded as Latin-1 has many.
fn looks_like_text(s: &str) -> bool {
    let mut total = 0usize;
    let mut control = 0usize;
    for c in s.chars() {
        total += 1;
        if c == '\u{FFFD}' || (c.is_control() && !matches!(c, '\n' | '\r' | '\t' | '\x0C')) {
            control += 1;
        }
    }
    control == 0 || control * 100 <= total
}

/// `\r\n` and lone `\r` become `\n`.
fn normalize_newlines(text: String) -> String {
    if !text.contains('\r') {
        return text;
    }
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// A prefix of the document as text, for format sniffing: never fails, may be lossy.
pub(crate) fn sniff_text(bytes: &[u8], limit: usize) -> Cow<'_, str> {
    if let Some(big_endian) = utf16_bom(bytes) {
        let end = (2 + limit * 2).min(bytes.len()) & !1;
        let body = bytes.get(2..end).unwrap_or_default();
        let units = body.chunks_exact(2).map(|p| {
            if big_endian {
                u16::from_be_bytes([p[0], p[1]])
            } else {
                u16::from_le_bytes([p[0], p[1]])
            }
        });
        let s: String = char::decode_utf16(units)
            .map(|r| r.unwrap_or('\u{FFFD}'))
            .collect();
        return Cow::Owned(normalize_newlines(s));
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let prefix = &bytes[..bytes.len().min(limit)];
    match String::from_utf8_lossy(prefix) {
        Cow::Borrowed(s) if !s.contains('\r') => Cow::Borrowed(s),
        other => Cow::Owned(normalize_newlines(other.into_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_with_and_without_bom_and_newlines_normalized() {
        assert_eq!(
            decode("héllo\r\nworld\rx".as_bytes()).unwrap(),
            "héllo\nworld\nx"
        );
        assert_eq!(decode(b"\xEF\xBB\xBFabc").unwrap(), "abc");
        assert_eq!(
            decode(b"\xEF\xBB\xBFab\xFFc").unwrap_err().kind,
            ParseErrorKind::InvalidEncoding
        );
    }

    #[test]
    fn utf16_both_byte_orders() {
        let text = "Zoë  0:01\nhi ☃";
        let mut le = vec![0xFF, 0xFE];
        let mut be = vec![0xFE, 0xFF];
        for u in text.encode_utf16() {
            le.extend(u.to_le_bytes());
            be.extend(u.to_be_bytes());
        }
        assert_eq!(decode(&le).unwrap(), text);
        assert_eq!(decode(&be).unwrap(), text);
        assert_eq!(sniff_text(&le, 4), "Zoë ");
        le.push(0);
        assert_eq!(
            decode(&le).unwrap_err().kind,
            ParseErrorKind::InvalidEncoding
        );
        // a lone high surrogate
        assert_eq!(
            decode(&[0xFF, 0xFE, 0x00, 0xD8, 0x41, 0x00])
                .unwrap_err()
                .kind,
            ParseErrorKind::InvalidEncoding
        );
    }

    #[test]
    fn latin1_fallback_only_for_text() {
        // "café – naïve" in Windows-1252
        let bytes = b"caf\xe9 \x96 na\xefve";
        assert_eq!(decode(bytes).unwrap(), "café – naïve");
        let binaryish: Vec<u8> = (0u8..=255).cycle().take(2000).collect();
        assert_eq!(
            decode(&binaryish).unwrap_err().kind,
            ParseErrorKind::InvalidEncoding
        );
    }
}
