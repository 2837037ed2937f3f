//! Stable ids: the same input always gives the same id, in every process and version.

use sha2::{Digest, Sha256};

/// 128 bits of SHA-256 as 32 hex digits: short enough for keys, far from collisions.
fn hash_hex(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            // a separator that cannot occur in the decimal index nor start a UTF-8 char
            h.update([0xff]);
        }
        h.update(p);
    }
    hex::encode(&h.finalize()[..16])
}

/// Id of a chunk: hash of the source id, its index and its text.
pub fn chunk_id(source_id: &str, index: u32, text: &str) -> String {
    hash_hex(&[
        source_id.as_bytes(),
        index.to_string().as_bytes(),
        text.as_bytes(),
    ])
}

/// Id of an entity: hash of its type and canonical name, so it is the same in every document.
pub fn entity_id(entity_type: &str, canonical_name: &str) -> String {
    hash_hex(&[entity_type.as_bytes(), canonical_name.as_bytes()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_sensitive_to_every_part() {
        let a = chunk_id("src", 0, "hello");
        assert_eq!(a, chunk_id("src", 0, "hello"));
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, chunk_id("src", 1, "hello"));
        assert_ne!(a, chunk_id("src2", 0, "hello"));
        assert_ne!(a, chunk_id("src", 0, "hello!"));
        // the separator keeps ("ab","c") and ("a","bc") apart
        assert_ne!(entity_id("ab", "c"), entity_id("a", "bc"));
        assert_ne!(entity_id("PERSON", "ada"), entity_id("TOPIC", "ada"));
    }
}
