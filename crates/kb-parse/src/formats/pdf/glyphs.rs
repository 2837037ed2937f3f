//! Collects the glyphs the content interpreter draws: text, position along and across its
//! baseline, size. Positions are in a frame rotated so that the glyph's baseline runs left to
//! right (text drawn at 90°, 180° or 270° is laid out like upright text, by itself).

use pdf_extract::{MediaBox, OutputDev, OutputError, Transform};
use unicode_normalization::UnicodeNormalization;

use crate::error::{ParseError, ParseErrorKind};
use crate::limits::Limits;

/// More glyphs than this in one document is refused (memory), about 40 MB of text.
pub(crate) const MAX_GLYPHS: usize = 40_000_000;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Glyph {
    /// Start and end along the baseline.
    pub u0: f64,
    pub u1: f64,
    /// Baseline position across (up is larger).
    pub v: f64,
    /// Font size on the page.
    pub size: f64,
    pub text: String,
    /// A space glyph came right before it in the content stream.
    pub space_before: bool,
    /// Orientation: 0-3 quarter turns counter-clockwise, 4 for any other angle.
    pub rot: u8,
}

/// The [`OutputDev`] that records glyphs page by page, and stops the interpreter when the
/// parse runs out of time or glyphs.
pub(crate) struct Collector<'a> {
    pub pages: Vec<Vec<Glyph>>,
    pub stopped: Option<ParseError>,
    limits: &'a Limits,
    pending_space: bool,
    count: usize,
}

impl<'a> Collector<'a> {
    pub(crate) fn new(limits: &'a Limits) -> Self {
        Collector {
            pages: Vec::new(),
            stopped: None,
            limits,
            pending_space: false,
            count: 0,
        }
    }

    fn stop(&mut self, e: ParseError) -> Result<(), OutputError> {
        self.stopped = Some(e);
        Err(OutputError::FormatError(std::fmt::Error))
    }
}

/// Ligatures and presentation forms (Latin `ﬁ`, Hebrew, Arabic contextual shapes) become the
/// plain letters they stand for; other text is left as the PDF maps it.
fn normalize(s: &str) -> String {
    let needs = s
        .chars()
        .any(|c| matches!(c as u32, 0xFB00..=0xFDFF | 0xFE70..=0xFEFF));
    let mut out: String = if needs {
        s.nfkc().collect()
    } else {
        s.to_owned()
    };
    // private-use code points are icons and flags without meaning as text
    out.retain(|c| {
        !c.is_control() && !matches!(c as u32, 0xAD | 0xFEFF | 0xE000..=0xF8FF | 0xF0000..=0x10FFFF)
    });
    out
}

impl OutputDev for Collector<'_> {
    fn begin_page(
        &mut self,
        _page: u32,
        _media_box: &MediaBox,
        _art_box: Option<(f64, f64, f64, f64)>,
    ) -> Result<(), OutputError> {
        if let Err(e) = self.limits.check_time() {
            return self.stop(e);
        }
        self.pages.push(Vec::new());
        self.pending_space = false;
        Ok(())
    }

    fn end_page(&mut self) -> Result<(), OutputError> {
        Ok(())
    }

    fn output_character(
        &mut self,
        trm: &Transform,
        width: f64,
        _spacing: f64,
        font_size: f64,
        ch: &str,
    ) -> Result<(), OutputError> {
        if ch.chars().all(char::is_whitespace) {
            if !ch.is_empty() {
                self.pending_space = true;
            }
            return Ok(());
        }
        let text = normalize(ch);
        if text.is_empty() {
            return Ok(());
        }
        self.count += 1;
        if self.count > MAX_GLYPHS {
            return self.stop(ParseError::new(
                ParseErrorKind::TooLarge,
                format!("the PDF draws more than {MAX_GLYPHS} characters"),
            ));
        }
        if self.count.is_multiple_of(100_000) {
            if let Err(e) = self.limits.check_time() {
                return self.stop(e);
            }
        }
        let (dx, dy) = (trm.m11, trm.m12);
        let (ux, uy) = (trm.m21, trm.m22);
        let (x, y) = (trm.m31, trm.m32);
        let size = font_size.abs() * ux.hypot(uy);
        let advance = width * font_size.abs() * dx.hypot(dy);
        if ![size, advance, x, y].iter().all(|v| v.is_finite()) || size <= 0.0 {
            return Ok(());
        }
        let angle = dy.atan2(dx).to_degrees().rem_euclid(360.0);
        let quarter = (angle / 90.0).round();
        let rot = if (angle - quarter * 90.0).abs() < 3.0 {
            (quarter as u8) % 4
        } else {
            4
        };
        let (u, v) = match rot {
            1 => (y, -x),
            2 => (-x, -y),
            3 => (-y, x),
            _ => (x, y),
        };
        if self.pages.is_empty() {
            self.pages.push(Vec::new());
        }
        let space_before = std::mem::take(&mut self.pending_space);
        let Some(page) = self.pages.last_mut() else {
            return Ok(());
        };
        page.push(Glyph {
            u0: u,
            u1: u + advance.max(0.0),
            v,
            size,
            text,
            space_before,
            rot,
        });
        Ok(())
    }

    fn begin_word(&mut self) -> Result<(), OutputError> {
        Ok(())
    }

    fn end_word(&mut self) -> Result<(), OutputError> {
        Ok(())
    }

    fn end_line(&mut self) -> Result<(), OutputError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presentation_forms_and_ligatures_are_plain_letters() {
        assert_eq!(normalize("ﬁ"), "fi");
        // Arabic letter beh, initial form → beh
        assert_eq!(normalize("\u{FE91}"), "\u{0628}");
        assert_eq!(normalize("a\u{AD}b\u{0}\u{F0399}"), "ab");
        assert_eq!(normalize("x²"), "x²");
    }
}
