//! WebVTT and SRT subtitles: cues become speaker turns with their start times.
//!
//! The speaker of a cue is its WebVTT voice (`<v Ann Lee>`) or a `Name:` prefix of its text
//! (`ANN: Hello`, `Dr. Rao: Yes`). A cue that names nobody continues the turn before it when
//! that turn has a speaker (subtitles name a speaker when it changes), otherwise it is a turn
//! of its own with an empty speaker. Consecutive cues of one speaker are one turn, their lines
//! joined by spaces (cue breaks fall mid-sentence). Markup (`<i>`, `<c.x>`, `<font>`, inline
//! timestamps) and WebVTT `NOTE`/`STYLE`/`REGION` blocks are dropped; character references
//! (`&amp;`, `&lt;`, …) are decoded.

use super::decode_text;
use crate::error::ParseError;
use crate::limits::Limits;
use crate::structured::{Block, BlockKind, FormatReader, StructuredText};

/// WebVTT or SRT; they differ only in their name and header.
pub struct SubtitleReader {
    name: &'static str,
}

impl SubtitleReader {
    pub const WEBVTT: SubtitleReader = SubtitleReader { name: "webvtt/1" };
    pub const SRT: SubtitleReader = SubtitleReader { name: "srt/1" };
}

impl FormatReader for SubtitleReader {
    fn parser_name(&self) -> &'static str {
        self.name
    }

    fn read_limited(&self, bytes: &[u8], _: &Limits) -> Result<StructuredText, ParseError> {
        let source = decode_text(bytes)?;
        let mut turns: Vec<(String, f64, String)> = Vec::new();
        for cue in cues(&source) {
            for (i, (speaker, line)) in cue.lines.into_iter().enumerate() {
                let continues = match (&speaker, turns.last()) {
                    (Some(s), Some((last, _, _))) => s == last,
                    // later lines of a cue stay in the cue's turn
                    (None, Some((last, _, _))) => i > 0 || !last.is_empty(),
                    (_, None) => false,
                };
                match turns.last_mut() {
                    Some((_, _, text)) if continues => {
                        if !text.is_empty() {
                            text.push(' ');
                        }
                        text.push_str(&line);
                    }
                    _ => turns.push((speaker.unwrap_or_default(), cue.start, line)),
                }
            }
        }
        let mut text = String::new();
        let mut blocks = Vec::new();
        for (speaker, start_seconds, body) in turns {
            let start = text.len();
            text.push_str(&body);
            blocks.push(Block {
                kind: BlockKind::Turn {
                    speaker,
                    start_seconds,
                },
                start,
                end: text.len(),
            });
            text.push_str("\n\n");
        }
        Ok(StructuredText {
            text,
            blocks,
            title: None,
            parser: None,
            date_unix_ms: None,
        })
    }
}

struct Cue {
    start: f64,
    /// Text lines with their speaker, if the line names one.
    lines: Vec<(Option<String>, String)>,
}

/// Cues of a WebVTT or SRT file: every blank-line-separated block with a `-->` timing line.
fn cues(source: &str) -> Vec<Cue> {
    let mut out = Vec::new();
    for block in source.split("\n\n") {
        let lines: Vec<&str> = block.lines().filter(|l| !l.trim().is_empty()).collect();
        // NOTE, STYLE and REGION blocks have no timing line; the header neither
        let Some(timing) = lines.iter().position(|l| l.contains("-->")) else {
            continue;
        };
        let Some(start) = lines[timing]
            .split("-->")
            .next()
            .and_then(|t| parse_time(t.trim()))
        else {
            continue;
        };
        let mut voice: Option<String> = None;
        let mut cue = Cue {
            start,
            lines: Vec::new(),
        };
        for raw in &lines[timing + 1..] {
            let (line_voice, plain) = strip_markup(raw);
            if line_voice.is_some() {
                voice = line_voice;
            }
            let plain = plain.trim().trim_start_matches("- ").trim();
            let (speaker, body) = match split_speaker_prefix(plain) {
                Some((s, b)) => (Some(s.to_owned()), b),
                None => (voice.clone(), plain),
            };
            if !body.is_empty() {
                cue.lines.push((speaker, body.to_owned()));
            }
        }
        out.push(cue);
    }
    out
}

/// `hh:mm:ss.ttt`, `mm:ss.ttt` or SRT's `hh:mm:ss,ttt` → seconds.
fn parse_time(t: &str) -> Option<f64> {
    let t = t.split_whitespace().next()?;
    let (clock, frac) = match t.split_once(['.', ',']) {
        Some((c, f)) => (c, f),
        None => (t, ""),
    };
    let parts: Vec<&str> = clock.split(':').collect();
    if parts.len() < 2
        || parts.len() > 3
        || parts
            .iter()
            .any(|p| p.is_empty() || p.len() > 4 || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let mut secs = 0f64;
    for p in &parts {
        secs = secs * 60.0 + p.parse::<f64>().ok()?;
    }
    if !frac.is_empty() {
        if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        secs += frac.parse::<f64>().ok()? / 10f64.powi(frac.len() as i32);
    }
    Some(secs)
}

/// Removes tags and decodes character references; returns the last `<v Name>` voice too.
fn strip_markup(line: &str) -> (Option<String>, String) {
    let mut voice = None;
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(lt) = rest.find('<') {
        out.push_str(&rest[..lt]);
        let after = &rest[lt + 1..];
        let Some(gt) = after.find('>') else {
            // a lone '<' is text
            out.push('<');
            rest = after;
            continue;
        };
        let tag = &after[..gt];
        // `<v Name>` and `<v.class Name>`: the voice
        if let Some(v) = tag
            .strip_prefix('v')
            .filter(|v| v.starts_with([' ', '.', '\t']))
        {
            let name = v.trim_start_matches(|c: char| c != ' ' && c != '\t').trim();
            if !name.is_empty() {
                voice = Some(name.to_owned());
            }
        }
        rest = &after[gt + 1..];
    }
    out.push_str(rest);
    (voice, decode_entities(&out))
}

fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", " ")
        .replace("&lrm;", "")
        .replace("&rlm;", "")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// `ANN LEE: text` or `Dr. Rao: text` → (speaker, text). A label is 1-4 words of at most 40
/// characters starting with an uppercase letter; `Note: 10:30` style text is no label.
pub(crate) fn split_speaker_prefix(line: &str) -> Option<(&str, &str)> {
    let (label, body) = line.split_once(':')?;
    let label = label.trim();
    let body = body.trim();
    let words = label.split_whitespace().count();
    let plausible = !body.is_empty()
        && !body.starts_with(|c: char| c.is_ascii_digit() || c == '/')
        && (1..=4).contains(&words)
        && label.chars().count() <= 40
        && label.chars().next().is_some_and(char::is_uppercase)
        && label
            .chars()
            .all(|c| c.is_alphanumeric() || " .'-()&".contains(c));
    plausible.then_some((label, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turns(reader: &SubtitleReader, src: &str) -> Vec<String> {
        let doc = reader.read(src.as_bytes()).unwrap();
        doc.blocks
            .iter()
            .map(|b| match &b.kind {
                BlockKind::Turn {
                    speaker,
                    start_seconds,
                } => format!("{speaker}@{start_seconds}:{}", doc.block_text(b)),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn webvtt_voices_times_and_markup() {
        let src = "WEBVTT - a talk\n\nNOTE this is a comment\n\nSTYLE\n::cue { color: red }\n\n\
                   intro\n00:00:01.000 --> 00:00:04.500 line:0\n<v Roger Bingham>We are in <i>New York</i> &amp; more\n\n\
                   00:00:04.500 --> 00:00:06.000\n<v Roger Bingham>still me.\n\n\
                   00:01:06.250 --> 00:01:08.000\n<v.loud Neil deGrasse Tyson>Hi <00:01:07.000>there\n\n\
                   01:00:00.000 --> 01:00:01.000\nno voice\n";
        // (a cue without a voice continues the turn before it)
        assert_eq!(
            turns(&SubtitleReader::WEBVTT, src),
            vec![
                "Roger Bingham@1:We are in New York & more still me.",
                "Neil deGrasse Tyson@66.25:Hi there no voice",
            ]
        );
    }

    #[test]
    fn srt_prefixes_and_unnamed_cues() {
        let src = "1\r\n00:00:01,000 --> 00:00:02,000\r\n<i>Just music</i>\r\nplaying\r\n\r\n\
                   2\r\n00:00:03,000 --> 00:00:05,000\r\nANN: Hello there,\r\nhow are you?\r\n\r\n\
                   3\r\n00:00:05,500 --> 00:00:06,000\r\nstill Ann.\r\n\r\n\
                   4\r\n00:00:07,000 --> 00:00:08,000\r\n- Dr. Rao: Fine.\r\n";
        assert_eq!(
            turns(&SubtitleReader::SRT, src),
            vec![
                "@1:Just music playing",
                "ANN@3:Hello there, how are you? still Ann.",
                "Dr. Rao@7:Fine.",
            ]
        );
    }

    #[test]
    fn times_and_labels() {
        assert_eq!(parse_time("00:01.500"), Some(1.5));
        assert_eq!(parse_time("01:02:03,004"), Some(3723.004));
        assert_eq!(parse_time("1:2"), Some(62.0));
        assert_eq!(parse_time("12"), None);
        assert_eq!(parse_time("aa:bb"), None);
        assert_eq!(split_speaker_prefix("Note: 10:30 sharp"), None);
        assert_eq!(split_speaker_prefix("we said: go"), None);
        assert_eq!(
            split_speaker_prefix("Speaker 2: yes"),
            Some(("Speaker 2", "yes"))
        );
    }
}
