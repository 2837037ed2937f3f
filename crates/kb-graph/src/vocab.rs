//! The fixed vocabulary of entity-to-entity relationship types.
//!
//! Cypher cannot take a relationship type as a parameter, so the type is spliced into the query
//! text. Only the `&'static str`s below ever reach a query: input is mapped onto this enum and
//! anything unknown becomes [`RelationType::RelatedTo`], so no document can inject Cypher.

/// An entity-to-entity relationship type the graph knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RelationType {
    CoOccurs,
    Discusses,
    BelongsTo,
    MentionedWith,
    RelatedTo,
}

impl RelationType {
    /// Every type, so deletes can visit each one (types cannot be parameters).
    pub const ALL: [RelationType; 5] = [
        RelationType::CoOccurs,
        RelationType::Discusses,
        RelationType::BelongsTo,
        RelationType::MentionedWith,
        RelationType::RelatedTo,
    ];

    /// Maps a relation type from a document onto the vocabulary; case and separators
    /// (`-`, space) are forgiven, anything else is `RELATED_TO`.
    pub fn from_input(raw: &str) -> Self {
        let normalized: String = raw
            .trim()
            .chars()
            .map(|c| match c {
                '-' | ' ' => '_',
                c => c.to_ascii_uppercase(),
            })
            .collect();
        match normalized.as_str() {
            "CO_OCCURS" => RelationType::CoOccurs,
            "DISCUSSES" => RelationType::Discusses,
            "BELONGS_TO" => RelationType::BelongsTo,
            "MENTIONED_WITH" => RelationType::MentionedWith,
            _ => RelationType::RelatedTo,
        }
    }

    /// The relationship type as written in Cypher.
    pub fn as_str(self) -> &'static str {
        match self {
            RelationType::CoOccurs => "CO_OCCURS",
            RelationType::Discusses => "DISCUSSES",
            RelationType::BelongsTo => "BELONGS_TO",
            RelationType::MentionedWith => "MENTIONED_WITH",
            RelationType::RelatedTo => "RELATED_TO",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_types_round_trip() {
        for t in RelationType::ALL {
            assert_eq!(RelationType::from_input(t.as_str()), t);
        }
        assert_eq!(
            RelationType::from_input("co-occurs"),
            RelationType::CoOccurs
        );
    }

    #[test]
    fn unknown_and_hostile_types_become_related_to() {
        for raw in ["", "LIKES", "X]->() DETACH DELETE n //", "CO_OCCURS`"] {
            assert_eq!(RelationType::from_input(raw), RelationType::RelatedTo);
        }
    }

    #[test]
    fn every_type_is_a_plain_identifier() {
        for t in RelationType::ALL {
            assert!(t
                .as_str()
                .chars()
                .all(|c| c.is_ascii_uppercase() || c == '_'));
        }
    }
}
