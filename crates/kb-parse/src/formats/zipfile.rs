//! Reading parts of a zip container (DOCX) within the inflate budget: an entry that declares
//! or produces more bytes than the budget allows, or inflates at an implausible ratio, is a
//! decompression bomb; a container that cannot be read is corrupt (a truncated file loses
//! its central directory, which sits at the end).

use std::io::{Cursor, Read};

use zip::result::ZipError;
use zip::ZipArchive;

use crate::error::{ParseError, ParseErrorKind};
use crate::limits::{bomb, Limits};

/// More entries than this is no office document (Word files have a few dozen).
const MAX_ENTRIES: usize = 20_000;

pub(crate) struct Archive<'a> {
    zip: ZipArchive<Cursor<&'a [u8]>>,
}

fn corrupt(message: String) -> ParseError {
    ParseError::new(ParseErrorKind::Corrupt, message)
}

impl<'a> Archive<'a> {
    /// Opens the container; `what` names the format in messages.
    pub(crate) fn open(bytes: &'a [u8], what: &str) -> Result<Self, ParseError> {
        let zip = ZipArchive::new(Cursor::new(bytes)).map_err(|e| {
            corrupt(format!(
                "not a readable {what}: the zip container is truncated or damaged ({e})"
            ))
        })?;
        if zip.len() > MAX_ENTRIES {
            return Err(ParseError::new(
                ParseErrorKind::TooLarge,
                format!(
                    "the {what} has {} parts, more than the limit of {MAX_ENTRIES}",
                    zip.len()
                ),
            ));
        }
        Ok(Archive { zip })
    }

    /// The inflated bytes of entry `name`, `None` when there is no such entry.
    pub(crate) fn read(
        &mut self,
        name: &str,
        limits: &Limits,
    ) -> Result<Option<Vec<u8>>, ParseError> {
        let mut file = match self.zip.by_name(name) {
            Ok(f) => f,
            Err(ZipError::FileNotFound) => return Ok(None),
            Err(ZipError::UnsupportedArchive(msg)) if msg == ZipError::PASSWORD_REQUIRED => {
                return Err(ParseError::new(
                    ParseErrorKind::Encrypted,
                    format!("part {name} is password-protected"),
                ))
            }
            Err(e) => return Err(corrupt(format!("cannot read part {name}: {e}"))),
        };
        let room = limits.inflate_room();
        if file.size() > room {
            return Err(bomb(format!(
                "part {name} declares {} inflated bytes, more than the {} left of the limit",
                file.size(),
                room
            )));
        }
        let compressed = file.compressed_size();
        let mut out = Vec::new();
        // the declared size may lie: never read more than the budget
        let read = (&mut file)
            .take(room.saturating_add(1))
            .read_to_end(&mut out)
            .map_err(|e| corrupt(format!("part {name} is damaged: {e}")))?;
        limits.add_inflated(&format!("part {name}"), read as u64)?;
        limits.check_ratio(&format!("part {name}"), compressed, read as u64)?;
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::ParseOptions;
    use std::io::Write;
    use zip::write::SimpleFileOptions;

    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, data) in entries {
            w.start_file(*name, SimpleFileOptions::default()).unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn reads_entries_and_enforces_the_budget() {
        let big = vec![b'a'; 10 * 1024 * 1024];
        let bytes = zip_of(&[("a.xml", b"<a/>"), ("big.xml", &big)]);
        let limits = Limits::default();
        let mut z = Archive::open(&bytes, "test").unwrap();
        assert_eq!(z.read("a.xml", &limits).unwrap().unwrap(), b"<a/>");
        assert_eq!(z.read("missing", &limits).unwrap(), None);
        // 10 MiB of one letter compresses ~1000x: a bomb by ratio
        let e = z.read("big.xml", &limits).unwrap_err();
        assert_eq!(e.kind, ParseErrorKind::DecompressionBomb, "{e}");

        let small = Limits::new(&ParseOptions {
            max_inflated_bytes: 3,
            ..ParseOptions::default()
        });
        let e = z.read("a.xml", &small).unwrap_err();
        assert_eq!(e.kind, ParseErrorKind::DecompressionBomb, "{e}");
        assert!(e.message.contains("declares 4"), "{e}");

        let e = Archive::open(&bytes[..bytes.len() / 2], "DOCX")
            .err()
            .unwrap();
        assert_eq!(e.kind, ParseErrorKind::Corrupt);
        assert!(e.message.contains("truncated"), "{e}");
    }
}
