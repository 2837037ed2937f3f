//! What the parser and a parse worker say to each other over the worker's stdin and stdout.
//!
//! Request (stdin): `KBPW1`, the parse options as seven little-endian u64 (max_bytes,
//! chunk_tokens, overlap_tokens, max_inflated_bytes, max_pages, max_chunks, timeout_ms), a
//! u32 length and the `SourceRef` (protobuf), a u64 length and the document's bytes.
//! Response (stdout, to its end): `O` and the `ParsedDocument` (protobuf), or `F`, the dead
//! letter kind, a newline and the reason. Anything else (nothing at all, when the worker
//! died) is no answer: the exit status says what happened.

use std::io::{self, Read};

use kb_parse::ParseOptions;
use kb_proto::{Message, ParsedDocument, SourceRef};
use kb_stream::DeadLetterKind;

use crate::runner::ParseFailure;

const MAGIC: &[u8; 5] = b"KBPW1";

/// One document to parse.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub source: SourceRef,
    pub options: ParseOptions,
    pub bytes: Vec<u8>,
}

/// Everything of the request before the document's bytes, which follow it (`len` of them).
pub fn request_head(source: &SourceRef, options: &ParseOptions, len: usize) -> Vec<u8> {
    // Destructured so that a new option cannot be left out of the request.
    let ParseOptions {
        max_bytes,
        chunk_tokens,
        overlap_tokens,
        max_inflated_bytes,
        max_pages,
        max_chunks,
        timeout_ms,
    } = options;
    let mut head = MAGIC.to_vec();
    for n in [
        *max_bytes as u64,
        *chunk_tokens as u64,
        *overlap_tokens as u64,
        *max_inflated_bytes as u64,
        *max_pages as u64,
        *max_chunks as u64,
        *timeout_ms,
    ] {
        head.extend_from_slice(&n.to_le_bytes());
    }
    let source = source.encode_to_vec();
    head.extend_from_slice(&(source.len() as u32).to_le_bytes());
    head.extend_from_slice(&source);
    head.extend_from_slice(&(len as u64).to_le_bytes());
    head
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("bad request: {what}"))
}

fn read_u64(r: &mut impl Read) -> io::Result<u64> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

fn read_usize(r: &mut impl Read) -> io::Result<usize> {
    usize::try_from(read_u64(r)?).map_err(|_| invalid("a size beyond this machine"))
}

/// Reads one request. The document's buffer is allocated once at its announced size (under
/// the worker's memory limit, a document too large for it fails right here).
pub fn read_request(r: &mut impl Read) -> io::Result<Request> {
    let mut magic = [0u8; 5];
    r.read_exact(&mut magic)?;
    if &magic != MAGIC {
        return Err(invalid("not a parse request"));
    }
    let options = ParseOptions {
        max_bytes: read_usize(r)?,
        chunk_tokens: read_usize(r)?,
        overlap_tokens: read_usize(r)?,
        max_inflated_bytes: read_usize(r)?,
        max_pages: read_usize(r)?,
        max_chunks: read_usize(r)?,
        timeout_ms: read_u64(r)?,
    };
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let mut source = vec![0u8; u32::from_le_bytes(len) as usize];
    r.read_exact(&mut source)?;
    let source = SourceRef::decode(source.as_slice()).map_err(|_| invalid("source"))?;
    let mut bytes = vec![0u8; read_usize(r)?];
    r.read_exact(&mut bytes)?;
    Ok(Request {
        source,
        options,
        bytes,
    })
}

/// The worker's answer.
pub fn encode_response(result: &Result<ParsedDocument, ParseFailure>) -> Vec<u8> {
    match result {
        Ok(doc) => {
            let mut out = vec![b'O'];
            out.extend(doc.encode_to_vec());
            out
        }
        Err(f) => format!("F{}\n{}", f.kind.as_str(), f.reason).into_bytes(),
    }
}

/// The worker's answer, `None` when there is none (or it is cut short).
pub fn decode_response(out: &[u8]) -> Option<Result<ParsedDocument, ParseFailure>> {
    match out.split_first()? {
        (b'O', doc) => ParsedDocument::decode(doc).ok().map(Ok),
        (b'F', rest) => {
            let text = String::from_utf8_lossy(rest);
            let (kind, reason) = text.split_once('\n')?;
            Some(Err(ParseFailure::new(DeadLetterKind::read(kind), reason)))
        }
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_request_and_its_answers_go_through_whole() {
        let source = SourceRef {
            source_id: "s1".into(),
            version: 7,
            path: "a/b.md".into(),
            ..SourceRef::default()
        };
        let options = ParseOptions {
            max_bytes: 1,
            chunk_tokens: 2,
            overlap_tokens: 3,
            max_inflated_bytes: 4,
            max_pages: 5,
            max_chunks: 6,
            timeout_ms: 7,
        };
        let mut wire = request_head(&source, &options, 3);
        wire.extend_from_slice(b"abc");
        let req = read_request(&mut wire.as_slice()).unwrap();
        assert_eq!(
            req,
            Request {
                source: source.clone(),
                options,
                bytes: b"abc".to_vec()
            }
        );
        // cut short: an error, not a shorter document
        assert!(read_request(&mut &wire[..wire.len() - 1]).is_err());
        assert!(read_request(&mut &b"nope"[..]).is_err());

        let doc = ParsedDocument {
            source: Some(source),
            title: "T".into(),
            ..ParsedDocument::default()
        };
        assert_eq!(
            decode_response(&encode_response(&Ok(doc.clone()))),
            Some(Ok(doc))
        );
        let failed = ParseFailure::new(DeadLetterKind::TooLarge, "too_large: big\nreally");
        assert_eq!(
            decode_response(&encode_response(&Err(failed.clone()))),
            Some(Err(failed))
        );
        assert_eq!(decode_response(b""), None);
        assert_eq!(decode_response(b"Fno newline"), None);
    }
}
