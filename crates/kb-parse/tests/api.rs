//! Behaviour of `kb_parse::parse` that the parser service and the stores rely on.

#![allow(clippy::unwrap_used)]

use kb_parse::{ids, parse, ParseErrorKind, ParseOptions};
use kb_proto::{ParsedDocument, SourceRef};

fn src(id: &str, path: &str) -> SourceRef {
    SourceRef {
        source_id: id.to_string(),
        version: 3,
        path: path.to_string(),
        ..SourceRef::default()
    }
}

fn parse_str(path: &str, text: &str) -> ParsedDocument {
    parse(&src("s1", path), text.as_bytes(), &ParseOptions::default()).unwrap()
}

fn err_kind(path: &str, bytes: &[u8]) -> (ParseErrorKind, String) {
    let e = parse(&src("s1", path), bytes, &ParseOptions::default()).unwrap_err();
    (e.kind, e.message)
}

#[test]
fn typed_errors() {
    assert_eq!(err_kind("a.txt", b"").0, ParseErrorKind::Empty);
    assert_eq!(err_kind("a.md", b" \n\t \r\n").0, ParseErrorKind::Empty);
    let opts = ParseOptions {
        max_bytes: 10,
        ..ParseOptions::default()
    };
    let e = parse(&src("s1", "a.txt"), b"eleven bytes", &opts).unwrap_err();
    assert_eq!(
        (e.kind, e.kind.as_str()),
        (ParseErrorKind::TooLarge, "too_large")
    );
    assert_eq!(
        err_kind("x.txt", b"abc\0\x01\x02def").0,
        ParseErrorKind::UnsupportedFormat
    );
    // control bytes and high bytes without NULs: not text in any encoding we accept
    let junk: Vec<u8> = (1u8..32).chain(128..=255).cycle().take(3000).collect();
    assert_eq!(err_kind("x.txt", &junk).0, ParseErrorKind::InvalidEncoding);
}

/// Issue 15, item 9: a document of more chunks than `max_chunks` fails as `too_large` (one
/// huge document must not monopolise the writers); at the limit it goes through.
#[test]
fn more_chunks_than_the_limit_is_too_large() {
    // One paragraph per chunk at the smallest chunk budget.
    let para = "A paragraph long enough to fill a small chunk on its own. ".repeat(6);
    let text = vec![para; 40].join("\n\n");
    let small = |max_chunks| ParseOptions {
        chunk_tokens: 64,
        max_chunks,
        ..ParseOptions::default()
    };
    let doc = parse(&src("s1", "long.txt"), text.as_bytes(), &small(1000)).unwrap();
    let n = doc.chunks.len();
    assert!(n > 10, "{n} chunks");
    assert!(parse(&src("s1", "long.txt"), text.as_bytes(), &small(n)).is_ok());
    let e = parse(&src("s1", "long.txt"), text.as_bytes(), &small(n - 1)).unwrap_err();
    assert_eq!(e.kind, ParseErrorKind::TooLarge);
    assert!(
        e.message
            .contains(&format!("{n} chunks is more than the limit of {}", n - 1)),
        "{}",
        e.message
    );
}

#[test]
fn real_files_are_read_by_content_whatever_their_name() {
    let corpus = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus");
    for (file, parser) in [
        ("pdf/minimal-document.pdf", "pdf/1"),
        ("docx/test.docx", "docx/1"),
        ("transcripts/Bro011.docx", "transcript-docx/1"),
        ("transcripts/TS3010a.txt", "transcript/1"),
    ] {
        let bytes = std::fs::read(format!("{corpus}/{file}")).unwrap();
        // the name lies: content decides
        let doc = parse(&src("s1", "renamed.txt"), &bytes, &ParseOptions::default()).unwrap();
        assert_eq!(doc.parser, parser, "{file}");
    }
    let bytes = std::fs::read(format!("{corpus}/pdf/libreoffice-writer-password.pdf")).unwrap();
    let (kind, message) = err_kind("renamed.txt", &bytes);
    assert_eq!(
        (kind, kind.as_str()),
        (ParseErrorKind::Encrypted, "encrypted")
    );
    assert!(message.contains("password"), "{message}");
    // known binary formats are refused naming what they are
    let (kind, message) = err_kind("photo.txt", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR");
    assert_eq!(kind, ParseErrorKind::UnsupportedFormat);
    assert!(message.contains("image"), "{message}");
}

#[test]
fn encodings_decode_to_the_same_text() {
    let text = "Café meeting notes\n\nZoë met the team in Zürich – “quotes” included.\n";
    let utf8 = parse_str("n.txt", text);
    let mut utf16 = vec![0xFF, 0xFE];
    for u in text.encode_utf16() {
        utf16.extend(u.to_le_bytes());
    }
    let from16 = parse(&src("s1", "n.txt"), &utf16, &ParseOptions::default()).unwrap();
    assert_eq!(from16.chunks, utf8.chunks);
    assert_eq!(from16.title, "Café meeting notes");
    let latin1: Vec<u8> = "Caf\u{e9} au lait, na\u{ef}ve\n"
        .chars()
        .map(|c| c as u8)
        .collect();
    let doc = parse(&src("s1", "n.txt"), &latin1, &ParseOptions::default()).unwrap();
    assert_eq!(doc.chunks[0].text, "Café au lait, naïve");
}

#[test]
fn markdown_sections_title_and_parser() {
    let md = "Intro words before any heading.\n\n# Guide\n\nWelcome text.\n\n## Install\n\nRun `make`.\n\n## Use\n\nCall it.\n";
    let doc = parse_str("guide.md", md);
    assert_eq!(doc.parser, "markdown/1");
    assert_eq!(doc.title, "Guide");
    let sections: Vec<_> = doc.chunks.iter().map(|c| c.section.as_str()).collect();
    assert_eq!(
        sections,
        vec!["", "Guide", "Guide > Install", "Guide > Use"]
    );
    assert!(doc.chunks[2].text.starts_with("Install\n\nRun `make`."));
    for c in &doc.chunks {
        assert_eq!((c.start_seconds, c.end_seconds), (-1.0, -1.0));
        assert!(c.speakers.is_empty());
        // offsets point at the chunk's text in the source
        let span = &md[c.start_offset as usize..c.end_offset as usize];
        assert!(span.ends_with(c.text.lines().last().unwrap()), "{span:?}");
    }
}

#[test]
fn text_title_and_file_name_fallback() {
    let doc = parse_str("dir/notes.txt", "\n\n   Quarterly   review  \nbody\n");
    assert_eq!(
        (doc.title.as_str(), doc.parser.as_str()),
        ("Quarterly review", "text/1")
    );
    let t = "Ann Lee  0:00\nHello.\n\nBob  0:04\nHi there.\n";
    let doc = parse_str("calls/standup.txt", t);
    assert_eq!(
        (doc.title.as_str(), doc.parser.as_str()),
        ("standup.txt", "transcript/1")
    );
}

#[test]
fn ids_are_stable_and_entity_ids_shared_across_documents() {
    let a = "First paragraph about Ottawa and the budget.\n\nSecond paragraph.";
    let d1 = parse_str("a.txt", a);
    let d2 = parse_str("a.txt", a);
    assert_eq!(d1, d2);
    let c = &d1.chunks[0];
    assert_eq!(c.chunk_id, ids::chunk_id("s1", 0, &c.text));
    let other = parse(&src("s2", "a.txt"), a.as_bytes(), &ParseOptions::default()).unwrap();
    assert_ne!(other.chunks[0].chunk_id, c.chunk_id);
    let edited = parse_str(
        "a.txt",
        "First paragraph about Ottawa and the budget!\n\nSecond paragraph.",
    );
    assert_ne!(edited.chunks[0].chunk_id, c.chunk_id);

    let b = parse_str(
        "b.md",
        "# Trip\n\nWe flew from Paris to Ottawa in March 2020.",
    );
    let ottawa = |d: &ParsedDocument| {
        d.entities
            .iter()
            .find(|e| e.canonical_name == "ottawa")
            .cloned()
            .unwrap()
    };
    assert_eq!(ottawa(&d1).entity_id, ottawa(&b).entity_id);
    assert_eq!(ottawa(&b).entity_id, ids::entity_id("PLACE", "ottawa"));
    assert_eq!(ottawa(&b).entity_type, "PLACE");
}

fn entity<'a>(d: &'a ParsedDocument, ty: &str, canonical: &str) -> &'a kb_proto::Entity {
    d.entities
        .iter()
        .find(|e| e.entity_type == ty && e.canonical_name == canonical)
        .unwrap_or_else(|| {
            panic!(
                "no {ty} {canonical}: {:?}",
                d.entities
                    .iter()
                    .map(|e| (&e.entity_type, &e.canonical_name))
                    .collect::<Vec<_>>()
            )
        })
}

#[test]
fn entities_are_canonical_deduplicated_and_related() {
    let text = "Yesterday the board met. Dr. Ada Lovelace of the Analytical Engine Company presented in London on March 3, 1843.\n\n\
                Meanwhile, Lovelace wrote notes; Ada Lovelace later met Charles Babbage in London.\n\n\
                Later, the Analytical Engine Company hired Charles Babbage.";
    let d = parse_str("memo.txt", text);
    let ada = entity(&d, "PERSON", "ada lovelace");
    let org = entity(&d, "ORGANIZATION", "analytical engine company");
    entity(&d, "PLACE", "london");
    entity(&d, "DATE", "1843-03-03");
    entity(&d, "PERSON", "charles babbage");
    // one entity for "Dr. Ada Lovelace", "Lovelace" and "Ada Lovelace"
    assert_eq!(
        d.entities
            .iter()
            .filter(|e| e.canonical_name.contains("lovelace"))
            .count(),
        1
    );
    let ada_mentions: u32 = d
        .mentions
        .iter()
        .filter(|m| m.entity_id == ada.entity_id)
        .map(|m| m.count)
        .sum();
    assert_eq!(ada_mentions, 3);
    // sentence openers are not entities
    for word in ["yesterday", "meanwhile", "later", "the board"] {
        assert!(
            d.entities.iter().all(|e| e.canonical_name != word),
            "{word}"
        );
    }
    assert!(d.relations.iter().any(|r| r.relation_type == "BELONGS_TO"
        && r.source_entity_id == ada.entity_id
        && r.target_entity_id == org.entity_id));
    for r in &d.relations {
        assert!(["CO_OCCURS", "DISCUSSES", "BELONGS_TO"].contains(&r.relation_type.as_str()));
        assert!(r.weight >= 1.0);
    }
}

#[test]
fn speakers_discuss_topics_and_times_follow_turns() {
    let t = "Ann Lee  0:00\nThe battery life of the remote control matters. A remote control needs a good battery life.\n\n\
             Bob Stone  0:20\nYeah.\n\n\
             Ann Lee  0:25\nSo the remote control and its battery life are decided.\n";
    let d = parse_str("m.txt", t);
    let ann = entity(&d, "SPEAKER", "ann lee");
    let topic = entity(&d, "TOPIC", "remote control");
    assert!(d.relations.iter().any(|r| r.relation_type == "DISCUSSES"
        && r.source_entity_id == ann.entity_id
        && r.target_entity_id == topic.entity_id));
    let c = &d.chunks[0];
    assert_eq!(c.speakers, vec!["Ann Lee", "Bob Stone"]);
    assert_eq!(c.start_seconds, 0.0);
    // the last turn has 10 words: 4 seconds at 150 words a minute
    assert!((c.end_seconds - 29.0).abs() < 1e-9, "{}", c.end_seconds);
    assert!(c.text.starts_with("Ann Lee: The battery life"));
}

#[test]
fn importance_prefers_substance_over_filler() {
    let md = "# Plan\n\nThe remote control budget is 12 euros. We decided the remote control needs a rechargeable battery; \
              the battery must last a year. Who owns the remote control design review with Acme Corporation in Berlin?\n\n\
              # Chat\n\nyeah okay um\n";
    let d = parse_str("p.md", md);
    assert_eq!(d.chunks.len(), 2);
    let (rich, filler) = (&d.chunks[0], &d.chunks[1]);
    assert!(filler.text.contains("yeah okay um"));
    assert!(
        rich.importance_score > filler.importance_score + 0.3,
        "{} vs {}",
        rich.importance_score,
        filler.importance_score
    );
    for c in &d.chunks {
        assert!((0.0..=1.0).contains(&c.importance_score));
    }
}

#[test]
fn relations_are_capped_heaviest_first() {
    let places = [
        "Paris",
        "Berlin",
        "Madrid",
        "Rome",
        "Vienna",
        "Prague",
        "Warsaw",
        "Lisbon",
        "Dublin",
        "Oslo",
        "Helsinki",
        "Athens",
        "Budapest",
        "Brussels",
        "Amsterdam",
        "Zurich",
        "Geneva",
        "Munich",
        "Milan",
        "Barcelona",
        "Toronto",
        "Ottawa",
        "Montreal",
        "Chicago",
        "Boston",
        "Seattle",
    ];
    // every paragraph names all places: 325 pairs, each in every chunk
    let para = format!("We visited {}.", places.join(" and "));
    let mut text = vec![para.clone(); 3].join("\n\n");
    text.push_str("\n\nFinally Paris and Berlin again, with a long tail of plain words that keeps this paragraph apart.");
    // small chunks: one paragraph each
    let opts = ParseOptions {
        chunk_tokens: 64,
        ..ParseOptions::default()
    };
    let d = parse(&src("s1", "trips.txt"), text.as_bytes(), &opts).unwrap();
    assert_eq!(d.chunks.len(), 4);
    assert_eq!(d.relations.len(), kb_parse::MAX_RELATIONS);
    for w in d.relations.windows(2) {
        assert!(w[0].weight >= w[1].weight);
    }
    let paris = entity(&d, "PLACE", "paris").entity_id.clone();
    let berlin = entity(&d, "PLACE", "berlin").entity_id.clone();
    let top = &d.relations[0];
    let mut pair = [top.source_entity_id.clone(), top.target_entity_id.clone()];
    pair.sort();
    let mut want = [paris, berlin];
    want.sort();
    assert_eq!(pair, want, "the pair seen in most chunks comes first");
}
