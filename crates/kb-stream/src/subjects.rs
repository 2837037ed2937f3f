//! The versioned subject hierarchy `kb.v1.<stage>.<source_id>` and the names of streams,
//! buckets and durable consumers. Everything that names a subject goes through here.

pub const SOURCE_STREAM: &str = "KB_SOURCE";
pub const PARSED_STREAM: &str = "KB_PARSED";
pub const MIRROR_STREAM: &str = "KB_MIRROR";
pub const DLQ_STREAM: &str = "KB_DLQ";

pub const SOURCE_ALL: &str = "kb.v1.source.>";
pub const PARSED_ALL: &str = "kb.v1.parsed.>";
pub const MIRROR_ALL: &str = "kb.v1.mirror.>";
pub const DLQ_ALL: &str = "kb.v1.dlq.>";

/// Watcher state: one entry per known source file.
pub const WATCH_BUCKET: &str = "kb_watch";
/// Per stage and source: the last version a stage finished and how.
pub const PROGRESS_BUCKET: &str = "kb_progress";
/// Bodies too large for one message.
pub const BLOB_BUCKET: &str = "kb_blobs";

// The durable consumers' names are the [`crate::wire::Stage`]s; the headers every message
// carries are the [`crate::wire::Header`]s.

pub fn source(source_id: &str) -> String {
    format!("kb.v1.source.{source_id}")
}
pub fn parsed(source_id: &str) -> String {
    format!("kb.v1.parsed.{source_id}")
}
pub fn mirror(source_id: &str) -> String {
    format!("kb.v1.mirror.{source_id}")
}
/// `stage`: a [`crate::wire::Stage`]'s name (a stored dead letter keeps the one it was
/// written with).
pub fn dead_letter(stage: &str, source_id: &str) -> String {
    format!("kb.v1.dlq.{stage}.{source_id}")
}

/// The source id of any `kb.v1.<stage>[.<sub>].<source_id>` subject: its last token.
pub fn source_id_of(subject: &str) -> &str {
    subject.rsplit('.').next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_round_trip_the_source_id() {
        let id = "0123456789abcdef0123456789abcdef";
        for s in [
            source(id),
            parsed(id),
            mirror(id),
            dead_letter(crate::wire::Stage::Parser.as_str(), id),
        ] {
            assert_eq!(source_id_of(&s), id);
        }
        assert!(mirror(id).starts_with("kb.v1.mirror."));
    }
}
