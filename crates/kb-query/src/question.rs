//! What the retrievers take from the question besides its text: the entities it may name
//! (weighted by how specific they are) and, for the text scan of last resort, its words.

use kb_store::read::EntityStats;

/// Entities followed from one question; more only add noise and time.
pub const MAX_ENTITIES: usize = 12;
/// Mentions the walk may visit, summed over the entities it follows: as keyword search does
/// with common words, an entity in thousands of chunks (a meeting's speaker) weighs little
/// and costs most, so the rarest are followed first while their mentions fit.
pub const MENTION_BUDGET: u64 = 1500;
/// Share of an entity's weight its neighbours get.
pub const NEIGHBOUR_SHARE: f64 = 0.25;

/// Weight of an entity found in the question: its inverse document frequency over chunks,
/// as BM25 weighs a term (an entity mentioned everywhere, like a meeting's main topic or a
/// speaker, says little about any one chunk), a little more for a multi-word name (it says
/// more than each of its words). Entities no chunk mentions are dropped; at most
/// [`MAX_ENTITIES`] are kept, heaviest first, and only while their mentions fit
/// [`MENTION_BUDGET`] (the heaviest one always).
pub fn weigh(found: &[EntityStats]) -> Vec<(EntityStats, f64)> {
    let mut out: Vec<(EntityStats, f64)> = found
        .iter()
        .filter(|e| e.chunks > 0)
        .map(|e| {
            let words = e.entity.canonical_name.split(' ').count().min(4) as f64;
            let (df, n) = (
                e.chunks as f64,
                (e.total_chunks as f64).max(e.chunks as f64),
            );
            let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
            (e.clone(), idf * (1.0 + 0.5 * (words - 1.0)))
        })
        .collect();
    out.sort_by(|a, b| {
        b.1.total_cmp(&a.1)
            .then_with(|| a.0.entity.entity_id.cmp(&b.0.entity.entity_id))
    });
    out.truncate(MAX_ENTITIES);
    let mut mentions = 0u64;
    let mut kept = Vec::new();
    for (e, w) in out {
        if !kept.is_empty() && mentions + e.chunks > MENTION_BUDGET {
            continue;
        }
        mentions += e.chunks;
        kept.push((e, w));
    }
    kept
}

/// Lower-case content words of the question, reduced to a crude stem so "decided" finds
/// "decide" by substring; for the graph's text scan when Postgres is away.
pub fn scan_words(query: &str) -> Vec<String> {
    let mut words: Vec<String> = query
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .map(str::to_lowercase)
        .filter(|w| w.chars().count() >= 3 && !is_stop_word(w))
        .map(|w| stem(&w))
        .collect();
    words.sort();
    words.dedup();
    words.truncate(16);
    words
}

fn stem(w: &str) -> String {
    for suffix in ["ing", "ed", "es", "s"] {
        if let Some(s) = w.strip_suffix(suffix) {
            if s.chars().count() >= 4 {
                return s.to_owned();
            }
        }
    }
    w.to_owned()
}

fn is_stop_word(w: &str) -> bool {
    const STOP: &[&str] = &[
        "the", "and", "are", "was", "were", "what", "who", "whom", "which", "when", "where", "why",
        "how", "did", "does", "doing", "done", "has", "have", "had", "for", "from", "with",
        "about", "that", "this", "these", "those", "they", "them", "their", "there", "then",
        "than", "you", "your", "our", "ours", "not", "but", "can", "could", "would", "should",
        "will", "shall", "may", "might", "into", "onto", "over", "under", "its", "it's", "his",
        "her", "she", "him", "any", "all", "some", "say", "said", "tell", "between", "during",
        "also", "been", "being", "because", "each", "other",
    ];
    STOP.contains(&w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kb_store::read::EntityRef;

    fn stats(id: &str, name: &str, chunks: u64) -> EntityStats {
        EntityStats {
            entity: EntityRef {
                entity_id: id.into(),
                name: name.into(),
                canonical_name: name.into(),
                entity_type: "TOPIC".into(),
            },
            chunks,
            sources: None,
            total_chunks: 10_000,
        }
    }

    #[test]
    fn specific_entities_weigh_more() {
        let w = weigh(&[
            stats("a", "meeting", 500),
            stats("b", "remote control", 20),
            stats("c", "budget", 5),
            stats("d", "unused", 0),
        ]);
        let ids: Vec<&str> = w.iter().map(|(e, _)| e.entity.entity_id.as_str()).collect();
        assert_eq!(ids, ["b", "c", "a"]);
    }

    #[test]
    fn common_entities_wait_while_rare_ones_fill_the_budget() {
        let w = weigh(&[
            stats("speaker", "project manager", 1400),
            stats("a", "budget", 400),
            stats("b", "battery", 300),
        ]);
        let ids: Vec<&str> = w.iter().map(|(e, _)| e.entity.entity_id.as_str()).collect();
        assert_eq!(
            ids,
            ["b", "a"],
            "the speaker's 1400 mentions do not fit beside 700"
        );
        // The heaviest is followed even alone over the budget.
        assert_eq!(weigh(&[stats("x", "meeting", 5000)]).len(), 1);
    }

    #[test]
    fn scan_words_drop_stop_words_and_stem() {
        assert_eq!(
            scan_words("What did they decide about the budgets and pricing?"),
            ["budget", "decide", "pric"]
        );
        assert!(scan_words("?? a of").is_empty());
    }
}
