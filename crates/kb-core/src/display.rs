//! Text from outside (file and Drive names, reasons from parsers and servers) made safe for a
//! terminal or a log line: control characters and bidirectional overrides cannot move the
//! cursor, clear the screen or make a name read backwards.

use std::borrow::Cow;
use std::fmt::Write;

/// `text` with C0/C1 controls, DEL and the bidi overrides (U+202A–U+202E, U+2066–U+2069)
/// written as `\u{..}`. Borrowed when nothing needs escaping.
pub fn clean(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if needs_escape(c) {
            // Writing to a String cannot fail.
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_overrides_are_escaped_and_the_rest_kept() {
        assert!(matches!(clean("notes/ünïcode 会议.md"), Cow::Borrowed(_)));
        assert_eq!(clean("a\x1b[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(clean("x\ny\tz\x7f\u{9b}"), "x\\u{a}y\\u{9}z\\u{7f}\\u{9b}");
        assert_eq!(clean("invoice\u{202E}fdp.exe"), "invoice\\u{202e}fdp.exe");
        assert_eq!(clean("\u{2066}a\u{2069}"), "\\u{2066}a\\u{2069}");
    }
}
