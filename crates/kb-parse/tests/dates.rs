//! `ParsedDocument.document_unix_ms` end to end through `kb_parse::parse`: a transcript's
//! preamble, DOCX core properties, PDF info, HTML meta tags, front matter; 0 when the
//! document does not say.

#![allow(clippy::unwrap_used)]

mod fixtures;

use fixtures::*;
use kb_parse::{parse, ParseOptions};
use kb_proto::{ParsedDocument, SourceRef};
use proptest::prelude::*;

// the shared corpus beside the repository
const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus");

/// 2023-03-14T10:02:00Z.
const MAR_14_2023_10_02: i64 = 1_678_788_120_000;
/// 2023-03-14T00:00:00Z.
const MAR_14_2023: i64 = 1_678_752_000_000;

fn ok(path: &str, bytes: &[u8]) -> ParsedDocument {
    let source = SourceRef {
        source_id: format!("t-{path}"),
        version: 1,
        path: path.into(),
        ..SourceRef::default()
    };
    parse(&source, bytes, &ParseOptions::default()).unwrap_or_else(|e| panic!("{path}: {e}"))
}

const TURNS: &str = "Speaker 1  0:00\nWelcome to the planning sync, let us look at the budget.\n\n\
     Maria Lopez  0:04\nThe harbor budget is ready.\n\n\
     Speaker 1  0:09\nGreat, send it round.\n\n\
     Maria Lopez  0:12\nWill do.\n\nTranscribed by https://otter.ai\n";

fn core_xml(created: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><dc:title>Notes</dc:title><dc:creator>Ann</dc:creator><dcterms:created xsi:type="dcterms:W3CDTF">{created}</dcterms:created><dcterms:modified xsi:type="dcterms:W3CDTF">2024-01-01T00:00:00Z</dcterms:modified></cp:coreProperties>"#
    )
}

#[test]
fn transcript_preambles_date_the_meeting() {
    let otter = format!(
        "Planning Sync\nTue, Mar 14, 2023 10:02AM • 52:07\n\nSUMMARY KEYWORDS\n\nbudget, harbor\n\n\
         SPEAKERS\n\nSpeaker 1, Maria Lopez\n\n{TURNS}"
    );
    let doc = ok("sync.txt", otter.as_bytes());
    assert_eq!(doc.parser, "transcript/1");
    assert_eq!(doc.document_unix_ms, MAR_14_2023_10_02);

    for (preamble, want) in [
        ("Planning Sync\nMarch 14, 2023", MAR_14_2023),
        ("Planning Sync\n2023-03-14", MAR_14_2023),
        // no year anywhere: no date
        ("Planning Sync\nMon, 5/17 3:04PM • 45:12", 0),
        // the year in the meeting's name completes it
        (
            "Planning Sync 2021\nMon, 5/17 3:04PM • 45:12",
            1_621_263_840_000,
        ),
        // no preamble date, and a date in a turn does not count
        ("Planning Sync", 0),
    ] {
        let text = format!("{preamble}\n\n{TURNS}Speaker 1  0:20\nSee you on March 21, 2023.\n");
        let doc = ok("sync.txt", text.as_bytes());
        assert_eq!(doc.parser, "transcript/1", "{preamble}");
        assert_eq!(doc.document_unix_ms, want, "{preamble}");
    }
    // a transcript that opens with its first turn has no date
    assert_eq!(ok("t.txt", TURNS.as_bytes()).document_unix_ms, 0);
}

#[test]
fn docx_transcript_preamble_wins_over_core_properties() {
    let body = [
        p("Planning Sync"),
        p("Tue, Mar 14, 2023 10:02AM • 52:07"),
        bold("Ann Lee  0:00"),
        p("Welcome everyone, let us look at the budget."),
        bold("Bob Stone  0:12"),
        p("The budget for Oslo is ready."),
        bold("Ann Lee  1:05"),
        p("Great, thanks Bob."),
    ]
    .concat();
    let core = core_xml("2024-06-01T08:00:00Z");
    let parts: [(&str, &[u8]); 1] = [("docProps/core.xml", core.as_bytes())];
    let doc = ok("sync.docx", &docx(&body, &parts));
    assert_eq!(doc.parser, "transcript-docx/1");
    assert_eq!(doc.document_unix_ms, MAR_14_2023_10_02);

    // without a preamble date the core properties date it
    let body = [
        bold("Ann Lee  0:00"),
        p("Welcome everyone."),
        bold("Bob Stone  0:12"),
        p("The budget for Oslo is ready."),
    ]
    .concat();
    let doc = ok("sync.docx", &docx(&body, &parts));
    assert_eq!(doc.parser, "transcript-docx/1");
    assert_eq!(doc.document_unix_ms, 1_717_228_800_000);
}

#[test]
fn docx_core_properties_date_the_document() {
    let core = core_xml("2023-03-14T11:02:00+01:00");
    let doc = ok(
        "notes.docx",
        &docx(
            &p("Harbor notes."),
            &[("docProps/core.xml", core.as_bytes())],
        ),
    );
    assert_eq!(doc.parser, "docx/1");
    assert_eq!(doc.document_unix_ms, MAR_14_2023_10_02);

    // no core properties, an unreadable date, a broken part, python-docx's template stamp:
    // no date, and the document still parses
    let no_date = ok("a.docx", &docx(&p("Harbor notes."), &[]));
    assert_eq!(no_date.document_unix_ms, 0);
    for core in [
        core_xml("sometime in spring"),
        core_xml("2023-02-30T10:00:00Z"),
        core_xml("2013-12-23T23:15:00Z"),
        "<cp:coreProperties><dcterms:created>2023-03-14".to_owned(),
    ] {
        let doc = ok(
            "b.docx",
            &docx(
                &p("Harbor notes."),
                &[("docProps/core.xml", core.as_bytes())],
            ),
        );
        assert_eq!(doc.document_unix_ms, 0, "{core}");
        assert!(doc.chunks[0].text.contains("Harbor notes."));
    }

    // a real Word file
    let real = std::fs::read(format!("{CORPUS}/docx/test.docx")).unwrap();
    assert_eq!(ok("test.docx", &real).document_unix_ms, 1_387_104_000_000);
}

#[test]
fn pdf_creation_date_dates_the_document() {
    let page = || stream("", b"BT /F1 12 Tf 72 700 Td (Harbor notes) Tj ET");
    let dated = |info: &str| {
        one_page_pdf_with_trailer(page(), "", &[info.as_bytes().to_vec()], "/Info 6 0 R ")
    };
    let doc = ok(
        "a.pdf",
        &dated("<< /Title (Notes) /CreationDate (D:20230314110200+01'00') >>"),
    );
    assert_eq!(doc.parser, "pdf/1");
    assert_eq!(doc.document_unix_ms, MAR_14_2023_10_02);
    // UTF-16 text string
    let utf16: String = "D:20230314100200Z"
        .encode_utf16()
        .flat_map(u16::to_be_bytes)
        .map(|b| format!("{b:02X}"))
        .collect();
    let doc = ok(
        "b.pdf",
        &dated(&format!("<< /CreationDate <FEFF{utf16}> >>")),
    );
    assert_eq!(doc.document_unix_ms, MAR_14_2023_10_02);
    // garbage or no date, no Info at all
    for info in [
        "<< /CreationDate (yesterday) >>",
        "<< /CreationDate 42 >>",
        "<< /Title (x) >>",
        "(not a dictionary)",
    ] {
        assert_eq!(ok("c.pdf", &dated(info)).document_unix_ms, 0, "{info}");
    }
    assert_eq!(
        ok("d.pdf", &one_page_pdf(page(), "", &[])).document_unix_ms,
        0
    );

    // a real LibreOffice PDF: D:20220403193102+02'00'
    let real = std::fs::read(format!("{CORPUS}/pdf/002-trivial-libre-office-writer.pdf")).unwrap();
    assert_eq!(ok("t.pdf", &real).document_unix_ms, 1_649_007_062_000);
}

#[test]
fn html_meta_tags_date_the_page() {
    let page = |head: &str| {
        format!(
            "<!DOCTYPE html><html><head><title>Notes</title>{head}</head>\
             <body><h1>Notes</h1><p>We met the Oslo team on Tuesday, May 2, 2024.</p></body></html>"
        )
    };
    for (head, want) in [
        (
            r#"<meta property="article:published_time" content="2023-03-14T10:02:00Z">"#,
            MAR_14_2023_10_02,
        ),
        (r#"<meta name="date" content="2023-03-14">"#, MAR_14_2023),
        (
            r#"<meta name="dcterms.date" content="2023-03-14">"#,
            MAR_14_2023,
        ),
        (
            r#"<meta name="DC.date" content="March 14, 2023">"#,
            MAR_14_2023,
        ),
        // the most telling tag wins, a tag that is no date is passed over
        (
            r#"<meta name="date" content="2020-01-01"><meta property="article:published_time" content="2023-03-14T11:02:00+01:00">"#,
            MAR_14_2023_10_02,
        ),
        (
            r#"<meta property="article:published_time" content="soon"><meta name="date" content="2023-03-14">"#,
            MAR_14_2023,
        ),
        // other meta tags, and dates in the text, do not date the page
        (r#"<meta name="description" content="2023-03-14">"#, 0),
        ("", 0),
    ] {
        let doc = ok("notes.html", page(head).as_bytes());
        assert_eq!(doc.parser, "html/1");
        assert_eq!(doc.document_unix_ms, want, "{head}");
    }
}

#[test]
fn front_matter_dates_markdown_and_text() {
    let md = "---\ntitle: Harbor Handbook\ndate: 2023-03-14T10:02:00Z\n---\n\n# Intro\n\nText.\n";
    let doc = ok("handbook.md", md.as_bytes());
    assert_eq!(doc.parser, "markdown/1");
    assert_eq!(doc.title, "Harbor Handbook");
    assert_eq!(doc.document_unix_ms, MAR_14_2023_10_02);

    let toml = "+++\ntitle = 'Pier'\ndate = \"2023-03-14\"\n+++\nText.\n";
    assert_eq!(ok("pier.md", toml.as_bytes()).document_unix_ms, MAR_14_2023);
    // Jekyll's form, and `created` when there is no `date`
    let jekyll = "---\ndate: 2023-03-14 11:02:00 +0100\n---\nText.\n";
    assert_eq!(
        ok("j.md", jekyll.as_bytes()).document_unix_ms,
        MAR_14_2023_10_02
    );
    let created = "---\ncreated: March 14, 2023\nupdated: 2024-01-01\n---\nText.\n";
    assert_eq!(ok("c.md", created.as_bytes()).document_unix_ms, MAR_14_2023);
    // a front matter date that is no date, or none at all
    let bad = "---\ndate: someday\n---\nText on 2023-03-14.\n";
    assert_eq!(ok("b.md", bad.as_bytes()).document_unix_ms, 0);
    assert_eq!(
        ok("n.md", b"# Notes\n\nMet on 2023-03-14.\n").document_unix_ms,
        0
    );

    // plain text with front matter is dated too (its front matter stays text)
    let txt = ok("notes.txt", md.as_bytes());
    assert_eq!(txt.parser, "text/1");
    assert_eq!(txt.document_unix_ms, MAR_14_2023_10_02);
}

#[test]
fn documents_that_do_not_say_have_no_date() {
    let doc = ok(
        "notes.txt",
        b"Harbor notes\n\nWe met on March 14, 2023 and agreed on the budget.\n",
    );
    assert_eq!(doc.parser, "text/1");
    assert_eq!(doc.document_unix_ms, 0);
    let vtt = "WEBVTT\n\n1\n00:00:01.000 --> 00:00:04.000\n<v Ann>Meeting of March 14, 2023.\n";
    assert_eq!(ok("talk.vtt", vtt.as_bytes()).document_unix_ms, 0);
    let srt = "1\n00:00:01,000 --> 00:00:04,000\nMeeting of March 14, 2023.\n";
    assert_eq!(ok("talk.srt", srt.as_bytes()).document_unix_ms, 0);
}

/// 1900-01-01T00:00:00Z and 2201-01-01T00:00:00Z: every date given is in between.
const EARLIEST: i64 = -2_208_988_800_000;
const AFTER_LATEST: i64 = 7_289_654_400_000;

fn in_range(ms: i64) -> bool {
    ms == 0 || (EARLIEST..AFTER_LATEST).contains(&ms)
}

/// Date-like text: digits, separators, zone and month letters, some non-ASCII.
fn date_like() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            "[0-9]{1,4}",
            "[-/.:,+' TZD]",
            Just("Mar".to_string()),
            Just("March".to_string()),
            Just("PM".to_string()),
            Just("UTC".to_string()),
            Just("•".to_string()),
            Just("é".to_string()),
        ],
        0..16,
    )
    .prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn any_stated_date_gives_a_date_in_range_or_none(value in date_like()) {
        let md = format!("---\ndate: {value}\n---\nText.\n");
        prop_assert!(in_range(ok("a.md", md.as_bytes()).document_unix_ms));
        let html = format!(
            "<html><head><meta name=\"date\" content=\"{value}\"></head><body><p>Text.</p></body></html>"
        );
        prop_assert!(in_range(ok("a.html", html.as_bytes()).document_unix_ms));
        let transcript = format!("Planning Sync\n{value}\n\n{TURNS}");
        prop_assert!(in_range(ok("a.txt", transcript.as_bytes()).document_unix_ms));
        let core = core_xml(&value);
        let bytes = docx(&p("Text."), &[("docProps/core.xml", core.as_bytes())]);
        prop_assert!(in_range(ok("a.docx", &bytes).document_unix_ms));
        let info = format!("<< /CreationDate ({}) >>", lit(&value));
        let pdf = one_page_pdf_with_trailer(
            stream("", b"BT /F1 12 Tf 72 700 Td (Text) Tj ET"),
            "",
            &[info.into_bytes()],
            "/Info 6 0 R ",
        );
        prop_assert!(in_range(ok("a.pdf", &pdf).document_unix_ms));
    }
}
