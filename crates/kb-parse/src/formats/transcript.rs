//! Otter.ai-style meeting transcripts in text: each turn is a `Speaker Name  m:ss` (or
//! `h:mm:ss`) line, the turn's text on the following lines, then a blank line. Text before
//! the first turn is kept as paragraphs; a paragraph without a header continues the turn
//! before it. The first date in that preamble (Otter writes `Tue, Mar 14, 2023 10:02AM •
//! 52:07` under the meeting's name) dates the document.

use super::{decode_text, paragraphs};
use crate::error::ParseError;
use crate::limits::Limits;
use crate::structured::{trim_range, Block, BlockKind, FormatReader, StructuredText};

pub struct TranscriptReader;

/// Longest speaker label accepted in a header line.
const MAX_SPEAKER_CHARS: usize = 120;
const MAX_SPEAKER_WORDS: usize = 14;

impl FormatReader for TranscriptReader {
    fn parser_name(&self) -> &'static str {
        "transcript/1"
    }

    fn read_limited(&self, bytes: &[u8], _: &Limits) -> Result<StructuredText, ParseError> {
        let text = decode_text(bytes)?;
        let blocks = turns(&text);
        let date_unix_ms = preamble_date(&text, &blocks);
        Ok(StructuredText {
            text,
            blocks,
            title: None,
            parser: None,
            date_unix_ms,
        })
    }
}

pub(crate) fn turns(text: &str) -> Vec<Block> {
    let mut blocks: Vec<Block> = Vec::new();
    for para in paragraphs(text, &BlockKind::Paragraph) {
        let first_end = text[para.start..para.end]
            .find('\n')
            .map_or(para.end, |i| para.start + i);
        if let Some((speaker, start_seconds)) = parse_turn_header(&text[para.start..first_end]) {
            let body_start = (first_end + 1).min(para.end);
            let (start, end) = trim_range(text, body_start, para.end);
            blocks.push(Block {
                kind: BlockKind::Turn {
                    speaker: speaker.to_owned(),
                    start_seconds,
                },
                start,
                end,
            });
            continue;
        }
        let trailer = text[para.start..para.end].starts_with("Transcribed by ");
        match blocks.last_mut() {
            // a blank line inside a turn: the paragraph continues it (but not Otter's
            // closing "Transcribed by ..." line)
            Some(last) if matches!(last.kind, BlockKind::Turn { .. }) && !trailer => {
                if last.start == last.end {
                    last.start = para.start;
                }
                last.end = para.end;
            }
            _ => blocks.push(para),
        }
    }
    blocks
}

/// The first date (and time) in the blocks before the first turn (see
/// [`crate::document_date::in_text`]); `None` without a turn.
pub(crate) fn preamble_date(text: &str, blocks: &[Block]) -> Option<i64> {
    let first_turn = blocks
        .iter()
        .position(|b| matches!(b.kind, BlockKind::Turn { .. }))?;
    let end = blocks[..first_turn].last()?.end;
    crate::document_date::in_text(text.get(..end)?)
}

/// `Speaker Name  12:34` → (`"Speaker Name"`, 754.0).
pub(crate) fn parse_turn_header(line: &str) -> Option<(&str, f64)> {
    let line = line.trim();
    let split = line.rfind(char::is_whitespace)?;
    let seconds = parse_timestamp(line[split..].trim_start())?;
    let speaker = line[..split].trim_end();
    let plausible = speaker.chars().next().is_some_and(char::is_alphanumeric)
        && speaker.chars().count() <= MAX_SPEAKER_CHARS
        && speaker.split_whitespace().count() <= MAX_SPEAKER_WORDS
        && !speaker.ends_with([',', ';', ':', '!', '?'])
        // Otter's date line, `Tue, Mar 14, 2023 10:02AM • 52:07`, ends with the duration
        && !speaker.ends_with(['•', '·', '|'])
        && !ends_with_sentence(speaker);
    plausible.then_some((speaker, seconds))
}

/// A speaker label may end with an abbreviation ("Jr.", "Lib.)") but not with a sentence.
fn ends_with_sentence(speaker: &str) -> bool {
    speaker.strip_suffix('.').is_some_and(|rest| {
        rest.rsplit(char::is_whitespace)
            .next()
            .is_some_and(|w| w.chars().count() > 4)
    })
}

/// `m:ss`, `mm:ss`, `mmm:ss` or `h:mm:ss` → seconds.
fn parse_timestamp(ts: &str) -> Option<f64> {
    let parts: Vec<&str> = ts.split(':').collect();
    let num = |s: &str, max_len: usize| -> Option<u32> {
        (!s.is_empty() && s.len() <= max_len && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let secs = |s: &str| num(s, 2).filter(|&v| s.len() == 2 && v < 60);
    match parts.as_slice() {
        [m, s] => Some(f64::from(num(m, 3)? * 60 + secs(s)?)),
        [h, m, s] => Some(f64::from(num(h, 2)? * 3600 + secs(m)? * 60 + secs(s)?)),
        _ => None,
    }
}

/// How many paragraphs may come before the first turn: an Otter export may open with the
/// meeting's name and date, `SUMMARY KEYWORDS` and `SPEAKERS` sections.
const MAX_PREAMBLE_PARAGRAPHS: usize = 8;

/// Content check used by [`crate::detect`]: at least two turns with text, the first after at
/// most a short preamble, at least 60% of the paragraphs from there on turn headers, times
/// never going back, and beyond three turns some speaker speaking twice (an agenda's
/// `Lunch  12:15` lines name each item once).
pub(crate) fn looks_like_transcript(text: &str) -> bool {
    let paras = paragraphs(text, &BlockKind::Paragraph);
    let mut turns = 0usize;
    let mut first_turn: Option<usize> = None;
    let mut last_time = f64::MIN;
    let mut speakers = std::collections::HashSet::new();
    for (i, p) in paras.iter().enumerate() {
        if first_turn.is_none() && i > MAX_PREAMBLE_PARAGRAPHS {
            return false;
        }
        if first_turn.is_some_and(|f| i >= f + 60) {
            break;
        }
        let body = &text[p.start..p.end];
        let Some((first, rest)) = body.split_once('\n') else {
            continue;
        };
        let Some((speaker, t)) = parse_turn_header(first) else {
            continue;
        };
        if rest.trim().is_empty() {
            continue;
        }
        if t < last_time {
            return false;
        }
        last_time = t;
        turns += 1;
        speakers.insert(speaker);
        first_turn.get_or_insert(i);
    }
    let Some(first) = first_turn else {
        return false;
    };
    let considered = paras.len().min(first + 60) - first;
    turns >= 2 && turns * 10 >= considered * 6 && (turns <= 3 || speakers.len() < turns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers() {
        assert_eq!(
            parse_turn_header("Project Manager  0:01"),
            Some(("Project Manager", 1.0))
        );
        assert_eq!(
            parse_turn_header("Speaker 1  12:34"),
            Some(("Speaker 1", 754.0))
        );
        assert_eq!(parse_turn_header("Ann  1:02:03 "), Some(("Ann", 3723.0)));
        assert_eq!(parse_turn_header("Ann  125:09"), Some(("Ann", 7509.0)));
        assert_eq!(
            parse_turn_header("Mr. Pat Kelly (Calgary Rocky Ridge, CPC)  1:02"),
            Some(("Mr. Pat Kelly (Calgary Rocky Ridge, CPC)", 62.0))
        );
        assert_eq!(
            parse_turn_header("John Smith Jr.  0:10"),
            Some(("John Smith Jr.", 10.0))
        );
        assert_eq!(parse_turn_header("Ann  1:2"), None);
        assert_eq!(parse_turn_header("Ann  1:75"), None);
        assert_eq!(parse_turn_header("0:01"), None);
        assert_eq!(parse_turn_header("We adjourned.  0:01"), None);
        assert_eq!(parse_turn_header("Note, see:  0:01"), None);
        assert_eq!(parse_turn_header("Ann 1:02:03:04"), None);
        assert_eq!(parse_turn_header("Tue, Mar 14, 2023 10:02AM • 52:07"), None);
    }

    #[test]
    fn turns_keep_speaker_time_and_text() {
        let src = "Weekly sync\n\nAnn Lee  0:00\nHello all.\nSecond line.\n\nBob  0:07\nHi.\n\nMore from Bob.\n\nAnn Lee  0:15\n\nBob  0:20\nBye.\n";
        let doc = TranscriptReader.read(src.as_bytes()).unwrap();
        let got: Vec<_> = doc
            .blocks
            .iter()
            .map(|b| match &b.kind {
                BlockKind::Turn {
                    speaker,
                    start_seconds,
                } => {
                    format!("{speaker}@{start_seconds}:{}", doc.block_text(b))
                }
                _ => format!("P:{}", doc.block_text(b)),
            })
            .collect();
        assert_eq!(
            got,
            vec![
                "P:Weekly sync",
                "Ann Lee@0:Hello all.\nSecond line.",
                "Bob@7:Hi.\n\nMore from Bob.",
                "Ann Lee@15:",
                "Bob@20:Bye.",
            ]
        );
    }

    #[test]
    fn the_preamble_dates_the_transcript() {
        let read = |src: &str| TranscriptReader.read(src.as_bytes()).unwrap();
        // the date line in a paragraph of its own is no turn
        let doc = read(
            "Planning Sync\n\nTue, Mar 14, 2023 10:02AM • 52:07\n\nA  0:00\nhi\n\nB  0:03\nho\n",
        );
        assert_eq!(doc.date_unix_ms, Some(1_678_788_120_000));
        assert!(matches!(doc.blocks[1].kind, BlockKind::Paragraph));
        // a date in a turn is not the meeting's
        let doc = read("Planning Sync\n\nA  0:00\nOn 2023-03-14.\n\nB  0:03\nho\n");
        assert_eq!(doc.date_unix_ms, None);
        assert_eq!(preamble_date("2023-03-14", &[]), None);
    }

    #[test]
    fn shape_detection() {
        assert!(looks_like_transcript("A  0:00\nhi\n\nB  0:03\nho\n"));
        assert!(looks_like_transcript(
            "Title line\n\nA  0:00\nhi\n\nB  0:03\nho\n"
        ));
        // one turn is not enough, going back in time is not a transcript
        assert!(!looks_like_transcript("A  0:00\nhi\n"));
        assert!(!looks_like_transcript("A  0:10\nhi\n\nB  0:03\nho\n"));
        // mostly prose
        assert!(!looks_like_transcript(
            "Intro\n\nmore\n\nA  0:00\nhi\n\nB  0:03\nho\n\nx\n\ny\n\nz\n"
        ));
        // an Otter export's preamble and trailer
        let otter = "Planning Sync\nTue, Mar 12, 2024 10:02AM • 24:31\n\nSUMMARY KEYWORDS\n\n\
            budget, harbor\n\nSPEAKERS\n\nSpeaker 1, Maria Lopez\n\n\
            Speaker 1  0:00\nHello.\n\nMaria Lopez  0:04\nHi.\n\nSpeaker 1  0:09\nSo.\n\n\
            Maria Lopez  0:12\nYes.\n\nTranscribed by https://otter.ai\n";
        assert!(looks_like_transcript(otter));
        // an agenda has the shape, but every item appears once
        assert!(!looks_like_transcript(
            "Registration  9:00\nCoffee.\n\nKeynote  9:30\nTalk.\n\n\
             Workshop A  10:45\nHands-on.\n\nLunch  12:15\nTerrace.\n"
        ));
        // a long preamble is a document that mentions times, not a transcript
        let long_intro = "p\n\n".repeat(MAX_PREAMBLE_PARAGRAPHS + 1);
        assert!(!looks_like_transcript(&format!(
            "{long_intro}A  0:00\nhi\n\nB  0:03\nho\n"
        )));
    }
}
