//! A [`ChunkFilter`] as SQL: fixed fragments, every value a bound parameter. The query using it
//! names the chunk `c` and its source `s`.

use kb_store::read::{ChunkFilter, MediaTypeFilter};
use sqlx::{Postgres, QueryBuilder};

/// Appends ` AND …` for every condition the filter sets.
pub(crate) fn push(qb: &mut QueryBuilder<'_, Postgres>, f: &ChunkFilter) {
    if let Some(prefix) = &f.path_prefix {
        qb.push(" AND s.path LIKE ")
            .push_bind(format!("{}%", escape_like(prefix)))
            .push(" ESCAPE '\\'");
    }
    if let Some(origin) = &f.origin {
        let (exact, prefixes) = origin.exact_and_prefixes();
        let patterns: Vec<String> = prefixes
            .iter()
            .map(|p| format!("{}%", escape_like(p)))
            .collect();
        qb.push(" AND (s.origin = ANY(")
            .push_bind(exact)
            .push(") OR s.origin LIKE ANY(")
            .push_bind(patterns)
            .push("))");
    }
    match &f.media_type {
        Some(MediaTypeFilter::Exact(m)) => {
            qb.push(" AND s.media_type = ").push_bind(m.clone());
        }
        Some(MediaTypeFilter::Prefix(p)) => {
            qb.push(" AND s.media_type LIKE ")
                .push_bind(format!("{}%", escape_like(p)))
                .push(" ESCAPE '\\'");
        }
        None => {}
    }
    if let Some(speaker) = &f.speaker {
        qb.push(" AND EXISTS (SELECT 1 FROM unnest(c.speakers) AS sp WHERE lower(sp) LIKE ")
            .push_bind(format!("%{}%", escape_like(speaker)))
            .push(" ESCAPE '\\')");
    }
    if let Some(from) = f.from_unix_ms {
        qb.push(" AND COALESCE(s.document_at, s.modified_at) >= to_timestamp(")
            .push_bind(from as f64 / 1000.0)
            .push(")");
    }
    if let Some(to) = f.to_unix_ms {
        qb.push(" AND COALESCE(s.document_at, s.modified_at) <= to_timestamp(")
            .push_bind(to as f64 / 1000.0)
            .push(")");
    }
    if !f.entity_names.is_empty() {
        qb.push(
            " AND EXISTS (SELECT 1 FROM chunk_mentions fm JOIN entities fe \
             ON fe.entity_id = fm.entity_id WHERE fm.chunk_id = c.chunk_id \
             AND fe.canonical_name = ANY(",
        )
        .push_bind(f.entity_names.clone())
        .push("))");
    }
}

/// `LIKE` treats `%`, `_` and the escape character specially; a prefix is matched literally.
pub(crate) fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_metacharacters_are_escaped() {
        assert_eq!(escape_like("50%_a\\b"), "50\\%\\_a\\\\b");
        assert_eq!(escape_like("notes/2024"), "notes/2024");
    }

    #[test]
    fn every_condition_is_a_parameter() {
        let f = ChunkFilter {
            path_prefix: Some("x'; DROP TABLE chunks; --".into()),
            origin: Some(kb_store::read::OriginFilter::Folder),
            media_type: Some(MediaTypeFilter::Prefix("text/".into())),
            speaker: Some("kelly".into()),
            from_unix_ms: Some(0),
            to_unix_ms: Some(1),
            entity_names: vec!["acme".into()],
        };
        let mut qb = QueryBuilder::<Postgres>::new("SELECT 1 FROM chunks c, sources s WHERE true");
        push(&mut qb, &f);
        let sql = qb.sql();
        assert!(!sql.contains("DROP"), "{sql}");
        assert!(!sql.contains("kelly") && !sql.contains("acme"), "{sql}");
        assert_eq!(sql.matches('$').count(), 8, "{sql}");
    }
}
