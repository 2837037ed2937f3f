//! Right-to-left text (Arabic, Hebrew, …) in logical order. A PDF places glyphs where they
//! are seen, so a row read left to right holds Arabic words backwards. Each glyph's text is
//! already logical (a ligature maps to its letters in order), so the row is reordered glyph
//! by glyph: a row whose glyphs are mostly right-to-left is reversed, then its left-to-right
//! runs (Latin words, numbers) are turned back; in a mostly left-to-right row only its
//! right-to-left runs are reversed. Counting glyphs rather than letters keeps a glyph that
//! maps to a whole mixed word (as some generators emit) from deciding the row's direction.

use super::glyphs::Glyph;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    Ltr,
    Rtl,
    Neutral,
}

fn is_rtl_char(c: char) -> bool {
    matches!(c as u32,
        0x0590..=0x08FF      // Hebrew, Arabic, Syriac, Thaana, NKo, Samaritan, Mandaic
        | 0xFB1D..=0xFDFF    // Hebrew and Arabic presentation forms A
        | 0xFE70..=0xFEFF    // Arabic presentation forms B
        | 0x10800..=0x10FFF  // historic right-to-left scripts
        | 0x1E800..=0x1EFFF)
}

fn char_dir(c: char) -> Dir {
    if is_rtl_char(c) {
        // marks (harakat) ride on their letter
        if matches!(c as u32, 0x064B..=0x065F | 0x0670 | 0x05B0..=0x05C7) {
            Dir::Neutral
        } else {
            Dir::Rtl
        }
    } else if c.is_alphanumeric() {
        Dir::Ltr
    } else {
        Dir::Neutral
    }
}

fn text_dir(s: &str) -> Dir {
    let (mut l, mut r) = (0usize, 0usize);
    for c in s.chars() {
        match char_dir(c) {
            Dir::Ltr => l += 1,
            Dir::Rtl => r += 1,
            Dir::Neutral => {}
        }
    }
    match (l, r) {
        (0, 0) => Dir::Neutral,
        _ if r > l => Dir::Rtl,
        _ => Dir::Ltr,
    }
}

/// More right-to-left glyphs than left-to-right ones.
pub(crate) fn mostly_rtl<'a>(texts: impl Iterator<Item = &'a str>) -> bool {
    let (mut l, mut r) = (0usize, 0usize);
    for t in texts {
        match text_dir(t) {
            Dir::Ltr => l += 1,
            Dir::Rtl => r += 1,
            Dir::Neutral => {}
        }
    }
    r > l
}

/// The text of a row given its tokens left to right (`None` = word space).
pub(crate) fn logical_text(tokens: &[Option<&Glyph>]) -> String {
    let dirs: Vec<Dir> = tokens
        .iter()
        .map(|t| t.map_or(Dir::Neutral, |g| text_dir(&g.text)))
        .collect();
    let rtl = dirs.iter().filter(|&&d| d == Dir::Rtl).count();
    let ltr = dirs.iter().filter(|&&d| d == Dir::Ltr).count();
    let mut order: Vec<usize> = (0..tokens.len()).collect();
    if rtl > 0 {
        let embedded = if rtl > ltr {
            order.reverse();
            Dir::Ltr
        } else {
            Dir::Rtl
        };
        reverse_runs(&mut order, &dirs, embedded);
    }
    let mut out = String::new();
    for i in order {
        match tokens[i] {
            Some(g) => out.push_str(&g.text),
            None => {
                if !out.is_empty() && !out.ends_with(' ') {
                    out.push(' ');
                }
            }
        }
    }
    out.trim_end().to_owned()
}

/// Reverses every maximal run that starts and ends with a token of direction `dir` and has
/// no token of the other strong direction.
fn reverse_runs(order: &mut [usize], dirs: &[Dir], dir: Dir) {
    let mut i = 0;
    while i < order.len() {
        if dirs[order[i]] != dir {
            i += 1;
            continue;
        }
        let mut last = i;
        let mut j = i + 1;
        while j < order.len() {
            match dirs[order[j]] {
                d if d == dir => last = j,
                Dir::Neutral => {}
                _ => break,
            }
            j += 1;
        }
        order[i..=last].reverse();
        i = last + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(text: &str) -> Glyph {
        Glyph {
            u0: 0.0,
            u1: 0.0,
            v: 0.0,
            size: 10.0,
            text: text.into(),
            space_before: false,
            rot: 0,
        }
    }

    fn row(visual: &[&str]) -> String {
        let glyphs: Vec<Option<Glyph>> = visual.iter().map(|t| (*t != " ").then(|| g(t))).collect();
        let toks: Vec<Option<&Glyph>> = glyphs.iter().map(Option::as_ref).collect();
        logical_text(&toks)
    }

    #[test]
    fn arabic_drawn_left_to_right_reads_right_to_left() {
        // "مرحبا بك" drawn visually: the second word on the left, letters reversed
        let visual = ["ك", "ب", " ", "ا", "ب", "ح", "ر", "م"];
        assert_eq!(row(&visual), "مرحبا بك");
        // a number inside Arabic keeps its digit order
        let visual = ["1", "2", " ", "م", "ق", "ر"];
        assert_eq!(row(&visual), "رقم 12");
        // Latin rows are untouched, an Arabic word inside one is reversed
        let visual = ["a", "b", " ", "ب", "ح", " ", "c"];
        assert_eq!(row(&visual), "ab حب c");
    }

    #[test]
    fn a_glyph_mapping_to_a_mixed_word_does_not_flip_the_row() {
        // as WeasyPrint writes it: one glyph maps to "حَبيبي h", then "abibi", then Arabic
        let visual = ["حَبيبي h", "a", "b", "i", "b", "i", " ", "حَبيبي"];
        assert_eq!(row(&visual), "حَبيبي habibi حَبيبي");
        assert!(!mostly_rtl(visual.iter().copied()));
        assert!(mostly_rtl(["ا", "ب", "c"].into_iter()));
    }
}
