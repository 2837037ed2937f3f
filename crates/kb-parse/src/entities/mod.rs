//! Local, heuristic entity extraction (no model, no network): SPEAKER from transcript
//! turns, PERSON / ORGANIZATION / PLACE from capitalized phrases, DATE by pattern, TOPIC
//! keyphrases. Decisions are made over the whole document, then every atom records which
//! entities it mentions, so chunk mentions are sums over their atoms.
//!
//! Capitalized phrases become:
//! - PERSON after a title ("Dr.", "Mrs.", "Hon.") or a role ("Minister X"), or when two to
//!   four words start with a common given name;
//! - ORGANIZATION when a word says so ("Bank", "University", "Committee", "Inc", ...);
//! - PLACE when in the built-in gazetteer or ending in "City", "River", "Street", ...;
//! - otherwise, when seen capitalized inside a sentence at least once (a capital at the
//!   start of a sentence or in a title-case heading proves nothing) and more often
//!   capitalized than not, a candidate TOPIC.
//!
//! A one-word PERSON that is the last name of exactly one full name in the document (a
//! person or a speaker) is that person ("Mr. Kelly" → "pat kelly").

mod canonical;
mod dates;
mod gazetteer;
pub(crate) mod lexicon;
mod proper;
mod question;
mod topics;
mod words;

use std::collections::{HashMap, HashSet};

use kb_proto::Entity;

use crate::ids::entity_id;
use crate::segment::Atom;
use crate::structured::{BlockKind, StructuredText};
pub use canonical::canonical_name;
use canonical::first_aside;
use gazetteer::{is_first_name, is_place};
use lexicon::{is_in, List};
use proper::Span;
pub use question::{name_forms, question_names, MAX_NAMES as MAX_QUESTION_NAMES};
use topics::{Normalizer, PhraseCounter, TopicMatcher};
use words::{is_capitalized, Word};

/// The fixed entity vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntityType {
    Person,
    Organization,
    Place,
    Date,
    Topic,
    Speaker,
}

impl EntityType {
    pub fn as_str(self) -> &'static str {
        match self {
            EntityType::Person => "PERSON",
            EntityType::Organization => "ORGANIZATION",
            EntityType::Place => "PLACE",
            EntityType::Date => "DATE",
            EntityType::Topic => "TOPIC",
            EntityType::Speaker => "SPEAKER",
        }
    }
}

/// Counts of one atom used by importance scoring.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speaker_canonicals() {
        assert_eq!(
            speaker_canonical("Mr. Pat Kelly (Calgary Rocky Ridge, CPC)"),
            "pat kelly"
        );
        assert_eq!(speaker_canonical("Mr. Pat Kelly"), "pat kelly");
        assert_eq!(
            speaker_canonical("The Acting Chair (Mr. Bruce Stanton (Simcoe North, CPC))"),
            "bruce stanton"
        );
        assert_eq!(speaker_canonical("The Chair"), "chair");
        assert_eq!(speaker_canonical("Project Manager"), "project manager");
        assert_eq!(speaker_canonical("Speaker 1"), "speaker 1");
        assert_eq!(speaker_canonical("Professor A"), "professor a");
        assert_eq!(speaker_canonical("PhD B"), "phd b");
        assert_eq!(speaker_canonical("(x)"), "x");
        assert_eq!(speaker_canonical("()"), "()");
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct AtomStats {
    pub words: usize,
    pub fillers: usize,
    pub cues: usize,
    pub questions: usize,
}

/// The entities of a document and where they occur.
#[derive(Debug, Default)]
pub(crate) struct Extraction {
    pub entities: Vec<Entity>,
    pub types: Vec<EntityType>,
    /// Per atom: indices into `entities`, once per occurrence.
    pub atom_hits: Vec<Vec<usize>>,
    /// Per block: the SPEAKER entity of a turn.
    pub block_speaker: Vec<Option<usize>>,
    pub atom_stats: Vec<AtomStats>,
}

#[derive(Default)]
struct EntityTable {
    entities: Vec<Entity>,
    types: Vec<EntityType>,
    index: HashMap<(EntityType, String), usize>,
}

impl EntityTable {
    fn get_or_add(&mut self, ty: EntityType, canonical: &str, display: &str) -> usize {
        if let Some(&i) = self.index.get(&(ty, canonical.to_owned())) {
            return i;
        }
        let i = self.entities.len();
        self.entities.push(Entity {
            entity_id: entity_id(ty.as_str(), canonical),
            name: display.trim().to_owned(),
            canonical_name: canonical.to_owned(),
            entity_type: ty.as_str().to_owned(),
        });
        self.types.push(ty);
        self.index.insert((ty, canonical.to_owned()), i);
        i
    }
}

#[derive(Debug, Default)]
struct SpanStats {
    count: usize,
    inside_sentence: usize,
    titled: bool,
    role_headed: bool,
    first_seen: usize,
    surface: String,
}

enum Class {
    Named(EntityType),
    Topic,
    Reject,
}

/// Canonical name of a speaker label: the person, without titles and asides
/// ("Mr. Pat Kelly (Calgary, CPC)" → "pat kelly"); for a role with the person in brackets,
/// the person ("The Acting Chair (Mr. Bruce Stanton)" → "bruce stanton").
pub fn speaker_canonical(label: &str) -> String {
    let outer = canonical_name(label);
    let only_role = outer
        .split(' ')
        .all(|w| w.is_empty() || is_in(List::Role, w));
    if only_role {
        if let Some(inner) = first_aside(label).map(canonical_name) {
            if !inner.is_empty() && !inner.split(' ').all(|w| is_in(List::Role, w)) {
                return inner;
            }
        }
    }
    // "Professor A": a title and an initial are the whole name, not the initial alone
    if outer.chars().filter(|c| c.is_alphanumeric()).count() < 2 {
        label
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    } else {
        outer
    }
}

/// Title-case lines ("Quarterly Results And Plans") say nothing about names.
fn title_case(ws: &[Word<'_>]) -> bool {
    ws.len() >= 4 && ws.iter().filter(|w| is_capitalized(w.text)).count() * 10 >= ws.len() * 6
}

pub(crate) fn extract(doc: &StructuredText, atoms: &[Atom]) -> Extraction {
    let mut table = EntityTable::default();
    let mut block_speaker = vec![None; doc.blocks.len()];
    let mut speaker_names: Vec<String> = Vec::new();
    for (bi, b) in doc.blocks.iter().enumerate() {
        if let BlockKind::Turn { speaker, .. } = &b.kind {
            // a subtitle cue without a voice has no speaker
            if speaker.trim().is_empty() {
                continue;
            }
            let canonical = speaker_canonical(speaker);
            block_speaker[bi] = Some(table.get_or_add(EntityType::Speaker, &canonical, speaker));
            if !speaker_names.contains(&canonical) {
                speaker_names.push(canonical);
            }
        }
    }

    // pass 1: words, spans, dates, phrase counts, lowercase word counts
    let mut atom_words: Vec<Vec<Word<'_>>> = Vec::with_capacity(atoms.len());
    let mut atom_spans: Vec<Vec<Span>> = Vec::with_capacity(atoms.len());
    let mut atom_dates = Vec::with_capacity(atoms.len());
    let mut atom_stats = Vec::with_capacity(atoms.len());
    let mut vocabulary: HashSet<String> = HashSet::new();
    let mut lowercase: HashMap<String, usize> = HashMap::new();
    let mut stats: HashMap<String, SpanStats> = HashMap::new();
    for a in atoms {
        let kind = &doc.blocks[a.block].kind;
        if matches!(kind, BlockKind::Code) {
            atom_words.push(Vec::new());
            atom_spans.push(Vec::new());
            atom_dates.push(Vec::new());
            atom_stats.push(AtomStats::default());
            continue;
        }
        let heading = matches!(kind, BlockKind::Heading { .. });
        let mut ws = words::words(&doc.text, a.start, a.end, heading);
        if !heading && title_case(&ws) {
            ws = words::words(&doc.text, a.start, a.end, true);
        }
        for w in &ws {
            if !vocabulary.contains(&w.lower) {
                vocabulary.insert(w.lower.clone());
            }
            if !is_capitalized(w.text) {
                if let Some(n) = lowercase.get_mut(&w.lower) {
                    *n += 1;
                } else {
                    lowercase.insert(w.lower.clone(), 1);
                }
            }
        }
        let spans = proper::spans(&doc.text, &ws);
        for s in &spans {
            let order = stats.len();
            let st = stats.entry(s.key.clone()).or_insert_with(|| SpanStats {
                first_seen: order,
                surface: s.surface.clone(),
                ..SpanStats::default()
            });
            st.count += 1;
            st.inside_sentence += usize::from(!s.initial);
            st.titled |= s.titled;
            st.role_headed |= s.role_headed && s.name_words <= 3;
        }
        atom_stats.push(stats_of(&doc.text[a.start..a.end], &ws));
        atom_dates.push(dates::find_dates(&doc.text[a.start..a.end]));
        atom_spans.push(spans);
        atom_words.push(ws);
    }

    let normalizer = Normalizer::new(vocabulary);
    let mut counter = PhraseCounter::default();
    for ws in &atom_words {
        counter.add(ws, &normalizer);
    }

    // decide what every capitalized phrase is, in order of first appearance
    let mut keys: Vec<(&String, &SpanStats)> = stats.iter().collect();
    keys.sort_by_key(|(_, s)| s.first_seen);
    let classes: Vec<(&String, &SpanStats, Class)> = keys
        .iter()
        .map(|(k, st)| (*k, *st, classify(k, st, &lowercase)))
        .collect();
    let full_names: Vec<&str> = classes
        .iter()
        .filter(|(k, _, c)| matches!(c, Class::Named(EntityType::Person)) && k.contains(' '))
        .map(|(k, _, _)| k.as_str())
        .chain(
            speaker_names
                .iter()
                .map(String::as_str)
                .filter(|s| s.contains(' ')),
        )
        .collect();
    let mut named: Vec<(&String, EntityType)> = Vec::new();
    let mut proper_topics: Vec<(Vec<String>, usize, String)> = Vec::new();
    for (key, st, class) in &classes {
        match class {
            Class::Named(ty) => named.push((key, *ty)),
            // a lone capitalized word that is the last name of someone named in full
            Class::Topic if !key.contains(' ') && unique_full_name(key, &full_names).is_some() => {
                named.push((key, EntityType::Person));
            }
            Class::Topic => proper_topics.push((
                key.split(' ').map(|w| normalizer.norm(w)).collect(),
                st.count,
                st.surface.clone(),
            )),
            Class::Reject => {}
        }
    }
    let mut resolved: HashMap<&str, usize> = HashMap::new();
    for (key, ty) in &named {
        let canonical = match ty {
            EntityType::Person => unique_full_name(key, &full_names).unwrap_or(key),
            _ => key.as_str(),
        };
        if *ty != EntityType::Person && speaker_names.iter().any(|s| s == *key) {
            continue;
        }
        let surface = stats.get(*key).map_or(key.as_str(), |s| s.surface.as_str());
        resolved.insert(key.as_str(), table.get_or_add(*ty, canonical, surface));
    }

    // dates in order of appearance
    let mut atom_hits: Vec<Vec<usize>> = vec![Vec::new(); atoms.len()];
    for (ai, spans) in atom_spans.iter().enumerate() {
        for s in spans {
            if let Some(&e) = resolved.get(s.key.as_str()) {
                atom_hits[ai].push(e);
            }
        }
        for d in &atom_dates[ai] {
            atom_hits[ai].push(table.get_or_add(EntityType::Date, &d.canonical, &d.surface));
        }
    }

    // names already taken by speakers and named entities (and their short forms) are no topics
    let mut exclude: HashSet<String> = speaker_names.iter().cloned().collect();
    exclude.extend(table.entities.iter().map(|e| e.canonical_name.clone()));
    exclude.extend(resolved.keys().map(|k| (*k).to_owned()));
    let topics = counter.select(&proper_topics, &exclude);
    let topic_idx: Vec<usize> = topics
        .iter()
        .map(|t| table.get_or_add(EntityType::Topic, &t.words.join(" "), &t.display))
        .collect();
    let matcher = TopicMatcher::new(&topics);
    for (ai, ws) in atom_words.iter().enumerate() {
        for t in matcher.count(ws, &normalizer) {
            atom_hits[ai].push(topic_idx[t]);
        }
    }

    Extraction {
        entities: table.entities,
        types: table.types,
        atom_hits,
        block_speaker,
        atom_stats,
    }
}

fn classify(key: &str, st: &SpanStats, lowercase: &HashMap<String, usize>) -> Class {
    let words: Vec<&str> = key.split(' ').collect();
    let inside = st.inside_sentence > 0;
    let alphabetic = words.iter().all(|w| {
        w.chars()
            .all(|c| c.is_alphabetic() || c == '-' || c == '\'')
    });
    let org_word = words.iter().any(|w| is_in(List::OrgWord, w));
    let mostly_capitalized = |w: &str| lowercase.get(w).copied().unwrap_or(0) < st.count;
    let person_like = alphabetic && !org_word && !is_place(key);
    if st.titled && person_like {
        return Class::Named(EntityType::Person);
    }
    // "Minister Freeland", but not "Speaker Name" in a heading
    if st.role_headed && person_like && inside && words.iter().all(|w| mostly_capitalized(w)) {
        return Class::Named(EntityType::Person);
    }
    if words.len() >= 2 && org_word && (inside || st.count >= 2) {
        return Class::Named(EntityType::Organization);
    }
    if is_place(key) {
        return Class::Named(EntityType::Place);
    }
    let last = words.last().copied().unwrap_or_default();
    // "Lawrence River" inside a sentence, but not a title-case heading like "Current State"
    if words.len() >= 2 && is_in(List::PlaceSuffix, last) && inside {
        return Class::Named(EntityType::Place);
    }
    if (2..=4).contains(&words.len()) && is_first_name(words[0]) && alphabetic {
        return Class::Named(EntityType::Person);
    }
    if !inside {
        return Class::Reject;
    }
    if words.len() == 1 && !mostly_capitalized(key) {
        return Class::Reject;
    }
    Class::Topic
}

/// The one longer full name that ends with the words of `short`, if exactly one.
fn unique_full_name<'a>(short: &str, full_names: &[&'a str]) -> Option<&'a str> {
    let mut found: Option<&'a str> = None;
    for name in full_names {
        let is_suffix = name.len() > short.len()
            && name.ends_with(short)
            && name[..name.len() - short.len()].ends_with(' ');
        if is_suffix {
            match found {
                Some(f) if f != *name => return None,
                _ => found = Some(name),
            }
        }
    }
    found
}

fn stats_of(text: &str, ws: &[Word<'_>]) -> AtomStats {
    let mut s = AtomStats {
        words: ws.len(),
        questions: text.matches('?').count(),
        ..AtomStats::default()
    };
    for w in ws {
        s.fillers += usize::from(is_in(List::Filler, &w.lower));
        s.cues += usize::from(is_in(List::Cue, &w.lower));
    }
    s
}
