//! Bytes to text: UTF-8 (with or without BOM); UTF-16 or UTF-32 with a BOM, or without one when
//! the NUL bytes show it; else the legacy encoding a browser would guess (Windows-1252,
//! ISO-8859-x, Windows-1256, KOI8-R, Shift_JIS, GBK, EUC-KR...) when the result looks like text.
//! Line endings are normalized to `\n`; every byte offset in a parsed document refers to this
//! normalized text.

use std::borrow::Cow;

use chardetng::{EncodingDetector, Iso2022JpDetection, Utf8Detection};

use crate::error::{ParseError, ParseErrorKind};

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
    if let Some(form) = Wide::of(bytes) {
        return form.decode(bytes);
    }
    if let Ok(s) = std::str::from_utf8(bytes) {
        return Ok(s.to_owned());
    }
    let (legacy, encoding) = decode_legacy(bytes);
    if looks_like_text(&legacy) {
        Ok(legacy)
    } else {
        Err(invalid(format!(
            "not UTF-8, UTF-16 or UTF-32, and not text in a legacy encoding (the best \
             guess, {}, gives control characters)",
            encoding.name()
        )))
    }
}

/// The legacy encoding a browser would guess for these bytes, and the text in it. Bytes that
/// encoding does not define become U+FFFD, which [`looks_like_text`] counts against the text.
fn decode_legacy(bytes: &[u8]) -> (String, &'static encoding_rs::Encoding) {
    let mut detector = EncodingDetector::new(Iso2022JpDetection::Deny);
    detector.feed(bytes, true);
    // no top-level domain to go by; UTF-8 is already ruled out
    let encoding = detector.guess(None, Utf8Detection::Deny);
    let (text, _had_errors) = encoding.decode_without_bom_handling(bytes);
    (text.into_owned(), encoding)
}

fn invalid(message: impl Into<String>) -> ParseError {
    ParseError::new(ParseErrorKind::InvalidEncoding, message)
}

/// Text in UTF-16 or UTF-32: marked by a byte order mark, or recognized by where its NUL bytes
/// fall (mostly-Latin text without a BOM, as some Windows tools write it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Wide {
    /// 2 (UTF-16) or 4 (UTF-32) bytes a unit
    width: usize,
    big_endian: bool,
    bom: bool,
}

/// How much of a document the BOM-less check looks at.
const WIDE_SNIFF_BYTES: usize = 4096;

impl Wide {
    fn of(bytes: &[u8]) -> Option<Self> {
        let bom = |width, big_endian| {
            Some(Self {
                width,
                big_endian,
                bom: true,
            })
        };
        match bytes {
            // UTF-32 first: its little-endian BOM starts with the UTF-16 one
            [0x00, 0x00, 0xFE, 0xFF, ..] => bom(4, true),
            [0xFF, 0xFE, 0x00, 0x00, ..] => bom(4, false),
            [0xFE, 0xFF, ..] => bom(2, true),
            [0xFF, 0xFE, ..] => bom(2, false),
            _ => Self::without_bom(bytes),
        }
    }

    /// Counts NUL bytes per position within each 4-byte group of the head. UTF-32 has a NUL
    /// in its top byte always (code points end at 0x10FFFF) and in the next one nearly always;
    /// Latin-script UTF-16 has a NUL in every other byte; text in any 8-bit encoding has none.
    fn without_bom(bytes: &[u8]) -> Option<Self> {
        let head = &bytes[..bytes.len().min(WIDE_SNIFF_BYTES) & !3];
        if head.len() < 8 {
            return None;
        }
        let mut nuls = [0usize; 4];
        for group in head.chunks_exact(4) {
            for (lane, b) in group.iter().enumerate() {
                nuls[lane] += usize::from(*b == 0);
            }
        }
        let groups = head.len() / 4;
        let all = |lane: usize| nuls[lane] == groups;
        let most = |lane: usize| nuls[lane] * 10 >= groups * 9;
        let few = |lane: usize| nuls[lane] * 10 <= groups;
        let form = |width, big_endian| {
            Some(Self {
                width,
                big_endian,
                bom: false,
            })
        };
        if all(3) && most(2) && few(0) {
            form(4, false)
        } else if all(0) && most(1) && few(3) {
            form(4, true)
        } else if most(1) && most(3) && few(0) && few(2) {
            form(2, false)
        } else if most(0) && most(2) && few(1) && few(3) {
            form(2, true)
        } else {
            None
        }
    }

    fn name(self) -> &'static str {
        if self.width == 2 {
            "UTF-16"
        } else {
            "UTF-32"
        }
    }

    fn body(self, bytes: &[u8]) -> &[u8] {
        if self.bom {
            bytes.get(self.width..).unwrap_or_default()
        } else {
            bytes
        }
    }

    fn unit(self, b: &[u8]) -> u32 {
        match (self.width, self.big_endian) {
            (2, true) => u32::from(u16::from_be_bytes([b[0], b[1]])),
            (2, false) => u32::from(u16::from_le_bytes([b[0], b[1]])),
            (_, true) => u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            (_, false) => u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        }
    }

    /// The whole text, strictly: a broken unit is an error, not a replacement character.
    fn decode(self, bytes: &[u8]) -> Result<String, ParseError> {
        let body = self.body(bytes);
        if !body.len().is_multiple_of(self.width) {
            return Err(invalid(format!(
                "{} text whose length is not a multiple of {} bytes",
                self.name(),
                self.width
            )));
        }
        let text = if self.width == 2 {
            let units = body.chunks_exact(2).map(|b| self.unit(b) as u16);
            char::decode_utf16(units)
                .collect::<Result<String, _>>()
                .map_err(|e| {
                    invalid(format!(
                        "UTF-16 with an unpaired surrogate {:#06x}",
                        e.unpaired_surrogate()
                    ))
                })?
        } else {
            body.chunks_exact(4)
                .map(|b| {
                    let unit = self.unit(b);
                    char::from_u32(unit).ok_or_else(|| {
                        invalid(format!("UTF-32 with an invalid code point {unit:#x}"))
                    })
                })
                .collect::<Result<String, _>>()?
        };
        // without a BOM the NUL pattern was a guess: binary data must not pass as text
        if !self.bom && !looks_like_text(&text) {
            return Err(invalid(format!(
                "looks like {} without a byte order mark, but does not decode to text",
                self.name()
            )));
        }
        Ok(text)
    }

    /// Up to `limit` characters, lossily.
    fn sniff(self, bytes: &[u8], limit: usize) -> String {
        let body = self.body(bytes);
        let body = &body[..body.len().min(limit * self.width)];
        if self.width == 2 {
            let units = body.chunks_exact(2).map(|b| self.unit(b) as u16);
            char::decode_utf16(units)
                .map(|r| r.unwrap_or('\u{FFFD}'))
                .collect()
        } else {
            body.chunks_exact(4)
                .map(|b| char::from_u32(self.unit(b)).unwrap_or('\u{FFFD}'))
                .collect()
        }
    }
}

/// Whether bytes with NULs in them are text all the same: UTF-16 or UTF-32 with a BOM, or
/// without one when the head decodes to text.
pub(crate) fn is_wide_text(bytes: &[u8]) -> bool {
    Wide::of(bytes).is_some_and(|w| w.bom || looks_like_text(&w.sniff(bytes, WIDE_SNIFF_BYTES)))
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
    if let Some(form) = Wide::of(bytes) {
        return Cow::Owned(normalize_newlines(form.sniff(bytes, limit)));
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

    /// `text` in UTF-16 (`width` 2) or UTF-32 (4), little- then big-endian, each with its BOM.
    fn with_bom(text: &str, width: usize) -> [Vec<u8>; 2] {
        let units: Vec<u32> = if width == 2 {
            text.encode_utf16().map(u32::from).collect()
        } else {
            text.chars().map(u32::from).collect()
        };
        let (mut le, mut be) = (Vec::new(), Vec::new());
        for u in std::iter::once(0xFEFF).chain(units) {
            le.extend(&u.to_le_bytes()[..width]);
            be.extend(&u.to_be_bytes()[4 - width..]);
        }
        [le, be]
    }

    #[test]
    fn utf16_and_utf32_with_bom_in_both_byte_orders() {
        let text = "Zoë  0:01\nhi ☃ 𝄞";
        for width in [2, 4] {
            for mut bytes in with_bom(text, width) {
                assert_eq!(decode(&bytes).unwrap(), text, "{width}");
                assert_eq!(sniff_text(&bytes, 4), "Zoë ", "{width}");
                bytes.push(0);
                assert_eq!(
                    decode(&bytes).unwrap_err().kind,
                    ParseErrorKind::InvalidEncoding,
                    "a length that is no multiple of {width}"
                );
            }
        }
        // a lone high surrogate, in UTF-16 and as a UTF-32 code point
        for bytes in [
            &[0xFF, 0xFE, 0x00, 0xD8, 0x41, 0x00][..],
            &[0xFF, 0xFE, 0, 0, 0x00, 0xD8, 0, 0],
        ] {
            let err = decode(bytes).unwrap_err();
            assert_eq!(err.kind, ParseErrorKind::InvalidEncoding);
            assert!(err.message.contains("0xd800"), "{err}");
        }
    }

    #[test]
    fn utf16_and_utf32_without_bom_are_recognized_by_their_nuls() {
        let text = "Speaker 1  0:05\nWe met in Zürich on Monday; the budget is agreed.\n";
        let forms: [(&str, Vec<u8>); 4] = [
            (
                "UTF-16LE",
                text.encode_utf16().flat_map(u16::to_le_bytes).collect(),
            ),
            (
                "UTF-16BE",
                text.encode_utf16().flat_map(u16::to_be_bytes).collect(),
            ),
            (
                "UTF-32LE",
                text.chars()
                    .flat_map(|c| u32::from(c).to_le_bytes())
                    .collect(),
            ),
            (
                "UTF-32BE",
                text.chars()
                    .flat_map(|c| u32::from(c).to_be_bytes())
                    .collect(),
            ),
        ];
        for (name, bytes) in forms {
            assert!(is_wide_text(&bytes), "{name}");
            assert_eq!(decode(&bytes).unwrap(), text, "{name}");
            assert_eq!(sniff_text(&bytes, 9), "Speaker 1", "{name}");
        }
        // little-endian integers have the NUL pattern of UTF-32 but are no text
        let ints: Vec<u8> = (0u32..500).flat_map(|i| (i % 40).to_le_bytes()).collect();
        assert!(!is_wide_text(&ints));
        assert_eq!(
            decode(&ints).unwrap_err().kind,
            ParseErrorKind::InvalidEncoding
        );
        // plain 8-bit text has no NULs and is never taken for UTF-16
        assert!(!is_wide_text(text.as_bytes()));
    }

    #[test]
    fn legacy_encodings_are_detected_not_read_as_latin1() {
        // Each line is longer than a greeting so that the detector has something to go by,
        // as it has in any real document.
        let cases: [(&str, &str); 5] = [
            (
                "windows-1252",
                "Le café était fermé; nous avons déjeuné près de l'église à Genève, où ça coûte cher.",
            ),
            (
                "ISO-8859-9",
                "Benim adım Abaddon. Cehennemin Savaşçısı da kim? Başka seçeneğim yoktu, gerçekten.",
            ),
            (
                "windows-1251",
                "Встреча прошла в Москве; обсуждали бюджет проекта и сроки поставки оборудования.",
            ),
            (
                "windows-1256",
                "ناقش الفريق ميزانية المشروع في الاجتماع الأسبوعي واتفقوا على موعد التسليم الجديد.",
            ),
            (
                "Shift_JIS",
                "会議では新しいプロジェクトの予算とスケジュールについて話し合いました。",
            ),
        ];
        for (name, text) in cases {
            let encoding = encoding_rs::Encoding::for_label(name.as_bytes()).unwrap();
            let (bytes, _, unmappable) = encoding.encode(text);
            assert!(!unmappable, "{name} cannot encode the sample");
            assert_eq!(decode(&bytes).unwrap(), text, "{name}");
        }
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
