//! Stable identifiers. A source id must be a valid NATS subject token and a KV key, so it is
//! lowercase hex of a hash, never the path itself.

use sha2::{Digest, Sha256};

/// Id of a source document: 32 hex chars of sha256(origin, NUL, path).
pub fn source_id(origin: &str, path: &str) -> String {
    let mut h = Sha256::new();
    h.update(origin.as_bytes());
    h.update([0u8]);
    h.update(path.as_bytes());
    let digest = h.finalize();
    hex::encode(&digest[..16])
}

/// Full sha256 hex of some bytes (document content hashes).
pub fn content_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// True when `s` can be used as one NATS subject token / KV key segment.
pub fn is_valid_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_ids_are_stable_tokens_and_differ_by_origin() {
        let a = source_id("folder:inbox", "notes/a.md");
        assert_eq!(a, source_id("folder:inbox", "notes/a.md"));
        assert_eq!(a.len(), 32);
        assert!(is_valid_token(&a));
        assert_ne!(a, source_id("folder:other", "notes/a.md"));
        // The separator keeps ("ab","c") and ("a","bc") apart.
        assert_ne!(source_id("ab", "c"), source_id("a", "bc"));
    }

    #[test]
    fn tokens_reject_subject_syntax() {
        assert!(!is_valid_token("a.b"));
        assert!(!is_valid_token("*"));
        assert!(!is_valid_token(">"));
        assert!(!is_valid_token(""));
    }
}
