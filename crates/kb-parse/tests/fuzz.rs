//! Bounded fuzzing of every binary and markup reader: mutated real files (PDF, DOCX), tag
//! soup (HTML), broken cues (WebVTT, SRT), scrambled transcript layouts. Whatever the bytes,
//! a parse ends within its time budget with a document or a typed error, never a panic.
//! Case counts keep each reader to a few seconds.

#![allow(clippy::unwrap_used)]

mod fixtures;

use std::time::{Duration, Instant};

use fixtures::{bold, docx, p};
use kb_parse::{estimate_tokens, parse, ParseErrorKind, ParseOptions};
use kb_proto::SourceRef;
use proptest::prelude::*;

const TYPED: [ParseErrorKind; 8] = [
    ParseErrorKind::Empty,
    ParseErrorKind::TooLarge,
    ParseErrorKind::UnsupportedFormat,
    ParseErrorKind::InvalidEncoding,
    ParseErrorKind::Corrupt,
    ParseErrorKind::Encrypted,
    ParseErrorKind::DecompressionBomb,
    ParseErrorKind::Timeout,
];

/// Parses under a 10 s budget and checks what comes out; returns the parser name.
fn check(path: &str, bytes: &[u8]) -> Option<String> {
    let opts = ParseOptions {
        timeout_ms: 10_000,
        ..ParseOptions::default()
    };
    let source = SourceRef {
        source_id: "fuzz".into(),
        path: path.into(),
        ..SourceRef::default()
    };
    let start = Instant::now();
    let result = parse(&source, bytes, &opts);
    assert!(start.elapsed() < Duration::from_secs(15), "{path}: no hang");
    match result {
        Ok(doc) => {
            assert!(!doc.chunks.is_empty());
            for (i, c) in doc.chunks.iter().enumerate() {
                assert_eq!(c.index as usize, i);
                assert!(c.token_count as usize <= opts.effective_chunk_tokens());
                assert_eq!(c.token_count as usize, estimate_tokens(&c.text));
                assert!(!c.text.trim().is_empty());
                assert!(c.end_seconds >= c.start_seconds);
                assert!((0.0..=1.0).contains(&c.importance_score));
            }
            for m in &doc.mentions {
                assert!(doc.chunks.iter().any(|c| c.chunk_id == m.chunk_id));
            }
            Some(doc.parser)
        }
        Err(e) => {
            assert!(TYPED.contains(&e.kind), "{e:?}");
            assert!(!e.message.is_empty());
            None
        }
    }
}

/// Edits applied to a real file: flip, overwrite, insert, delete, truncate.
#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Truncate(usize),
    /// Copies a slice elsewhere (duplicated objects, tags).
    Copy(usize, usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        4 => (any::<usize>(), 1u8..=255).prop_map(|(at, x)| Edit::Flip(at, x)),
        2 => (any::<usize>(), prop::collection::vec(any::<u8>(), 1..32))
            .prop_map(|(at, b)| Edit::Insert(at, b)),
        2 => (any::<usize>(), 1usize..200).prop_map(|(at, n)| Edit::Delete(at, n)),
        1 => any::<usize>().prop_map(Edit::Truncate),
        1 => (any::<usize>(), 1usize..400, any::<usize>()).prop_map(|(a, n, b)| Edit::Copy(a, n, b)),
    ]
}

fn mutate(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let len = bytes.len().max(1);
        match e {
            Edit::Flip(at, x) => {
                if let Some(b) = bytes.get_mut(at % len) {
                    *b ^= x;
                }
            }
            Edit::Insert(at, b) => {
                let at = at % (bytes.len() + 1);
                bytes.splice(at..at, b.iter().copied());
            }
            Edit::Delete(at, n) => {
                let at = at % len;
                let end = (at + n).min(bytes.len());
                if at < end {
                    bytes.drain(at..end);
                }
            }
            Edit::Truncate(at) => bytes.truncate(at % len),
            Edit::Copy(from, n, to) => {
                let from = from % len;
                let end = (from + n).min(bytes.len());
                let piece: Vec<u8> = bytes.get(from..end).unwrap_or_default().to_vec();
                let to = to % (bytes.len() + 1);
                bytes.splice(to..to, piece);
            }
        }
    }
    bytes
}

// the shared corpus beside the repository
const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus");

fn corpus(file: &str) -> Vec<u8> {
    std::fs::read(format!("{CORPUS}/{file}")).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, max_shrink_iters: 200, ..ProptestConfig::default() })]

    #[test]
    fn mutated_pdfs(seed in 0usize..4, edits in prop::collection::vec(edit(), 1..6)) {
        let file = ["minimal-document.pdf", "habibi.pdf", "002-trivial-libre-office-writer.pdf",
                    "libreoffice-writer-password.pdf"][seed];
        check("x.pdf", &mutate(corpus(&format!("pdf/{file}")), &edits));
    }

    #[test]
    fn mutated_docx_containers(seed in 0usize..3, edits in prop::collection::vec(edit(), 1..6)) {
        let file = ["docx/test.docx", "docx/hdr-header-footer.docx", "docx/par-known-paragraphs.docx"][seed];
        check("x.docx", &mutate(corpus(file), &edits));
    }
}

/// Markup pieces for generated WordprocessingML and HTML.
fn docx_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z ,.]{0,30}".prop_map(|t| p(&t)),
        "[A-Z][a-z]{1,8} [A-Z][a-z]{1,8}".prop_map(|t| bold(&format!("{t}  0:{:02}", t.len() % 60))),
        Just("<w:tbl><w:tr><w:tc>".to_string()),
        Just("</w:tc></w:tr></w:tbl>".to_string()),
        Just("<w:p><w:pPr><w:pStyle w:val=\"Heading1\"/></w:pPr>".to_string()),
        Just("</w:p>".to_string()),
        Just("<w:r><w:t>&amp;&#x41;&unknown;</w:t></w:r>".to_string()),
        Just("<mc:AlternateContent xmlns:mc=\"http://schemas.openxmlformats.org/markup-compatibility/2006\"><mc:Fallback>".to_string()),
        "\\PC{0,20}",
    ]
}

fn html_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z ,.]{0,40}",
        prop::sample::select(vec![
            "<p>",
            "</p>",
            "<h1>",
            "</h2>",
            "<table>",
            "<tr>",
            "<td>",
            "</td>",
            "</table>",
            "<ul><li>",
            "</li>",
            "<pre>",
            "</pre>",
            "<script>",
            "</script>",
            "<style>",
            "<br>",
            "<div hidden>",
            "</div>",
            "<!--",
            "-->",
            "<![CDATA[",
            "&amp;",
            "&#0;",
            "<title>",
            "</title>",
            "<svg><text>",
            "<",
            ">",
            "<th",
            "</",
        ])
        .prop_map(String::from),
        "\\PC{0,20}",
    ]
}

fn cue_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z ,.]{0,40}",
        (0u32..7200, 0u32..1000).prop_map(|(s, ms)| format!(
            "{:02}:{:02}:{:02}.{ms:03} --> 99:00:00.000\n",
            s / 3600,
            s / 60 % 60,
            s % 60
        )),
        (0u32..7200).prop_map(|s| format!("{:02}:{:02},500 --> x\n", s / 60, s % 60)),
        "<v [A-Z][a-z]{0,8}>",
        "[A-Z]{2,8}: ",
        prop::sample::select(vec![
            "\n", "\n\n", "-->", "<i>", "</i>", "<v>", "<", "&lt;", "NOTE ", "1\n"
        ])
        .prop_map(String::from),
        "\\PC{0,20}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, max_shrink_iters: 200, ..ProptestConfig::default() })]

    #[test]
    fn generated_docx_bodies(pieces in prop::collection::vec(docx_piece(), 0..40)) {
        let bytes = docx(&pieces.concat(), &[]);
        if let Some(parser) = check("g.docx", &bytes) {
            prop_assert!(parser == "docx/1" || parser == "transcript-docx/1", "{}", parser);
        }
    }

    #[test]
    fn tag_soup_html(pieces in prop::collection::vec(html_piece(), 0..60)) {
        let page = format!("<!DOCTYPE html>{}", pieces.concat());
        if let Some(parser) = check("page.html", page.as_bytes()) {
            prop_assert_eq!(parser, "html/1");
        }
    }

    #[test]
    fn broken_subtitles(pieces in prop::collection::vec(cue_piece(), 0..60), vtt in any::<bool>()) {
        let body = pieces.concat();
        let (path, text) = if vtt {
            ("s.vtt", format!("WEBVTT\n\n{body}"))
        } else {
            ("s.srt", format!("1\n00:00:01,000 --> 00:00:02,000\n{body}"))
        };
        if let Some(parser) = check(path, text.as_bytes()) {
            prop_assert!(parser == "webvtt/1" || parser == "srt/1", "{}", parser);
        }
    }
}
