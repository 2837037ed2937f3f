//! Paragraph styles (which are headings, which are bold) and package relationships (where
//! the main document, headers, footers and notes are).

use std::collections::HashMap;

use quick_xml::events::Event;
use quick_xml::NsReader;

use super::xml::{attr, is_on, malformed, ns_of, Ns};
use crate::error::ParseError;

/// What the body reader needs to know about a paragraph style.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Style {
    /// Heading level, 1 = top.
    pub level: Option<u8>,
    pub bold: bool,
}

#[derive(Default)]
struct Raw {
    name: String,
    based_on: Option<String>,
    outline: Option<u8>,
    bold: Option<bool>,
}

/// Styles by id. Without a styles part, ids like `Heading2` and `Title` still count.
#[derive(Debug, Default)]
pub(crate) struct Styles(HashMap<String, Style>);

impl Styles {
    pub(crate) fn get(&self, id: &str) -> Style {
        self.0.get(id).copied().unwrap_or_else(|| Style {
            level: level_from_name(id),
            bold: false,
        })
    }

    pub(crate) fn parse(xml: &[u8], part: &str) -> Result<Styles, ParseError> {
        let mut reader = NsReader::from_reader(xml);
        let mut raw: HashMap<String, Raw> = HashMap::new();
        let mut current: Option<(String, Raw)> = None;
        let mut in_rpr = false;
        loop {
            let (ns, event) = reader
                .read_resolved_event()
                .map_err(|e| malformed(part, e))?;
            let ns = ns_of(&ns);
            match event {
                Event::Eof => break,
                Event::Start(e) | Event::Empty(e) if ns == Ns::Word => {
                    match e.local_name().as_ref() {
                        b"style" => {
                            let is_para = attr(&e, b"type").is_none_or(|t| t == "paragraph");
                            current = attr(&e, b"styleId")
                                .filter(|_| is_para)
                                .map(|id| (id, Raw::default()));
                        }
                        b"rPr" => in_rpr = true,
                        b"name" => {
                            if let (Some((_, r)), Some(v)) = (&mut current, attr(&e, b"val")) {
                                r.name = v;
                            }
                        }
                        b"basedOn" => {
                            if let Some((_, r)) = &mut current {
                                r.based_on = attr(&e, b"val");
                            }
                        }
                        b"outlineLvl" => {
                            if let Some((_, r)) = &mut current {
                                r.outline = attr(&e, b"val").and_then(|v| v.parse().ok());
                            }
                        }
                        b"b" if in_rpr => {
                            if let Some((_, r)) = &mut current {
                                r.bold = Some(is_on(&e));
                            }
                        }
                        _ => {}
                    }
                }
                Event::End(e) if ns == Ns::Word => match e.local_name().as_ref() {
                    b"style" => {
                        if let Some((id, r)) = current.take() {
                            raw.insert(id, r);
                        }
                    }
                    b"rPr" => in_rpr = false,
                    _ => {}
                },
                _ => {}
            }
        }
        let resolved = raw
            .keys()
            .map(|id| (id.clone(), resolve(&raw, id)))
            .collect();
        Ok(Styles(resolved))
    }
}

/// Follows `basedOn` (at most 16 steps: chains may loop) for the first level and bold set.
fn resolve(raw: &HashMap<String, Raw>, id: &str) -> Style {
    let mut level = None;
    let mut bold = None;
    let mut cur = raw.get(id);
    for _ in 0..16 {
        let Some(r) = cur else { break };
        level = level
            .or_else(|| level_from_name(&r.name))
            .or_else(|| r.outline.filter(|&o| o < 9).map(|o| o + 1));
        bold = bold.or(r.bold);
        cur = r.based_on.as_ref().and_then(|b| raw.get(b));
    }
    Style {
        level,
        bold: bold.unwrap_or(false),
    }
}

/// "heading 2" / "Heading2" → 2, "Title" → 1.
fn level_from_name(name: &str) -> Option<u8> {
    let lower = name.to_ascii_lowercase().replace(' ', "");
    if lower == "title" {
        return Some(1);
    }
    let n: u8 = lower.strip_prefix("heading")?.parse().ok()?;
    (1..=9).contains(&n).then_some(n)
}

/// (relationship type's last segment, target) of a `.rels` part.
pub(crate) fn relationships(xml: &[u8], part: &str) -> Result<Vec<(String, String)>, ParseError> {
    let mut reader = NsReader::from_reader(xml);
    let mut out = Vec::new();
    loop {
        match reader.read_event().map_err(|e| malformed(part, e))? {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) if e.local_name().as_ref() == b"Relationship" => {
                if attr(&e, b"TargetMode").as_deref() == Some("External") {
                    continue;
                }
                if let (Some(t), Some(target)) = (attr(&e, b"Type"), attr(&e, b"Target")) {
                    let kind = t.rsplit('/').next().unwrap_or_default().to_owned();
                    out.push((kind, target));
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Resolves a relationship target against the folder of the part that names it.
pub(crate) fn resolve_target(base_dir: &str, target: &str) -> String {
    if let Some(abs) = target.strip_prefix('/') {
        return abs.to_owned();
    }
    let mut parts: Vec<&str> = base_dir.split('/').filter(|p| !p.is_empty()).collect();
    for seg in target.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heading_styles_by_name_outline_and_inheritance() {
        let xml = br#"<w:styles xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">
          <w:style w:type="paragraph" w:styleId="berschrift1"><w:name w:val="heading 1"/><w:rPr><w:b/></w:rPr></w:style>
          <w:style w:type="paragraph" w:styleId="Custom"><w:name w:val="Custom"/><w:basedOn w:val="berschrift1"/><w:rPr><w:b w:val="0"/></w:rPr></w:style>
          <w:style w:type="paragraph" w:styleId="Outline"><w:name w:val="Mine"/><w:pPr><w:outlineLvl w:val="2"/></w:pPr></w:style>
          <w:style w:type="paragraph" w:styleId="Loop"><w:basedOn w:val="Loop"/></w:style>
          <w:style w:type="character" w:styleId="Heading1Char"><w:name w:val="heading 1 char"/></w:style>
        </w:styles>"#;
        let s = Styles::parse(xml, "styles.xml").unwrap();
        assert_eq!(
            s.get("berschrift1"),
            Style {
                level: Some(1),
                bold: true
            }
        );
        assert_eq!(
            s.get("Custom"),
            Style {
                level: Some(1),
                bold: false
            }
        );
        assert_eq!(s.get("Outline").level, Some(3));
        assert_eq!(s.get("Loop"), Style::default());
        assert_eq!(
            s.get("Heading4").level,
            Some(4),
            "known ids without a styles part"
        );
        assert_eq!(s.get("Heading1Char").level, None);
    }

    #[test]
    fn relationship_targets() {
        assert_eq!(resolve_target("word", "header1.xml"), "word/header1.xml");
        assert_eq!(resolve_target("", "word/document.xml"), "word/document.xml");
        assert_eq!(
            resolve_target("word", "../customXml/a.xml"),
            "customXml/a.xml"
        );
        assert_eq!(
            resolve_target("word", "/word/footer.xml"),
            "word/footer.xml"
        );
        let rels = br#"<Relationships xmlns="x"><Relationship Id="r1" Type="http://s/officeDocument/2006/relationships/header" Target="header2.xml"/><Relationship Id="r2" Type="http://s/hyperlink" Target="http://e" TargetMode="External"/></Relationships>"#;
        assert_eq!(
            relationships(rels, "r").unwrap(),
            vec![("header".to_string(), "header2.xml".to_string())]
        );
    }
}
