//! Canonical names: the form two mentions of one real thing share. Case-folded,
//! punctuation trimmed, whitespace collapsed, titles ("Dr.", "Hon.") and a leading "the"
//! removed, bracketed asides dropped, dotted acronyms joined, plus a few place aliases.

use super::lexicon::{is_in, List};

/// Canonical form of a name; empty when nothing is left.
pub fn canonical_name(surface: &str) -> String {
    let without_asides = drop_brackets(surface);
    let lowered = without_asides.to_lowercase().replace(['’', '‘'], "'");
    let mut words: Vec<String> = lowered
        .split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()).to_owned())
        .filter(|w| !w.is_empty())
        .collect();
    strip_titles(&mut words);
    if let Some(last) = words.last_mut() {
        if let Some(stem) = last.strip_suffix("'s") {
            *last = stem.to_owned();
        }
    }
    for w in &mut words {
        // "u.s" → "us", "e.u" → "eu": dots between single letters
        if w.contains('.') && w.split('.').all(|p| p.chars().count() == 1) {
            *w = w.replace('.', "");
        }
    }
    let joined = words.join(" ");
    alias(&joined).map_or(joined, str::to_owned)
}

/// Removes leading titles and a leading "the" in place.
pub(crate) fn strip_titles(words: &mut Vec<String>) {
    loop {
        let Some(first) = words.first() else { return };
        let first = first.trim_end_matches('.');
        let next_is_title = words
            .get(1)
            .is_some_and(|n| matches!(n.trim_end_matches('.'), "hon" | "honourable" | "honorable"));
        let strip = (first == "right" && next_is_title)
            || (first != "right" && is_in(List::Honorific, first))
            || (first == "the" && words.len() > 1);
        if !strip {
            return;
        }
        words.remove(0);
    }
}

/// Text without anything in round or square brackets (nested ones included).
fn drop_brackets(s: &str) -> String {
    let mut depth = 0usize;
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// The text inside the first top-level brackets: "The Chair (Hon. A (B))" → "Hon. A (B)".
pub(crate) fn first_aside(s: &str) -> Option<&str> {
    let open = s.find(['(', '['])?;
    let mut depth = 0usize;
    for (i, c) in s[open..].char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(&s[open + 1..open + i]);
                }
            }
            _ => {}
        }
    }
    Some(&s[open + 1..])
}

fn alias(name: &str) -> Option<&'static str> {
    Some(match name {
        "usa" | "us" | "u.s.a" | "united states of america" | "america" => "united states",
        "uk" | "britain" | "great britain" => "united kingdom",
        "holland" => "netherlands",
        "czech republic" => "czechia",
        "kiev" => "kyiv",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms() {
        assert_eq!(canonical_name("  Dr.  Ada   LOVELACE, "), "ada lovelace");
        assert_eq!(
            canonical_name("Mr. Pat Kelly (Calgary Rocky Ridge, CPC)"),
            "pat kelly"
        );
        assert_eq!(
            canonical_name("Right Hon. Justin Trudeau (Prime Minister)"),
            "justin trudeau"
        );
        assert_eq!(
            canonical_name("The Chair (Hon. Anthony Rota (Nipissing, Lib.))"),
            "chair"
        );
        assert_eq!(canonical_name("the Bank of Canada's"), "bank of canada");
        assert_eq!(canonical_name("U.S."), "united states");
        assert_eq!(canonical_name("Acme’s"), "acme");
        assert_eq!(canonical_name("Right"), "right");
        assert_eq!(canonical_name("The"), "the");
        assert_eq!(canonical_name("Mr."), "");
        assert_eq!(canonical_name("..."), "");
        assert_eq!(first_aside("The Chair (Hon. A (B)) x"), Some("Hon. A (B)"));
        assert_eq!(first_aside("Open (end"), Some("end"));
        assert_eq!(first_aside("none"), None);
    }
}
