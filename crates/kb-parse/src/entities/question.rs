//! The names an entity mentioned in a question could have in the stores.
//!
//! Questions are short and often lower-case ("what did the marketing expert say about the
//! remote control?"), so the capitalization and frequency rules that find entities in a
//! document find nothing here. Instead every run of up to four words that could be a name
//! is put in the canonical forms ingest gives names: [`canonical_name`] for people,
//! organizations and places, [`speaker_canonical`]'s result for speakers (the same for a
//! plain phrase), lower-case singular words for topics, and the canonical forms of dates.
//! The store then says which of them exist.

use std::collections::BTreeSet;

use super::canonical::canonical_name;
use super::dates::find_dates;
use super::lexicon::{is_common, is_in, List};
use super::topics::singular;
use super::words::words;

/// Longest phrase tried.
const MAX_WORDS: usize = 4;
/// A question names few things; a bound keeps a pasted paragraph from asking for thousands.
pub const MAX_NAMES: usize = 200;

/// Candidate canonical names of entities mentioned in `text`, deduplicated and sorted.
pub fn question_names(text: &str) -> Vec<String> {
    let mut names = BTreeSet::new();
    for d in find_dates(text) {
        names.insert(d.canonical);
    }
    let ws = words(text, 0, text.len(), false);
    // Runs of words not separated by punctuation: a name does not span a comma.
    let mut runs: Vec<Vec<String>> = vec![Vec::new()];
    for w in &ws {
        if w.break_before || w.in_link {
            runs.push(Vec::new());
        }
        if !w.in_link {
            if let Some(run) = runs.last_mut() {
                run.push(w.lower.clone());
            }
        }
    }
    for run in runs.iter().filter(|r| !r.is_empty()) {
        for start in 0..run.len() {
            for len in 1..=MAX_WORDS.min(run.len() - start) {
                let phrase = &run[start..start + len];
                if !could_be_name(phrase) {
                    continue;
                }
                let surface = phrase.join(" ");
                let canonical = canonical_name(&surface);
                if !canonical.is_empty() {
                    names.insert(canonical);
                }
                // Topics fold plurals into the singular ("remote controls" → "remote control").
                let mut folded = phrase.to_vec();
                if let Some(last) = folded.last_mut() {
                    *last = singular(last);
                }
                names.insert(folded.join(" "));
            }
        }
    }
    names.retain(|n| !n.is_empty());
    names.into_iter().take(MAX_NAMES).collect()
}

/// The canonical names one entity name may have in the stores: as a person, organization or
/// place, as a speaker, and as a topic (plural folded into the singular).
pub fn name_forms(name: &str) -> Vec<String> {
    let mut forms = BTreeSet::new();
    let canonical = canonical_name(name);
    if !canonical.is_empty() {
        let mut words: Vec<&str> = canonical.split(' ').collect();
        let last = words.pop().map(singular);
        if let Some(last) = last {
            words.push(&last);
            forms.insert(words.join(" "));
        }
        forms.insert(canonical);
    }
    let speaker = super::speaker_canonical(name);
    if !speaker.is_empty() && speaker.chars().any(char::is_alphanumeric) {
        forms.insert(speaker);
    }
    forms.into_iter().collect()
}

/// A phrase that starts and ends with a content word; one word must be a real word of 3+
/// letters that is neither common ("the", "did", "um") nor vague ("thing", "way").
fn could_be_name(phrase: &[String]) -> bool {
    let content = |w: &String| !is_common(w) && !is_in(List::Honorific, w);
    let (Some(first), Some(last)) = (phrase.first(), phrase.last()) else {
        return false;
    };
    if !content(first) || !content(last) {
        return false;
    }
    if let [only] = phrase {
        return only.chars().count() >= 3 && !is_in(List::NotTopic, only);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phrases_dates_and_plurals_become_candidates() {
        let names = question_names(
            "What did the Marketing expert say about remote controls on March 5, 2020?",
        );
        for want in [
            "marketing",
            "marketing expert",
            "remote control",
            "remote controls",
            "2020-03-05",
        ] {
            assert!(
                names.iter().any(|n| n == want),
                "{want} missing from {names:?}"
            );
        }
        assert!(
            !names
                .iter()
                .any(|n| n == "what" || n == "the" || n == "did"),
            "{names:?}"
        );
    }

    #[test]
    fn names_take_the_canonical_form_ingest_gives_them() {
        let names = question_names("Did Dr. Jane Smith visit the U.S.?");
        assert!(names.iter().any(|n| n == "jane smith"), "{names:?}");
        assert!(names.iter().any(|n| n == "united states"), "{names:?}");
    }

    #[test]
    fn punctuation_splits_phrases_and_empty_input_is_fine() {
        let names = question_names("budget, price");
        assert!(!names.iter().any(|n| n == "budget price"), "{names:?}");
        assert!(question_names("").is_empty());
        assert!(question_names("?? the of and").is_empty());
    }

    #[test]
    fn a_name_has_its_person_speaker_and_topic_forms() {
        assert_eq!(
            name_forms("The Remote Controls"),
            ["remote control", "remote controls"]
        );
        assert_eq!(name_forms("Mr. Pat Kelly (Calgary, CPC)"), ["pat kelly"]);
        assert!(name_forms("(?)").is_empty());
    }

    #[test]
    fn a_long_text_is_bounded() {
        let text = (0..2000)
            .map(|i| format!("word{i}x"))
            .collect::<Vec<_>>()
            .join(" ");
        assert!(question_names(&text).len() <= MAX_NAMES);
    }
}
