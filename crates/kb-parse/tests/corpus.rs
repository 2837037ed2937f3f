//! The real meeting transcripts of the shared corpus (Otter `.txt` and `.docx` exports),
//! checked against their `NAME.queries.json` (the turns as the data set has them).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use kb_parse::{detect, estimate_tokens, parse, reader_for, BlockKind, Format, ParseOptions};
use kb_proto::SourceRef;
use serde_json::Value;

// the shared corpus beside the repository
const CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/corpus/transcripts"
);

fn transcripts() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(CORPUS)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt" || e == "docx"))
        .collect();
    files.sort();
    assert!(
        files
            .iter()
            .filter(|p| p.extension().unwrap() == "docx")
            .count()
            >= 2,
        "corpus DOCX transcripts missing: {files:?}"
    );
    assert!(files.len() >= 6, "corpus transcripts missing: {files:?}");
    files
}

struct Turn {
    speaker: String,
    start: f64,
    text: String,
}

/// The data set's turns that have text. Turns with empty text exist in the data set but
/// have no line in the exported `.txt` at all, so they cannot be counted from it.
fn expected_turns(txt: &Path) -> Vec<Turn> {
    let json: Value =
        serde_json::from_slice(&std::fs::read(txt.with_extension("queries.json")).unwrap())
            .unwrap();
    json["turns"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| !t["text"].as_str().unwrap().trim().is_empty())
        .map(|t| Turn {
            speaker: t["speaker"].as_str().unwrap().to_string(),
            start: t["start"].as_f64().unwrap(),
            text: t["text"].as_str().unwrap().to_string(),
        })
        .collect()
}

fn source(path: &Path) -> SourceRef {
    SourceRef {
        source_id: format!("test-{}", path.file_stem().unwrap().to_string_lossy()),
        version: 1,
        path: path.file_name().unwrap().to_string_lossy().into_owned(),
        ..SourceRef::default()
    }
}

#[test]
fn transcripts_are_detected_by_content_and_keep_every_turn() {
    for path in transcripts() {
        let bytes = std::fs::read(&path).unwrap();
        let docx = path.extension().unwrap() == "docx";
        let format = detect("renamed.dat", &bytes);
        let want = if docx {
            Format::Docx
        } else {
            Format::Transcript
        };
        assert_eq!(format, want, "{path:?}");
        let doc = reader_for(format).unwrap().read(&bytes).unwrap();
        if docx {
            assert_eq!(doc.parser, Some("transcript-docx/1"), "{path:?}");
        }
        // the DOCX exports start with a "Meeting NAME" line before the first turn
        let first_turn = doc
            .blocks
            .iter()
            .position(|b| matches!(b.kind, BlockKind::Turn { .. }))
            .unwrap();
        assert!(first_turn <= 1, "{path:?}");
        let turns: Vec<_> = doc.blocks[first_turn..]
            .iter()
            .map(|b| match &b.kind {
                BlockKind::Turn {
                    speaker,
                    start_seconds,
                } => (
                    speaker.clone(),
                    *start_seconds,
                    doc.block_text(b).to_string(),
                ),
                other => panic!("non-turn block {other:?} in {path:?}"),
            })
            .collect();
        let expected = expected_turns(&path);
        assert_eq!(turns.len(), expected.len(), "{path:?}");
        for (got, want) in turns.iter().zip(&expected) {
            assert_eq!(got.0, want.speaker);
            assert_eq!(got.2, want.text);
            // the export writes whole seconds
            assert!(
                (got.1 - want.start).abs() <= 1.0,
                "{path:?}: {} vs {}",
                got.1,
                want.start
            );
        }
    }
}

/// Every turn's text is covered, in order, by verbatim pieces in chunks labelled with its
/// speaker (a turn longer than a chunk is split at sentences; overlap may repeat a piece).
fn assert_turn_covered(turn: &Turn, chunks: &[kb_proto::Chunk]) {
    let label = format!("{}: ", turn.speaker);
    let text = turn.text.as_str();
    let mut covered = 0usize;
    'chunks: for c in chunks {
        for line in c.text.lines() {
            let Some(piece) = line.strip_prefix(&label) else {
                continue;
            };
            for (at, _) in text.match_indices(piece) {
                let gap = &text[covered.min(at)..at];
                if at <= covered.max(at) && gap.trim().is_empty() && at + piece.len() > covered {
                    covered = at + piece.len();
                    if covered == text.len() {
                        break 'chunks;
                    }
                }
            }
        }
    }
    assert_eq!(
        covered,
        text.len(),
        "turn of {} not covered: {:?}",
        turn.speaker,
        turn.text
    );
}

#[test]
fn chunks_keep_turns_speakers_times_and_budget() {
    let opts = ParseOptions::default();
    for path in transcripts() {
        let bytes = std::fs::read(&path).unwrap();
        let doc = parse(&source(&path), &bytes, &opts).unwrap();
        assert!(doc.parser.starts_with("transcript"), "{}", doc.parser);
        assert!(!doc.chunks.is_empty());
        let expected = expected_turns(&path);

        // chunks are sized by the documented estimate, within the budget
        for c in &doc.chunks {
            assert_eq!(
                c.token_count as usize,
                estimate_tokens(&c.text),
                "{path:?} chunk {}",
                c.index
            );
            assert!(
                c.token_count as usize <= opts.chunk_tokens,
                "{path:?} chunk {}",
                c.index
            );
            assert!((0.0..=1.0).contains(&c.importance_score));
            assert!(
                c.start_seconds >= 0.0 && c.end_seconds >= c.start_seconds,
                "{path:?} chunk {}",
                c.index
            );
            // speakers in order of first appearance in the chunk's lines
            let mut seen: Vec<String> = Vec::new();
            for line in c.text.lines() {
                if let Some(s) = c
                    .speakers
                    .iter()
                    .find(|s| line.starts_with(&format!("{s}: ")))
                {
                    if !seen.contains(s) {
                        seen.push(s.clone());
                    }
                }
            }
            assert_eq!(seen, c.speakers, "{path:?} chunk {}", c.index);
        }
        for w in doc.chunks.windows(2) {
            assert!(w[1].start_seconds >= w[0].start_seconds);
            assert!(w[1].start_offset >= w[0].start_offset && w[1].end_offset > w[0].end_offset);
        }
        assert_eq!(doc.chunks[0].start_seconds, expected[0].start.floor());

        // every speaker of the meeting appears in the chunks, and as a SPEAKER entity
        let mut speakers: Vec<&str> = expected.iter().map(|t| t.speaker.as_str()).collect();
        speakers.sort();
        speakers.dedup();
        for s in &speakers {
            assert!(
                doc.chunks.iter().any(|c| c.speakers.iter().any(|x| x == s)),
                "{path:?}: {s}"
            );
            // one entity per person: "Mr. X (Riding, Party)" and "Mr. X" are the same speaker
            let canonical = kb_parse::speaker_canonical(s);
            let entity = doc
                .entities
                .iter()
                .find(|e| e.entity_type == "SPEAKER" && e.canonical_name == canonical);
            assert!(entity.is_some(), "{path:?}: {s}");
        }
        for t in &expected {
            assert_turn_covered(t, &doc.chunks);
        }

        // stable: a second parse gives the same ids and the same document
        let again = parse(&source(&path), &bytes, &opts).unwrap();
        assert_eq!(doc, again);
    }
}

#[test]
fn transcript_entities_are_sane() {
    let opts = ParseOptions::default();
    for path in transcripts() {
        let doc = parse(&source(&path), &std::fs::read(&path).unwrap(), &opts).unwrap();
        let topics = doc
            .entities
            .iter()
            .filter(|e| e.entity_type == "TOPIC")
            .count();
        assert!((1..=15).contains(&topics), "{path:?}: {topics} topics");
        for e in &doc.entities {
            let c = &e.canonical_name;
            assert!(
                c.chars().filter(|ch| ch.is_alphanumeric()).count() >= 2,
                "{path:?}: {e:?}"
            );
            assert_eq!(c, &c.to_lowercase());
            // fillers and sentence openers are no entities
            for bad in [
                "um", "uh", "yeah", "okay", "so", "the", "i", "well", "right", "mm-hmm",
            ] {
                assert_ne!(c, bad, "{path:?}");
            }
        }
        // every mention points at a chunk and an entity of the document
        for m in &doc.mentions {
            assert!(m.count >= 1);
            assert!(doc.chunks.iter().any(|c| c.chunk_id == m.chunk_id));
            assert!(doc.entities.iter().any(|e| e.entity_id == m.entity_id));
        }
        assert!(doc.relations.len() <= kb_parse::MAX_RELATIONS);
        let speakers = doc
            .entities
            .iter()
            .filter(|e| e.entity_type == "SPEAKER")
            .count();
        let labels: std::collections::BTreeSet<String> = expected_turns(&path)
            .into_iter()
            .map(|t| t.speaker)
            .collect();
        assert!(speakers >= 1 && speakers <= labels.len());
        assert!(
            doc.relations.iter().any(|r| r.relation_type == "DISCUSSES"),
            "{path:?}"
        );
    }
}

#[test]
fn remote_control_meetings_are_about_remote_controls() {
    // the design meetings are about a new remote control
    for name in ["ES2006a.txt", "TS3010a.txt", "ES2006b.docx"] {
        let path = Path::new(CORPUS).join(name);
        let doc = parse(
            &source(&path),
            &std::fs::read(&path).unwrap(),
            &ParseOptions::default(),
        )
        .unwrap();
        assert!(
            doc.entities
                .iter()
                .any(|e| e.entity_type == "TOPIC" && e.canonical_name == "remote control"),
            "{name}: {:?}",
            doc.entities
                .iter()
                .map(|e| &e.canonical_name)
                .collect::<Vec<_>>()
        );
        let pm = doc
            .entities
            .iter()
            .find(|e| e.entity_type == "SPEAKER" && e.canonical_name == "project manager")
            .unwrap();
        assert!(
            doc.mentions
                .iter()
                .filter(|m| m.entity_id == pm.entity_id)
                .count()
                > 5
        );
    }
}
