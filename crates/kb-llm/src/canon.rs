//! Canonical names of LLM entities, by the local extractor's own rules, so the same thing
//! found by either extractor gets the same `kb_parse::ids::entity_id`.

use kb_parse::{canonical_name, EntityType, ParseOptions};
use kb_proto::SourceRef;

/// Canonical name of `surface` for its type; empty when nothing is left.
pub fn canonical(ty: EntityType, surface: &str) -> String {
    match ty {
        EntityType::Date => local_date(surface).unwrap_or_else(|| canonical_name(surface)),
        _ => canonical_name(surface),
    }
}

/// The local extractor's canonical form of a date ("March 5, 2020" → "2020-03-05"), found
/// by running its public parser on the surface text alone: its date rules are not public
/// on their own. `None` unless the whole surface is exactly one date ("Q3 2020" is not the
/// year 2020).
fn local_date(surface: &str) -> Option<String> {
    let text = surface.trim();
    if text.is_empty() || text.len() > 64 {
        return None;
    }
    let source = SourceRef {
        source_id: "llm-date".into(),
        path: "date.txt".into(),
        ..SourceRef::default()
    };
    let doc = kb_parse::parse(&source, text.as_bytes(), &ParseOptions::default()).ok()?;
    let mut dates = doc
        .entities
        .into_iter()
        .filter(|e| e.entity_type == EntityType::Date.as_str());
    let first = dates.next()?;
    (dates.next().is_none() && first.name.trim() == text).then_some(first.canonical_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_follow_the_local_rules() {
        assert_eq!(canonical(EntityType::Date, "March 5, 2020"), "2020-03-05");
        assert_eq!(canonical(EntityType::Date, "5 March 2020"), "2020-03-05");
        assert_eq!(canonical(EntityType::Date, "Q3 2020"), "q3 2020");
        assert_eq!(canonical(EntityType::Date, "next week"), "next week");
        assert_eq!(
            canonical(EntityType::Person, "Dr. Ada  Lovelace"),
            "ada lovelace"
        );
        assert_eq!(canonical(EntityType::Place, "U.S."), "united states");
    }
}
