//! Importance of a chunk in [0, 1], a weighted blend of five signals, each in [0, 1]:
//!
//! | signal | weight | value |
//! | --- | --- | --- |
//! | topic coverage | 0.30 | distinct document TOPICs in the chunk / min(4, topics in the document) |
//! | entity density | 0.25 | named mentions (PERSON, ORGANIZATION, PLACE, DATE, TOPIC) per 15 words, capped at 1 |
//! | length | 0.20 | tokens / half the chunk budget, capped at 1 (fragments carry little) |
//! | cues | 0.15 | (decision / action / requirement words + 2 × question marks) / 4, capped at 1 |
//! | position | 0.10 | 1 for the first chunk falling linearly to 0 for the last (openings summarize) |
//!
//! The blend is then multiplied by `1 - 0.6 × filler share` (um, uh, yeah, okay, ... over all
//! words), so back-channel chatter ranks below substance. The result is a pure function of
//! the chunk and the document: the same input always scores the same.

use crate::entities::AtomStats;

/// What the score needs to know about one chunk.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct ChunkSignals {
    pub tokens: usize,
    pub distinct_topics: usize,
    pub named_mentions: usize,
    pub stats: AtomStats,
}

/// What the score needs to know about the document.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct DocSignals {
    pub chunks: usize,
    pub topics: usize,
    pub budget: usize,
}

pub(crate) fn importance(c: &ChunkSignals, d: &DocSignals, index: usize) -> f32 {
    let ratio = |num: f64, den: f64| {
        if den > 0.0 {
            (num / den).clamp(0.0, 1.0)
        } else {
            0.0
        }
    };
    let words = c.stats.words as f64;
    let coverage = ratio(c.distinct_topics as f64, d.topics.min(4) as f64);
    let density = ratio(c.named_mentions as f64 * 15.0, words);
    let length = ratio(c.tokens as f64, (d.budget / 2).max(1) as f64);
    let cues = ratio((c.stats.cues + 2 * c.stats.questions) as f64, 4.0);
    let position = if d.chunks <= 1 {
        1.0
    } else {
        1.0 - ratio(index as f64, (d.chunks - 1) as f64)
    };
    let filler_share = ratio(c.stats.fillers as f64, words);
    let blend = 0.30 * coverage + 0.25 * density + 0.20 * length + 0.15 * cues + 0.10 * position;
    let score = blend * (1.0 - 0.6 * filler_share);
    if score.is_finite() {
        score.clamp(0.0, 1.0) as f32
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> DocSignals {
        DocSignals {
            chunks: 10,
            topics: 6,
            budget: 200,
        }
    }

    #[test]
    fn rich_beats_filler_and_stays_in_range() {
        let rich = ChunkSignals {
            tokens: 180,
            distinct_topics: 3,
            named_mentions: 9,
            stats: AtomStats {
                words: 150,
                fillers: 3,
                cues: 2,
                questions: 1,
            },
        };
        let filler = ChunkSignals {
            tokens: 4,
            distinct_topics: 0,
            named_mentions: 0,
            stats: AtomStats {
                words: 3,
                fillers: 3,
                cues: 0,
                questions: 0,
            },
        };
        for i in 0..10 {
            let r = importance(&rich, &doc(), i);
            let f = importance(&filler, &doc(), i);
            assert!((0.0..=1.0).contains(&r) && (0.0..=1.0).contains(&f));
            assert!(r > f + 0.3, "{r} vs {f}");
        }
        let max = ChunkSignals {
            tokens: 10_000,
            distinct_topics: 99,
            named_mentions: 99,
            stats: AtomStats {
                words: 1,
                fillers: 0,
                cues: 99,
                questions: 99,
            },
        };
        assert!((importance(&max, &doc(), 0) - 1.0).abs() < 1e-6);
        assert_eq!(
            importance(
                &ChunkSignals::default(),
                &DocSignals {
                    chunks: 0,
                    topics: 0,
                    budget: 0
                },
                5
            ),
            0.1
        );
    }
}
