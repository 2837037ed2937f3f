//! The 60-file set: 20 tagged copies of each `*.txt` transcript of the corpus, byte for byte what
//! the peer harness's `make_data.py SRC DST --copies 20` writes (so both sides index the same
//! files, and this benchmark needs no Python to make them).

use anyhow::Context;
use std::path::{Path, PathBuf};

/// Copies per transcript, and the spacing (in characters) of the tags inside each copy.
pub const COPIES: usize = 20;
pub const EVERY: usize = 300;

/// One copy of `text`: the tag `[<stem>-c<NN>]` on a first line of its own, again before the
/// first space at or after every `every` characters, and as the last line. Every ~1,000-character
/// chunk of a copy then differs from the other copies' (no chunk is a duplicate any store or
/// cache could skip), while the text stays the transcript. Positions count characters, as
/// Python's `str.find` does.
pub fn tag_copy(text: &str, stem: &str, k: usize, every: usize) -> String {
    let tag = format!("[{stem}-c{k:02}]");
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len() + text.len() / every.max(1) * (tag.len() + 1));
    out.push_str(&tag);
    out.push('\n');
    let mut last = 0;
    let mut i = every;
    while i < chars.len() {
        let Some(j) = chars[i..].iter().position(|&c| c == ' ').map(|p| p + i) else {
            break;
        };
        out.extend(&chars[last..j]);
        out.push(' ');
        out.push_str(&tag);
        last = j;
        i = j + every;
    }
    out.extend(&chars[last..]);
    if !text.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&tag);
    out.push('\n');
    out
}

/// Writes `<stem>_c<NN>.txt` for every `src/*.txt` (sorted) into `dst`; the files written.
pub fn make_set(src: &Path, dst: &Path, copies: usize) -> anyhow::Result<Vec<PathBuf>> {
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(src)
        .with_context(|| format!("cannot read {}", src.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    inputs.sort();
    anyhow::ensure!(!inputs.is_empty(), "no .txt files in {}", src.display());
    std::fs::create_dir_all(dst)?;
    let mut out = Vec::new();
    for p in inputs {
        // Python's text mode reads \r\n and \r as \n; do the same so the bytes match.
        let text = std::fs::read_to_string(&p)
            .with_context(|| format!("{} is not UTF-8 text", p.display()))?
            .replace("\r\n", "\n")
            .replace('\r', "\n");
        let stem = p
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        for k in 1..=copies {
            let f = dst.join(format!("{stem}_c{k:02}.txt"));
            std::fs::write(&f, tag_copy(&text, &stem, k, EVERY))?;
            out.push(f);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::tag_copy;

    // Expected strings are the output of the peer's make_data.tag_copy on the same input.
    #[test]
    fn tags_like_the_peers_script() {
        let t = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu";
        assert_eq!(
            tag_copy(t, "m", 3, 10),
            "[m-c03]\nalpha beta [m-c03] gamma delta [m-c03] epsilon zeta [m-c03] eta theta \
             [m-c03] iota kappa [m-c03] lambda mu\n[m-c03]\n"
        );
        assert_eq!(
            tag_copy("ab cd\n", "x", 12, 2),
            "[x-c12]\nab [x-c12] cd\n[x-c12]\n"
        );
    }

    #[test]
    fn counts_characters_not_bytes() {
        assert_eq!(
            tag_copy("éé é ééé é", "u", 1, 3),
            "[u-c01]\néé é [u-c01] ééé [u-c01] é\n[u-c01]\n"
        );
    }
}
