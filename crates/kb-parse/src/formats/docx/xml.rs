//! Small helpers over quick-xml shared by the DOCX parts: namespace-aware element names,
//! attributes by local name, entity references, and the error mapping.

use quick_xml::events::{BytesRef, BytesStart};
use quick_xml::name::{Namespace, ResolveResult};

use crate::error::{ParseError, ParseErrorKind};

/// WordprocessingML, transitional and strict.
const W_NAMESPACES: [&[u8]; 2] = [
    b"http://schemas.openxmlformats.org/wordprocessingml/2006/main",
    b"http://purl.oclc.org/ooxml/wordprocessingml/main",
];
const MC_NAMESPACE: &[u8] = b"http://schemas.openxmlformats.org/markup-compatibility/2006";

/// Which vocabulary an element belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ns {
    Word,
    MarkupCompat,
    Other,
}

pub(crate) fn ns_of(r: &ResolveResult<'_>) -> Ns {
    match r {
        ResolveResult::Bound(Namespace(ns)) if W_NAMESPACES.contains(ns) => Ns::Word,
        ResolveResult::Bound(Namespace(ns)) if *ns == MC_NAMESPACE => Ns::MarkupCompat,
        _ => Ns::Other,
    }
}

/// The value of the attribute with local name `local` (`w:val` → `val`), unescaped.
pub(crate) fn attr(e: &BytesStart<'_>, local: &[u8]) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == local)
        .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
}

/// Text of `&name;` / `&#n;`: the five XML entities and character references; others vanish.
pub(crate) fn entity_text(r: &BytesRef<'_>) -> Option<String> {
    if let Ok(Some(c)) = r.resolve_char_ref() {
        return Some(c.to_string());
    }
    let name = r.decode().ok()?;
    let s = match name.as_ref() {
        "amp" => "&",
        "lt" => "<",
        "gt" => ">",
        "quot" => "\"",
        "apos" => "'",
        _ => return None,
    };
    Some(s.to_owned())
}

/// A part that is not well-formed XML.
pub(crate) fn malformed(part: &str, e: impl std::fmt::Display) -> ParseError {
    ParseError::new(
        ParseErrorKind::Corrupt,
        format!("part {part} is not well-formed XML: {e}"),
    )
}

/// On/off properties (`<w:b/>`, `<w:b w:val="0"/>`): on unless the value says off.
pub(crate) fn is_on(e: &BytesStart<'_>) -> bool {
    !matches!(
        attr(e, b"val").as_deref(),
        Some("0" | "false" | "off" | "none")
    )
}
