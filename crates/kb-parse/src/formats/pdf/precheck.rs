//! Checks made before the content interpreter runs, so that a hostile or broken PDF fails
//! with a reason instead of exhausting memory or the stack:
//! - every Flate stream except images is inflated under the budget first (lopdf and the
//!   interpreter inflate streams whole, without a limit);
//! - pages whose `Parent` chain loops are refused, and a missing `MediaBox` gets the default
//!   (the interpreter walks parents recursively and insists on one);
//! - form XObjects that invoke themselves, directly or through others, are refused (the
//!   interpreter would recurse until the stack overflows).

use std::collections::{HashMap, HashSet};
use std::io::Read;

use flate2::read::ZlibDecoder;
use lopdf::content::Content;
use lopdf::{Dictionary, Document, Object, ObjectId};

use crate::error::{ParseError, ParseErrorKind};
use crate::limits::Limits;

fn corrupt(message: impl Into<String>) -> ParseError {
    ParseError::new(ParseErrorKind::Corrupt, message)
}

/// Inflates every Flate-compressed stream that is not an image, counting the bytes against
/// the budget (a stream that does not inflate cleanly counts what came out).
pub(crate) fn inflate_budget(bytes: &[u8], limits: &Limits) -> Result<(), ParseError> {
    let mut at = 0;
    let mut n = 0u32;
    while let Some(pos) = find(&bytes[at..], b"stream") {
        let kw = at + pos;
        at = kw + 6;
        // `endstream` also contains `stream`; a data start follows a line end
        let data_start = match bytes.get(at..at + 2) {
            Some([b'\r', b'\n']) => at + 2,
            Some([b'\n', _]) | Some([b'\r', _]) => at + 1,
            _ => continue,
        };
        if kw >= 3 && &bytes[kw - 3..kw] == b"end" {
            continue;
        }
        let dict = &bytes[kw.saturating_sub(2048)..kw];
        let dict = match find_last(dict, b"obj") {
            Some(i) => &dict[i..],
            None => dict,
        };
        let flate = find(dict, b"/FlateDecode").is_some() || find(dict, b"/Fl ").is_some();
        let image = find(dict, b"/Image").is_some();
        if !flate || image {
            continue;
        }
        let end = find(&bytes[data_start..], b"endstream").map_or(bytes.len(), |e| data_start + e);
        let data = &bytes[data_start..end];
        let room = limits.inflate_room();
        let mut sink = Counter(0);
        // errors end the stream: damaged data is lopdf's to judge, only the size matters here
        let _ = std::io::copy(
            &mut ZlibDecoder::new(data).take(room.saturating_add(1)),
            &mut sink,
        );
        limits.add_inflated("a PDF stream", sink.0)?;
        limits.check_ratio("a PDF stream", data.len() as u64, sink.0)?;
        at = end;
        n = n.wrapping_add(1);
        if n.is_multiple_of(256) {
            limits.check_time()?;
        }
    }
    Ok(())
}

struct Counter(u64);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn find_last(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

/// US Letter, what viewers assume without a `MediaBox`.
const DEFAULT_MEDIA_BOX: [i64; 4] = [0, 0, 612, 792];

/// Repairs what the interpreter cannot cope with and refuses what cannot be repaired.
pub(crate) fn check_structure(doc: &mut Document, pages: &[ObjectId]) -> Result<(), ParseError> {
    let mut missing_box = Vec::new();
    for &page in pages {
        let mut seen = HashSet::new();
        let mut cur = Some(page);
        let mut has_box = false;
        while let Some(id) = cur {
            if !seen.insert(id) {
                return Err(corrupt("the page tree loops (a page is its own ancestor)"));
            }
            let Ok(dict) = doc.get_dictionary(id) else {
                break;
            };
            has_box |= dict.get(b"MediaBox").is_ok();
            cur = dict.get(b"Parent").and_then(Object::as_reference).ok();
        }
        if !has_box {
            missing_box.push(page);
        }
    }
    for page in missing_box {
        if let Ok(dict) = doc.get_dictionary_mut(page) {
            dict.set(
                "MediaBox",
                Object::Array(
                    DEFAULT_MEDIA_BOX
                        .iter()
                        .map(|&v| Object::Integer(v))
                        .collect(),
                ),
            );
        }
    }
    check_forms(doc, pages)
}

/// Deepest nesting of form XObjects accepted (real documents nest a handful).
const MAX_FORM_DEPTH: usize = 32;

/// Fails when a form XObject invokes itself, or forms nest deeper than [`MAX_FORM_DEPTH`].
fn check_forms(doc: &Document, pages: &[ObjectId]) -> Result<(), ParseError> {
    // forms already known to be finite, by (form, resources it inherited)
    let mut done: HashSet<(ObjectId, usize)> = HashSet::new();
    let mut invoked: HashMap<ObjectId, Vec<Vec<u8>>> = HashMap::new();
    for &page in pages {
        let Some(res) = inherited_resources(doc, page) else {
            continue;
        };
        for id in form_ids(doc, res, None) {
            let mut path = Vec::new();
            visit(doc, id, res, &mut path, &mut done, &mut invoked)?;
        }
    }
    Ok(())
}

fn visit<'a>(
    doc: &'a Document,
    form: ObjectId,
    caller_res: &'a Dictionary,
    path: &mut Vec<ObjectId>,
    done: &mut HashSet<(ObjectId, usize)>,
    invoked: &mut HashMap<ObjectId, Vec<Vec<u8>>>,
) -> Result<(), ParseError> {
    let Ok(Object::Stream(stream)) = doc.get_object(form) else {
        return Ok(());
    };
    // a form without resources uses its caller's (what the interpreter does)
    let own = stream
        .dict
        .get(b"Resources")
        .ok()
        .and_then(|r| doc.dereference(r).ok())
        .and_then(|(_, o)| o.as_dict().ok());
    let res = own.unwrap_or(caller_res);
    let key = (
        form,
        if own.is_some() {
            0
        } else {
            caller_res as *const _ as usize
        },
    );
    if done.contains(&key) {
        return Ok(());
    }
    if path.contains(&form) {
        return Err(corrupt("a form XObject draws itself (an endless loop)"));
    }
    if path.len() >= MAX_FORM_DEPTH {
        return Err(corrupt(format!(
            "form XObjects nest more than {MAX_FORM_DEPTH} deep"
        )));
    }
    let names = invoked
        .entry(form)
        .or_insert_with(|| {
            let data = stream
                .decompressed_content()
                .unwrap_or_else(|_| stream.content.clone());
            Content::decode(&data)
                .map(|c| {
                    c.operations
                        .into_iter()
                        .filter(|op| op.operator == "Do")
                        .filter_map(|op| op.operands.first()?.as_name().ok().map(<[u8]>::to_vec))
                        .collect()
                })
                .unwrap_or_default()
        })
        .clone();
    path.push(form);
    for id in form_ids(doc, res, Some(&names)) {
        visit(doc, id, res, path, done, invoked)?;
    }
    path.pop();
    done.insert(key);
    Ok(())
}

/// Form XObjects named in `res` (only those in `names`, when given).
fn form_ids(doc: &Document, res: &Dictionary, names: Option<&[Vec<u8>]>) -> Vec<ObjectId> {
    let Some(xobjects) = res
        .get(b"XObject")
        .ok()
        .and_then(|x| doc.dereference(x).ok())
        .and_then(|(_, o)| o.as_dict().ok())
    else {
        return Vec::new();
    };
    xobjects
        .iter()
        .filter(|(name, _)| names.is_none_or(|ns| ns.iter().any(|n| n == *name)))
        .filter_map(|(_, v)| v.as_reference().ok())
        .filter(|id| {
            matches!(doc.get_object(*id), Ok(Object::Stream(s))
                if s.dict.get(b"Subtype").and_then(Object::as_name).ok() == Some(b"Form".as_slice()))
        })
        .collect()
}

/// The page's resources, looked up through its ancestors (loops were refused before).
fn inherited_resources(doc: &Document, page: ObjectId) -> Option<&Dictionary> {
    let mut cur = Some(page);
    let mut steps = 0;
    while let (Some(id), true) = (cur, steps < 256) {
        steps += 1;
        let dict = doc.get_dictionary(id).ok()?;
        if let Ok(r) = dict.get(b"Resources") {
            return doc.dereference(r).ok().and_then(|(_, o)| o.as_dict().ok());
        }
        cur = dict.get(b"Parent").and_then(Object::as_reference).ok();
    }
    None
}
