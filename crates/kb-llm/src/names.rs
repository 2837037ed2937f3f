//! Finding a name the model returned in the chunk it came from (the hallucination check
//! and the mention count), and loose keys for matching names across extractors.

/// Lowercase letter/digit runs of a text: the unit names are matched on, so "Ann" is not
/// found inside "Annual" and "Dr. Ada" matches "Dr Ada".
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Scripts written without spaces between words, where a name is a substring of a run.
fn unspaced(c: char) -> bool {
    matches!(c, '\u{0E00}'..='\u{0E7F}' | '\u{3040}'..='\u{30FF}' | '\u{3400}'..='\u{9FFF}' | '\u{F900}'..='\u{FAFF}')
}

/// How many times `name` occurs in the text whose [`words`] are `text_words`.
pub fn occurrences(name: &str, text_words: &[String]) -> usize {
    let nw = words(name);
    if nw.is_empty() {
        return 0;
    }
    let whole = text_words.windows(nw.len()).filter(|w| *w == nw).count();
    if whole > 0 || !name.chars().any(unspaced) {
        return whole;
    }
    let needle = nw.join(" ");
    let hay = text_words.join(" ");
    hay.matches(needle.as_str()).count()
}

/// Singular of a lowercase word by suffix rules ("controls" → "control", "policies" →
/// "policy"); used only to compare names, never stored.
fn singular(w: &str) -> String {
    let n = w.chars().count();
    if n < 4 || w.ends_with("ss") || w.ends_with("us") || w.ends_with("is") {
        return w.to_owned();
    }
    match w.strip_suffix("ies") {
        Some(stem) if n > 4 => format!("{stem}y"),
        _ => w.strip_suffix('s').unwrap_or(w).to_owned(),
    }
}

/// A key that equates names differing only in plural endings of their words
/// (a canonical name is expected: lowercase, single spaces).
pub fn loose_key(canonical: &str) -> String {
    canonical
        .split(' ')
        .map(singular)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_whole_words_only() {
        let t = words("Annual report: Dr. Ada Lovelace met ADA lovelace at Acme's office.");
        assert_eq!(occurrences("Ada Lovelace", &t), 2);
        assert_eq!(occurrences("Dr Ada", &t), 1);
        assert_eq!(occurrences("Ann", &t), 0);
        assert_eq!(occurrences("Acme", &t), 1);
        assert_eq!(occurrences("Charles Babbage", &t), 0);
        assert_eq!(occurrences("...", &t), 0);
    }

    #[test]
    fn unspaced_scripts_match_inside_runs() {
        let t = words("昨日東京大学で会議");
        assert_eq!(occurrences("東京大学", &t), 1);
        assert_eq!(occurrences("京都", &t), 0);
    }

    #[test]
    fn loose_keys_fold_plurals() {
        assert_eq!(loose_key("budget cuts"), "budget cut");
        assert_eq!(loose_key("energy policies"), "energy policy");
        assert_eq!(loose_key("access"), "access");
        assert_eq!(loose_key("status"), "status");
        assert_eq!(loose_key("gas"), "gas");
    }
}
