//! Capitalized phrases ("proper spans"): the raw material of PERSON, ORGANIZATION and PLACE.
//! A span is a run of capitalized words, allowing "of", "the", "de", ... between them,
//! without punctuation inside (a title's period excepted: "Mr. Kelly").

use super::canonical::canonical_name;
use super::lexicon::{is_common, is_in, List};
use super::words::{is_capitalized, Word};

/// Longest span looked at, in words.
const MAX_SPAN_WORDS: usize = 8;

/// One occurrence of a capitalized phrase.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Span {
    /// The phrase as written, titles included ("Mr. Pat Kelly").
    pub surface: String,
    /// Canonical name of the phrase without titles and roles.
    pub key: String,
    /// Words of the name part (after titles and roles).
    pub name_words: usize,
    /// Starts a sentence: its capital letter may be grammar, not a name.
    pub initial: bool,
    /// Preceded by a personal title ("Dr.", "Mrs.").
    pub titled: bool,
    /// Preceded by a role ("Minister Freeland").
    pub role_headed: bool,
}

const MONTHS_AND_DAYS: &[&str] = &[
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

fn lower<'w>(w: &'w Word<'_>) -> &'w str {
    &w.lower
}

/// A role word, possessive or not ("Minister's").
fn is_role(w: &Word<'_>) -> bool {
    let l = lower(w);
    is_in(List::Role, l.strip_suffix("'s").unwrap_or(l))
}

/// Capitalized spans among `words` (one atom's words).
pub(crate) fn spans(text: &str, words: &[Word<'_>]) -> Vec<Span> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        if !is_capitalized(words[i].text) || words[i].in_link {
            i += 1;
            continue;
        }
        let mut end = i + 1;
        while end < words.len() && end - i < MAX_SPAN_WORDS {
            let w = &words[end];
            if w.break_before || w.in_link {
                break;
            }
            if is_capitalized(w.text) {
                end += 1;
                continue;
            }
            // up to two connectors, then a capitalized word
            let connector = |k: usize| {
                words
                    .get(k)
                    .is_some_and(|x| !x.break_before && is_in(List::Connector, lower(x)))
            };
            let capital = |k: usize| {
                words
                    .get(k)
                    .is_some_and(|x| !x.break_before && is_capitalized(x.text))
            };
            if connector(end) && capital(end + 1) {
                end += 2;
            } else if connector(end) && connector(end + 1) && capital(end + 2) {
                end += 3;
            } else {
                break;
            }
        }
        // "Dr. Ada Lovelace of the Analytical Engine Company": a name, then something else
        if let Some(cut) = person_then_more(&words[i..end]) {
            end = i + cut;
        }
        if let Some(span) = make_span(text, &words[i..end]) {
            out.push(span);
        }
        i = end;
    }
    out
}

/// Where a span that starts like a person (a title or a common given name) meets "of",
/// "for", "on", "the" or "&": names of people do not contain those.
fn person_then_more(words: &[Word<'_>]) -> Option<usize> {
    let start = words
        .iter()
        .position(|w| !is_common(lower(w)) || is_in(List::Honorific, lower(w)))?;
    let first = lower(&words[start]);
    let personal = is_in(List::Honorific, first.trim_end_matches('.'))
        || super::gazetteer::is_first_name(first);
    if !personal {
        return None;
    }
    words
        .iter()
        .enumerate()
        .skip(start + 2)
        .find(|(_, w)| matches!(lower(w), "of" | "for" | "on" | "the" | "&"))
        .map(|(k, _)| k)
}

fn make_span(text: &str, words: &[Word<'_>]) -> Option<Span> {
    let mut first = 0;
    let mut last = words.len();
    let mut initial = words.first()?.initial;
    // leading common words ("The", "So", "I") are grammar, not part of the name
    while first < last {
        let l = lower(&words[first]);
        let single = words[first].text.chars().count() == 1;
        // "Finally Paris", "Later Ottawa": an opening adverb is not part of the name
        let opener =
            initial && (is_in(List::NotTopic, l) || (l.ends_with("ly") && l.chars().count() > 4));
        if is_in(List::Honorific, l.trim_end_matches('.'))
            || !(is_common(l) || single || opener || is_in(List::Connector, l))
        {
            break;
        }
        first += 1;
        initial = false;
    }
    while last > first {
        let l = lower(&words[last - 1]);
        if !(is_common(l) || is_in(List::Connector, l) || words[last - 1].text.chars().count() == 1)
        {
            break;
        }
        last -= 1;
    }
    let kept = &words[first..last];
    if kept.is_empty() {
        return None;
    }
    let mut k = 0;
    let mut titled = false;
    while k < kept.len() && is_in(List::Honorific, lower(&kept[k])) {
        titled = true;
        k += 1;
    }
    let mut role_headed = false;
    while k < kept.len() && is_role(&kept[k]) {
        role_headed = true;
        k += 1;
    }
    let mut name = &kept[k..];
    if titled {
        // "Mr. Lobb of Huron": the name stops before a connector
        if let Some(c) = name
            .iter()
            .position(|w| is_in(List::Connector, lower(w)))
            .filter(|&c| c > 0)
        {
            name = &name[..c];
        }
    }
    let first_name_word = name.first()?;
    // "Minister of Finance", "Speaker of the House": a role, not a name
    if role_headed && is_in(List::Connector, lower(first_name_word)) {
        return None;
    }
    // "Project Manager", "Finance Minister": a role title
    if !titled && name.last().is_some_and(is_role) {
        return None;
    }
    if name.len() == 1 && MONTHS_AND_DAYS.contains(&lower(first_name_word)) {
        return None;
    }
    let name_text = &text[first_name_word.start..name.last()?.end];
    let surface_end = if titled {
        name.last()?.end
    } else {
        kept[kept.len() - 1].end
    };
    let key = canonical_name(name_text);
    if key.chars().filter(|c| c.is_alphabetic()).count() < 2 || is_common(&key) {
        return None;
    }
    Some(Span {
        surface: text[kept[0].start..surface_end].to_owned(),
        key,
        name_words: name.len(),
        initial,
        titled,
        role_headed,
    })
}

#[cfg(test)]
mod tests {
    use super::super::words::words;
    use super::*;

    fn keys(t: &str) -> Vec<(String, bool, bool)> {
        spans(t, &words(t, 0, t.len(), false))
            .into_iter()
            .map(|s| (s.key, s.initial, s.titled))
            .collect()
    }

    #[test]
    fn spans_connectors_titles_and_roles() {
        assert_eq!(
            keys("So Canada and the Bank of Canada met Mr. Pat Kelly, Minister Freeland and the Minister of Finance. Joe Bloggs of Acme Inc"),
            vec![
                ("canada".into(), false, false),
                ("bank of canada".into(), false, false),
                ("pat kelly".into(), false, true),
                ("freeland".into(), false, false),
                ("joe bloggs".into(), true, false),
                ("acme inc".into(), false, false),
            ]
        );
        assert_eq!(keys("The Project Manager said I agree in March."), vec![]);
        assert_eq!(
            keys("Okay. Yeah, Ottawa."),
            vec![("ottawa".into(), false, false)]
        );
        assert_eq!(keys("Ottawa is big"), vec![("ottawa".into(), true, false)]);
    }
}
