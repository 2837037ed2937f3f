//! The document title: the format's own title (first Markdown heading), else the first
//! non-empty line of the first non-turn block, else the file name; at most 200 characters.

use crate::structured::{BlockKind, StructuredText};

const MAX_TITLE_CHARS: usize = 200;

pub(crate) fn title(doc: &StructuredText, path: &str, source_id: &str) -> String {
    let from_text = doc
        .title
        .clone()
        .filter(|t| !t.trim().is_empty())
        .or_else(|| {
            doc.blocks
                .iter()
                .find(|b| !matches!(b.kind, BlockKind::Turn { .. }))
                .and_then(|b| {
                    doc.block_text(b)
                        .lines()
                        .map(str::trim)
                        .find(|l| !l.is_empty())
                })
                .map(str::to_owned)
        });
    let chosen = from_text.unwrap_or_else(|| {
        let name = path
            .rsplit(['/', '\\'])
            .find(|p| !p.is_empty())
            .unwrap_or("");
        if name.is_empty() {
            source_id.to_owned()
        } else {
            name.to_owned()
        }
    });
    let collapsed = chosen.split_whitespace().collect::<Vec<_>>().join(" ");
    collapsed.chars().take(MAX_TITLE_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structured::Block;

    #[test]
    fn title_rules() {
        let text = "Speaker text\n\n  First   line  \nsecond".to_string();
        let turn = Block {
            kind: BlockKind::Turn {
                speaker: "A".into(),
                start_seconds: 0.0,
            },
            start: 0,
            end: 12,
        };
        let para = Block {
            kind: BlockKind::Paragraph,
            start: 16,
            end: text.len(),
        };
        let mut doc = StructuredText {
            text,
            blocks: vec![turn.clone(), para],
            title: None,
            parser: None,
            date_unix_ms: None,
        };
        assert_eq!(title(&doc, "dir/x.txt", "id"), "First line");
        doc.title = Some("Heading".into());
        assert_eq!(title(&doc, "dir/x.txt", "id"), "Heading");
        doc.title = None;
        doc.blocks = vec![turn];
        assert_eq!(title(&doc, "dir/meeting.txt", "id"), "meeting.txt");
        assert_eq!(title(&doc, "", "id"), "id");
        doc.title = Some("é".repeat(300));
        assert_eq!(title(&doc, "", "id").chars().count(), 200);
    }
}
