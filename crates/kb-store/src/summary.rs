use serde::Serialize;
use sha2::{Digest, Sha256};

/// What a store holds for one source, reduced to numbers and digests that two stores holding
/// the same knowledge agree on exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceSummary {
    pub source_id: String,
    pub version: u64,
    /// "ok" or "failed".
    pub status: String,
    pub chunks: u64,
    pub entities: u64,
    pub mentions: u64,
    pub relations: u64,
    /// sha256 over the sorted chunk ids.
    pub chunk_digest: String,
    /// sha256 over the sorted "chunk_id|entity_id|count" mention triples.
    pub mention_digest: String,
}

impl SourceSummary {
    /// Builds a summary from the raw sets; order of the inputs does not matter.
    pub fn from_parts(
        source_id: impl Into<String>,
        version: u64,
        status: impl Into<String>,
        chunk_ids: impl IntoIterator<Item = String>,
        mentions: impl IntoIterator<Item = (String, String, u64)>,
        entities: u64,
        relations: u64,
    ) -> Self {
        let mut chunk_ids: Vec<String> = chunk_ids.into_iter().collect();
        let mut mentions: Vec<String> = mentions
            .into_iter()
            .map(|(c, e, n)| format!("{c}|{e}|{n}"))
            .collect();
        Self {
            source_id: source_id.into(),
            version,
            status: status.into(),
            chunks: chunk_ids.len() as u64,
            entities,
            mentions: mentions.len() as u64,
            relations,
            chunk_digest: digest(&mut chunk_ids),
            mention_digest: digest(&mut mentions),
        }
    }
}

fn digest(items: &mut [String]) -> String {
    items.sort_unstable();
    let mut h = Sha256::new();
    for item in items.iter() {
        h.update(item.as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

/// Totals over a whole store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StoreCounts {
    pub sources: u64,
    pub failed_sources: u64,
    pub chunks: u64,
    pub chunks_with_embeddings: u64,
    pub entities: u64,
    pub mentions: u64,
    pub relations: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_is_independent_of_input_order() {
        let a = SourceSummary::from_parts(
            "s",
            3,
            "ok",
            vec!["c2".to_string(), "c1".to_string()],
            vec![("c1".into(), "e1".into(), 2), ("c2".into(), "e1".into(), 1)],
            1,
            0,
        );
        let b = SourceSummary::from_parts(
            "s",
            3,
            "ok",
            vec!["c1".to_string(), "c2".to_string()],
            vec![("c2".into(), "e1".into(), 1), ("c1".into(), "e1".into(), 2)],
            1,
            0,
        );
        assert_eq!(a, b);
        assert_eq!(a.chunks, 2);
        assert_eq!(a.mentions, 2);
    }

    #[test]
    fn different_mention_counts_change_the_digest() {
        let mk = |n| {
            SourceSummary::from_parts(
                "s",
                1,
                "ok",
                vec!["c1".to_string()],
                vec![("c1".into(), "e1".into(), n)],
                1,
                0,
            )
        };
        assert_ne!(mk(1).mention_digest, mk(2).mention_digest);
    }
}
