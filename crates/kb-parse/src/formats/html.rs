//! HTML, parsed as browsers do (html5ever, so broken markup still gives its text): headings
//! `h1`-`h6`, paragraphs (any block element's inline text), list items (`- item`),
//! preformatted text as code, tables as [`BlockKind::Table`] (one `cell | cell` line per
//! row). Scripts, styles, templates, `noscript`, embedded SVG/MathML, form controls and
//! `hidden` elements are dropped. The title is `<title>`, else the first heading. The
//! document's date comes from `<meta>` tags (see [`DATE_META`]).

use ego_tree::iter::Edge;
use ego_tree::NodeId;
use scraper::{Html, Node};

use super::decode_text;
use crate::error::ParseError;
use crate::limits::Limits;
use crate::structured::{Block, BlockKind, FormatReader, StructuredText};

pub struct HtmlReader;

/// Elements whose content is no document text.
const SKIPPED: &[&str] = &[
    "script", "style", "noscript", "template", "svg", "math", "iframe", "object", "embed",
    "canvas", "select", "textarea", "head", "audio", "video", "map",
];

/// Elements that end the running paragraph (inline elements do not).
const BLOCKS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "body",
    "caption",
    "center",
    "dd",
    "details",
    "dialog",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "header",
    "hgroup",
    "hr",
    "html",
    "legend",
    "li",
    "main",
    "nav",
    "ol",
    "p",
    "section",
    "summary",
    "ul",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "pre",
    "table",
    "tr",
    "td",
    "th",
    "thead",
    "tbody",
    "tfoot",
];

impl FormatReader for HtmlReader {
    fn parser_name(&self) -> &'static str {
        "html/1"
    }

    fn read_limited(&self, bytes: &[u8], limits: &Limits) -> Result<StructuredText, ParseError> {
        let source = decode_text(bytes)?;
        let html = Html::parse_document(&source);
        limits.check_time()?;
        let mut w = Walker {
            title: title_element(&html),
            ..Walker::default()
        };
        let mut skip: Option<NodeId> = None;
        for (n, edge) in html.tree.root().traverse().enumerate() {
            if n % 65_536 == 65_535 {
                limits.check_time()?;
            }
            match edge {
                Edge::Open(node) => {
                    if skip.is_some() {
                        continue;
                    }
                    match node.value() {
                        Node::Text(t) => w.text(t),
                        Node::Element(e) => {
                            let name = e.name();
                            if SKIPPED.contains(&name) || e.attr("hidden").is_some() {
                                skip = Some(node.id());
                                continue;
                            }
                            w.open(name);
                        }
                        _ => {}
                    }
                }
                Edge::Close(node) => {
                    if skip == Some(node.id()) {
                        skip = None;
                        continue;
                    }
                    if skip.is_none() {
                        if let Node::Element(e) = node.value() {
                            w.close(e.name());
                        }
                    }
                }
            }
        }
        w.flush();
        let date_unix_ms = meta_date(&html);
        let title = w.title.clone().or_else(|| {
            w.blocks.iter().find_map(|b| match b.kind {
                BlockKind::Heading { .. } => Some(w.out[b.start..b.end].to_owned()),
                _ => None,
            })
        });
        Ok(StructuredText {
            text: w.out,
            blocks: w.blocks,
            title,
            parser: None,
            date_unix_ms,
        })
    }
}

#[derive(Default)]
struct Table {
    rows: Vec<Vec<String>>,
    row: Option<Vec<String>>,
    cell: Option<String>,
}

#[derive(Default)]
struct Walker {
    out: String,
    blocks: Vec<Block>,
    /// Inline text of the running paragraph, whitespace as in the source.
    buf: String,
    kind: Option<BlockKind>,
    pre: usize,
    list_item: bool,
    tables: Vec<Table>,
    title: Option<String>,
}

impl Walker {
    /// Source text: line breaks are plain whitespace outside `<pre>`.
    fn text(&mut self, t: &str) {
        if self.pre == 0 && t.contains(['\n', '\r']) {
            self.raw(&t.replace(['\n', '\r'], " "));
        } else {
            self.raw(t);
        }
    }

    fn raw(&mut self, t: &str) {
        if let Some(cell) = self.tables.last_mut().and_then(|t| t.cell.as_mut()) {
            cell.push_str(t);
        } else if !self.tables.is_empty() {
            // text between cells (whitespace, stray text) belongs to no cell
        } else {
            self.buf.push_str(t);
        }
    }

    fn open(&mut self, name: &str) {
        if name == "br" {
            self.raw("\n");
            return;
        }
        if let Some(cell) = self.tables.last_mut().and_then(|t| t.cell.as_mut()) {
            // block structure inside a cell only separates words
            if BLOCKS.contains(&name) && name != "table" {
                cell.push(' ');
                return;
            }
        }
        match name {
            "table" => {
                self.flush();
                self.tables.push(Table::default());
            }
            "tr" => {
                if let Some(t) = self.tables.last_mut() {
                    close_cell(t);
                    close_row(t);
                    t.row = Some(Vec::new());
                }
            }
            "td" | "th" => {
                if let Some(t) = self.tables.last_mut() {
                    close_cell(t);
                    t.cell = Some(String::new());
                }
            }
            _ if BLOCKS.contains(&name) => {
                self.flush();
                match name {
                    "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                        let level = name.as_bytes()[1] - b'0';
                        self.kind = Some(BlockKind::Heading { level });
                    }
                    "pre" => {
                        self.pre += 1;
                        self.kind = Some(BlockKind::Code);
                    }
                    "li" => self.list_item = true,
                    _ => {}
                }
            }
            _ => {}
        }
    }

    fn close(&mut self, name: &str) {
        match name {
            "table" => {
                if let Some(mut t) = self.tables.pop() {
                    close_cell(&mut t);
                    close_row(&mut t);
                    self.end_table(t);
                }
            }
            "tr" => {
                if let Some(t) = self.tables.last_mut() {
                    close_cell(t);
                    close_row(t);
                }
            }
            "td" | "th" => {
                if let Some(t) = self.tables.last_mut() {
                    close_cell(t);
                }
            }
            _ if !self.tables.is_empty() => {}
            _ if BLOCKS.contains(&name) => {
                self.flush();
                if name == "pre" {
                    self.pre = self.pre.saturating_sub(1);
                }
            }
            _ => {}
        }
    }

    fn end_table(&mut self, t: Table) {
        let rows: Vec<String> = t
            .rows
            .iter()
            .map(|r| r.iter().map(|c| collapse(c)).collect::<Vec<_>>())
            .filter(|r| r.iter().any(|c| !c.is_empty()))
            .map(|r| r.join(" | "))
            .collect();
        if let Some(cell) = self.tables.last_mut().and_then(|p| p.cell.as_mut()) {
            // a nested table is flattened into the enclosing cell
            for r in rows {
                cell.push(' ');
                cell.push_str(&r);
            }
        } else if !rows.is_empty() {
            self.push(BlockKind::Table, &rows.join("\n"));
        }
    }

    /// Ends the running paragraph (heading, code) as a block.
    fn flush(&mut self) {
        let kind = self.kind.take().unwrap_or(BlockKind::Paragraph);
        let buf = std::mem::take(&mut self.buf);
        let text = if kind == BlockKind::Code && self.pre > 0 {
            buf.trim_matches('\n').trim_end().to_owned()
        } else {
            buf.split('\n')
                .map(collapse)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join("\n")
        };
        if text.trim().is_empty() {
            return;
        }
        let text = match kind {
            BlockKind::Heading { .. } => collapse(&text),
            _ if std::mem::take(&mut self.list_item) => format!("- {text}"),
            _ => text,
        };
        self.push(kind, &text);
    }

    fn push(&mut self, kind: BlockKind, s: &str) {
        let start = self.out.len();
        self.out.push_str(s);
        self.blocks.push(Block {
            kind,
            start,
            end: self.out.len(),
        });
        self.out.push_str("\n\n");
    }
}

/// Text of the first `<title>`.
/// `<meta>` names and properties that date a page, most telling first (case-insensitive).
const DATE_META: [&str; 7] = [
    "article:published_time",
    "date",
    "dcterms.date",
    "dcterms.created",
    "dc.date",
    "dc.date.created",
    "citation_publication_date",
];

/// The date of the most telling `<meta name|property|itemprop=… content=…>` that holds one.
fn meta_date(html: &Html) -> Option<i64> {
    let mut best: Option<(usize, i64)> = None;
    for node in html.tree.nodes() {
        let Some(e) = node.value().as_element() else {
            continue;
        };
        if e.name() != "meta" {
            continue;
        }
        let Some(content) = e.attr("content") else {
            continue;
        };
        let rank = ["name", "property", "itemprop"]
            .into_iter()
            .filter_map(|a| e.attr(a))
            .filter_map(|key| {
                DATE_META
                    .iter()
                    .position(|k| key.trim().eq_ignore_ascii_case(k))
            })
            .min();
        let Some(rank) = rank.filter(|&r| best.is_none_or(|(b, _)| r < b)) else {
            continue;
        };
        if let Some(date) = crate::document_date::from_value(content) {
            best = Some((rank, date));
        }
    }
    best.map(|(_, d)| d)
}

fn title_element(html: &Html) -> Option<String> {
    let node = html
        .tree
        .nodes()
        .find(|n| n.value().as_element().is_some_and(|e| e.name() == "title"))?;
    let t: String = node
        .children()
        .filter_map(|c| c.value().as_text().map(|t| t.to_string()))
        .collect();
    Some(collapse(&t)).filter(|t| !t.is_empty())
}

fn close_cell(t: &mut Table) {
    if let Some(c) = t.cell.take() {
        t.row.get_or_insert_with(Vec::new).push(c);
    }
}

fn close_row(t: &mut Table) {
    if let Some(r) = t.row.take() {
        t.rows.push(r);
    }
}

/// Whitespace runs become one space, ends trimmed.
fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(src: &str) -> (Vec<String>, Option<String>) {
        let doc = HtmlReader.read(src.as_bytes()).unwrap();
        let blocks = doc
            .blocks
            .iter()
            .map(|b| {
                let tag = match b.kind {
                    BlockKind::Heading { level } => format!("H{level}"),
                    BlockKind::Code => "C".into(),
                    BlockKind::Table => "T".into(),
                    _ => "P".into(),
                };
                format!("{tag}:{}", doc.block_text(b))
            })
            .collect();
        (blocks, doc.title)
    }

    #[test]
    fn structure_and_dropped_parts() {
        let src = r#"<!DOCTYPE html><html><head><title> The  Page </title><style>p{}</style>
            <script>var x = "<p>no</p>";</script></head><body>
            <nav>Home</nav><h1>Main <em>topic</em></h1>
            <p>First   para with <b>bold</b>
               and a<br>break.</p><div>Loose text<p>inner para</p>tail</div>
            <ul><li>one</li><li>two <a href="x">link</a></li></ul>
            <pre>  code
    indented</pre>
            <table><caption>Ignored caption? no</caption>
              <tr><th>Name</th><th>City</th></tr>
              <tr><td>Ann <p>Lee</p></td><td>Oslo</td></tr>
              <tr><td></td><td></td></tr>
            </table>
            <div hidden>secret</div><noscript>enable js</noscript><template><p>t</p></template>
            <p>Unclosed <i>italic
            <h2>Next</h2>&amp; entities &lt;ok&gt;</body></html>"#;
        let (blocks, title) = show(src);
        assert_eq!(
            blocks,
            vec![
                "P:Home",
                "H1:Main topic",
                "P:First para with bold and a\nbreak.",
                "P:Loose text",
                "P:inner para",
                "P:tail",
                "P:- one",
                "P:- two link",
                "C:  code\n    indented",
                "T:Name | City\nAnn Lee | Oslo",
                "P:Unclosed italic",
                "H2:Next",
                "P:& entities <ok>",
            ]
        );
        assert_eq!(title.as_deref(), Some("The Page"));
    }

    #[test]
    fn fragments_and_nested_tables() {
        let (blocks, title) = show(
            "<p>a</p><table><tr><td>x<table><tr><td>in1</td><td>in2</td></tr></table></td><td>y</td></tr></table>",
        );
        assert_eq!(blocks, vec!["P:a", "T:x in1 | in2 | y"]);
        assert_eq!(title, None);
    }
}
