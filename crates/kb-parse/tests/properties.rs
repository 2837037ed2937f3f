//! Property tests for every reader: no input panics, typed errors only, chunks within the
//! budget, and the input's words all present in the chunks, in order.

#![allow(clippy::unwrap_used)]

use kb_parse::{estimate_tokens, parse, ParseOptions};
use kb_proto::{ParsedDocument, SourceRef};
use proptest::prelude::*;

fn src(path: &str) -> SourceRef {
    SourceRef {
        source_id: "prop".into(),
        path: path.into(),
        ..SourceRef::default()
    }
}

/// Invariants of every successful parse.
fn check_document(doc: &ParsedDocument, opts: &ParseOptions) {
    assert!(!doc.chunks.is_empty());
    assert!(doc.title.chars().count() <= 200);
    let budget = opts.effective_chunk_tokens();
    for (i, c) in doc.chunks.iter().enumerate() {
        assert_eq!(c.index as usize, i);
        assert!(
            c.token_count as usize <= budget,
            "chunk {i}: {} > {budget}",
            c.token_count
        );
        assert_eq!(c.token_count as usize, estimate_tokens(&c.text));
        assert!((0.0..=1.0).contains(&c.importance_score));
        assert!(c.start_offset <= c.end_offset);
        assert!(c.end_seconds >= c.start_seconds);
    }
    let types = [
        "PERSON",
        "ORGANIZATION",
        "PLACE",
        "DATE",
        "TOPIC",
        "SPEAKER",
    ];
    for e in &doc.entities {
        assert!(types.contains(&e.entity_type.as_str()), "{e:?}");
        assert_eq!(
            e.entity_id,
            kb_parse::ids::entity_id(&e.entity_type, &e.canonical_name)
        );
    }
    for m in &doc.mentions {
        assert!(m.count > 0);
        assert!(doc.chunks.iter().any(|c| c.chunk_id == m.chunk_id));
        assert!(doc.entities.iter().any(|e| e.entity_id == m.entity_id));
    }
    assert!(doc.relations.len() <= kb_parse::MAX_RELATIONS);
    for r in &doc.relations {
        assert!(["CO_OCCURS", "DISCUSSES", "BELONGS_TO"].contains(&r.relation_type.as_str()));
        assert_ne!(r.source_entity_id, r.target_entity_id);
    }
}

/// `needles` appear in `hay` in order (other words may come between).
fn in_order(needles: &[&str], hay: &[&str]) -> Result<(), String> {
    let mut it = hay.iter();
    for (i, n) in needles.iter().enumerate() {
        if !it.any(|h| h == n) {
            return Err(format!("word {i} {n:?} missing or out of order"));
        }
    }
    Ok(())
}

fn chunk_words(doc: &ParsedDocument) -> Vec<String> {
    doc.chunks.iter().map(|c| c.text.clone()).collect()
}

fn options() -> impl Strategy<Value = ParseOptions> {
    (1usize..260, 0usize..60).prop_map(|(chunk_tokens, overlap_tokens)| ParseOptions {
        chunk_tokens,
        overlap_tokens,
        ..ParseOptions::default()
    })
}

/// Words of every shape: plain, capitalized, punctuated, numbers, long, non-ASCII. The
/// longest stay under 32 tokens: only longer words are cut (see the chunker's docs).
fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[a-z]{1,9}",
        2 => "[A-Z][a-z]{1,8}",
        1 => "[a-z]{2,8}[.,;:?!]",
        1 => "[0-9]{1,6}",
        1 => "[a-zA-Z0-9]{12,40}",
        1 => "(é|ü|ß|日本|ça|Ω)[a-z]{0,4}",
    ]
}

fn paragraph() -> impl Strategy<Value = String> {
    prop::collection::vec(word(), 1..40).prop_map(|ws| ws.join(" "))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_parse_or_fail_typed(
        bytes in prop::collection::vec(any::<u8>(), 0..2048),
        path in prop_oneof![Just("x.txt"), Just("x.md"), Just("x"), Just("x.pdf"), Just("x.html")],
        opts in options(),
    ) {
        match parse(&src(path), &bytes, &opts) {
            Ok(doc) => check_document(&doc, &opts),
            Err(e) => prop_assert!(!e.message.is_empty() && !e.kind.as_str().is_empty()),
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,600}", opts in options()) {
        if let Ok(doc) = parse(&src("t.txt"), text.as_bytes(), &opts) {
            check_document(&doc, &opts);
        }
    }

    #[test]
    fn plain_text_words_all_in_chunks_in_order(
        paras in prop::collection::vec(paragraph(), 1..12),
        seps in prop::collection::vec(prop_oneof![Just("\n\n"), Just("\n"), Just(" "), Just("\r\n\r\n")], 12),
        opts in options(),
    ) {
        let mut text = String::new();
        for (i, p) in paras.iter().enumerate() {
            text.push_str(p);
            text.push_str(seps[i % seps.len()]);
        }
        let doc = parse(&src("notes.txt"), text.as_bytes(), &opts).unwrap();
        prop_assert_eq!(doc.parser.as_str(), "text/1");
        check_document(&doc, &opts);
        let joined = chunk_words(&doc).join(" ");
        let hay: Vec<&str> = joined.split_whitespace().collect();
        let needles: Vec<&str> = text.split_whitespace().collect();
        prop_assert!(in_order(&needles, &hay).is_ok(), "{:?}", in_order(&needles, &hay));
    }

    #[test]
    fn markdown_words_all_in_chunks_in_order(
        sections in prop::collection::vec((1usize..4, paragraph(), prop::collection::vec(paragraph(), 0..4), any::<bool>()), 1..6),
        opts in options(),
    ) {
        let mut md = String::new();
        let mut headings = Vec::new();
        for (level, heading, paras, code) in &sections {
            md.push_str(&format!("{} {heading}\n\n", "#".repeat(*level)));
            if !paras.is_empty() || *code {
                // a heading with content of its own names a section of some chunk
                headings.push(heading.split_whitespace().collect::<Vec<_>>().join(" "));
            }
            for p in paras {
                md.push_str(p);
                md.push_str("\n\n");
            }
            if *code {
                md.push_str("```\nlet x = 1;\n```\n\n- item one\n- item two\n\n");
            }
        }
        let doc = parse(&src("doc.md"), md.as_bytes(), &opts).unwrap();
        prop_assert_eq!(doc.parser.as_str(), "markdown/1");
        check_document(&doc, &opts);
        let joined = chunk_words(&doc).join(" ");
        let hay: Vec<&str> = joined.split_whitespace().collect();
        let needles: Vec<&str> = md.split_whitespace().filter(|w| !w.chars().all(|c| c == '#')).collect();
        prop_assert!(in_order(&needles, &hay).is_ok(), "{:?}", in_order(&needles, &hay));
        // every heading with content is the last part of some chunk's section
        for h in &headings {
            prop_assert!(doc.chunks.iter().any(|c| c.section.ends_with(h.as_str())), "{h:?}");
        }
    }

    #[test]
    fn transcript_turns_all_in_chunks_with_speakers_and_times(
        turns in prop::collection::vec((0usize..4, 0u32..90, paragraph()), 2..25),
        opts in options(),
    ) {
        let names = ["Ann Lee", "Bob", "Speaker 3", "Dr. Rao (Chair)"];
        // beyond three turns someone speaks twice, as in any conversation (four names each
        // heard once are an agenda's shape, which the detector declines)
        let mut turns = turns;
        if turns.len() > 3 {
            turns[3].0 = turns[0].0;
        }
        let mut t = String::new();
        let mut seconds = 0u32;
        for (who, gap, text) in &turns {
            seconds += gap;
            t.push_str(&format!("{}  {}:{:02}\n{text}\n\n", names[*who], seconds / 60, seconds % 60));
        }
        let doc = parse(&src("call.txt"), t.as_bytes(), &opts).unwrap();
        prop_assert_eq!(doc.parser.as_str(), "transcript/1");
        check_document(&doc, &opts);
        let joined = chunk_words(&doc).join(" ");
        let hay: Vec<&str> = joined.split_whitespace().collect();
        let needles: Vec<&str> = turns.iter().flat_map(|(_, _, text)| text.split_whitespace()).collect();
        prop_assert!(in_order(&needles, &hay).is_ok(), "{:?}", in_order(&needles, &hay));
        for w in doc.chunks.windows(2) {
            prop_assert!(w[1].start_seconds >= w[0].start_seconds);
        }
        for c in &doc.chunks {
            prop_assert!(c.start_seconds >= 0.0);
            prop_assert!(!c.speakers.is_empty());
            prop_assert!(c.speakers.iter().all(|s| names.contains(&s.as_str())));
        }
        let used: std::collections::BTreeSet<&str> = turns.iter().map(|(w, _, _)| names[*w]).collect();
        let seen: std::collections::BTreeSet<&str> = doc.chunks.iter().flat_map(|c| c.speakers.iter().map(String::as_str)).collect();
        prop_assert_eq!(used, seen);
    }
}
