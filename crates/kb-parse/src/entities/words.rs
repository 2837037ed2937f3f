//! Word tokens of one atom for entity extraction, with what separates each from the last.

use super::lexicon::{is_in, List};
use crate::segment::ABBREVIATIONS;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Word<'a> {
    pub text: &'a str,
    /// Lowercase, with typographic apostrophes straightened (computed once: used everywhere).
    pub lower: String,
    /// Byte offsets in the parsed text.
    pub start: usize,
    pub end: usize,
    /// At the start of a sentence or line (capitalization says nothing there).
    pub initial: bool,
    /// Punctuation between this word and the previous one.
    pub break_before: bool,
    /// Part of a URL or e-mail address: no entity, no keyphrase.
    pub in_link: bool,
}

fn is_joiner(c: char) -> bool {
    matches!(c, '\'' | '’' | '-' | '.' | '&')
}

/// Words of `text[start..end]`: letters and digits, with `'`, `’`, `-`, `.` and `&` kept
/// inside a word ("don't", "COVID-19", "U.S", "AT&T"), except a `.` after a title
/// ("Mr.Manly" is two words).
pub(crate) fn words(text: &str, start: usize, end: usize, all_initial: bool) -> Vec<Word<'_>> {
    let slice = &text[start..end];
    let chars: Vec<(usize, char)> = slice.char_indices().collect();
    let mut out: Vec<Word<'_>> = Vec::new();
    let mut gap_start = 0usize;
    let mut i = 0;
    while i < chars.len() {
        let (pos, c) = chars[i];
        if !c.is_alphanumeric() {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        while j < chars.len() {
            let (jp, cj) = chars[j];
            if cj.is_alphanumeric() {
                j += 1;
            } else if is_joiner(cj) && chars.get(j + 1).is_some_and(|&(_, n)| n.is_alphanumeric()) {
                if cj == '.' && is_in(List::Honorific, &slice[pos..jp].to_lowercase()) {
                    break;
                }
                j += 1;
            } else {
                break;
            }
        }
        let word_end = chars.get(j).map_or(slice.len(), |&(p, _)| p);
        let gap = &slice[gap_start..pos];
        // "Mr. Kelly", "St. Lawrence": the period belongs to an abbreviation
        let after_title = out.last().is_some_and(|w| {
            (is_in(List::Honorific, &w.lower) || ABBREVIATIONS.contains(&w.lower.as_str()))
                && gap.trim() == "."
        });
        let break_before =
            !out.is_empty() && !after_title && gap.chars().any(|g| !g.is_whitespace());
        let initial = all_initial
            || out.is_empty()
            || (!after_title && gap.chars().any(|g| ".!?:;\n\"“”(•*#>|".contains(g)))
            || out
                .last()
                .is_some_and(|w| w.text.chars().all(|c| c.is_ascii_digit()) && gap.contains('.'));
        let text = &slice[pos..word_end];
        out.push(Word {
            text,
            lower: text.to_lowercase().replace('’', "'"),
            start: start + pos,
            end: start + word_end,
            initial,
            break_before,
            in_link: false,
        });
        gap_start = word_end;
        i = j;
    }
    mark_links(slice, start, &mut out);
    out
}

/// Flags the words inside whitespace-separated pieces that look like URLs or e-mails.
fn mark_links(slice: &str, base: usize, words: &mut [Word<'_>]) {
    let mut piece_start: Option<usize> = None;
    let ends = slice
        .char_indices()
        .chain(std::iter::once((slice.len(), ' ')));
    for (i, c) in ends {
        if !c.is_whitespace() {
            piece_start.get_or_insert(i);
            continue;
        }
        let Some(s) = piece_start.take() else {
            continue;
        };
        let piece = &slice[s..i];
        let is_link = piece.contains("://")
            || piece.starts_with("www.")
            || piece.ends_with(".com")
            || (piece.contains('/') && piece.contains('.'))
            || piece
                .split_once('@')
                .is_some_and(|(a, b)| !a.is_empty() && b.contains('.'));
        if is_link {
            let (ps, pe) = (base + s, base + i);
            for w in words.iter_mut().filter(|w| w.start >= ps && w.end <= pe) {
                w.in_link = true;
            }
        }
    }
}

/// First letter uppercase (digits-only words are not capitalized).
pub(crate) fn is_capitalized(w: &str) -> bool {
    w.chars().next().is_some_and(char::is_uppercase)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_joiners_titles_and_breaks() {
        let t = "Mr. Kelly met Mr.Manly, at AT&T's U.S. office. Don't—see https://x.org/a Now";
        let ws = words(t, 0, t.len(), false);
        let texts: Vec<_> = ws.iter().map(|w| w.text).collect();
        assert_eq!(
            texts,
            vec![
                "Mr", "Kelly", "met", "Mr", "Manly", "at", "AT&T's", "U.S", "office", "Don't",
                "see", "https", "x.org", "a", "Now"
            ]
        );
        let kelly = &ws[1];
        assert!(!kelly.initial && !kelly.break_before);
        assert!(ws[0].initial);
        assert!(ws[5].break_before, "comma before 'at'");
        assert!(ws[9].initial, "after a full stop");
        assert!(ws[11].in_link && ws[12].in_link && ws[13].in_link);
        assert!(!ws[14].in_link);
        assert!(words(t, 0, t.len(), true).iter().all(|w| w.initial));
    }

    #[test]
    fn capitalization_helpers() {
        assert!(is_capitalized("Ottawa") && !is_capitalized("ottawa") && !is_capitalized("19"));
    }
}
