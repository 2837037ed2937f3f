//! Splits blocks into atoms: sentences (lines for code), further split at word boundaries
//! when a sentence alone exceeds the largest atom the chunker can place. Atoms are the
//! units of chunk packing, overlap and entity extraction.

use crate::structured::{Block, BlockKind};
use crate::tokens::estimate_tokens;

/// A piece of one block: a byte range of the parsed text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Atom {
    pub block: usize,
    pub start: usize,
    pub end: usize,
    pub tokens: usize,
    /// Continues a word cut at a character boundary (only for a single word longer than a
    /// whole atom): the chunker never places it in the same chunk as its predecessor.
    pub glued: bool,
    /// Words of the block before this atom, and in it (for transcript timing).
    pub words_before: usize,
    pub words: usize,
}

/// Abbreviations whose trailing period does not end a sentence.
pub(crate) const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "prof", "hon", "st", "jr", "sr", "vs", "etc", "e.g", "i.e", "no",
    "fig", "inc", "ltd", "co", "corp", "mt", "gen", "gov", "sen", "rep", "approx", "dept", "est",
    "vol", "p", "pp", "u.s", "u.k", "a.m", "p.m", "cf", "al", "ca", "lt", "col", "capt", "sgt",
    "rev", "messrs", "mme", "mlle", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept",
    "oct", "nov", "dec", "lib",
];

/// Atoms of every block, in document order. `max_tokens(block)` is the largest atom allowed.
pub(crate) fn segment(
    text: &str,
    blocks: &[Block],
    max_tokens: impl Fn(&Block) -> usize,
) -> Vec<Atom> {
    let mut atoms = Vec::new();
    for (bi, block) in blocks.iter().enumerate() {
        let max = max_tokens(block).max(1);
        let units = match block.kind {
            BlockKind::Code | BlockKind::Table => lines(text, block.start, block.end),
            BlockKind::Heading { .. } => vec![(block.start, block.end)],
            _ => sentences(text, block.start, block.end),
        };
        let mut words_before = 0;
        for (s, e) in units {
            for (start, end, glued) in fit(text, s, e, max) {
                let words = if glued {
                    0
                } else {
                    text[start..end].split_whitespace().count()
                };
                atoms.push(Atom {
                    block: bi,
                    start,
                    end,
                    tokens: estimate_tokens(&text[start..end]),
                    glued,
                    words_before,
                    words,
                });
                words_before += words;
            }
        }
    }
    atoms
}

/// Word spans of `text[start..end]`: (start, end, whitespace before contains a newline).
fn words(text: &str, start: usize, end: usize) -> Vec<(usize, usize, bool)> {
    let mut out = Vec::new();
    let mut word_start: Option<usize> = None;
    let mut newline = false;
    for (i, c) in text[start..end].char_indices() {
        let at = start + i;
        if c.is_whitespace() {
            if let Some(ws) = word_start.take() {
                out.push((ws, at, newline));
                newline = false;
            }
            newline |= c == '\n';
        } else if word_start.is_none() {
            word_start = Some(at);
        }
    }
    if let Some(ws) = word_start {
        out.push((ws, end, newline));
    }
    out
}

/// Sentence ranges: a sentence ends after a word ending in `.`, `!`, `?` or `…` (before
/// closing quotes and brackets) unless it is a known abbreviation or an initial, and at
/// every line break.
pub(crate) fn sentences(text: &str, start: usize, end: usize) -> Vec<(usize, usize)> {
    let ws = words(text, start, end);
    let mut out = Vec::new();
    let mut sent_start: Option<usize> = None;
    for (i, &(s, e, newline_before)) in ws.iter().enumerate() {
        if newline_before {
            if let (Some(ss), Some(&(_, pe, _))) =
                (sent_start.take(), i.checked_sub(1).and_then(|p| ws.get(p)))
            {
                out.push((ss, pe));
            }
        }
        sent_start.get_or_insert(s);
        if ends_sentence(&text[s..e]) {
            if let Some(ss) = sent_start.take() {
                out.push((ss, e));
            }
        }
    }
    if let (Some(ss), Some(&(_, e, _))) = (sent_start, ws.last()) {
        out.push((ss, e));
    }
    out
}

fn ends_sentence(word: &str) -> bool {
    let core = word.trim_end_matches(['"', '\'', ')', ']', '}', '”', '’', '»']);
    if core.ends_with(['!', '?', '…']) {
        return true;
    }
    let Some(stem) = core.strip_suffix('.') else {
        return false;
    };
    let stem = stem.trim_start_matches(['(', '"', '\'', '“', '‘', '[']);
    let lower = stem.to_lowercase();
    let initial = stem.chars().count() == 1 && stem.chars().all(char::is_uppercase);
    !(initial || ABBREVIATIONS.contains(&lower.as_str()) || stem.ends_with('.'))
}

/// Non-empty trimmed lines of `text[start..end]`.
fn lines(text: &str, start: usize, end: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut offset = start;
    for line in text[start..end].split('\n') {
        let (s, e) = crate::structured::trim_range(text, offset, offset + line.len());
        if s < e {
            out.push((s, e));
        }
        offset += line.len() + 1;
    }
    out
}

/// Splits `text[start..end]` into pieces of at most `max` tokens at word boundaries; a word
/// longer than `max` is cut every `max` characters (a character never counts more than one
/// token), the continuation pieces marked glued.
fn fit(text: &str, start: usize, end: usize, max: usize) -> Vec<(usize, usize, bool)> {
    if estimate_tokens(&text[start..end]) <= max {
        return vec![(start, end, false)];
    }
    let mut out = Vec::new();
    let mut cur: Option<(usize, usize, usize)> = None; // start, end, tokens
    for (ws, we, _) in words(text, start, end) {
        let t = estimate_tokens(&text[ws..we]);
        if let Some((cs, ce, ct)) = cur {
            if ct + t <= max {
                cur = Some((cs, we, ct + t));
                continue;
            }
            out.push((cs, ce, false));
            cur = None;
        }
        if t <= max {
            cur = Some((ws, we, t));
        } else {
            out.extend(cut_word(text, ws, we, max));
        }
    }
    if let Some((cs, ce, _)) = cur {
        out.push((cs, ce, false));
    }
    out
}

fn cut_word(text: &str, start: usize, end: usize, max: usize) -> Vec<(usize, usize, bool)> {
    let mut out = Vec::new();
    let mut piece_start = start;
    let mut chars = 0;
    for (i, _) in text[start..end].char_indices() {
        if chars == max {
            out.push((piece_start, start + i, piece_start != start));
            piece_start = start + i;
            chars = 0;
        }
        chars += 1;
    }
    out.push((piece_start, end, piece_start != start));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(text: &str, ranges: &[(usize, usize)]) -> Vec<String> {
        ranges
            .iter()
            .map(|&(s, e)| text[s..e].to_string())
            .collect()
    }

    #[test]
    fn sentence_boundaries() {
        let t =
            "Mr. Kelly met Dr. J. Smith at 5 p.m. today. Really?! Yes (he said.) Next\nline one";
        assert_eq!(
            texts(t, &sentences(t, 0, t.len())),
            vec![
                "Mr. Kelly met Dr. J. Smith at 5 p.m. today.",
                "Really?!",
                "Yes (he said.)",
                "Next",
                "line one"
            ]
        );
        assert!(sentences("   ", 0, 3).is_empty());
    }

    #[test]
    fn long_sentences_split_at_words_and_huge_words_are_cut() {
        let t = "alpha beta gamma delta epsilon";
        let pieces = fit(t, 0, t.len(), 2);
        assert_eq!(
            pieces.iter().map(|&(s, e, _)| &t[s..e]).collect::<Vec<_>>(),
            vec!["alpha beta", "gamma delta", "epsilon"]
        );
        let w = "x".repeat(25);
        assert_eq!(
            fit(&w, 0, w.len(), 10),
            vec![(0, 25, false)],
            "7 tokens fit"
        );
        let cut = fit(&w, 0, w.len(), 5);
        assert_eq!(
            cut,
            vec![
                (0, 5, false),
                (5, 10, true),
                (10, 15, true),
                (15, 20, true),
                (20, 25, true)
            ]
        );
    }

    #[test]
    fn atoms_carry_block_tokens_and_word_positions() {
        let text = "One two. Three four five.\nx";
        let blocks = vec![Block {
            kind: BlockKind::Paragraph,
            start: 0,
            end: text.len(),
        }];
        let atoms = segment(text, &blocks, |_| 100);
        let got: Vec<_> = atoms
            .iter()
            .map(|a| (&text[a.start..a.end], a.tokens, a.words_before, a.words))
            .collect();
        assert_eq!(
            got,
            vec![
                ("One two.", 3, 0, 2),
                ("Three four five.", 4, 2, 3),
                ("x", 1, 5, 1)
            ]
        );
    }
}
