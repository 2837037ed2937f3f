//! When a document says its content happened: dates in a transcript's preamble, in metadata
//! values (DOCX core properties, HTML meta tags, front matter) and in PDF date strings →
//! Unix milliseconds, UTC. Never panics on input; anything unparseable, impossible
//! (`2023-02-30`) or outside the years 1900..=2200 is `None` (the document then has no
//! date, `ParsedDocument.document_unix_ms = 0`).
//!
//! Forms accepted:
//! - ISO 8601 / RFC 3339 / W3CDTF: `2023-03-14`, `2023/03/14`, `2023-03-14T10:02Z`,
//!   `2023-03-14T10:02:00.5+01:00`, `2023-03-14 10:02:00 +0100`;
//! - written dates, month first or day first, optional weekday and ordinal:
//!   `Tue, Mar 14, 2023 10:02AM`, `March 14th 2023`, `14 March 2023`,
//!   `Tue, 14 Mar 2023 10:02:00 GMT` (RFC 2822);
//! - numeric `3/14/2023`, `3/14/23` (month first, as US software writes them, unless the
//!   first number cannot be a month: `14/3/2023`) and `14.03.2023` (day first);
//! - PDF dates `D:20230314100200+01'00'` (from `YYYYMMDD` on; `Z`, `+hh'mm'`, `-hhmm`).
//!
//! A time (`10:02`, `10:02:33`, `3PM`, `3:04 p.m.`, after `T`, a space, a comma or `at`)
//! right after a date is taken with it, with its offset when it has one (`Z`, `UTC`, `GMT`,
//! `+01:00`, `-0500`); otherwise the time is taken as UTC and a date alone is midnight UTC.
//! A date without a year (`Mon, 5/17 3:04PM`) counts only in free text, and only when its
//! paragraph names a year elsewhere.

use std::sync::OnceLock;

use regex::{Captures, Regex};

/// Dates outside these years are taken for garbage.
const YEARS: std::ops::RangeInclusive<i64> = 1900..=2200;

/// How much of a preamble is looked at.
const MAX_TEXT_BYTES: usize = 16 * 1024;

const MONTH: &str = r"(?i:january|february|march|april|may|june|july|august|september|october|november|december|jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec)";

fn date_regex() -> Option<&'static Regex> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(&format!(
            r"(?x)
            \b(?P<iy>[0-9]{{4}})-(?P<im>[0-9]{{1,2}})-(?P<id>[0-9]{{1,2}})
            | \b(?P<sy>[0-9]{{4}})/(?P<sm>[0-9]{{1,2}})/(?P<sd>[0-9]{{1,2}})
            | \b(?P<mm>{MONTH})\.?\s+(?P<md>[0-9]{{1,2}})(?i:st|nd|rd|th)?\b(?:,?\s+(?P<my>[0-9]{{4}})\b)?
            | \b(?P<dd>[0-9]{{1,2}})(?i:st|nd|rd|th)?\s+(?i:of\s+)?(?P<dm>{MONTH})\b\.?(?:,?\s+(?P<dy>[0-9]{{4}})\b)?
            | \b(?P<ed>[0-9]{{1,2}})\.(?P<em>[0-9]{{1,2}})\.(?P<ey>[0-9]{{4}})\b
            | \b(?P<na>[0-9]{{1,2}})/(?P<nb>[0-9]{{1,2}})(?:/(?P<ny>[0-9]{{4}}|[0-9]{{2}}))?\b
            "
        ))
        .ok()
    })
    .as_ref()
}

fn year_regex() -> Option<&'static Regex> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"\b(19[0-9]{2}|2[0-2][0-9]{2})\b").ok())
        .as_ref()
}

/// The first date in free text (a transcript's preamble), with the time right after it.
/// A date without a year takes a year named elsewhere in its paragraph, else gives `None`.
pub(crate) fn in_text(text: &str) -> Option<i64> {
    let text = prefix(text, MAX_TEXT_BYTES);
    let found = first_date(text)?;
    let year = match found.year {
        Some(y) => y,
        None => year_in_paragraph(text, found.start, found.end)?,
    };
    found.to_ms(year)
}

/// A metadata value that should be a date (an HTML meta tag's content, a front matter
/// `date`, DOCX `dcterms:created`): the first full date in it, with its time.
pub(crate) fn from_value(value: &str) -> Option<i64> {
    let value = prefix(value, 256);
    let found = first_date(value)?;
    found.to_ms(found.year?)
}

/// A PDF date string (`D:YYYYMMDDHHmmSSOHH'mm'`, PDF 1.7 §7.9.4); other text (some producers
/// write ISO dates) is read as [`from_value`].
pub(crate) fn from_pdf(value: &str) -> Option<i64> {
    let s = value.trim().trim_start_matches('\u{feff}');
    let s = s.strip_prefix("D:").unwrap_or(s);
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if !(8..=14).contains(&digits) || digits % 2 != 0 {
        return from_value(value);
    }
    let num = |from: usize| -> i64 {
        s.get(from..from + 2)
            .and_then(|d| d.parse().ok())
            .unwrap_or(0)
    };
    let year: i64 = s.get(..4)?.parse().ok()?;
    let (month, day) = (num(4), num(6));
    let (hour, minute, second) = (
        if digits >= 10 { num(8) } else { 0 },
        if digits >= 12 { num(10) } else { 0 },
        if digits >= 14 { num(12) } else { 0 },
    );
    let rest = s.get(digits..).unwrap_or_default();
    let offset = match rest.as_bytes().first() {
        Some(b'+' | b'-') => {
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            // `01'00'`, `01'00`, `0100`, `01:00`, `01`
            let digits: Vec<i64> = rest[1..]
                .bytes()
                .take_while(|c| c.is_ascii_digit() || *c == b'\'' || *c == b':')
                .filter(u8::is_ascii_digit)
                .take(4)
                .map(|c| i64::from(c - b'0'))
                .collect();
            let (h, m) = match digits.as_slice() {
                [h1, h2] => (h1 * 10 + h2, 0),
                [h1, h2, m1, m2] => (h1 * 10 + h2, m1 * 10 + m2),
                [] => (0, 0),
                _ => return None,
            };
            if h > 23 || m > 59 {
                return None;
            }
            sign * (h * 3600 + m * 60)
        }
        _ => 0,
    };
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    to_ms(
        year,
        month,
        day,
        hour * 3600 + minute * 60 + second.min(59),
        offset,
    )
}

/// A date found in text; `year` is `None` when the text gives none.
struct Found {
    start: usize,
    end: usize,
    year: Option<i64>,
    month: i64,
    day: i64,
    /// Seconds since midnight and the offset from UTC in seconds.
    time: (i64, i64),
}

impl Found {
    fn to_ms(&self, year: i64) -> Option<i64> {
        to_ms(year, self.month, self.day, self.time.0, self.time.1)
    }
}

/// The first match that is a real calendar date (any year), with the time after it.
fn first_date(text: &str) -> Option<Found> {
    let re = date_regex()?;
    for c in re.captures_iter(text) {
        let Some(all) = c.get(0) else { continue };
        // `2023-03-145` or `12/31/20234` is no date
        if text[all.end()..].starts_with(|ch: char| ch.is_ascii_digit()) {
            continue;
        }
        let Some((year, month, day)) = fields(&c) else {
            continue;
        };
        if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year.unwrap_or(2000), month)
        {
            continue;
        }
        let (time, used) = time_after(&text[all.end()..]).unwrap_or(((0, 0), 0));
        return Some(Found {
            start: all.start(),
            end: all.end() + used,
            year,
            month,
            day,
            time,
        });
    }
    None
}

/// (year, month, day) of a match, month and day not yet checked.
fn fields(c: &Captures<'_>) -> Option<(Option<i64>, i64, i64)> {
    let num = |name: &str| -> Option<i64> { c.name(name).and_then(|m| m.as_str().parse().ok()) };
    let month_name = |name: &str| c.name(name).and_then(|m| month_number(m.as_str()));
    if let Some(y) = num("iy") {
        return Some((Some(y), num("im")?, num("id")?));
    }
    if let Some(y) = num("sy") {
        return Some((Some(y), num("sm")?, num("sd")?));
    }
    if let Some(m) = month_name("mm") {
        return Some((num("my"), m, num("md")?));
    }
    if let Some(m) = month_name("dm") {
        return Some((num("dy"), m, num("dd")?));
    }
    if let Some(y) = num("ey") {
        return Some((Some(y), num("em")?, num("ed")?));
    }
    let (a, b) = (num("na")?, num("nb")?);
    let year = c.name("ny").and_then(|y| {
        let v: i64 = y.as_str().parse().ok()?;
        Some(match y.as_str().len() {
            2 if v < 70 => 2000 + v,
            2 => 1900 + v,
            _ => v,
        })
    });
    // month first (US), unless the first number cannot be a month
    let (month, day) = if a > 12 { (b, a) } else { (a, b) };
    Some((year, month, day))
}

fn month_number(name: &str) -> Option<i64> {
    let lower = name.get(..3)?.to_ascii_lowercase();
    let n = match lower.as_str() {
        "jan" => 1,
        "feb" => 2,
        "mar" => 3,
        "apr" => 4,
        "may" => 5,
        "jun" => 6,
        "jul" => 7,
        "aug" => 8,
        "sep" => 9,
        "oct" => 10,
        "nov" => 11,
        "dec" => 12,
        _ => return None,
    };
    Some(n)
}

/// A year named in the paragraph around `start..end` (the last one before the date, else
/// the first after it).
fn year_in_paragraph(text: &str, start: usize, end: usize) -> Option<i64> {
    let re = year_regex()?;
    let para_start = text[..start].rfind("\n\n").map_or(0, |i| i + 2);
    let para_end = text[end..].find("\n\n").map_or(text.len(), |i| end + i);
    let year = |m: regex::Match<'_>| m.as_str().parse::<i64>().ok();
    re.find_iter(&text[para_start..start])
        .last()
        .and_then(year)
        .or_else(|| re.find_iter(&text[end..para_end]).next().and_then(year))
}

/// A time of day right after a date: separators (` `, `,`, `T`, `at`, `@`), `h:mm`,
/// `h:mm:ss(.fff)`, `h AM`, then an optional zone. Returns ((seconds since midnight,
/// offset seconds), bytes used).
fn time_after(s: &str) -> Option<((i64, i64), usize)> {
    let b = s.as_bytes();
    let mut i = 0;
    if b.first() == Some(&b'T') {
        i = 1;
    } else {
        while i < b.len() && i < 4 && matches!(b[i], b' ' | b'\t' | b',') {
            i += 1;
        }
        if i == 0 {
            return None;
        }
        let word = |w: &[u8]| {
            b.get(i..i + w.len())
                .is_some_and(|x| x.eq_ignore_ascii_case(w))
        };
        if word(b"at ") {
            i += 3;
        } else if word(b"@") {
            i += 1;
        }
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
    }
    let digits = |i: usize, max: usize| -> (i64, usize) {
        let n = b[i.min(b.len())..]
            .iter()
            .take(max)
            .take_while(|c| c.is_ascii_digit())
            .count();
        let v = s.get(i..i + n).and_then(|d| d.parse().ok()).unwrap_or(0);
        (v, n)
    };
    let (hour, n) = digits(i, 2);
    if n == 0 {
        return None;
    }
    i += n;
    let mut minute = None;
    let mut second = 0;
    if b.get(i) == Some(&b':') {
        let (m, n) = digits(i + 1, 2);
        if n != 2 {
            return None;
        }
        minute = Some(m);
        i += 1 + n;
        if b.get(i) == Some(&b':') {
            let (sec, n) = digits(i + 1, 2);
            if n == 2 {
                second = sec;
                i += 1 + n;
                if matches!(b.get(i), Some(b'.' | b',')) {
                    let (_, n) = digits(i + 1, 9);
                    if n > 0 {
                        i += 1 + n;
                    }
                }
            }
        }
    }
    let mut j = i;
    if b.get(j) == Some(&b' ') {
        j += 1;
    }
    let meridiem = [
        (&b"a.m."[..], false),
        (b"p.m.", true),
        (b"am", false),
        (b"pm", true),
    ]
    .into_iter()
    .find(|(w, _)| {
        b.get(j..j + w.len())
            .is_some_and(|x| x.eq_ignore_ascii_case(w))
            && !b.get(j + w.len()).is_some_and(u8::is_ascii_alphanumeric)
    });
    let hour = match meridiem {
        Some((w, pm)) => {
            if !(1..=12).contains(&hour) {
                return None;
            }
            i = j + w.len();
            match (hour, pm) {
                (12, false) => 0,
                (12, true) => 12,
                (h, true) => h + 12,
                (h, false) => h,
            }
        }
        // a bare number is no time (`March 14, 2023 12 people`)
        None if minute.is_none() => return None,
        None => hour,
    };
    let minute = minute.unwrap_or(0);
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let (offset, used) = zone(&b[i..]).unwrap_or((0, 0));
    Some((
        (hour * 3600 + minute * 60 + second.min(59), offset),
        i + used,
    ))
}

/// A zone right after a time (one space allowed): `Z`, `UTC`, `GMT` (each optionally with an
/// offset), `+01:00`, `-0500`, `+01`. Returns (offset seconds, bytes used).
fn zone(b: &[u8]) -> Option<(i64, usize)> {
    let mut i = usize::from(b.first() == Some(&b' '));
    let end_of_word = |k: usize| !b.get(k).is_some_and(u8::is_ascii_alphanumeric);
    if b.get(i) == Some(&b'Z') && end_of_word(i + 1) {
        return Some((0, i + 1));
    }
    let named = [&b"UTC"[..], b"GMT"]
        .into_iter()
        .any(|w| b.get(i..i + 3).is_some_and(|x| x.eq_ignore_ascii_case(w)));
    if named {
        i += 3;
        if !matches!(b.get(i), Some(b'+' | b'-')) {
            return end_of_word(i).then_some((0, i));
        }
    }
    let sign = match b.get(i) {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return None,
    };
    i += 1;
    let two = |k: usize| -> Option<i64> {
        let d = b.get(k..k + 2)?;
        d.iter()
            .all(u8::is_ascii_digit)
            .then(|| i64::from(d[0] - b'0') * 10 + i64::from(d[1] - b'0'))
    };
    let hours = two(i)?;
    i += 2;
    let mut minutes = 0;
    let colon = usize::from(b.get(i) == Some(&b':'));
    if let Some(m) = two(i + colon) {
        minutes = m;
        i += colon + 2;
    }
    if hours > 23 || minutes > 59 || b.get(i).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    Some((sign * (hours * 3600 + minutes * 60), i))
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Unix milliseconds of a local date and time at `offset` seconds east of UTC; `None` for
/// a date that does not exist or lies outside [`YEARS`].
fn to_ms(year: i64, month: i64, day: i64, seconds: i64, offset: i64) -> Option<i64> {
    if !YEARS.contains(&year)
        || !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || !(0..86_400).contains(&seconds)
    {
        return None;
    }
    let secs = days_from_civil(year, month, day) * 86_400 + seconds - offset;
    Some(secs * 1000)
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn prefix(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unix ms of a UTC date and time.
    fn utc(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64) -> Option<i64> {
        to_ms(y, mo, d, h * 3600 + mi * 60 + s, 0)
    }

    #[test]
    fn patterns_compile_and_days_are_right() {
        assert!(date_regex().is_some() && year_regex().is_some());
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(utc(2023, 3, 14, 10, 2, 0), Some(1_678_788_120_000));
        assert_eq!(utc(1900, 1, 1, 0, 0, 0), Some(-2_208_988_800_000));
        assert_eq!(utc(2024, 2, 29, 0, 0, 0), Some(1_709_164_800_000));
        assert_eq!(utc(2023, 2, 29, 0, 0, 0), None);
        assert_eq!(utc(1899, 12, 31, 0, 0, 0), None);
        assert_eq!(utc(2201, 1, 1, 0, 0, 0), None);
    }

    #[test]
    fn otter_preambles() {
        let t = utc(2023, 3, 14, 10, 2, 0);
        assert_eq!(
            in_text(
                "Weekly Planning\nTue, Mar 14, 2023 10:02AM • 52:07\n\nSUMMARY KEYWORDS\n\nbudget"
            ),
            t
        );
        assert_eq!(in_text("Tue, Mar 14, 2023 10:02 am"), t);
        assert_eq!(in_text("Tuesday, March 14, 2023 at 10:02 a.m."), t);
        assert_eq!(
            in_text("Tue, Mar 14, 2023 12:05PM"),
            utc(2023, 3, 14, 12, 5, 0)
        );
        assert_eq!(
            in_text("Tue, Mar 14, 2023 12:05AM"),
            utc(2023, 3, 14, 0, 5, 0)
        );
        assert_eq!(in_text("Mar 14, 2023 3PM"), utc(2023, 3, 14, 15, 0, 0));
        assert_eq!(
            in_text("Board meeting\nMarch 14, 2023"),
            utc(2023, 3, 14, 0, 0, 0)
        );
        assert_eq!(in_text("March 14th 2023"), utc(2023, 3, 14, 0, 0, 0));
        assert_eq!(in_text("MARCH 14, 2023"), utc(2023, 3, 14, 0, 0, 0));
        assert_eq!(in_text("2023-03-14"), utc(2023, 3, 14, 0, 0, 0));
        assert_eq!(
            in_text("Standup 2023-03-14 09:30"),
            utc(2023, 3, 14, 9, 30, 0)
        );
        assert_eq!(in_text("14 March 2023, 10:02"), t);
        assert_eq!(
            in_text("the 14th of March, 2023"),
            utc(2023, 3, 14, 0, 0, 0)
        );
        assert_eq!(in_text("3/14/2023 10:02AM"), t);
        assert_eq!(in_text("3/14/23"), utc(2023, 3, 14, 0, 0, 0));
        assert_eq!(in_text("14/3/2023"), utc(2023, 3, 14, 0, 0, 0));
        assert_eq!(in_text("14.03.2023"), utc(2023, 3, 14, 0, 0, 0));
        // the duration after the bullet is no time of day
        assert_eq!(in_text("Mar 14, 2023 • 52:07"), utc(2023, 3, 14, 0, 0, 0));
        // no year: only with a year named in the same paragraph
        assert_eq!(in_text("Mon, 5/17 3:04PM • 45:12"), None);
        assert_eq!(in_text("Sync\nMon, May 17 3:04PM"), None);
        assert_eq!(
            in_text("Budget 2021\nMon, 5/17 3:04PM • 45:12"),
            utc(2021, 5, 17, 15, 4, 0)
        );
        assert_eq!(
            in_text("Mon, 5/17 3:04PM • 45:12\n\nSUMMARY KEYWORDS\n\n2021"),
            None
        );
    }

    #[test]
    fn metadata_values() {
        let t = utc(2023, 3, 14, 10, 2, 0);
        assert_eq!(from_value("2023-03-14T10:02:00Z"), t);
        assert_eq!(from_value("2023-03-14T10:02Z"), t);
        assert_eq!(from_value("2023-03-14T11:02:00+01:00"), t);
        assert_eq!(from_value("2023-03-14T05:02:00-0500"), t);
        assert_eq!(from_value("2023-03-14T10:02:00.123456Z"), t);
        assert_eq!(from_value("2023-03-14 11:02:00 +0100"), t);
        assert_eq!(from_value("2023-03-14T11:02:00+01"), t);
        assert_eq!(from_value("Tue, 14 Mar 2023 10:02:00 GMT"), t);
        assert_eq!(from_value("Tue, 14 Mar 2023 11:02:00 +0100"), t);
        assert_eq!(from_value("2023/03/14"), utc(2023, 3, 14, 0, 0, 0));
        assert_eq!(from_value("  March 14, 2023 "), utc(2023, 3, 14, 0, 0, 0));
        // a year alone, a month alone or no year are not a document's date
        assert_eq!(from_value("2023"), None);
        assert_eq!(from_value("2023-03"), None);
        assert_eq!(from_value("March 14"), None);
    }

    #[test]
    fn pdf_dates() {
        let t = utc(2023, 3, 14, 10, 2, 0);
        assert_eq!(from_pdf("D:20230314110200+01'00'"), t);
        assert_eq!(from_pdf("D:20230314110200+01'00"), t);
        assert_eq!(from_pdf("D:20230314050200-05'00'"), t);
        assert_eq!(from_pdf("D:20230314100200Z"), t);
        assert_eq!(from_pdf("D:20230314100200Z00'00'"), t);
        assert_eq!(from_pdf("D:20230314100200"), t);
        assert_eq!(from_pdf("20230314100200"), t);
        assert_eq!(from_pdf("D:202303141002"), t);
        assert_eq!(from_pdf("D:20230314"), utc(2023, 3, 14, 0, 0, 0));
        assert_eq!(from_pdf("2023-03-14T10:02:00Z"), t);
        assert_eq!(from_pdf("D:2023"), None);
        assert_eq!(from_pdf("D:20231314"), None);
        assert_eq!(from_pdf("D:20230314250000"), None);
        assert_eq!(from_pdf("D:20230314100200+99'00'"), None);
    }

    #[test]
    fn garbage_is_none_and_never_panics() {
        for s in [
            "",
            " ",
            "no date here",
            "0000-00-00",
            "2023-13-01",
            "2023-02-30",
            "1850-01-01",
            "2999-01-01",
            "9999-99-99T99:99:99Z",
            "2023-03-145",
            "Feb 30, 2023",
            "32/13/2023",
            "1/2",
            "D:",
            "D:1",
            "D:99999999999999",
            "D:20230314100200+",
            "D:20230314100200+é",
            "D:é",
            "March 2023",
            "Tue, Mar 14, 2023 13:00PM",
            "2023-03-14T10:02:00+",
            "2023-03-14T10:02:00+é",
            "2023-03-14Té",
            "é2023-03-14é",
        ] {
            let _ = in_text(s);
            let _ = from_pdf(s);
            let v = from_value(s);
            assert!(
                v.is_none() || s.starts_with("Tue") || s.starts_with("2023-03-14"),
                "{s:?} gave {v:?}"
            );
        }
        assert_eq!(
            from_value("2023-03-14T10:02:00+"),
            utc(2023, 3, 14, 10, 2, 0)
        );
        assert_eq!(
            from_value("Tue, Mar 14, 2023 13:00PM"),
            utc(2023, 3, 14, 0, 0, 0)
        );
        // a date glued to letters is part of a word
        assert_eq!(from_value("é2023-03-14é"), None);
        // every prefix of a long, messy line
        let line = "Tue, Mar 14, 2023 10:02:33.5 p.m. UTC+05:30 • 52:07 D:20230314100200+01'00' 5/17/23 14.03.2023 ünï";
        for end in 0..=line.len() {
            if let Some(s) = line.get(..end) {
                let _ = (in_text(s), from_value(s), from_pdf(s));
            }
        }
        assert_eq!(prefix("aé", 2), "a");
    }
}
