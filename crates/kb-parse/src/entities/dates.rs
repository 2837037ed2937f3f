//! DATE mentions by pattern: ISO and numeric dates, "March 5, 2020", "5 March 2020",
//! "March 2020", month names, weekdays, and years 1900-2099. Canonical forms: `2020-03-05`,
//! `2020-03`, `03-05` (no year), `march`, `monday`, `2020`; numeric `d/m/y` dates are kept
//! as written (their order is ambiguous).

use std::sync::OnceLock;

use regex::Regex;

/// One date found in a text: byte range in that text, surface, canonical form.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DateMention {
    pub start: usize,
    pub end: usize,
    pub surface: String,
    pub canonical: String,
}

const MONTH: &str = r"(January|February|March|April|May|June|July|August|September|October|November|December|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept|Sep|Oct|Nov|Dec)";

struct Patterns {
    iso: Regex,
    month_day: Regex,
    day_month: Regex,
    month_year: Regex,
    numeric: Regex,
    word: Regex,
    year: Regex,
}

fn patterns() -> Option<&'static Patterns> {
    static P: OnceLock<Option<Patterns>> = OnceLock::new();
    P.get_or_init(|| {
        Some(Patterns {
            iso: Regex::new(r"\b([12][0-9]{3})-([01][0-9])-([0-3][0-9])\b").ok()?,
            month_day: Regex::new(&format!(
                r"\b{MONTH}\.? ([0-3]?[0-9])(?:st|nd|rd|th)?\b(?:,? ([12][0-9]{{3}})\b)?"
            ))
            .ok()?,
            day_month: Regex::new(&format!(
                r"\b([0-3]?[0-9])(?:st|nd|rd|th)? (?:of )?{MONTH}\b\.?(?:,? ([12][0-9]{{3}})\b)?"
            ))
            .ok()?,
            month_year: Regex::new(&format!(r"\b{MONTH}\.?,? ([12][0-9]{{3}})\b")).ok()?,
            numeric: Regex::new(r"\b([0-3]?[0-9])/([0-3]?[0-9])/([0-9]{4}|[0-9]{2})\b").ok()?,
            word: Regex::new(
                r"\b(January|February|March|April|June|July|August|September|October|November|December|Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)\b",
            )
            .ok()?,
            year: Regex::new(r"\b(19[0-9]{2}|20[0-9]{2})\b").ok()?,
        })
    })
    .as_ref()
}

fn month_number(name: &str) -> Option<u32> {
    let n = match name.get(..3)? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    Some(n)
}

fn ymd(year: Option<&str>, month: u32, day: u32) -> Option<String> {
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    Some(match year {
        Some(y) => format!("{y}-{month:02}-{day:02}"),
        None => format!("{month:02}-{day:02}"),
    })
}

/// Dates in `text`, left to right, non-overlapping (more specific patterns win).
pub(crate) fn find_dates(text: &str) -> Vec<DateMention> {
    let Some(p) = patterns() else {
        return Vec::new();
    };
    let mut found: Vec<DateMention> = Vec::new();
    let mut add = |start: usize, end: usize, canonical: Option<String>| {
        let Some(canonical) = canonical else { return };
        if found.iter().any(|d| start < d.end && d.start < end) {
            return;
        }
        found.push(DateMention {
            start,
            end,
            surface: text[start..end].to_owned(),
            canonical,
        });
    };
    let num = |s: Option<regex::Match<'_>>| s.and_then(|m| m.as_str().parse::<u32>().ok());
    for c in p.iso.captures_iter(text) {
        let (Some(all), Some(m), Some(d)) = (c.get(0), num(c.get(2)), num(c.get(3))) else {
            continue;
        };
        add(
            all.start(),
            all.end(),
            ymd(c.get(1).map(|y| y.as_str()), m, d),
        );
    }
    for c in p.month_day.captures_iter(text) {
        let (Some(all), Some(m), Some(d)) = (
            c.get(0),
            c.get(1).and_then(|m| month_number(m.as_str())),
            num(c.get(2)),
        ) else {
            continue;
        };
        add(
            all.start(),
            all.end(),
            ymd(c.get(3).map(|y| y.as_str()), m, d),
        );
    }
    for c in p.day_month.captures_iter(text) {
        let (Some(all), Some(d), Some(m)) = (
            c.get(0),
            num(c.get(1)),
            c.get(2).and_then(|m| month_number(m.as_str())),
        ) else {
            continue;
        };
        add(
            all.start(),
            all.end(),
            ymd(c.get(3).map(|y| y.as_str()), m, d),
        );
    }
    for c in p.month_year.captures_iter(text) {
        let (Some(all), Some(m), Some(y)) = (
            c.get(0),
            c.get(1).and_then(|m| month_number(m.as_str())),
            c.get(2),
        ) else {
            continue;
        };
        add(
            all.start(),
            all.end(),
            Some(format!("{}-{m:02}", y.as_str())),
        );
    }
    for c in p.numeric.captures_iter(text) {
        let Some(all) = c.get(0) else { continue };
        let valid = num(c.get(1)).is_some_and(|v| (1..=31).contains(&v))
            && num(c.get(2)).is_some_and(|v| (1..=31).contains(&v));
        add(
            all.start(),
            all.end(),
            valid.then(|| all.as_str().to_owned()),
        );
    }
    for m in p.word.find_iter(text) {
        // "March" opening a sentence may be the verb; elsewhere a capital means the month
        let sentence_start = text[..m.start()].trim_end().is_empty()
            || text[..m.start()].trim_end().ends_with(['.', '!', '?']);
        let canonical =
            (!sentence_start || is_weekday(m.as_str())).then(|| m.as_str().to_lowercase());
        add(m.start(), m.end(), canonical);
    }
    for m in p.year.find_iter(text) {
        let before = text[..m.start()].chars().next_back();
        let after = text[m.end()..].chars().next();
        let mut after_two = text[m.end()..].chars().skip(1);
        let thousands =
            after == Some(',') && after_two.clone().next().is_some_and(|c| c.is_ascii_digit());
        let followed_by_digit = after_two.next().is_some_and(|c| c.is_ascii_digit());
        let quantity = matches!(before, Some('$' | '€' | '£' | '#' | '.' | ','))
            || after == Some('%')
            || (matches!(after, Some('.' | ':')) && followed_by_digit);
        add(
            m.start(),
            m.end(),
            (!quantity && !thousands).then(|| m.as_str().to_owned()),
        );
    }
    found.sort_by_key(|d| d.start);
    found
}

fn is_weekday(w: &str) -> bool {
    w.ends_with("day")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(t: &str) -> Vec<String> {
        find_dates(t).into_iter().map(|d| d.canonical).collect()
    }

    #[test]
    fn patterns_compile() {
        assert!(patterns().is_some());
    }

    #[test]
    fn date_forms() {
        assert_eq!(
            canon("On March 5, 2020 and 2021-01-31."),
            vec!["2020-03-05", "2021-01-31"]
        );
        assert_eq!(
            canon("the 5th of May 2019, or 12 Dec"),
            vec!["2019-05-05", "12-12"]
        );
        assert_eq!(canon("in June 2020 then in July"), vec!["2020-06", "july"]);
        assert_eq!(canon("by Friday; 3/4/21"), vec!["friday", "3/4/21"]);
        assert_eq!(canon("March on. We may go in May."), Vec::<String>::new());
        assert_eq!(
            canon("back in 1999, not $2000 nor 2050% nor 1,2000 nor 2019.5"),
            vec!["1999"]
        );
        assert_eq!(canon("about 2,000 people"), Vec::<String>::new());
    }
}
