//! Turns packed atoms into `kb_proto::Chunk`s: text, offsets, speakers, times, section, id.

use kb_proto::Chunk;

use crate::chunk::{label_tokens, Packed};
use crate::ids::chunk_id;
use crate::segment::Atom;
use crate::structured::{BlockKind, StructuredText};

/// Speaking rate used to estimate how long the last turn lasts.
const WORDS_PER_MINUTE: f64 = 150.0;

/// Start and end seconds of every turn block (other blocks: `None`). A turn ends where the
/// next turn starts, the last one after its words at 150 words a minute.
pub(crate) fn turn_times(doc: &StructuredText, atoms: &[Atom]) -> Vec<Option<(f64, f64)>> {
    let mut words = vec![0usize; doc.blocks.len()];
    for a in atoms {
        words[a.block] += a.words;
    }
    let starts: Vec<Option<f64>> = doc
        .blocks
        .iter()
        .map(|b| match b.kind {
            BlockKind::Turn { start_seconds, .. } => Some(start_seconds),
            _ => None,
        })
        .collect();
    let mut out = vec![None; doc.blocks.len()];
    let mut next_start: Option<f64> = None;
    for i in (0..doc.blocks.len()).rev() {
        if let Some(start) = starts[i] {
            let estimated = start + words[i] as f64 * 60.0 / WORDS_PER_MINUTE;
            let end = next_start.filter(|&n| n >= start).unwrap_or(estimated);
            out[i] = Some((start, end));
            next_start = Some(start);
        }
    }
    out
}

/// Time span of one atom: its share of its turn, by words.
fn atom_time(atom: &Atom, turn: (f64, f64), turn_words: usize) -> (f64, f64) {
    let (start, end) = turn;
    if turn_words == 0 {
        return turn;
    }
    let per_word = (end - start) / turn_words as f64;
    (
        start + per_word * atom.words_before as f64,
        start + per_word * (atom.words_before + atom.words) as f64,
    )
}

/// Renders chunks (importance left at 0, filled later).
pub(crate) fn render(
    source_id: &str,
    doc: &StructuredText,
    atoms: &[Atom],
    packed: &[Packed],
    budget: usize,
) -> Vec<Chunk> {
    let times = turn_times(doc, atoms);
    let mut turn_words = vec![0usize; doc.blocks.len()];
    for a in atoms {
        turn_words[a.block] += a.words;
    }
    packed
        .iter()
        .enumerate()
        .map(|(index, p)| {
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            let mut text = String::new();
            let mut speakers: Vec<String> = Vec::new();
            let mut span: Option<(f64, f64)> = None;
            let mut i = 0;
            while i < p.atoms.len() {
                let block_idx = atoms[p.atoms[i]].block;
                let mut j = i;
                while j < p.atoms.len() && atoms[p.atoms[j]].block == block_idx {
                    j += 1;
                }
                let (first, last) = (&atoms[p.atoms[i]], &atoms[p.atoms[j - 1]]);
                let block = &doc.blocks[block_idx];
                let is_turn = matches!(block.kind, BlockKind::Turn { .. });
                if !text.is_empty() {
                    text.push_str(if is_turn { "\n" } else { "\n\n" });
                }
                if let BlockKind::Turn { speaker, .. } = &block.kind {
                    if label_tokens(block, budget) > 0 {
                        text.push_str(speaker);
                        text.push_str(": ");
                    }
                    if !speaker.is_empty() && !speakers.contains(speaker) {
                        speakers.push(speaker.clone());
                    }
                    if let Some(turn) = times[block_idx] {
                        let (s, _) = atom_time(first, turn, turn_words[block_idx]);
                        let (_, e) = atom_time(last, turn, turn_words[block_idx]);
                        span = Some(span.map_or((s, e), |(s0, _)| (s0, e.max(s0))));
                    }
                }
                text.push_str(&doc.text[first.start..last.end]);
                i = j;
            }
            let start_offset = p.atoms.first().map_or(0, |&a| atoms[a].start);
            let end_offset = p.atoms.last().map_or(0, |&a| atoms[a].end);
            let (start_seconds, end_seconds) = span.unwrap_or((-1.0, -1.0));
            Chunk {
                chunk_id: chunk_id(source_id, index, &text),
                index,
                text,
                importance_score: 0.0,
                start_offset: start_offset as u64,
                end_offset: end_offset as u64,
                token_count: u32::try_from(p.tokens).unwrap_or(u32::MAX),
                speakers,
                start_seconds,
                end_seconds,
                section: p.section.clone(),
                embedding: Vec::new(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structured::Block;

    #[test]
    fn turns_end_at_the_next_turn_or_after_their_words() {
        let turn = |s: f64| BlockKind::Turn {
            speaker: "A".into(),
            start_seconds: s,
        };
        let doc = StructuredText {
            text: String::new(),
            blocks: vec![
                Block {
                    kind: turn(10.0),
                    start: 0,
                    end: 0,
                },
                Block {
                    kind: BlockKind::Paragraph,
                    start: 0,
                    end: 0,
                },
                Block {
                    kind: turn(25.0),
                    start: 0,
                    end: 0,
                },
                // a clock going back: estimate from words instead
                Block {
                    kind: turn(20.0),
                    start: 0,
                    end: 0,
                },
            ],
            title: None,
            parser: None,
            date_unix_ms: None,
        };
        let atom = |block, words| Atom {
            block,
            start: 0,
            end: 0,
            tokens: 1,
            glued: false,
            words_before: 0,
            words,
        };
        let atoms = vec![atom(0, 5), atom(2, 50), atom(3, 150)];
        let times = turn_times(&doc, &atoms);
        assert_eq!(
            times,
            vec![
                Some((10.0, 25.0)),
                None,
                Some((25.0, 45.0)),
                Some((20.0, 80.0))
            ]
        );
        // half of a turn's words: half of its time
        let half = Atom {
            words_before: 25,
            words: 25,
            ..atom(2, 25)
        };
        assert_eq!(atom_time(&half, (25.0, 45.0), 50), (35.0, 45.0));
    }
}
