//! The WordprocessingML of a body, header, footer or notes part → paragraphs and tables in
//! document order. Text is `w:t` (deleted text, field codes and `mc:Fallback` copies are
//! not); tabs become spaces, line breaks newlines. Images carry no text and vanish; text
//! boxes inside drawings are kept as paragraphs of their own.

use quick_xml::events::{BytesStart, Event};
use quick_xml::NsReader;

use super::styles::Styles;
use super::xml::{attr, entity_text, is_on, malformed, ns_of, Ns};
use crate::error::ParseError;
use crate::limits::Limits;

/// One paragraph: its text, heading level, whether it is a list item, and how much of its
/// text is bold (the speaker line of a transcript is).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Para {
    pub text: String,
    pub level: Option<u8>,
    pub list: bool,
    pub bold_chars: usize,
    pub plain_chars: usize,
}

impl Para {
    /// All its visible text is bold.
    pub(crate) fn all_bold(&self) -> bool {
        self.bold_chars > 0 && self.plain_chars == 0
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Item {
    Para(Para),
    /// Rows of cells; a cell's paragraphs are joined by spaces.
    Table(Vec<Vec<String>>),
}

#[derive(Default)]
struct Table {
    rows: Vec<Vec<String>>,
    row: Option<Vec<String>>,
    cell: Option<String>,
}

#[derive(Default)]
struct State {
    out: Vec<Item>,
    paras: Vec<Para>,
    para_style_bold: Vec<bool>,
    tables: Vec<Table>,
    /// Inside `w:r`: (bold from run properties, bold set explicitly).
    run_bold: Option<bool>,
    in_run_props: bool,
    in_para_props: bool,
    in_text: bool,
}

impl State {
    fn push_text(&mut self, s: &str) {
        let style_bold = self.para_style_bold.last().copied().unwrap_or(false);
        let bold = self.run_bold.unwrap_or(style_bold);
        if let Some(p) = self.paras.last_mut() {
            p.text.push_str(s);
            let n = s.chars().filter(|c| !c.is_whitespace()).count();
            if bold {
                p.bold_chars += n;
            } else {
                p.plain_chars += n;
            }
        }
    }

    fn end_para(&mut self) {
        let Some(mut p) = self.paras.pop() else {
            return;
        };
        self.para_style_bold.pop();
        p.text = p.text.trim().to_owned();
        if let Some(cell) = self.tables.last_mut().and_then(|t| t.cell.as_mut()) {
            // inside a table cell: the cell's text
            if !p.text.is_empty() {
                if !cell.is_empty() {
                    cell.push(' ');
                }
                cell.push_str(&p.text.replace('\n', " "));
            }
        } else if !p.text.is_empty() {
            self.out.push(Item::Para(p));
        }
    }

    fn end_table(&mut self) {
        let Some(t) = self.tables.pop() else {
            return;
        };
        let rows: Vec<Vec<String>> = t
            .rows
            .into_iter()
            .filter(|r| r.iter().any(|c| !c.is_empty()))
            .collect();
        match self.tables.last_mut().and_then(|p| p.cell.as_mut()) {
            // a nested table is flattened into the enclosing cell
            Some(cell) => {
                for r in rows {
                    if !cell.is_empty() {
                        cell.push(' ');
                    }
                    cell.push_str(&r.join(" "));
                }
            }
            None if !rows.is_empty() => self.out.push(Item::Table(rows)),
            None => {}
        }
    }

    fn start(&mut self, e: &BytesStart<'_>, styles: &Styles, empty: bool) {
        match e.local_name().as_ref() {
            b"p" if !empty => {
                self.paras.push(Para::default());
                self.para_style_bold.push(false);
            }
            b"pPr" => self.in_para_props = !empty,
            b"pStyle" if self.in_para_props => {
                if let (Some(p), Some(id)) = (self.paras.last_mut(), attr(e, b"val")) {
                    let style = styles.get(&id);
                    p.level = p.level.or(style.level);
                    if let Some(b) = self.para_style_bold.last_mut() {
                        *b = style.bold;
                    }
                }
            }
            b"outlineLvl" if self.in_para_props => {
                let lvl = attr(e, b"val").and_then(|v| v.parse::<u8>().ok());
                if let (Some(p), Some(l)) = (self.paras.last_mut(), lvl.filter(|&l| l < 9)) {
                    p.level = Some(l + 1);
                }
            }
            b"numPr" if self.in_para_props => {
                if let Some(p) = self.paras.last_mut() {
                    p.list = true;
                }
            }
            b"r" => self.run_bold = None,
            b"rPr" if !self.in_para_props => self.in_run_props = !empty,
            b"b" if self.in_run_props => self.run_bold = Some(is_on(e)),
            b"t" => self.in_text = !empty,
            b"tab" if !self.in_para_props => self.push_text(" "),
            b"br" | b"cr" => self.push_text("\n"),
            b"noBreakHyphen" => self.push_text("-"),
            b"tbl" if !empty => self.tables.push(Table::default()),
            b"tr" if !empty => {
                if let Some(t) = self.tables.last_mut() {
                    t.row = Some(Vec::new());
                }
            }
            b"tc" => {
                if let Some(t) = self.tables.last_mut() {
                    t.cell = Some(String::new());
                    if empty {
                        close_cell(t);
                    }
                }
            }
            _ => {}
        }
    }

    fn end(&mut self, local: &[u8]) {
        match local {
            b"p" => self.end_para(),
            b"pPr" => self.in_para_props = false,
            b"rPr" => self.in_run_props = false,
            b"r" => self.run_bold = None,
            b"t" => self.in_text = false,
            b"tc" => {
                if let Some(t) = self.tables.last_mut() {
                    close_cell(t);
                }
            }
            b"tr" => {
                if let Some(t) = self.tables.last_mut() {
                    if let Some(row) = t.row.take() {
                        t.rows.push(row);
                    }
                }
            }
            b"tbl" => self.end_table(),
            _ => {}
        }
    }
}

fn close_cell(t: &mut Table) {
    if let Some(c) = t.cell.take() {
        t.row.get_or_insert_with(Vec::new).push(c);
    }
}

/// Paragraphs and tables of one part.
pub(crate) fn read_part(
    xml: &[u8],
    part: &str,
    styles: &Styles,
    limits: &Limits,
) -> Result<Vec<Item>, ParseError> {
    let mut reader = NsReader::from_reader(xml);
    let mut st = State::default();
    // depth of an `mc:Fallback` being skipped (it repeats the `mc:Choice` content)
    let mut skip: usize = 0;
    let mut events = 0u32;
    let mut depth = 0usize;
    loop {
        events = events.wrapping_add(1);
        if events.is_multiple_of(65_536) {
            limits.check_time()?;
        }
        let (ns, event) = reader
            .read_resolved_event()
            .map_err(|e| malformed(part, e))?;
        let ns = ns_of(&ns);
        match event {
            Event::Start(_) => depth += 1,
            Event::End(_) => depth = depth.saturating_sub(1),
            Event::Eof if depth > 0 => {
                return Err(malformed(part, "it ends before its elements are closed"))
            }
            _ => {}
        }
        if skip > 0 {
            match event {
                Event::Start(_) => skip += 1,
                Event::End(_) => skip -= 1,
                Event::Eof => break,
                _ => {}
            }
            continue;
        }
        match event {
            Event::Eof => break,
            Event::Start(e) if ns == Ns::MarkupCompat && e.local_name().as_ref() == b"Fallback" => {
                skip = 1;
            }
            Event::Start(e) if ns == Ns::Word => st.start(&e, styles, false),
            Event::Empty(e) if ns == Ns::Word => st.start(&e, styles, true),
            Event::End(e) if ns == Ns::Word => st.end(e.local_name().as_ref()),
            Event::Text(t) if st.in_text => {
                let s = t.decode().map_err(|e| malformed(part, e))?;
                st.push_text(&s);
            }
            Event::CData(t) if st.in_text => {
                let s = t.decode().map_err(|e| malformed(part, e))?;
                st.push_text(&s);
            }
            Event::GeneralRef(r) if st.in_text => {
                if let Some(s) = entity_text(&r) {
                    st.push_text(&s);
                }
            }
            _ => {}
        }
    }
    Ok(st.out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: &str = r#"xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006""#;

    fn items(body: &str) -> Vec<Item> {
        let xml = format!("<w:document {W}><w:body>{body}</w:body></w:document>");
        read_part(xml.as_bytes(), "t", &Styles::default(), &Limits::default()).unwrap()
    }

    fn para(text: &str) -> Item {
        Item::Para(Para {
            text: text.into(),
            plain_chars: text.chars().filter(|c| !c.is_whitespace()).count(),
            ..Para::default()
        })
    }

    #[test]
    fn paragraphs_runs_breaks_and_skipped_parts() {
        let got = items(
            r#"<w:p><w:pPr><w:pStyle w:val="Heading2"/></w:pPr><w:r><w:t>Intro</w:t></w:r></w:p>
               <w:p><w:r><w:t xml:space="preserve">Tom &amp; </w:t></w:r><w:r><w:tab/><w:t>Jerry</w:t><w:br/><w:t>next</w:t></w:r>
                 <w:r><w:delText>deleted</w:delText><w:instrText>PAGE</w:instrText></w:r></w:p>
               <w:p/><w:p><w:r><w:t>  </w:t></w:r></w:p>
               <w:p><w:pPr><w:numPr><w:ilvl w:val="0"/></w:numPr></w:pPr><w:r><w:t>item</w:t></w:r></w:p>
               <w:p><mc:AlternateContent><mc:Choice><w:r><w:t>once</w:t></w:r></mc:Choice><mc:Fallback><w:r><w:t>once</w:t></w:r></mc:Fallback></mc:AlternateContent></w:p>"#,
        );
        let texts: Vec<_> = got
            .iter()
            .map(|i| match i {
                Item::Para(p) => (p.text.clone(), p.level, p.list),
                Item::Table(_) => panic!(),
            })
            .collect();
        assert_eq!(
            texts,
            vec![
                ("Intro".to_string(), Some(2), false),
                ("Tom &  Jerry\nnext".to_string(), None, false),
                ("item".to_string(), None, true),
                ("once".to_string(), None, false),
            ]
        );
    }

    #[test]
    fn tables_rows_cells_and_nesting() {
        let cell = |t: &str| format!("<w:tc><w:p><w:r><w:t>{t}</w:t></w:r></w:p></w:tc>");
        let nested = format!(
            "<w:tc><w:p><w:r><w:t>outer</w:t></w:r></w:p><w:tbl><w:tr>{}{}</w:tr></w:tbl></w:tc>",
            cell("in1"),
            cell("in2")
        );
        let body = format!(
            "<w:p><w:r><w:t>before</w:t></w:r></w:p><w:tbl><w:tr>{}{}</w:tr><w:tr>{}<w:tc/></w:tr><w:tr><w:tc/><w:tc/></w:tr><w:tr>{}{}</w:tr></w:tbl>",
            cell("Name"),
            cell("Age"),
            cell("Ann"),
            nested,
            cell("x")
        );
        assert_eq!(
            items(&body),
            vec![
                para("before"),
                Item::Table(vec![
                    vec!["Name".into(), "Age".into()],
                    vec!["Ann".into(), "".into()],
                    vec!["outer in1 in2".into(), "x".into()],
                ])
            ]
        );
    }

    #[test]
    fn bold_runs_and_styles() {
        let got = items(
            r#"<w:p><w:r><w:rPr><w:b/></w:rPr><w:t>Ann Lee  0:03</w:t></w:r></w:p>
               <w:p><w:r><w:rPr><w:b/></w:rPr><w:t>half</w:t></w:r><w:r><w:rPr><w:b w:val="false"/></w:rPr><w:t>plain</w:t></w:r></w:p>"#,
        );
        let bold: Vec<bool> = got
            .iter()
            .map(|i| matches!(i, Item::Para(p) if p.all_bold()))
            .collect();
        assert_eq!(bold, vec![true, false]);
    }

    #[test]
    fn malformed_xml_is_corrupt() {
        let truncated = read_part(
            b"<w:document><w:body><w:p>",
            "word/document.xml",
            &Styles::default(),
            &Limits::default(),
        );
        assert!(truncated.is_err());
        let e = read_part(
            b"<w:document><w:body><w:p></w:body>",
            "word/document.xml",
            &Styles::default(),
            &Limits::default(),
        )
        .unwrap_err();
        assert_eq!(e.kind, crate::error::ParseErrorKind::Corrupt);
        assert!(e.message.contains("word/document.xml"), "{e}");
    }
}
