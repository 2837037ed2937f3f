//! The closed sets of names the pipeline writes on the wire and into its records: message
//! headers, stage names, progress statuses, outcome labels and dead-letter kinds. Each is an enum that
//! serializes to exactly the string used before it was one, so stored records, dead letters
//! and dashboards keep reading the same.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// The headers a pipeline message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Header {
    /// `Nats-Msg-Id`: JetStream's deduplication key (within the stream's duplicate window).
    MsgId,
    /// `Nats-Expected-Last-Subject-Sequence`: the optimistic concurrency of the mirror.
    ExpectedLastSubjectSequence,
    /// `Kb-Source-Id`
    SourceId,
    /// `Kb-Version`
    Version,
    /// `Kb-Kind`: `upsert`, `delete`, `failed`, `retry`.
    Kind,
    /// `Kb-Error-Kind`, on dead letters: a [`DeadLetterKind`].
    ErrorKind,
}

impl Header {
    pub const ALL: [Header; 6] = [
        Header::MsgId,
        Header::ExpectedLastSubjectSequence,
        Header::SourceId,
        Header::Version,
        Header::Kind,
        Header::ErrorKind,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Header::MsgId => "Nats-Msg-Id",
            Header::ExpectedLastSubjectSequence => "Nats-Expected-Last-Subject-Sequence",
            Header::SourceId => "Kb-Source-Id",
            Header::Version => "Kb-Version",
            Header::Kind => "Kb-Kind",
            Header::ErrorKind => "Kb-Error-Kind",
        }
    }

    /// JetStream's own control headers (`Nats-*`), which must not be copied onto a republished
    /// message: they belonged to the first publish.
    pub fn is_jetstream_control(name: &str) -> bool {
        name.get(..5)
            .is_some_and(|p| p.eq_ignore_ascii_case("nats-"))
    }
}

impl fmt::Display for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A message's headers as a dead letter keeps them (`DeadLetter.original_headers`, part of the
/// wire format): one `Name: value` line per value, in the message's order.
pub fn header_lines(headers: &async_nats::HeaderMap) -> Vec<String> {
    headers
        .iter()
        .flat_map(|(name, values)| values.iter().map(move |v| format!("{name}: {v}")))
        .collect()
}

/// One of [`header_lines`]'s lines as (name, value); `None` for a line not of that form.
pub fn parse_header_line(line: &str) -> Option<(&str, &str)> {
    line.split_once(": ")
}

/// The first value of `header` among header lines (names compare case-insensitively, as
/// NATS headers do).
pub fn header_value(lines: &[String], header: Header) -> Option<&str> {
    lines.iter().find_map(|line| {
        let (name, value) = parse_header_line(line)?;
        name.eq_ignore_ascii_case(header.as_str()).then_some(value)
    })
}

/// The `Kb-Kind` header value of a mirror event of `kind` (the proto name, lower-cased), as
/// the publisher writes it and the retention's headers-only scan reads it.
pub fn mirror_kind_header(kind: kb_proto::mirror_event::Kind) -> &'static str {
    use kb_proto::mirror_event::Kind;
    match kind {
        Kind::Unspecified => "kind_unspecified",
        Kind::Upsert => "upsert",
        Kind::Delete => "delete",
        Kind::Failed => "failed",
    }
}

/// An unknown name in a closed set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownName {
    pub what: &'static str,
    pub name: String,
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown {} {:?}", self.what, self.name)
    }
}

impl std::error::Error for UnknownName {}

/// Declares a closed, string-named enum: `as_str`, `ALL`, `Display`, `FromStr` and serde as
/// the string.
macro_rules! named {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($(#[$vmeta:meta])* $variant:ident => $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, UnknownName> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownName { what: $what, name: s.to_string() }),
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    };
}

named! {
    /// A stage of the pipeline: the `stage` label of its telemetry and the stage of its dead
    /// letters (`kb.v1.dlq.<stage>.<source_id>`); for the consuming ones (all but the
    /// watcher) also the durable consumer's name and the first token of their progress keys
    /// (`<stage>.<source_id>`).
    Stage, "stage" {
        /// Files -> source events (consumes nothing).
        Watcher => "watcher",
        /// Source events -> parsed documents.
        Parser => "parser",
        /// Parsed documents -> the mirror.
        Embedder => "embedder",
        /// The mirror -> Postgres.
        PgWriter => "pg-writer",
        /// The mirror -> the graph.
        GraphWriter => "graph-writer",
    }
}

impl Stage {
    /// The writers, in the order `kb ingest` and `kb status` list them.
    pub const WRITERS: [Stage; 2] = [Stage::PgWriter, Stage::GraphWriter];
}

named! {
    /// How a stage finished one version of a source, as `kb_progress` records it (`kb ingest`
    /// waits on it, `kb status` counts it).
    ProgressStatus, "progress status" {
        /// The parser published the parsed document.
        Parsed => "parsed",
        /// The embedder published the embedded document to the mirror.
        Embedded => "embedded",
        /// A writer wrote the document into its store.
        Written => "written",
        /// A writer removed the source from its store.
        Deleted => "deleted",
        /// The version failed for good: recorded as failed, with a dead letter.
        Failed => "failed",
        /// A writer's store already held this or a newer version.
        Stale => "stale",
        /// The mirror already held this or a newer version; nothing was done.
        Superseded => "superseded",
    }
}

/// How a handled message ended: the `outcome` label of `kb_events_sent_total` and, for the
/// pipeline's own stages, the progress status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutcomeLabel {
    /// One of the pipeline's statuses; it is also recorded as progress.
    Status(ProgressStatus),
    /// Any other label (handlers written before the enum, tests); recorded nowhere but
    /// telemetry.
    Other(&'static str),
}

impl OutcomeLabel {
    pub const PARSED: OutcomeLabel = OutcomeLabel::Status(ProgressStatus::Parsed);
    pub const EMBEDDED: OutcomeLabel = OutcomeLabel::Status(ProgressStatus::Embedded);
    pub const WRITTEN: OutcomeLabel = OutcomeLabel::Status(ProgressStatus::Written);
    pub const DELETED: OutcomeLabel = OutcomeLabel::Status(ProgressStatus::Deleted);
    pub const FAILED: OutcomeLabel = OutcomeLabel::Status(ProgressStatus::Failed);
    pub const STALE: OutcomeLabel = OutcomeLabel::Status(ProgressStatus::Stale);
    pub const SUPERSEDED: OutcomeLabel = OutcomeLabel::Status(ProgressStatus::Superseded);

    /// The label of a string (a known status, or kept as is).
    pub fn from_label(label: &'static str) -> Self {
        match label.parse::<ProgressStatus>() {
            Ok(s) => OutcomeLabel::Status(s),
            Err(_) => OutcomeLabel::Other(label),
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            OutcomeLabel::Status(s) => s.as_str(),
            OutcomeLabel::Other(s) => s,
        }
    }

    /// The progress status this outcome records, if it is one of the pipeline's.
    pub const fn progress_status(self) -> Option<ProgressStatus> {
        match self {
            OutcomeLabel::Status(s) => Some(s),
            OutcomeLabel::Other(_) => None,
        }
    }
}

impl From<ProgressStatus> for OutcomeLabel {
    fn from(s: ProgressStatus) -> Self {
        OutcomeLabel::Status(s)
    }
}

impl fmt::Display for OutcomeLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for OutcomeLabel {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Why a message was given up: a dead letter's `error_kind`. Open-ended on purpose: the
/// parser's kinds come from `kb-parse`, and an old or newer dead letter may carry a kind this
/// build does not know ([`DeadLetterKind::Other`]); it still reads and prints the same.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DeadLetterKind {
    /// The message (or its body) does not decode.
    Decode,
    /// The message's body is gone from the object store and no newer version replaced it.
    BodyMissing,
    /// A transient failure outlasted the stage's deliveries.
    RetriesExhausted,
    /// The handler panicked (the payload is the reason).
    Panicked,
    /// The stage died (abort, OOM kill, stack overflow) `crash_limit` times on the message.
    Crashed,
    /// The work took longer than its deadline, every time.
    Timeout,
    // The parser's kinds (`kb_parse::ParseErrorKind`).
    Empty,
    TooLarge,
    UnsupportedFormat,
    InvalidEncoding,
    Corrupt,
    Encrypted,
    DecompressionBomb,
    /// A parse worker died on the document.
    ParserCrashed,
    /// The bytes do not match the source's content hash.
    CorruptBody,
    /// The embedding provider refused the document for good.
    EmbeddingFailed,
    /// A store refused the document for good (e.g. a vector dimension mismatch).
    StoreRejected,
    /// The watcher could not read the file.
    Unreadable,
    /// The watcher refused a symlink leading outside the watched folder.
    SymlinkOutside,
    /// The Drive watcher found the file's state changed under it, every time.
    Conflict,
    /// The Drive watcher's state of the file does not read.
    CorruptState,
    /// What `kb dead-letters` shows for a dead letter that does not decode itself.
    UnreadableDeadLetter,
    /// A kind this build does not know.
    Other(String),
}

impl DeadLetterKind {
    const KNOWN: [DeadLetterKind; 22] = [
        DeadLetterKind::Decode,
        DeadLetterKind::BodyMissing,
        DeadLetterKind::RetriesExhausted,
        DeadLetterKind::Panicked,
        DeadLetterKind::Crashed,
        DeadLetterKind::Timeout,
        DeadLetterKind::Empty,
        DeadLetterKind::TooLarge,
        DeadLetterKind::UnsupportedFormat,
        DeadLetterKind::InvalidEncoding,
        DeadLetterKind::Corrupt,
        DeadLetterKind::Encrypted,
        DeadLetterKind::DecompressionBomb,
        DeadLetterKind::ParserCrashed,
        DeadLetterKind::CorruptBody,
        DeadLetterKind::EmbeddingFailed,
        DeadLetterKind::StoreRejected,
        DeadLetterKind::Unreadable,
        DeadLetterKind::SymlinkOutside,
        DeadLetterKind::Conflict,
        DeadLetterKind::CorruptState,
        DeadLetterKind::UnreadableDeadLetter,
    ];

    pub fn as_str(&self) -> &str {
        match self {
            DeadLetterKind::Decode => "decode",
            DeadLetterKind::BodyMissing => "body_missing",
            DeadLetterKind::RetriesExhausted => "retries_exhausted",
            DeadLetterKind::Panicked => "panicked",
            DeadLetterKind::Crashed => "crashed",
            DeadLetterKind::Timeout => "timeout",
            DeadLetterKind::Empty => "empty",
            DeadLetterKind::TooLarge => "too_large",
            DeadLetterKind::UnsupportedFormat => "unsupported_format",
            DeadLetterKind::InvalidEncoding => "invalid_encoding",
            DeadLetterKind::Corrupt => "corrupt",
            DeadLetterKind::Encrypted => "encrypted",
            DeadLetterKind::DecompressionBomb => "decompression_bomb",
            DeadLetterKind::ParserCrashed => "parser_crashed",
            DeadLetterKind::CorruptBody => "corrupt_body",
            DeadLetterKind::EmbeddingFailed => "embedding_failed",
            DeadLetterKind::StoreRejected => "store_rejected",
            DeadLetterKind::Unreadable => "unreadable",
            DeadLetterKind::SymlinkOutside => "symlink_outside",
            DeadLetterKind::Conflict => "conflict",
            DeadLetterKind::CorruptState => "corrupt_state",
            DeadLetterKind::UnreadableDeadLetter => "unreadable_dead_letter",
            DeadLetterKind::Other(s) => s,
        }
    }

    /// The kind a stored dead letter names: one another build wrote may carry a kind this one
    /// does not know, kept as [`DeadLetterKind::Other`]. Code that names a kind uses the
    /// variants (or [`str::parse`], which refuses unknown words).
    pub fn read(s: &str) -> Self {
        s.parse()
            .unwrap_or_else(|_| DeadLetterKind::Other(s.to_string()))
    }
}

impl FromStr for DeadLetterKind {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        Self::KNOWN
            .iter()
            .find(|k| k.as_str() == s)
            .cloned()
            .ok_or_else(|| UnknownName {
                what: "dead-letter kind",
                name: s.to_string(),
            })
    }
}

impl fmt::Display for DeadLetterKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<DeadLetterKind> for String {
    fn from(k: DeadLetterKind) -> Self {
        match k {
            DeadLetterKind::Other(s) => s,
            known => known.as_str().to_string(),
        }
    }
}

impl PartialEq<str> for DeadLetterKind {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for DeadLetterKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for DeadLetterKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for DeadLetterKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(DeadLetterKind::read(&String::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_todays_wire_strings() {
        assert_eq!(Header::MsgId.as_str(), "Nats-Msg-Id");
        assert_eq!(Header::SourceId.as_str(), "Kb-Source-Id");
        assert_eq!(Header::Version.as_str(), "Kb-Version");
        assert_eq!(Header::Kind.as_str(), "Kb-Kind");
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(Header::SourceId.as_str(), "a: b.md");
        headers.insert(Header::Version.as_str(), "7");
        let lines = header_lines(&headers);
        assert!(
            lines.contains(&"Kb-Source-Id: a: b.md".to_string()),
            "{lines:?}"
        );
        // A value may itself hold ": "; the name ends at the first one.
        assert_eq!(header_value(&lines, Header::SourceId), Some("a: b.md"));
        assert_eq!(
            header_value(&["kb-version: 7".into()], Header::Version),
            Some("7")
        );
        assert_eq!(header_value(&lines, Header::Kind), None);
        assert_eq!(parse_header_line("no separator"), None);
        for kind in [
            kb_proto::mirror_event::Kind::Unspecified,
            kb_proto::mirror_event::Kind::Upsert,
            kb_proto::mirror_event::Kind::Delete,
            kb_proto::mirror_event::Kind::Failed,
        ] {
            // The header value stays what the publisher wrote before it was one function.
            assert_eq!(
                mirror_kind_header(kind),
                kind.as_str_name().to_ascii_lowercase()
            );
        }
        assert_eq!(Header::ErrorKind.as_str(), "Kb-Error-Kind");
        let stages: Vec<&str> = Stage::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            stages,
            ["watcher", "parser", "embedder", "pg-writer", "graph-writer"]
        );
        assert_eq!("pg-writer".parse::<Stage>(), Ok(Stage::PgWriter));
        assert!(Header::is_jetstream_control(
            "nats-expected-last-subject-sequence"
        ));
        assert!(!Header::is_jetstream_control("Kb-Version"));
        let statuses: Vec<&str> = ProgressStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            statuses,
            [
                "parsed",
                "embedded",
                "written",
                "deleted",
                "failed",
                "stale",
                "superseded"
            ]
        );
        for s in ProgressStatus::ALL {
            let json = serde_json::to_string(s).unwrap_or_default();
            assert_eq!(json, format!("\"{s}\""));
            assert_eq!(serde_json::from_str::<ProgressStatus>(&json).ok(), Some(*s));
        }
        let unknown = "done"
            .parse::<ProgressStatus>()
            .err()
            .map(|e| e.to_string());
        assert_eq!(unknown.as_deref(), Some("unknown progress status \"done\""));
        let json = serde_json::from_str::<ProgressStatus>("\"done\"");
        assert!(json.is_err_and(|e| e.to_string().contains("unknown progress status")));
        assert_eq!(OutcomeLabel::from_label("stale"), OutcomeLabel::STALE);
        assert_eq!(OutcomeLabel::from_label("ok").as_str(), "ok");
        assert_eq!(OutcomeLabel::from_label("ok").progress_status(), None);
    }

    #[test]
    fn dead_letter_kinds_round_trip_and_keep_unknown_ones() {
        for k in DeadLetterKind::KNOWN {
            assert_eq!(DeadLetterKind::read(k.as_str()), k);
            assert_eq!(k.as_str().parse::<DeadLetterKind>().ok(), Some(k.clone()));
            let s: String = k.clone().into();
            assert_eq!(s, k.as_str());
        }
        assert_eq!(DeadLetterKind::read("crashed"), DeadLetterKind::Crashed);
        let refused = "from_the_future".parse::<DeadLetterKind>().err();
        assert_eq!(
            refused.map(|e| e.to_string()).as_deref(),
            Some("unknown dead-letter kind \"from_the_future\"")
        );
        let new = DeadLetterKind::read("from_the_future");
        assert_eq!(new, DeadLetterKind::Other("from_the_future".into()));
        assert_eq!(new, "from_the_future");
        assert_eq!(
            serde_json::to_string(&DeadLetterKind::BodyMissing).unwrap_or_default(),
            "\"body_missing\""
        );
    }
}
