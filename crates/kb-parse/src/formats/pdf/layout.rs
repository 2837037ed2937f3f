//! Glyphs of a page → lines in reading order → paragraphs and headings.
//!
//! 1. Fragments: consecutive glyphs (content-stream order) on one baseline with no gap wider
//!    than [`SPLIT_GAP`] em, in either direction (right-to-left scripts may be drawn leftwards).
//! 2. Bands: fragments whose vertical extents overlap form a band (one visual row).
//! 3. Columns: a band with an inner gutter (a vertical strip of at least [`MIN_GUTTER`] em
//!    without ink) starts a column region that goes on down while no band crosses that
//!    gutter; when both sides hold prose (at least 3 fragments each, median width at least
//!    [`MIN_COLUMN_WIDTH`] em) each side is read whole, left side first (right first on a
//!    page written mostly right to left), and recursively for columns within columns. Tables
//!    (narrow cells) stay row by row. So columns are never interleaved line by line, whatever
//!    order the content stream draws them in.
//! 4. Rows: a band's fragments left to right, then the bidirectional text of the row is put
//!    in logical order (see [`super::bidi`]). A space goes where glyphs are apart by more than
//!    [`SPACE_GAP`] em or the stream drew a space.
//! 5. Paragraphs: consecutive rows of one column; a new paragraph starts after a vertical gap
//!    above 1.6 lines, at a font size change, at an indented first line, or after a short
//!    last line. Lines are joined by spaces; a word hyphenated across lines is rejoined.
//!    Paragraphs set in a font at least 15% larger than the document's body text and of at
//!    most 25 words are headings, level by size (largest first).
//! 6. Running headers and footers: a line among the top or bottom [`RUNNING_LINES_PER_EDGE`]
//!    of its page whose text, numbers aside, stands there on at least half the pages (two at
//!    least) is dropped, so that it neither cuts the sentences it falls between nor becomes
//!    the title.

use super::bidi;
use super::glyphs::Glyph;

/// Gap (in em of the font size) that ends a fragment.
const SPLIT_GAP: f64 = 0.9;
/// Gap (em) between glyphs that is a word space.
const SPACE_GAP: f64 = 0.15;
/// Narrowest gutter (em) between columns.
const MIN_GUTTER: f64 = 0.7;
/// Median line width (em) on each side of a gutter for the sides to be prose columns.
const MIN_COLUMN_WIDTH: f64 = 8.0;
/// Nesting of column regions considered.
const MAX_COLUMN_DEPTH: usize = 6;
/// Above this many fragments a page is read row by row without column detection (time).
const MAX_FRAGMENTS_FOR_COLUMNS: usize = 20_000;
/// Lines at the top and at the bottom of a page that may be running headers or footers.
const RUNNING_LINES_PER_EDGE: usize = 2;

/// Glyphs drawn one after another on one baseline.
#[derive(Debug, Clone)]
struct Frag {
    glyphs: Vec<Glyph>,
    u0: f64,
    u1: f64,
    v: f64,
    size: f64,
    /// Stream order is left to right (spaces drawn in the stream can be trusted).
    in_order: bool,
}

impl Frag {
    fn bottom(&self) -> f64 {
        self.v - 0.25 * self.size
    }
    fn top(&self) -> f64 {
        self.v + 0.8 * self.size
    }
    fn width(&self) -> f64 {
        self.u1 - self.u0
    }
}

/// A row of text on a page, with what paragraph building needs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Line {
    pub text: String,
    pub size: f64,
    pub u0: f64,
    pub u1: f64,
    pub v: f64,
    /// Lines of one column region (or of the page outside columns) share it.
    pub column: usize,
    /// The row's fragments: start, end, text (table cells when rows align).
    pub cells: Vec<(f64, f64, String)>,
}

/// A paragraph, heading or table candidate: text and font size.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Para {
    pub text: String,
    pub size: f64,
    /// Rows of aligned cells: `text` has one `cell | cell` line per row.
    pub table: bool,
}

fn fragments(glyphs: Vec<Glyph>) -> Vec<Frag> {
    let mut out: Vec<Frag> = Vec::new();
    for g in glyphs {
        if let Some(f) = out.last_mut() {
            let last = f.glyphs.last();
            let same_line = last.is_some_and(|l| {
                let em = l.size.max(g.size);
                // after a glyph of unknown width the next may start anywhere within an em
                let forward = if has_width(l) {
                    g.u0 - l.u1
                } else {
                    (g.u0 - l.u0 - em).max(0.0)
                };
                let backward = l.u0 - g.u1;
                l.rot == g.rot
                    && (g.v - f.v).abs() <= 0.5 * em
                    && ((-0.6 * em..SPLIT_GAP * em).contains(&forward)
                        || (-0.6 * em..SPLIT_GAP * em).contains(&backward))
            });
            if same_line {
                f.in_order &= last.is_some_and(|l| g.u0 >= l.u0 - 0.3 * l.size);
                f.u0 = f.u0.min(g.u0);
                f.u1 = f.u1.max(g.u1);
                f.size = f.size.max(g.size);
                f.glyphs.push(g);
                continue;
            }
        }
        out.push(Frag {
            u0: g.u0,
            u1: g.u1,
            v: g.v,
            size: g.size,
            in_order: true,
            glyphs: vec![g],
        });
    }
    out
}

/// Whether the font gave the glyph a width (some fonts' width tables miss glyphs).
fn has_width(g: &Glyph) -> bool {
    g.u1 - g.u0 > 0.05 * g.size
}

/// Where a glyph ends, for gap measures. When its width is unknown it is taken as wide as
/// the widest letters (an em less a space), so only a clear jump reads as a space.
fn end_of(g: &Glyph) -> f64 {
    if has_width(g) {
        g.u1
    } else {
        g.u0 + (1.1 - SPACE_GAP) * g.size
    }
}

/// Visual tokens of a fragment: glyph texts left to right, `None` for a word space. When the
/// stream draws its spaces, those are trusted and only wide gaps add more (positions after
/// glyphs of unknown width say nothing); otherwise gaps of [`SPACE_GAP`] em are spaces.
fn tokens(f: &Frag) -> Vec<Option<&Glyph>> {
    let mut order: Vec<&Glyph> = f.glyphs.iter().collect();
    if !f.in_order {
        order.sort_by(|a, b| a.u0.total_cmp(&b.u0));
    }
    let stream_spaces = f.in_order && f.glyphs.iter().any(|g| g.space_before);
    let mut out = Vec::with_capacity(order.len() * 2);
    for (i, g) in order.iter().enumerate() {
        if i > 0 {
            let prev = order[i - 1];
            let em = prev.size.max(g.size);
            let space = if stream_spaces {
                g.space_before || (has_width(prev) && g.u0 - prev.u1 > 0.6 * em)
            } else {
                g.u0 - end_of(prev) > SPACE_GAP * em
            };
            if space {
                out.push(None);
            }
        }
        out.push(Some(*g));
    }
    out
}

/// Bands: groups of fragments whose vertical extents overlap, top to bottom.
fn bands(frags: &[Frag], ids: &[usize]) -> Vec<Vec<usize>> {
    let mut sorted: Vec<usize> = ids.to_vec();
    sorted.sort_by(|&a, &b| frags[b].top().total_cmp(&frags[a].top()));
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut floor = f64::INFINITY;
    for id in sorted {
        let f = &frags[id];
        // overlapping the running band by at least a third of the smaller height
        let overlap = floor.is_finite() && f.top() - floor > 0.33 * (f.top() - f.bottom());
        match out.last_mut() {
            Some(band) if overlap => {
                band.push(id);
                floor = floor.min(f.bottom());
            }
            _ => {
                out.push(vec![id]);
                floor = f.bottom();
            }
        }
    }
    out
}

/// Inner gutters of a band: (start, end) of gaps between its fragments' extents.
fn gutters(frags: &[Frag], band: &[usize], em: f64) -> Vec<(f64, f64)> {
    let mut spans: Vec<(f64, f64)> = band.iter().map(|&i| (frags[i].u0, frags[i].u1)).collect();
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out = Vec::new();
    let mut reach = f64::NEG_INFINITY;
    for (s, e) in spans {
        if reach.is_finite() && s - reach >= MIN_GUTTER * em {
            out.push((reach, s));
        }
        reach = reach.max(e);
    }
    out.sort_by(|a, b| (b.1 - b.0).total_cmp(&(a.1 - a.0)));
    out
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

struct Orderer<'a> {
    frags: &'a [Frag],
    rtl_page: bool,
    /// Reading order: (fragment ids of one row, column id).
    rows: Vec<(Vec<usize>, usize)>,
    columns: usize,
}

impl Orderer<'_> {
    fn order(&mut self, ids: &[usize], depth: usize) {
        let column = self.columns;
        self.columns += 1;
        let em = median(ids.iter().map(|&i| self.frags[i].size).collect()).max(1.0);
        let bands = bands(self.frags, ids);
        let mut i = 0;
        while i < bands.len() {
            let region = (depth < MAX_COLUMN_DEPTH)
                .then(|| self.column_region(&bands, i, em))
                .flatten();
            match region {
                Some((end, left, right)) => {
                    let (first, second) = if self.rtl_page {
                        (right, left)
                    } else {
                        (left, right)
                    };
                    self.order(&first, depth + 1);
                    self.order(&second, depth + 1);
                    i = end;
                }
                None => {
                    let mut row = bands[i].clone();
                    row.sort_by(|&a, &b| self.frags[a].u0.total_cmp(&self.frags[b].u0));
                    self.rows.push((row, column));
                    i += 1;
                }
            }
        }
    }

    /// A column region starting at band `start`: (end band, left ids, right ids).
    fn column_region(
        &self,
        bands: &[Vec<usize>],
        start: usize,
        em: f64,
    ) -> Option<(usize, Vec<usize>, Vec<usize>)> {
        let frags = self.frags;
        let tol = 0.25 * em;
        for (mut g0, mut g1) in gutters(frags, &bands[start], em) {
            let mut end = start + 1;
            // the gutter narrows to what later bands leave free; a band that fills it ends
            // the region
            'bands: while end < bands.len() {
                let (mut n0, mut n1) = (g0, g1);
                for &i in &bands[end] {
                    let f = &frags[i];
                    if f.u1 <= n0 + tol || f.u0 >= n1 - tol {
                        continue;
                    }
                    if f.u0 < n0 && f.u1 < n1 {
                        n0 = f.u1;
                    } else if f.u1 > n1 && f.u0 > n0 {
                        n1 = f.u0;
                    } else {
                        break 'bands;
                    }
                }
                if n1 - n0 < MIN_GUTTER * em {
                    break;
                }
                (g0, g1) = (n0, n1);
                end += 1;
            }
            let (left, right): (Vec<usize>, Vec<usize>) = bands[start..end]
                .iter()
                .flatten()
                .partition(|&&i| frags[i].u1 <= g0 + tol);
            let prose = |side: &[usize]| {
                side.len() >= 3
                    && median(side.iter().map(|&i| frags[i].width()).collect())
                        >= MIN_COLUMN_WIDTH * em
            };
            if end - start >= 3 && prose(&left) && prose(&right) {
                return Some((end, left, right));
            }
        }
        None
    }
}

/// Rows of one page in reading order, bidirectional text resolved.
pub(crate) fn page_lines(glyphs: Vec<Glyph>, first_column: usize) -> (Vec<Line>, usize) {
    let rtl_page = bidi::mostly_rtl(glyphs.iter().map(|g| g.text.as_str()));
    let mut by_rot: [Vec<Glyph>; 5] = Default::default();
    for g in glyphs {
        by_rot[usize::from(g.rot.min(4))].push(g);
    }
    let mut lines = Vec::new();
    let mut column = first_column;
    for (rot, glyphs) in by_rot.into_iter().enumerate() {
        if glyphs.is_empty() {
            continue;
        }
        let frags = fragments(glyphs);
        let ids: Vec<usize> = (0..frags.len()).collect();
        let rows: Vec<(Vec<usize>, usize)> = if rot == 4 || frags.len() > MAX_FRAGMENTS_FOR_COLUMNS
        {
            // slanted text (watermarks) and huge pages: stream order
            ids.into_iter().map(|i| (vec![i], 0)).collect()
        } else {
            let mut o = Orderer {
                frags: &frags,
                rtl_page,
                rows: Vec::new(),
                columns: 0,
            };
            o.order(&ids, 0);
            o.rows
        };
        let mut max_col = 0;
        for (row, col) in rows {
            max_col = max_col.max(col);
            let mut toks: Vec<Option<&Glyph>> = Vec::new();
            for (k, &fi) in row.iter().enumerate() {
                if k > 0 {
                    toks.push(None);
                }
                toks.extend(tokens(&frags[fi]));
            }
            let text = bidi::logical_text(&toks);
            if text.trim().is_empty() {
                continue;
            }
            let cells = row
                .iter()
                .map(|&i| {
                    let f = &frags[i];
                    (f.u0, f.u1, bidi::logical_text(&tokens(f)))
                })
                .collect();
            let fs = || row.iter().map(|&i| &frags[i]);
            lines.push(Line {
                text,
                size: median(fs().map(|f| f.size).collect()),
                u0: fs().map(|f| f.u0).fold(f64::INFINITY, f64::min),
                u1: fs().map(|f| f.u1).fold(f64::NEG_INFINITY, f64::max),
                v: fs().map(|f| f.v).fold(f64::INFINITY, f64::min),
                column: column + col,
                cells,
            });
        }
        column += max_col + 1;
    }
    // a page number alone on the first or last line is no text
    for at in [lines.len().wrapping_sub(1), 0] {
        if lines.get(at).is_some_and(|l| is_page_number(&l.text)) {
            lines.remove(at);
        }
    }
    (lines, column)
}

/// Drops running headers and footers from every page (step 6 of the module docs).
pub(crate) fn drop_running_lines(pages: &mut [Vec<Line>]) {
    use std::collections::{HashMap, HashSet};
    if pages.len() < 2 {
        return;
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    for lines in pages.iter() {
        let keys: HashSet<String> = edge_lines(lines)
            .into_iter()
            .map(|i| running_key(&lines[i].text))
            .collect();
        for k in keys {
            *seen.entry(k).or_default() += 1;
        }
    }
    let needed = pages.len().div_ceil(2).max(2);
    for lines in pages.iter_mut() {
        let drop: HashSet<usize> = edge_lines(lines)
            .into_iter()
            .filter(|&i| {
                let k = running_key(&lines[i].text);
                !k.is_empty() && seen.get(&k).is_some_and(|&n| n >= needed)
            })
            .collect();
        let mut i = 0;
        lines.retain(|_| {
            i += 1;
            !drop.contains(&(i - 1))
        });
    }
}

/// Indexes of the highest and lowest lines of a page.
fn edge_lines(lines: &[Line]) -> Vec<usize> {
    let mut by_height: Vec<usize> = (0..lines.len()).collect();
    by_height.sort_by(|&a, &b| lines[b].v.total_cmp(&lines[a].v));
    let n = RUNNING_LINES_PER_EDGE.min(by_height.len());
    let mut edges: Vec<usize> = by_height[..n].to_vec();
    edges.extend_from_slice(&by_height[by_height.len() - n..]);
    edges.sort_unstable();
    edges.dedup();
    edges
}

/// A line's text with spaces removed, letters lower-cased and every number one `#`, so that
/// `Page 3 of 40` and `Page 12 of 40` are the same footer.
fn running_key(text: &str) -> String {
    let mut key = String::new();
    for c in text.chars().filter(|c| !c.is_whitespace()) {
        if c.is_ascii_digit() {
            if !key.ends_with('#') {
                key.push('#');
            }
        } else {
            key.extend(c.to_lowercase());
        }
    }
    key
}

/// `7`, `- 7 -`, `Page 7`, `7 / 12`.
fn is_page_number(s: &str) -> bool {
    let t = s
        .trim()
        .trim_start_matches("Page")
        .trim_start_matches("page");
    let digits = t.chars().filter(char::is_ascii_digit).count();
    (1..=8).contains(&digits) && t.chars().all(|c| c.is_ascii_digit() || " -–/|".contains(c))
}

/// Rows of a table: both have several cells, and at least two cells of `b` line up (start,
/// end or middle within an em) with cells of `a`.
fn aligned(a: &Line, b: &Line) -> bool {
    if a.cells.len() < 2 || b.cells.len() < 2 {
        return false;
    }
    let em = a.size.max(b.size);
    let near = |x: f64, y: f64| (x - y).abs() < em;
    let matches = b
        .cells
        .iter()
        .filter(|c| {
            a.cells
                .iter()
                .any(|d| near(c.0, d.0) || near(c.1, d.1) || near(c.0 + c.1, d.0 + d.1))
        })
        .count();
    matches >= 2
}

fn table_row(l: &Line) -> String {
    l.cells
        .iter()
        .map(|c| c.2.as_str())
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Joins lines into paragraphs and tables (see the module docs).
pub(crate) fn paragraphs(lines: &[Line]) -> Vec<Para> {
    // A column's right edge: where its longest lines end, not counting the widest tenth (a
    // right-aligned footer or a wide caption would make every line of ragged-right text look
    // short, each its own paragraph).
    let mut ends: std::collections::HashMap<usize, Vec<f64>> = Default::default();
    for l in lines {
        ends.entry(l.column).or_default().push(l.u1);
    }
    let right_edge: std::collections::HashMap<usize, f64> = ends
        .into_iter()
        .map(|(column, mut u1)| {
            u1.sort_by(|a, b| b.total_cmp(a));
            (column, u1[u1.len() / 10])
        })
        .collect();
    let mut out: Vec<Para> = Vec::new();
    // lines in the last paragraph
    let mut count = 0usize;
    let mut prev: Option<&Line> = None;
    for l in lines {
        if let (Some(p), Some(para)) = (prev, out.last_mut()) {
            if p.column == l.column && aligned(p, l) && (para.table || count == 1) {
                if !para.table {
                    para.table = true;
                    para.text = table_row(p);
                }
                para.text.push('\n');
                para.text.push_str(&table_row(l));
                count += 1;
                prev = Some(l);
                continue;
            }
        }
        let starts = match (prev, out.last()) {
            (Some(p), Some(para)) => {
                let em = p.size.max(l.size);
                let edge = right_edge.get(&p.column).copied().unwrap_or(p.u1);
                para.table
                    || p.column != l.column
                    || (p.v - l.v) > 1.6 * em
                    || l.v > p.v + 0.5 * em
                    || (l.size - p.size).abs() > 0.15 * p.size.min(l.size)
                    || l.u0 > p.u0 + 0.8 * em
                    || p.u1 < edge - 4.0 * em
            }
            _ => true,
        };
        match out.last_mut() {
            Some(para) if !starts => {
                join_line(&mut para.text, &l.text);
                count += 1;
            }
            _ => {
                out.push(Para {
                    text: l.text.clone(),
                    size: l.size,
                    table: false,
                });
                count = 1;
            }
        }
        prev = Some(l);
    }
    out
}

/// Appends a line to a paragraph, rejoining `hyphen-` / `ated` words.
fn join_line(para: &mut String, line: &str) {
    let hyphenated = para.ends_with('-')
        && para.chars().rev().nth(1).is_some_and(char::is_alphabetic)
        && line.chars().next().is_some_and(char::is_lowercase);
    if hyphenated {
        para.pop();
    } else {
        para.push(' ');
    }
    para.push_str(line);
}

/// Heading levels for paragraph sizes: sizes at least 15% above `body` with few words get
/// levels by rank, largest = 1.
pub(crate) fn heading_levels(paras: &[Para], body: f64) -> Vec<Option<u8>> {
    let is_heading = |p: &Para| {
        !p.table && body > 0.0 && p.size >= 1.15 * body && p.text.split_whitespace().count() <= 25
    };
    let mut sizes: Vec<f64> = paras
        .iter()
        .filter(|p| is_heading(p))
        .map(|p| (p.size * 2.0).round() / 2.0)
        .collect();
    sizes.sort_by(|a, b| b.total_cmp(a));
    sizes.dedup();
    paras
        .iter()
        .map(|p| {
            if !is_heading(p) {
                return None;
            }
            let s = (p.size * 2.0).round() / 2.0;
            let rank = sizes.iter().position(|&x| x == s).unwrap_or(0);
            Some(u8::try_from(rank + 1).unwrap_or(6).min(6))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A word drawn glyph by glyph, 0.5 em per glyph.
    fn word(out: &mut Vec<Glyph>, text: &str, u: f64, v: f64, size: f64, space_before: bool) {
        for (i, c) in text.chars().enumerate() {
            let u0 = u + i as f64 * 0.5 * size;
            out.push(Glyph {
                u0,
                u1: u0 + 0.5 * size,
                v,
                size,
                text: c.to_string(),
                space_before: space_before && i == 0,
                rot: 0,
            });
        }
    }

    /// Words of a line, 0.3 em apart.
    fn line(out: &mut Vec<Glyph>, words: &[&str], u: f64, v: f64, size: f64) {
        let mut at = u;
        for (i, w) in words.iter().enumerate() {
            word(out, w, at, v, size, i > 0);
            at += (w.chars().count() as f64 * 0.5 + 0.3) * size;
        }
    }

    fn column_words(col: usize, line: usize) -> Vec<String> {
        (0..6).map(|w| format!("c{col}l{line}w{w}")).collect()
    }

    #[test]
    fn two_columns_drawn_row_by_row_are_read_column_by_column() {
        let mut g = Vec::new();
        line(
            &mut g,
            &["A", "Title", "Across", "The", "Page"],
            100.0,
            760.0,
            14.0,
        );
        for l in 0..8 {
            let v = 700.0 - l as f64 * 12.0;
            // left column line, then the right column line on the same baseline
            let left = column_words(0, l);
            let right = column_words(1, l);
            line(
                &mut g,
                &left.iter().map(String::as_str).collect::<Vec<_>>(),
                50.0,
                v,
                10.0,
            );
            line(
                &mut g,
                &right.iter().map(String::as_str).collect::<Vec<_>>(),
                320.0,
                v,
                10.0,
            );
        }
        let (lines, _) = page_lines(g, 0);
        let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts[0], "A Title Across The Page");
        let pos = |w: &str| texts.iter().position(|t| t.contains(w)).unwrap();
        // every left line before every right line
        assert!(pos("c0l7w0") < pos("c1l0w0"), "{texts:#?}");
        for l in 0..7 {
            assert!(pos(&format!("c0l{l}w0")) < pos(&format!("c0l{}w0", l + 1)));
            assert!(pos(&format!("c1l{l}w0")) < pos(&format!("c1l{}w0", l + 1)));
        }
        assert_eq!(texts[1], column_words(0, 0).join(" "));
    }

    #[test]
    fn tables_stay_row_by_row() {
        let mut g = Vec::new();
        for r in 0..5 {
            let v = 700.0 - r as f64 * 14.0;
            for c in 0..3 {
                word(
                    &mut g,
                    &format!("r{r}c{c}"),
                    50.0 + c as f64 * 80.0,
                    v,
                    10.0,
                    false,
                );
            }
        }
        let (lines, _) = page_lines(g, 0);
        let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(
            texts,
            vec![
                "r0c0 r0c1 r0c2",
                "r1c0 r1c1 r1c2",
                "r2c0 r2c1 r2c2",
                "r3c0 r3c1 r3c2",
                "r4c0 r4c1 r4c2"
            ]
        );
        let paras = paragraphs(&lines);
        assert_eq!(paras.len(), 1);
        assert!(paras[0].table);
        assert_eq!(
            paras[0].text.lines().next(),
            Some("r0c0 | r0c1 | r0c2"),
            "{}",
            paras[0].text
        );
        assert_eq!(paras[0].text.lines().count(), 5);
    }

    #[test]
    fn words_get_spaces_from_gaps_or_from_the_stream() {
        let mut g = Vec::new();
        // no space glyphs (TeX): tight kerning inside words, a gap between them
        word(&mut g, "Exa", 0.0, 0.0, 10.0, false);
        word(&mut g, "mple", 15.2, 0.0, 10.0, false);
        word(&mut g, "text", 37.0, 0.0, 10.0, false);
        // space glyphs drawn (Google Docs): they decide; a glyph without a width ("B") is
        // followed by its word's next letter a little later, which is no space
        let b = Glyph {
            u0: 0.0,
            u1: 0.0,
            v: -20.0,
            size: 10.0,
            text: "B".into(),
            space_before: false,
            rot: 0,
        };
        g.push(b);
        word(&mut g, "eautiful", 7.0, -20.0, 10.0, false);
        word(&mut g, "is", 50.0, -20.0, 10.0, true);
        let (lines, _) = page_lines(g, 0);
        let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, vec!["Example text", "Beautiful is"]);
    }

    #[test]
    fn running_headers_and_footers_are_dropped_body_lines_kept() {
        let mk = |text: &str, v: f64| Line {
            text: text.into(),
            size: 10.0,
            u0: 50.0,
            u1: 400.0,
            v,
            column: 0,
            cells: vec![(50.0, 400.0, text.into())],
        };
        let words = [
            "harbor", "budget", "river", "pier", "crane", "dock", "quay", "tide",
        ];
        let body = |n: usize| {
            vec![
                format!("The {} report starts here", words[n]),
                "Summary".to_string(),
                format!("and the {} report ends.", words[n]),
            ]
        };
        let mut pages: Vec<Vec<Line>> = (0..words.len())
            .map(|n| {
                let b = body(n);
                vec![
                    mk("Harbor Authority | Confidential", 800.0),
                    mk(&b[0], 700.0),
                    mk(&b[1], 600.0),
                    mk(&b[2], 500.0),
                    mk(&format!("Page {} of 8", n + 1), 40.0),
                ]
            })
            .collect();
        // "Summary" repeats on every page too, but in the middle: body text
        drop_running_lines(&mut pages);
        for (n, lines) in pages.iter().enumerate() {
            let texts: Vec<String> = lines.iter().map(|l| l.text.clone()).collect();
            assert_eq!(texts, body(n));
        }
        // one page: nothing to compare with, nothing dropped
        let mut single = vec![vec![mk("Title", 800.0), mk("Text.", 700.0)]];
        drop_running_lines(&mut single);
        assert_eq!(single[0].len(), 2);
    }

    #[test]
    fn a_wide_footer_does_not_make_ragged_lines_paragraph_ends() {
        let mk = |text: &str, u1: f64, v: f64| Line {
            text: text.into(),
            size: 10.0,
            u0: 50.0,
            u1,
            v,
            column: 0,
            cells: vec![(50.0, u1, text.into())],
        };
        let mut lines: Vec<Line> = (0..20)
            .map(|i| {
                mk(
                    "ragged line of prose",
                    380.0 + f64::from(i % 4) * 5.0,
                    700.0 - 12.0 * f64::from(i),
                )
            })
            .collect();
        lines.push(mk(
            "footer set flush with the page's right margin",
            560.0,
            40.0,
        ));
        let paras = paragraphs(&lines);
        assert_eq!(paras.len(), 2, "{paras:?}");
    }

    #[test]
    fn paragraphs_headings_and_hyphenation() {
        let mk = |text: &str, size: f64, u0: f64, u1: f64, v: f64| Line {
            text: text.into(),
            size,
            u0,
            u1,
            v,
            column: 0,
            cells: vec![(u0, u1, text.into())],
        };
        let lines = vec![
            mk("Big Title", 20.0, 50.0, 200.0, 750.0),
            mk("First line of a para-", 10.0, 50.0, 400.0, 700.0),
            mk("graph goes on", 10.0, 50.0, 400.0, 688.0),
            mk("and ends here.", 10.0, 50.0, 200.0, 676.0),
            mk("Indented next paragraph", 10.0, 65.0, 400.0, 664.0),
            mk("continues.", 10.0, 50.0, 120.0, 652.0),
            mk("After a gap", 10.0, 50.0, 400.0, 610.0),
        ];
        let paras = paragraphs(&lines);
        let texts: Vec<&str> = paras.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(
            texts,
            vec![
                "Big Title",
                "First line of a paragraph goes on and ends here.",
                "Indented next paragraph continues.",
                "After a gap",
            ]
        );
        assert_eq!(
            heading_levels(&paras, 10.0),
            vec![Some(1), None, None, None]
        );
    }
}
