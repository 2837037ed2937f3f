//! Every format end to end through `kb_parse::parse`: the corpus PDFs and DOCX files, HTML,
//! WebVTT and SRT, and every kind of failure with its typed reason.

#![allow(clippy::unwrap_used)]

mod fixtures;

use fixtures::*;
use kb_parse::{parse, ParseErrorKind, ParseOptions};
use kb_proto::{ParsedDocument, SourceRef};

// the shared corpus beside the repository
const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus");

fn src(path: &str) -> SourceRef {
    SourceRef {
        source_id: format!("t-{path}"),
        version: 1,
        path: path.into(),
        ..SourceRef::default()
    }
}

fn corpus(file: &str) -> Vec<u8> {
    std::fs::read(format!("{CORPUS}/{file}")).unwrap()
}

fn ok(path: &str, bytes: &[u8]) -> ParsedDocument {
    parse(&src(path), bytes, &ParseOptions::default()).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn fails(path: &str, bytes: &[u8], opts: &ParseOptions) -> (ParseErrorKind, String) {
    match parse(&src(path), bytes, opts) {
        Ok(doc) => panic!("{path} parsed into {} chunks", doc.chunks.len()),
        Err(e) => (e.kind, e.message),
    }
}

/// All chunk texts, one string (chunks overlap a little; order is kept).
fn all_text(doc: &ParsedDocument) -> String {
    doc.chunks
        .iter()
        .map(|c| c.text.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whitespace-insensitive containment.
fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn corpus_pdfs_give_their_text() {
    for (file, phrase) in [
        (
            "002-trivial-libre-office-writer.pdf",
            "Stet clita kasd gubergren, no sea takimata sanctus est Lorem ipsum dolor sit amet.",
        ),
        (
            "minimal-document.pdf",
            "At vero eos et accusam et justo duo dolores et ea rebum.",
        ),
        (
            "pdflatex-4-pages.pdf",
            "A blind text like this gives you information about the selected font",
        ),
        // Google Docs draws glyph by glyph and its fonts lack some widths: words stay whole
        (
            "google-doc-document.pdf",
            "There should be one-- and preferably only one --obvious way to do it.",
        ),
    ] {
        let doc = ok(file, &corpus(&format!("pdf/{file}")));
        assert_eq!(doc.parser, "pdf/1");
        let text = squash(&all_text(&doc));
        assert!(text.contains(phrase), "{file}: {text}");
    }
    let doc = ok("g.pdf", &corpus("pdf/google-doc-document.pdf"));
    assert_eq!(doc.title, "Example document");
    // its table: one row per line, cells in order
    assert!(
        all_text(&doc).contains("Capital | Jakarta | Berlin | Vienna | Paris | Vatican City"),
        "{}",
        all_text(&doc)
    );
}

#[test]
fn pdfs_locked_only_by_an_owner_password_open() {
    // made from corpus files with qpdf: an empty user password, an owner password that
    // restricts printing and copying (AES-256, and RC4-128 as older writers use)
    for (file, phrase) in [
        ("owner-password-only.pdf", "At vero eos et accusam"),
        ("owner-password-rc4.pdf", "Stet clita kasd gubergren"),
    ] {
        let bytes =
            std::fs::read(format!("{}/tests/data/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let doc = ok(file, &bytes);
        assert!(squash(&all_text(&doc)).contains(phrase), "{file}");
    }
}

#[test]
fn multicolumn_pdf_reads_each_column_whole() {
    let doc = ok("m.pdf", &corpus("pdf/multicolumn.pdf"));
    assert_eq!(doc.title, "Two-Column Document with Lorem Ipsum");
    let text = squash(&all_text(&doc));
    // sentences running over several lines of the left column, and of the right one, are
    // whole: lines of the other column are not interleaved (hyphenation is undone too)
    for phrase in [
        "Lorem ipsum dolor sit amet, consectetuer adipiscing elit. Ut purus elit, vestibulum ut, placerat ac, adipiscing vitae, felis. Curabitur dictum gravida mauris.",
        "Vivamus viverra fermentum felis. Donec nonummy pellentesque ante. Phasellus adipiscing semper elit. Proin fermentum massa ac quam.",
    ] {
        assert!(text.contains(phrase), "{phrase}\n---\n{text}");
    }
    let at = |p: &str| text.find(p).unwrap_or_else(|| panic!("{p}"));
    assert!(at("This is a sample document") < at("Nam dui ligula"));
    assert!(at("Nam dui ligula") < at("Quisque ullamcorper placerat"));
    // the table on page 3, row by row
    assert!(
        text.contains("Austria | 8.9 | 83,879 | Vienna | German"),
        "{text}"
    );
    assert!(doc.chunks.iter().any(|c| c.section.contains("Abstract")));
}

#[test]
fn arabic_pdf_text_is_in_logical_order() {
    let doc = ok("habibi.pdf", &corpus("pdf/habibi.pdf"));
    let text = all_text(&doc);
    assert!(text.contains("حَبيبي"), "{text}");
    assert!(text.contains("habibi"), "{text}");
    assert!(
        text.chars()
            .filter(|c| ('\u{0600}'..='\u{06FF}').contains(c))
            .count()
            >= 10
    );
}

#[test]
fn columns_drawn_row_by_row_are_not_interleaved() {
    // a generator that writes the left and right line of each row one after the other
    let mut content = String::from("BT /F1 16 Tf 150 740 Td (A Report In Two Columns) Tj ET\n");
    let mut left = Vec::new();
    let mut right = Vec::new();
    for i in 0..12 {
        let l = format!("left column line {i} keeps telling its own story here");
        let r = format!("right column line {i} has another story going on");
        let y = 700 - i * 14;
        content.push_str(&format!(
            "BT /F1 10 Tf 50 {y} Td ({}) Tj ET\nBT /F1 10 Tf 320 {y} Td ({}) Tj ET\n",
            lit(&l),
            lit(&r)
        ));
        left.push(l);
        right.push(r);
    }
    let bytes = one_page_pdf(stream("", content.as_bytes()), "", &[]);
    let doc = ok("cols.pdf", &bytes);
    let text = squash(&all_text(&doc));
    assert!(text.contains(&left.join(" ")), "{text}");
    assert!(text.contains(&right.join(" ")), "{text}");
    assert!(text.find("left column line 11").unwrap() < text.find("right column line 0").unwrap());
}

#[test]
fn pdf_failures_are_typed() {
    let opts = ParseOptions::default();
    let (kind, msg) = fails(
        "p.pdf",
        &corpus("pdf/libreoffice-writer-password.pdf"),
        &opts,
    );
    assert_eq!(kind, ParseErrorKind::Encrypted, "{msg}");
    assert!(msg.contains("encrypted"), "{msg}");

    let whole = corpus("pdf/multicolumn.pdf");
    let (kind, msg) = fails("cut.pdf", &whole[..whole.len() / 2], &opts);
    assert_eq!(kind, ParseErrorKind::Corrupt, "{msg}");

    // a sound file (reportlab, a standard non-embedded Chinese font) in a CMap the PDF
    // interpreter lacks: unsupported, and saying which, rather than "corrupt"
    let cjk = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/cjk-standard-font.pdf"
    ))
    .unwrap();
    let (kind, msg) = fails("cjk.pdf", &cjk, &opts);
    assert_eq!(kind, ParseErrorKind::UnsupportedFormat, "{msg}");
    assert!(msg.contains("UniGB-UCS2-H"), "{msg}");

    let few_pages = ParseOptions {
        max_pages: 2,
        ..ParseOptions::default()
    };
    let (kind, msg) = fails("m.pdf", &whole, &few_pages);
    assert_eq!(kind, ParseErrorKind::TooLarge, "{msg}");
    assert!(msg.contains("2 pages"), "{msg}");

    // a content stream of 8 MiB of spaces, deflated ~1000:1
    let spaces = vec![b' '; 8 * 1024 * 1024];
    let bomb = one_page_pdf(stream("/Filter /FlateDecode", &deflate(&spaces)), "", &[]);
    let (kind, msg) = fails("bomb.pdf", &bomb, &opts);
    assert_eq!(kind, ParseErrorKind::DecompressionBomb, "{msg}");
    let small = ParseOptions {
        max_inflated_bytes: 1000,
        ..ParseOptions::default()
    };
    let text = stream(
        "/Filter /FlateDecode",
        &deflate(
            b"BT /F1 12 Tf 72 700 Td (Hello there, a normal page of text.) Tj ET\n"
                .repeat(40)
                .as_slice(),
        ),
    );
    let page = one_page_pdf(text, "", &[]);
    assert!(parse(&src("ok.pdf"), &page, &opts).is_ok());
    assert_eq!(
        fails("b.pdf", &page, &small).0,
        ParseErrorKind::DecompressionBomb
    );

    // a form that draws itself (through the page's resources it inherits): no stack overflow
    let looping = one_page_pdf(
        stream("", b"BT /F1 12 Tf 72 700 Td (Hello) Tj ET /X1 Do"),
        "/XObject << /X1 6 0 R >>",
        &[stream(
            "/Type /XObject /Subtype /Form /BBox [0 0 612 792]",
            b"/X1 Do",
        )],
    );
    let (kind, msg) = fails("loop.pdf", &looping, &opts);
    assert_eq!(kind, ParseErrorKind::Corrupt, "{msg}");
    assert!(msg.contains("form XObject"), "{msg}");

    // pages without any text (a scan)
    let blank = one_page_pdf(stream("", b"0 0 m 100 100 l S"), "", &[]);
    let (kind, msg) = fails("scan.pdf", &blank, &opts);
    assert_eq!(kind, ParseErrorKind::Empty, "{msg}");
    assert!(msg.contains("PDF"), "{msg}");

    assert_eq!(
        fails("x.pdf", b"%PDF-1.7\n%%EOF", &opts).0,
        ParseErrorKind::Corrupt
    );
}

#[test]
fn corpus_docx_paragraphs_headings_headers_and_footers() {
    let doc = ok("h.docx", &corpus("docx/hdr-header-footer.docx"));
    assert_eq!(doc.parser, "docx/1");
    let text = all_text(&doc);
    for part in [
        "Header for section-1",
        "section with header",
        "section without header of its own.",
        "Footer for section 1",
    ] {
        assert!(text.contains(part), "{part}: {text}");
    }
    // headers before the body, footers after it
    assert!(text.find("Header for").unwrap() < text.find("section with header").unwrap());
    assert!(text.find("Footer for").unwrap() > text.find("own.").unwrap());

    let doc = ok("p.docx", &corpus("docx/par-known-paragraphs.docx"));
    assert_eq!(doc.title, "Heading Paragraph");
    assert!(doc
        .chunks
        .iter()
        .any(|c| c.section == "Heading Paragraph" && c.text.contains("Normal paragraph")));

    // images only, or empty tables only: no text is a clear failure
    for file in ["having-images.docx", "tbl-having-tables.docx"] {
        let (kind, msg) = fails(
            file,
            &corpus(&format!("docx/{file}")),
            &ParseOptions::default(),
        );
        assert_eq!(kind, ParseErrorKind::Empty, "{file}: {msg}");
        assert!(msg.contains("DOCX"), "{msg}");
    }
}

/// The parts of a page header saying `text`: the header part and the relationship to it.
fn page_header(text: &str) -> [(&'static str, Vec<u8>); 2] {
    let header = format!(r#"<w:hdr xmlns:w="{W_NS}">{}</w:hdr>"#, p(text));
    let rels = br#"<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="h" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/header" Target="header1.xml"/></Relationships>"#;
    [
        ("word/header1.xml", header.into_bytes()),
        ("word/_rels/document.xml.rels", rels.to_vec()),
    ]
}

#[test]
fn docx_tables_lists_and_styles() {
    let styles = format!(
        r#"<w:styles xmlns:w="{W_NS}"><w:style w:type="paragraph" w:styleId="Titre1"><w:name w:val="heading 1"/></w:style></w:styles>"#
    );
    let header = page_header("ACME confidential");
    let body = format!(
        "<w:p><w:pPr><w:pStyle w:val=\"Titre1\"/></w:pPr><w:r><w:t>Quarterly figures</w:t></w:r></w:p>{}{}<w:p><w:pPr><w:numPr/></w:pPr><w:r><w:t>first point</w:t></w:r></w:p>",
        p("Sales by city:"),
        table(&[&["City", "Sales"], &["Oslo", "1200"], &["Lima", "900"]]),
    );
    let bytes = docx(
        &body,
        &[
            ("word/styles.xml", styles.as_bytes()),
            (header[0].0, &header[0].1),
            (header[1].0, &header[1].1),
        ],
    );
    let doc = ok("figures.docx", &bytes);
    assert_eq!(doc.title, "Quarterly figures");
    let text = all_text(&doc);
    assert!(
        text.contains("City | Sales\nOslo | 1200\nLima | 900"),
        "{text}"
    );
    assert!(text.contains("- first point"), "{text}");
    assert!(text.contains("ACME confidential"), "{text}");
    assert!(doc
        .chunks
        .iter()
        .any(|c| c.section == "Quarterly figures" && c.text.contains("Oslo | 1200")));
    // the same bytes give the same chunk ids
    assert_eq!(ok("figures.docx", &bytes), doc);
}

#[test]
fn docx_transcripts_are_recognized_by_content() {
    let body = [
        p("Team sync"),
        bold("Ann Lee  0:00"),
        p("Welcome everyone, let us look at the budget."),
        bold("Bob Stone  0:12"),
        p("The budget for Oslo is ready."),
        p("I sent it yesterday."),
        bold("Ann Lee  1:05"),
        p("Great, thanks Bob."),
    ]
    .concat();
    let doc = ok("notes.docx", &docx(&body, &[]));
    assert_eq!(doc.parser, "transcript-docx/1");
    let speakers: Vec<&str> = doc
        .chunks
        .iter()
        .flat_map(|c| c.speakers.iter().map(String::as_str))
        .collect();
    assert_eq!(speakers, vec!["Ann Lee", "Bob Stone"]);
    assert_eq!(doc.chunks[0].start_seconds, 0.0);
    assert!(doc.chunks.last().unwrap().end_seconds > 65.0);
    assert!(squash(&all_text(&doc))
        .contains("Bob Stone: The budget for Oslo is ready. I sent it yesterday."));

    // a table and a page header beside the turns are kept too
    let with_table = [
        body.clone(),
        table(&[&["Action", "Owner"], &["Repair the pier", "Bob"]]),
    ]
    .concat();
    let header = page_header("Board minutes");
    let parts: Vec<(&str, &[u8])> = header.iter().map(|(n, b)| (*n, b.as_slice())).collect();
    let doc = ok("minutes.docx", &docx(&with_table, &parts));
    assert_eq!(doc.parser, "transcript-docx/1");
    let text = all_text(&doc);
    assert!(
        text.contains("Action | Owner\nRepair the pier | Bob"),
        "{text}"
    );
    assert!(text.contains("Board minutes"), "{text}");

    // the same lines without the transcript layout stay a document
    let body = [
        p("Ann Lee  0:00"),
        p("Bob  0:12"),
        p("Plain notes follow."),
        p("More."),
    ]
    .concat();
    assert_eq!(ok("x.docx", &docx(&body, &[])).parser, "docx/1");
}

#[test]
fn docx_failures_are_typed() {
    let opts = ParseOptions::default();
    let whole = corpus("docx/test.docx");
    let (kind, msg) = fails("cut.docx", &whole[..whole.len() / 2], &opts);
    assert_eq!(kind, ParseErrorKind::Corrupt, "{msg}");
    assert!(msg.contains("truncated"), "{msg}");

    // a paragraph of 16 MiB of spaces deflates ~1000:1: a bomb by ratio
    let huge = p(&" ".repeat(16 * 1024 * 1024));
    let (kind, msg) = fails("bomb.docx", &docx(&huge, &[]), &opts);
    assert_eq!(kind, ParseErrorKind::DecompressionBomb, "{msg}");

    // a part that claims to inflate to 4 GB
    let mut lying = docx(&p("small"), &[]);
    lie_about_size(&mut lying, "word/document.xml", u32::MAX - 1);
    let (kind, msg) = fails("lying.docx", &lying, &opts);
    assert_eq!(kind, ParseErrorKind::DecompressionBomb, "{msg}");
    assert!(msg.contains("declares"), "{msg}");

    // under a small budget, an ordinary document is too much
    let small = ParseOptions {
        max_inflated_bytes: 100,
        ..ParseOptions::default()
    };
    assert_eq!(
        fails("t.docx", &whole, &small).0,
        ParseErrorKind::DecompressionBomb
    );

    // a zip that is no Word document, and broken XML
    assert_eq!(
        fails("a.docx", &zip_of(&[("other.txt", b"hi")]), &opts).0,
        ParseErrorKind::Corrupt
    );
    let broken = zip_of(&[("word/document.xml", b"<w:document><w:body><w:p>")]);
    let (kind, msg) = fails("b.docx", &broken, &opts);
    assert_eq!(kind, ParseErrorKind::Corrupt, "{msg}");
    // a zip archive of anything else is refused as such
    let (kind, msg) = fails("a.zip", &zip_of(&[("x/y.txt", b"hi")]), &opts);
    assert_eq!(kind, ParseErrorKind::UnsupportedFormat, "{msg}");
    assert!(msg.contains("zip"), "{msg}");
}

#[test]
fn html_pages_give_structured_chunks() {
    let page = r#"<!DOCTYPE html>
<html><head><title>Field notes</title><script>alert("no")</script><style>.x{}</style></head>
<body><nav><a href="/">Home</a></nav>
<h1>Field notes</h1><p>We met the <b>Oslo</b> team on Monday.</p>
<h2>Numbers</h2><table><tr><th>Site</th><th>Visitors</th></tr><tr><td>Oslo</td><td>120</td></tr></table>
<h2>Next steps</h2><ul><li>Book the venue</li><li>Send the report</li></ul>
<script>document.write("hidden")</script></body></html>"#;
    let doc = ok("notes.html", page.as_bytes());
    assert_eq!(doc.parser, "html/1");
    assert_eq!(doc.title, "Field notes");
    let text = all_text(&doc);
    assert!(
        !text.contains("alert") && !text.contains("hidden") && !text.contains(".x{"),
        "{text}"
    );
    assert!(doc
        .chunks
        .iter()
        .any(|c| c.section == "Field notes > Numbers"
            && c.text.contains("Site | Visitors\nOslo | 120")));
    assert!(doc
        .chunks
        .iter()
        .any(|c| c.section == "Field notes > Next steps" && c.text.contains("- Book the venue")));
    // detected by content without a name
    assert_eq!(ok("download", page.as_bytes()).parser, "html/1");
}

#[test]
fn subtitles_become_turns_with_speakers_and_times() {
    let vtt = "WEBVTT\n\n1\n00:00:01.000 --> 00:00:04.000\n<v Ann Lee>Welcome to the review.\n\n\
               2\n00:00:04.000 --> 00:00:09.500\n<v Ann Lee>Today we look at Oslo.\n\n\
               3\n00:01:10.000 --> 00:01:14.000\n<v Bob>Thanks Ann, the numbers are in.\n";
    let doc = ok("talk.vtt", vtt.as_bytes());
    assert_eq!(doc.parser, "webvtt/1");
    assert_eq!(doc.chunks[0].speakers, vec!["Ann Lee", "Bob"]);
    assert_eq!(doc.chunks[0].start_seconds, 1.0);
    assert!(doc.chunks[0].end_seconds > 70.0);
    assert!(doc.chunks[0]
        .text
        .contains("Ann Lee: Welcome to the review. Today we look at Oslo.\nBob: Thanks Ann"));
    assert!(doc
        .entities
        .iter()
        .any(|e| e.entity_type == "SPEAKER" && e.canonical_name == "bob"));

    let srt = "1\n00:00:02,000 --> 00:00:05,000\nCHAIR: The meeting is open.\n\n\
               2\n00:00:05,500 --> 00:00:08,000\nFirst item is the budget.\n\n\
               3\n00:00:09,000 --> 00:00:12,000\nMs. Rao: I have the figures.\n";
    let doc = ok("meeting.srt", srt.as_bytes());
    assert_eq!(doc.parser, "srt/1");
    assert_eq!(doc.chunks[0].speakers, vec!["CHAIR", "Ms. Rao"]);
    assert_eq!(doc.chunks[0].start_seconds, 2.0);
    assert!(doc.chunks[0]
        .text
        .contains("CHAIR: The meeting is open. First item is the budget."));

    // cues without speakers keep their times and have no speaker
    let plain = "WEBVTT\n\n00:00:03.000 --> 00:00:04.000\nJust words.\n\n00:00:05.000 --> 00:00:06.000\nMore words.\n";
    let doc = ok("p.vtt", plain.as_bytes());
    assert!(doc.chunks[0].speakers.is_empty());
    assert_eq!(doc.chunks[0].start_seconds, 3.0);
    assert!(doc.entities.iter().all(|e| e.entity_type != "SPEAKER"));
}

#[test]
fn generic_failures_are_typed() {
    let opts = ParseOptions::default();
    assert_eq!(fails("a.pdf", b"", &opts).0, ParseErrorKind::Empty);
    assert_eq!(
        fails("a.vtt", b"WEBVTT\n\nNOTE nothing\n", &opts).0,
        ParseErrorKind::Empty
    );
    let (kind, msg) = fails("a.bin", &[0u8, 1, 2, 3, 0, 255, 7, 0].repeat(100), &opts);
    assert_eq!(kind, ParseErrorKind::UnsupportedFormat, "{msg}");
    assert!(msg.contains("binary"), "{msg}");
    let tiny = ParseOptions {
        max_bytes: 1000,
        ..ParseOptions::default()
    };
    let (kind, msg) = fails("m.pdf", &corpus("pdf/multicolumn.pdf"), &tiny);
    assert_eq!(
        (kind, kind.as_str()),
        (ParseErrorKind::TooLarge, "too_large")
    );
    assert!(msg.contains("1000"), "{msg}");
    // a password-protected Office file is an OLE container with an encrypted package
    let mut ole = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1".to_vec();
    ole.extend(vec![0u8; 500]);
    ole.extend("EncryptedPackage".encode_utf16().flat_map(u16::to_le_bytes));
    assert_eq!(fails("s.docx", &ole, &opts).0, ParseErrorKind::Encrypted);
}

#[test]
fn a_parse_past_its_time_budget_stops_with_timeout() {
    let bytes = corpus("transcripts/covid_2.txt");
    let quick = ParseOptions {
        timeout_ms: 1,
        ..ParseOptions::default()
    };
    let (kind, msg) = fails("covid.txt", &bytes, &quick);
    assert_eq!((kind, kind.as_str()), (ParseErrorKind::Timeout, "timeout"));
    assert!(msg.contains("longer than"), "{msg}");
    let (kind, _) = fails("m.pdf", &corpus("pdf/multicolumn.pdf"), &quick);
    assert_eq!(kind, ParseErrorKind::Timeout);
}
