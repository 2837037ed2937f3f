//! TOPIC keyphrases, RAKE-like: candidate phrases are runs of content words (no stopwords,
//! fillers, vague words or punctuation between them); their 1- to 3-word parts are counted
//! over the document (a plural is folded into its singular when the document uses both),
//! and the most frequent are kept (at least 2 occurrences, 3 in documents over 2000 words,
//! one more for single words): at most 3 + 1 per 600 words (15 at most), of which up
//! to a third single words and the rest multi-word phrases (which say more). Frequent
//! capitalized phrases that are no person, organization or place (e.g. product names)
//! compete as topics too.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use super::lexicon::{is_common, is_in, List};
use super::words::Word;

/// A selected topic: normalized words (the match key) and its display form.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Topic {
    pub words: Vec<String>,
    pub display: String,
}

/// Singular of a lowercase word, by suffix rules (good enough to fold "controls" and "control").
pub(crate) fn singular(w: &str) -> String {
    const KEEP: &[&str] = &[
        "news",
        "series",
        "species",
        "means",
        "physics",
        "economics",
        "politics",
        "mathematics",
        "statistics",
        "analytics",
        "ethics",
        "logistics",
        "always",
        "perhaps",
        "whereas",
        "canvas",
        "atlas",
        "lens",
        "bias",
        "chaos",
        "thesis",
        "yes",
        "this",
        "his",
        "its",
    ];
    let n = w.chars().count();
    if n < 4 || KEEP.contains(&w) {
        return w.to_owned();
    }
    if let Some(stem) = w.strip_suffix("ies").filter(|_| n > 4) {
        return format!("{stem}y");
    }
    for suffix in ["sses", "xes", "ches", "shes", "zzes"] {
        if w.ends_with(suffix) {
            return w[..w.len() - 2].to_owned();
        }
    }
    if w.ends_with('s') && !w.ends_with("ss") && !w.ends_with("us") && !w.ends_with("is") {
        return w[..w.len() - 1].to_owned();
    }
    w.to_owned()
}

/// Match keys of words: lowercase, straight apostrophes, and singular when the document
/// also has the singular (so "controls" folds into "control" but "Postgres" stays).
pub(crate) struct Normalizer {
    vocabulary: HashSet<String>,
}

impl Normalizer {
    pub(crate) fn new(vocabulary: HashSet<String>) -> Self {
        Normalizer { vocabulary }
    }

    /// The lowercase form the vocabulary is built from.
    pub(crate) fn lower(w: &str) -> String {
        w.to_lowercase().replace('’', "'")
    }

    pub(crate) fn norm(&self, w: &str) -> String {
        self.norm_lower(&Self::lower(w))
    }

    /// [`Self::norm`] of a word already lowercased by [`Self::lower`].
    pub(crate) fn norm_lower(&self, l: &str) -> String {
        let s = singular(l);
        if s != l && self.vocabulary.contains(&s) {
            s
        } else {
            l.to_owned()
        }
    }
}

/// Could this word be part of a keyphrase?
fn is_content(w: &Word<'_>) -> bool {
    let l = &w.lower;
    !w.in_link
        && l.chars().count() >= 3
        && l.chars().all(|c| c.is_alphabetic() || c == '-')
        && !is_common(l)
        && !is_in(List::NotTopic, l)
        && !is_in(List::Honorific, l)
}

/// Counts of candidate phrases over a document. Words are interned: a phrase key is up to
/// three word ids, so counting allocates only for new phrases.
#[derive(Default)]
pub(crate) struct PhraseCounter {
    ids: HashMap<String, u32>,
    vocabulary: Vec<String>,
    /// (words, ids) → (count, first seen order, display)
    counts: HashMap<(u8, [u32; 3]), (usize, usize, String)>,
    order: usize,
    pub total_words: usize,
}

impl PhraseCounter {
    /// Adds the words of one atom.
    pub(crate) fn add(&mut self, words: &[Word<'_>], n: &Normalizer) {
        self.total_words += words.len();
        let mut run: Vec<&Word<'_>> = Vec::new();
        for w in words {
            if w.break_before || !is_content(w) {
                self.flush(&run, n);
                run.clear();
            }
            if is_content(w) {
                run.push(w);
            }
        }
        self.flush(&run, n);
    }

    fn intern(&mut self, word: String) -> u32 {
        if let Some(&id) = self.ids.get(&word) {
            return id;
        }
        let id = u32::try_from(self.vocabulary.len()).unwrap_or(u32::MAX);
        self.vocabulary.push(word.clone());
        self.ids.insert(word, id);
        id
    }

    fn flush(&mut self, run: &[&Word<'_>], n: &Normalizer) {
        let ids: Vec<u32> = run
            .iter()
            .map(|w| self.intern(n.norm_lower(&w.lower)))
            .collect();
        for len in 1..=3usize {
            for (start, gram) in ids.windows(len).enumerate() {
                let mut key = [u32::MAX; 3];
                key[..len].copy_from_slice(gram);
                self.order += 1;
                match self.counts.entry((len as u8, key)) {
                    Entry::Occupied(mut e) => e.get_mut().0 += 1,
                    Entry::Vacant(e) => {
                        let display = run[start..start + len]
                            .iter()
                            .map(|w| w.text)
                            .collect::<Vec<_>>()
                            .join(" ");
                        e.insert((1, self.order, display));
                    }
                }
            }
        }
    }

    fn words_of(&self, len: u8, key: &[u32; 3]) -> Vec<String> {
        key[..usize::from(len)]
            .iter()
            .filter_map(|&id| self.vocabulary.get(id as usize).cloned())
            .collect()
    }

    /// Picks the document's topics. `proper` are capitalized phrases with their counts
    /// (already known to be no person, organization or place); `exclude` are canonical names
    /// that must not become topics (speakers, named entities).
    pub(crate) fn select(
        &self,
        proper: &[(Vec<String>, usize, String)],
        exclude: &HashSet<String>,
    ) -> Vec<Topic> {
        let max_topics = (3 + self.total_words / 600).clamp(3, 15);
        let min_count = if self.total_words < 2000 { 2 } else { 3 };
        let mut cands: Vec<Candidate<'_>> = self
            .counts
            .iter()
            // single words need one more occurrence: alone they say less and are noisier
            .filter(|((len, _), (c, _, _))| *c >= min_count + usize::from(*len == 1))
            .map(|((len, key), (c, o, d))| (self.words_of(*len, key), *c, *o, d))
            .filter(|(k, _, _, _)| !(k.len() == 1 && is_in(List::Role, &k[0])))
            .map(|(k, c, o, d)| Candidate {
                score: c as f64 * (1.0 + 0.5 * (k.len() as f64 - 1.0)),
                order: o,
                words: k,
                count: c,
                display: d,
            })
            .collect();
        for (i, (k, c, d)) in proper.iter().enumerate() {
            if *c >= min_count && !k.is_empty() {
                cands.push(Candidate {
                    // capitalized phrases are likelier to be names of things: a boost
                    score: *c as f64 * 1.5 * (1.0 + 0.5 * (k.len().min(3) as f64 - 1.0)),
                    order: usize::MAX - proper.len() + i,
                    words: k.clone(),
                    count: *c,
                    display: d,
                });
            }
        }
        cands.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.order.cmp(&b.order)));
        let single_quota = (max_topics / 3).max(1);
        let mut chosen: Vec<&Candidate<'_>> = Vec::new();
        pick(
            &cands,
            true,
            max_topics - single_quota,
            exclude,
            &mut chosen,
        );
        pick(&cands, false, max_topics, exclude, &mut chosen);
        chosen
            .into_iter()
            .map(|c| Topic {
                words: c.words.clone(),
                display: c.display.clone(),
            })
            .collect()
    }
}

struct Candidate<'a> {
    score: f64,
    order: usize,
    words: Vec<String>,
    count: usize,
    display: &'a String,
}

/// Adds multi-word (`multi`) or single-word candidates to `chosen`, best first, until
/// `chosen` holds `limit`, skipping excluded names and phrases seen mostly inside a phrase
/// already chosen.
fn pick<'c, 'a>(
    cands: &'c [Candidate<'a>],
    multi: bool,
    limit: usize,
    exclude: &HashSet<String>,
    chosen: &mut Vec<&'c Candidate<'a>>,
) {
    for c in cands.iter().filter(|c| (c.words.len() > 1) == multi) {
        if chosen.len() >= limit {
            return;
        }
        let joined = c.words.join(" ");
        let redundant = chosen.iter().any(|p| {
            p.words == c.words || (contains(&p.words, &c.words) && c.count < p.count + p.count / 2)
        });
        if !redundant && !exclude.contains(&joined) {
            chosen.push(c);
        }
    }
}

/// `needle` occurs as a contiguous part of `hay`.
fn contains(hay: &[String], needle: &[String]) -> bool {
    needle.len() < hay.len() && hay.windows(needle.len()).any(|w| w == needle)
}

/// Counts topic occurrences in one atom's words (any words, stopwords included, no
/// punctuation inside a match). Returns (topic index, count) pairs.
pub(crate) struct TopicMatcher {
    by_first: HashMap<String, Vec<(usize, Vec<String>)>>,
}

impl TopicMatcher {
    pub(crate) fn new(topics: &[Topic]) -> Self {
        let mut by_first: HashMap<String, Vec<(usize, Vec<String>)>> = HashMap::new();
        for (i, t) in topics.iter().enumerate() {
            if let Some(first) = t.words.first() {
                by_first
                    .entry(first.clone())
                    .or_default()
                    .push((i, t.words.clone()));
            }
        }
        TopicMatcher { by_first }
    }

    pub(crate) fn count(&self, words: &[Word<'_>], n: &Normalizer) -> Vec<usize> {
        let normed: Vec<String> = words.iter().map(|w| n.norm_lower(&w.lower)).collect();
        let mut hits = Vec::new();
        for (i, n) in normed.iter().enumerate() {
            if words[i].in_link {
                continue;
            }
            let Some(cands) = self.by_first.get(n) else {
                continue;
            };
            for (topic, phrase) in cands {
                let end = i + phrase.len();
                let matches = end <= normed.len()
                    && normed[i..end] == phrase[..]
                    && words[i + 1..end].iter().all(|w| !w.break_before);
                if matches {
                    hits.push(*topic);
                }
            }
        }
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::super::words::words;
    use super::*;

    #[test]
    fn singulars() {
        for (p, s) in [
            ("controls", "control"),
            ("batteries", "battery"),
            ("boxes", "box"),
            ("classes", "class"),
            ("status", "status"),
            ("news", "news"),
            ("buttons", "button"),
            ("bus", "bus"),
        ] {
            assert_eq!(singular(p), s);
        }
    }

    #[test]
    fn frequent_content_phrases_win_and_subphrases_fold() {
        let text = "The remote control needs big buttons. Um, the remote controls we sell are cheap. \
                    I think a remote control with a battery light, yeah. Remote control design matters. \
                    A battery light is useful; battery life too.";
        let ws = words(text, 0, text.len(), false);
        let n = Normalizer::new(ws.iter().map(|w| w.lower.clone()).collect());
        let mut counter = PhraseCounter::default();
        counter.add(&ws, &n);
        let topics = counter.select(&[], &HashSet::new());
        let keys: Vec<String> = topics.iter().map(|t| t.words.join(" ")).collect();
        assert_eq!(keys[0], "remote control", "{keys:?}");
        assert!(keys.contains(&"battery light".to_string()), "{keys:?}");
        // "remote" alone only ever occurs inside "remote control"
        assert!(!keys.contains(&"remote".to_string()), "{keys:?}");
        assert!(
            keys.iter()
                .all(|k| !k.contains("think") && !k.contains("yeah")),
            "{keys:?}"
        );
        let m = TopicMatcher::new(&topics);
        let t = "Remote controls, remote. control";
        let hits = m.count(&words(t, 0, t.len(), false), &n);
        // no singular in the document: no folding
        let postgres = Normalizer::new(["postgres".to_string()].into());
        assert_eq!(postgres.norm("Postgres"), "postgres");
        assert_eq!(hits, vec![0]);
    }
}
