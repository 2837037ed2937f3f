//! Packs atoms into chunks of at most `budget` tokens (the [`crate::tokens`] measure),
//! never cutting inside a word:
//! - a heading closes the chunk before it (when that chunk has content) and starts a new
//!   section; the section path is the headings above, joined with " > ";
//! - a whole block (paragraph, turn) goes into the current chunk when it fits, otherwise
//!   it starts a new chunk; a block larger than a chunk is packed sentence by sentence;
//! - a new chunk in the same section starts with up to `overlap` tokens of the previous
//!   chunk's last whole sentences;
//! - a transcript turn is rendered `Speaker: text`; the label counts toward the budget
//!   (labels longer than a quarter of the budget are left out of the text).

use crate::formats::markdown::clean_heading;
use crate::segment::Atom;
use crate::structured::{Block, BlockKind, StructuredText};
use crate::tokens::estimate_tokens;

/// A chunk before rendering: atom indices (consecutive, in order) and its section path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Packed {
    pub atoms: Vec<usize>,
    pub section: String,
    pub tokens: usize,
}

/// Label tokens of a block's runs: `Speaker:` for turns with a speaker, nothing for the rest.
pub(crate) fn label_tokens(block: &Block, budget: usize) -> usize {
    match &block.kind {
        BlockKind::Turn { speaker, .. } if !speaker.is_empty() => {
            let t = estimate_tokens(speaker) + 1;
            if t * 4 <= budget {
                t
            } else {
                0
            }
        }
        _ => 0,
    }
}

/// The largest atom: room for a label and for the heading that may precede it.
pub(crate) fn max_atom_tokens(block: &Block, budget: usize) -> usize {
    (budget * 3 / 4)
        .saturating_sub(label_tokens(block, budget))
        .max(1)
}

struct Packer<'a> {
    doc: &'a StructuredText,
    atoms: &'a [Atom],
    budget: usize,
    overlap: usize,
    out: Vec<Packed>,
    cur: Vec<usize>,
    /// Atoms of `cur` carried over from the previous chunk.
    carried: usize,
    path: Vec<(u8, String)>,
}

impl Packer<'_> {
    fn cost(&self, atoms: &[usize]) -> usize {
        let mut total = 0;
        let mut prev_block = None;
        for &a in atoms {
            let atom = &self.atoms[a];
            if prev_block != Some(atom.block) {
                total += label_tokens(&self.doc.blocks[atom.block], self.budget);
                prev_block = Some(atom.block);
            }
            total += atom.tokens;
        }
        total
    }

    fn cost_with(&self, extra: &[usize]) -> usize {
        let mut all = self.cur.clone();
        all.extend_from_slice(extra);
        self.cost(&all)
    }

    fn has_new(&self) -> bool {
        self.cur.len() > self.carried
    }

    fn has_content(&self) -> bool {
        self.cur[self.carried..].iter().any(|&a| {
            !matches!(
                self.doc.blocks[self.atoms[a].block].kind,
                BlockKind::Heading { .. }
            )
        })
    }

    /// Emits the current chunk; starts the next with overlap unless `next` forbids it.
    fn flush(&mut self, next: Option<usize>) {
        if !self.has_new() {
            return;
        }
        let emitted = std::mem::take(&mut self.cur);
        let section = self
            .path
            .iter()
            .map(|(_, t)| t.as_str())
            .collect::<Vec<_>>()
            .join(" > ");
        let tokens = self.cost(&emitted);
        let glued_next = next.is_some_and(|n| self.atoms[n].glued);
        let mut carry = Vec::new();
        if self.overlap > 0 && next.is_some() && !glued_next {
            for &a in emitted.iter().rev() {
                if carry.len() + 1 >= emitted.len()
                    || matches!(
                        self.doc.blocks[self.atoms[a].block].kind,
                        BlockKind::Heading { .. }
                    )
                {
                    break;
                }
                let mut candidate = vec![a];
                candidate.extend_from_slice(&carry);
                if self.cost(&candidate) > self.overlap {
                    break;
                }
                carry = candidate;
            }
        }
        self.out.push(Packed {
            atoms: emitted,
            section,
            tokens,
        });
        self.carried = carry.len();
        self.cur = carry;
    }

    /// Drops carried atoms from the front until `extra` fits.
    fn make_room(&mut self, extra: &[usize]) {
        while self.carried > 0 && self.cost_with(extra) > self.budget {
            self.cur.remove(0);
            self.carried -= 1;
        }
    }

    fn add_one(&mut self, a: usize) {
        let glued_to_prev = self.atoms[a].glued && self.cur.last() == Some(&(a.wrapping_sub(1)));
        if self.has_new() && (glued_to_prev || self.cost_with(&[a]) > self.budget) {
            self.flush(Some(a));
        }
        self.make_room(&[a]);
        self.cur.push(a);
    }

    fn add_block(&mut self, group: &[usize]) {
        // pieces of a cut word cost more together than apart: place them one by one
        if group.iter().any(|&a| self.atoms[a].glued) {
            for &a in group {
                self.add_one(a);
            }
            return;
        }
        if self.cost_with(group) <= self.budget {
            self.cur.extend_from_slice(group);
            return;
        }
        if self.has_content() {
            self.flush(group.first().copied());
        }
        self.make_room(group);
        if self.cost_with(group) <= self.budget {
            self.cur.extend_from_slice(group);
            return;
        }
        for &a in group {
            self.add_one(a);
        }
    }

    fn heading(&mut self, level: u8, group: &[usize], text: &str) {
        if self.has_content() {
            self.flush(None);
        }
        // a new section: nothing carried over from the previous one
        self.cur.drain(..self.carried);
        self.carried = 0;
        while self.path.last().is_some_and(|(l, _)| *l >= level) {
            self.path.pop();
        }
        self.path.push((level, clean_heading(text)));
        for &a in group {
            self.add_one(a);
        }
    }
}

/// Packs `atoms` (all atoms of `doc`, in order) into chunks.
pub(crate) fn pack(
    doc: &StructuredText,
    atoms: &[Atom],
    budget: usize,
    overlap: usize,
) -> Vec<Packed> {
    let mut p = Packer {
        doc,
        atoms,
        budget,
        overlap,
        out: Vec::new(),
        cur: Vec::new(),
        carried: 0,
        path: Vec::new(),
    };
    let mut i = 0;
    while i < atoms.len() {
        let block = atoms[i].block;
        let mut j = i;
        while j < atoms.len() && atoms[j].block == block {
            j += 1;
        }
        let group: Vec<usize> = (i..j).collect();
        match doc.blocks[block].kind {
            BlockKind::Heading { level } => {
                p.heading(level, &group, doc.block_text(&doc.blocks[block]))
            }
            _ => p.add_block(&group),
        }
        i = j;
    }
    p.flush(None);
    p.out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::segment;

    fn doc(blocks: &[(BlockKind, &str)]) -> StructuredText {
        let mut text = String::new();
        let mut out = Vec::new();
        for (kind, t) in blocks {
            let start = text.len();
            text.push_str(t);
            out.push(Block {
                kind: kind.clone(),
                start,
                end: text.len(),
            });
            text.push_str("\n\n");
        }
        StructuredText {
            text,
            blocks: out,
            title: None,
            parser: None,
            date_unix_ms: None,
        }
    }

    fn run(d: &StructuredText, budget: usize, overlap: usize) -> (Vec<Atom>, Vec<Packed>) {
        let atoms = segment(&d.text, &d.blocks, |b| max_atom_tokens(b, budget));
        let packed = pack(d, &atoms, budget, overlap);
        (atoms, packed)
    }

    fn texts(d: &StructuredText, atoms: &[Atom], packed: &[Packed]) -> Vec<Vec<String>> {
        packed
            .iter()
            .map(|p| {
                p.atoms
                    .iter()
                    .map(|&a| d.text[atoms[a].start..atoms[a].end].to_string())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn whole_paragraphs_when_they_fit_and_sentence_overlap() {
        let p = BlockKind::Paragraph;
        // each sentence is 4 tokens: "w w w." (3 words + period)
        let d = doc(&[
            (p.clone(), "a b c. d e f."),
            (p.clone(), "g h i. j k l. m n o."),
            (p, "p q r."),
        ]);
        let (atoms, packed) = run(&d, 32, 0);
        assert_eq!(packed.len(), 1, "everything fits in one chunk");
        let d2 = doc(&[
            (BlockKind::Paragraph, &"word ".repeat(22)),
            (
                BlockKind::Paragraph,
                "One more. Two more. Three more. Four more.",
            ),
        ]);
        let (atoms2, packed2) = run(&d2, 32, 5);
        let t = texts(&d2, &atoms2, &packed2);
        // the second paragraph does not fit after the first: it starts a chunk, whole
        assert_eq!(t.len(), 2, "{t:?}");
        assert_eq!(
            t[1],
            vec!["One more.", "Two more.", "Three more.", "Four more."]
        );
        assert!(packed.iter().chain(&packed2).all(|p| p.tokens <= 32));
        let _ = atoms;
    }

    #[test]
    fn long_block_is_split_by_sentences_with_overlap() {
        let sentence = "alpha beta gamma delta epsilon zeta eta theta.";
        let body = [sentence; 12].join(" ");
        let d = doc(&[(BlockKind::Paragraph, &body)]);
        let (atoms, packed) = run(&d, 40, 12);
        let t = texts(&d, &atoms, &packed);
        assert!(t.len() > 2, "{t:?}");
        for w in packed.windows(2) {
            // the next chunk repeats the previous chunk's last sentence
            assert_eq!(w[1].atoms.first(), w[0].atoms.last());
        }
        assert!(packed.iter().all(|p| p.tokens <= 40));
    }

    #[test]
    fn headings_start_sections_and_carry_no_overlap() {
        let d = doc(&[
            (BlockKind::Heading { level: 1 }, "Guide"),
            (BlockKind::Paragraph, "Intro text here."),
            (BlockKind::Heading { level: 2 }, "Install"),
            (BlockKind::Heading { level: 3 }, "Linux"),
            (BlockKind::Paragraph, "Run the installer."),
            (BlockKind::Heading { level: 2 }, "Use"),
            (BlockKind::Paragraph, "Call it."),
        ]);
        let (atoms, packed) = run(&d, 64, 10);
        let sections: Vec<_> = packed.iter().map(|p| p.section.as_str()).collect();
        assert_eq!(
            sections,
            vec!["Guide", "Guide > Install > Linux", "Guide > Use"]
        );
        let t = texts(&d, &atoms, &packed);
        assert_eq!(t[1], vec!["Install", "Linux", "Run the installer."]);
        assert_eq!(t[2], vec!["Use", "Call it."]);
    }

    #[test]
    fn turn_labels_count_and_whole_turns_move_to_the_next_chunk() {
        let turn = |s: &str| BlockKind::Turn {
            speaker: s.to_string(),
            start_seconds: 0.0,
        };
        let d = doc(&[
            (
                turn("Ann"),
                "one two three four five six seven eight nine ten",
            ),
            (
                turn("Bob"),
                "one two three four five six seven eight nine ten",
            ),
            (
                turn("Ann"),
                "one two three four five six seven eight nine ten",
            ),
        ]);
        // label "Ann:" = 2 tokens; a turn with label = 12 tokens
        let (atoms, packed) = run(&d, 32, 0);
        let per_chunk: Vec<Vec<usize>> = packed
            .iter()
            .map(|p| p.atoms.iter().map(|&a| atoms[a].block).collect())
            .collect();
        assert_eq!(per_chunk, vec![vec![0, 1], vec![2]]);
        assert_eq!(packed[0].tokens, 24);
    }

    #[test]
    fn glued_pieces_of_a_huge_word_never_share_a_chunk() {
        let d = doc(&[(
            BlockKind::Paragraph,
            &format!("start {} end", "x".repeat(100)),
        )]);
        let (atoms, packed) = run(&d, 32, 8);
        assert!(atoms.iter().any(|a| a.glued));
        for p in &packed {
            assert!(p.tokens <= 32);
            for w in p.atoms.windows(2) {
                assert!(!atoms[w[1]].glued, "glued atom next to its predecessor");
            }
        }
        let covered: String = packed
            .iter()
            .flat_map(|p| p.atoms.iter())
            .map(|&a| &d.text[atoms[a].start..atoms[a].end])
            .collect::<Vec<_>>()
            .join("");
        assert!(covered.contains(&"x".repeat(20)));
    }
}
