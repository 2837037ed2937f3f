//! Relations between entities that occur in the same chunk, typed from a fixed vocabulary:
//! - `DISCUSSES` SPEAKER → TOPIC when the topic occurs in that speaker's own words in the chunk;
//! - `BELONGS_TO` PERSON → ORGANIZATION when both occur in the same sentence;
//! - `CO_OCCURS` for every other pair (source = the smaller entity id, so it is stable).
//!
//! Weight = the raw number of chunks in which the relation holds (overlapping chunks may
//! count a sentence twice). At most [`MAX_RELATIONS`] relations are kept per document, the
//! heaviest first (ties by type and ids, so the cut is deterministic).

use std::collections::{BTreeMap, BTreeSet};

use kb_proto::{Entity, Relation};

use crate::entities::{EntityType, Extraction};
use crate::segment::Atom;

/// Most relations kept per document.
pub const MAX_RELATIONS: usize = 200;

/// The fixed relation vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RelationType {
    Discusses,
    BelongsTo,
    CoOccurs,
}

impl RelationType {
    pub fn as_str(self) -> &'static str {
        match self {
            RelationType::Discusses => "DISCUSSES",
            RelationType::BelongsTo => "BELONGS_TO",
            RelationType::CoOccurs => "CO_OCCURS",
        }
    }
}

/// Relations of a document whose chunks are lists of atom indices.
pub(crate) fn relations(ex: &Extraction, atoms: &[Atom], chunks: &[Vec<usize>]) -> Vec<Relation> {
    let ty = |e: usize| ex.types[e];
    let mut weights: BTreeMap<(usize, usize, RelationType), u32> = BTreeMap::new();
    for chunk in chunks {
        let mut present: BTreeSet<usize> = BTreeSet::new();
        let mut discusses: BTreeSet<(usize, usize)> = BTreeSet::new();
        let mut belongs: BTreeSet<(usize, usize)> = BTreeSet::new();
        for &a in chunk {
            let hits = &ex.atom_hits[a];
            let speaker = ex.block_speaker[atoms[a].block];
            present.extend(hits.iter().copied());
            present.extend(speaker);
            for &h in hits {
                if let (Some(s), EntityType::Topic) = (speaker, ty(h)) {
                    discusses.insert((s, h));
                }
                if ty(h) == EntityType::Person {
                    for &o in hits.iter().filter(|&&o| ty(o) == EntityType::Organization) {
                        belongs.insert((h, o));
                    }
                }
            }
        }
        let present: Vec<usize> = present.into_iter().collect();
        let mut seen_this_chunk: BTreeSet<(usize, usize, RelationType)> = BTreeSet::new();
        for (i, &a) in present.iter().enumerate() {
            for &b in &present[i + 1..] {
                let key = classify(a, b, ty(a), ty(b), &discusses, &belongs, &ex.entities);
                if seen_this_chunk.insert(key) {
                    *weights.entry(key).or_default() += 1;
                }
            }
        }
    }
    let id = |e: usize| ex.entities[e].entity_id.as_str();
    let mut rels: Vec<(u32, RelationType, &str, &str)> = weights
        .into_iter()
        .map(|((s, t, rt), w)| (w, rt, id(s), id(t)))
        .collect();
    rels.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then_with(|| (a.1, a.2, a.3).cmp(&(b.1, b.2, b.3)))
    });
    rels.truncate(MAX_RELATIONS);
    rels.into_iter()
        .map(|(w, rt, s, t)| Relation {
            source_entity_id: s.to_owned(),
            target_entity_id: t.to_owned(),
            relation_type: rt.as_str().to_owned(),
            weight: w as f32,
        })
        .collect()
}

fn classify(
    a: usize,
    b: usize,
    ta: EntityType,
    tb: EntityType,
    discusses: &BTreeSet<(usize, usize)>,
    belongs: &BTreeSet<(usize, usize)>,
    entities: &[Entity],
) -> (usize, usize, RelationType) {
    use EntityType::*;
    let directed = match (ta, tb) {
        (Speaker, Topic) => Some((a, b, RelationType::Discusses, discusses)),
        (Topic, Speaker) => Some((b, a, RelationType::Discusses, discusses)),
        (Person, Organization) => Some((a, b, RelationType::BelongsTo, belongs)),
        (Organization, Person) => Some((b, a, RelationType::BelongsTo, belongs)),
        _ => None,
    };
    if let Some((s, t, rt, holds)) = directed {
        if holds.contains(&(s, t)) {
            return (s, t, rt);
        }
    }
    if entities[a].entity_id <= entities[b].entity_id {
        (a, b, RelationType::CoOccurs)
    } else {
        (b, a, RelationType::CoOccurs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entities::AtomStats;
    use crate::ids::entity_id;

    fn ent(ty: EntityType, name: &str) -> Entity {
        Entity {
            entity_id: entity_id(ty.as_str(), name),
            name: name.into(),
            canonical_name: name.into(),
            entity_type: ty.as_str().into(),
        }
    }

    fn atom(block: usize) -> Atom {
        Atom {
            block,
            start: 0,
            end: 0,
            tokens: 1,
            glued: false,
            words_before: 0,
            words: 1,
        }
    }

    #[test]
    fn types_directions_and_weights() {
        use EntityType::*;
        let types = vec![Speaker, Speaker, Topic, Person, Organization];
        let names = ["ann", "bob", "budget", "ada", "acme"];
        let ex = Extraction {
            entities: types.iter().zip(names).map(|(t, n)| ent(*t, n)).collect(),
            types,
            // atom 0: Ann says "budget"; atom 1: Bob; atom 2: Ada and Acme in one sentence;
            // atom 3: Ada alone, atom 4: Acme alone (same chunk, different sentences)
            atom_hits: vec![vec![2], vec![], vec![3, 4], vec![3], vec![4]],
            block_speaker: vec![Some(0), Some(1), None],
            atom_stats: vec![AtomStats::default(); 5],
        };
        let atoms = vec![atom(0), atom(1), atom(2), atom(2), atom(2)];
        let rels = relations(&ex, &atoms, &[vec![0, 1], vec![0], vec![2], vec![3, 4]]);
        let find = |s: usize, t: usize| {
            rels.iter()
                .find(|r| {
                    r.source_entity_id == ex.entities[s].entity_id
                        && r.target_entity_id == ex.entities[t].entity_id
                })
                .map(|r| (r.relation_type.as_str(), r.weight))
        };
        assert_eq!(find(0, 2), Some(("DISCUSSES", 2.0)));
        // Bob was in the chunk but did not say it
        let bob_budget = find(1, 2).or(find(2, 1));
        assert_eq!(bob_budget, Some(("CO_OCCURS", 1.0)));
        assert_eq!(find(3, 4), Some(("BELONGS_TO", 1.0)));
        // the other chunk has them in different sentences only
        let co = rels
            .iter()
            .filter(|r| r.relation_type == "CO_OCCURS")
            .count();
        assert_eq!(co, 3, "{rels:?}");
        assert_eq!(rels[0].weight, 2.0, "heaviest first");
    }
}
