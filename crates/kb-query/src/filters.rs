//! Request filters checked and put in the stores' terms ([`ChunkFilter`]): canonical entity
//! name as ingest computes it, lower-case speaker, parsed times, origin and media-type forms.

use kb_store::read::{ChunkFilter, MediaTypeFilter, OriginFilter};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime, Time};

use crate::api::Filters;
use crate::error::{QueryError, QueryErrorExt as _};

/// Longest value accepted in any filter field.
const MAX_FILTER_CHARS: usize = 1000;

/// Checks `f` and converts it; every problem is reported at once.
pub fn to_chunk_filter(f: &Filters) -> Result<ChunkFilter, QueryError> {
    let mut problems = Vec::new();
    let text = |name: &str, v: &Option<String>, problems: &mut Vec<String>| -> Option<String> {
        let v = v.as_deref()?.trim();
        if v.is_empty() {
            problems.push(format!("filters.{name} is empty"));
            return None;
        }
        if v.chars().count() > MAX_FILTER_CHARS {
            problems.push(format!(
                "filters.{name} is longer than {MAX_FILTER_CHARS} characters"
            ));
            return None;
        }
        // Text columns cannot hold NUL: it would reach the store as an error, not a filter.
        if v.contains('\0') {
            problems.push(format!("filters.{name} contains a NUL character"));
            return None;
        }
        Some(v.to_owned())
    };
    let path_prefix = text("path_prefix", &f.path_prefix, &mut problems);
    let origin = text("origin", &f.origin, &mut problems).map(|o| match o.as_str() {
        "folder" => OriginFilter::Folder,
        "drive" => OriginFilter::Drive,
        _ => OriginFilter::Exact(o),
    });
    let media_type = text("media_type", &f.media_type, &mut problems).map(|m| {
        let m = m.to_ascii_lowercase();
        match m.strip_suffix('*') {
            Some(prefix) if prefix.ends_with('/') => MediaTypeFilter::Prefix(prefix.to_owned()),
            _ => MediaTypeFilter::Exact(m),
        }
    });
    let speaker = text("speaker", &f.speaker, &mut problems).map(|s| s.to_lowercase());
    let entity_names = text("entity", &f.entity, &mut problems)
        .map(|e| {
            let names = kb_parse::entities::name_forms(&e);
            if names.is_empty() {
                problems.push(format!("filters.entity {e:?} names nothing"));
            }
            names
        })
        .unwrap_or_default();
    let mut time = |name: &str, v: &Option<String>, end_of_day: bool| {
        let v = text(name, v, &mut problems)?;
        match parse_time(&v, end_of_day) {
            Ok(ms) => Some(ms),
            Err(()) => {
                problems.push(format!(
                    "filters.{name} {v:?} is not a date (2024-05-01) or an RFC 3339 time (2024-05-01T09:00:00Z)"
                ));
                None
            }
        }
    };
    let from_unix_ms = time("from", &f.from, false);
    let to_unix_ms = time("to", &f.to, true);
    if let (Some(a), Some(b)) = (from_unix_ms, to_unix_ms) {
        if a > b {
            problems.push("filters.from is after filters.to".into());
        }
    }
    if !problems.is_empty() {
        return Err(QueryError::invalid(problems.join("; ")));
    }
    Ok(ChunkFilter {
        path_prefix,
        origin,
        media_type,
        speaker,
        from_unix_ms,
        to_unix_ms,
        entity_names,
    })
}

/// Unix milliseconds of an RFC 3339 time, or of a date's first (or last) millisecond, UTC.
fn parse_time(v: &str, end_of_day: bool) -> Result<i64, ()> {
    let at = if let Ok(t) = OffsetDateTime::parse(v, &Rfc3339) {
        t
    } else {
        let date = Date::parse(v, format_description!("[year]-[month]-[day]")).map_err(|_| ())?;
        let t = if end_of_day {
            Time::from_hms_milli(23, 59, 59, 999).map_err(|_| ())?
        } else {
            Time::MIDNIGHT
        };
        date.with_time(t).assume_utc()
    };
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).map_err(|_| ())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_normalized() {
        let f = to_chunk_filter(&Filters {
            path_prefix: Some(" meetings/ ".into()),
            origin: Some("drive".into()),
            media_type: Some("Text/*".into()),
            speaker: Some("Project Manager".into()),
            from: Some("2024-05-01".into()),
            to: Some("2024-05-01".into()),
            entity: Some("The Remote Controls".into()),
        })
        .unwrap();
        assert_eq!(f.path_prefix.as_deref(), Some("meetings/"));
        assert_eq!(f.origin, Some(OriginFilter::Drive));
        assert_eq!(f.media_type, Some(MediaTypeFilter::Prefix("text/".into())));
        assert_eq!(f.speaker.as_deref(), Some("project manager"));
        assert_eq!(f.entity_names, ["remote control", "remote controls"]);
        assert_eq!(f.from_unix_ms, Some(1_714_521_600_000));
        assert_eq!(f.to_unix_ms, Some(1_714_521_600_000 + 86_400_000 - 1));
    }

    #[test]
    fn exact_origins_and_media_types_stay_exact() {
        let f = to_chunk_filter(&Filters {
            origin: Some("folder:inbox".into()),
            media_type: Some("application/pdf".into()),
            from: Some("2024-05-01T09:00:00+02:00".into()),
            ..Filters::default()
        })
        .unwrap();
        assert_eq!(f.origin, Some(OriginFilter::Exact("folder:inbox".into())));
        assert_eq!(
            f.media_type,
            Some(MediaTypeFilter::Exact("application/pdf".into()))
        );
        assert_eq!(f.from_unix_ms, Some(1_714_546_800_000));
        assert!(to_chunk_filter(&Filters::default()).unwrap().is_empty());
    }

    #[test]
    fn every_problem_is_reported() {
        let err = to_chunk_filter(&Filters {
            speaker: Some("  ".into()),
            from: Some("yesterday".into()),
            to: Some("2024-13-01".into()),
            entity: Some("(?)".into()),
            path_prefix: Some("a\0b".into()),
            ..Filters::default()
        })
        .unwrap_err();
        assert_eq!(err.message.matches("filters.").count(), 5, "{err}");
        let err = to_chunk_filter(&Filters {
            from: Some("2024-02-01".into()),
            to: Some("2024-01-01".into()),
            ..Filters::default()
        })
        .unwrap_err();
        assert!(err.message.contains("after"), "{err}");
    }
}
