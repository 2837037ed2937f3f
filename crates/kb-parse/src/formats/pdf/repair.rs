//! Rebuilds the cross-reference table of a complete PDF whose table is damaged (wrong
//! offsets after editing, a broken `startxref`), as viewers do: every `N G obj` found in the
//! file is listed at its offset, the last definition of a number winning (incremental
//! updates come later in the file), and the catalog is the trailer's `/Root` or the object
//! typed `/Catalog`. Objects inside object streams cannot be found this way; such files stay
//! unreadable. A truncated file (no `%%EOF` near its end) is not repaired: it is reported.

use std::collections::BTreeMap;

use regex::bytes::Regex;

/// Whether the file ends like a complete PDF.
pub(crate) fn looks_complete(bytes: &[u8]) -> bool {
    let tail = &bytes[bytes.len().saturating_sub(2048)..];
    tail.windows(5).any(|w| w == b"%%EOF")
}

/// The file with a fresh cross-reference section appended, or `None` when no catalog is found.
pub(crate) fn with_rebuilt_xref(bytes: &[u8]) -> Option<Vec<u8>> {
    let obj = Regex::new(r"(?:^|[\r\n\s])(\d{1,9})\s+(\d{1,5})\s+obj\b").ok()?;
    let mut offsets: BTreeMap<u32, (usize, u16)> = BTreeMap::new();
    for c in obj.captures_iter(bytes) {
        let (Some(num), Some(gen)) = (c.get(1), c.get(2)) else {
            continue;
        };
        let n: u32 = std::str::from_utf8(num.as_bytes()).ok()?.parse().ok()?;
        let g: u16 = std::str::from_utf8(gen.as_bytes()).ok()?.parse().ok()?;
        offsets.insert(n, (num.start(), g));
    }
    let root = root_ref(bytes, &offsets)?;
    let max = *offsets.keys().next_back()?;
    if max > 10_000_000 {
        return None;
    }
    let mut out = bytes.to_vec();
    let xref_at = out.len() + 1;
    out.extend_from_slice(format!("\nxref\n0 {}\n0000000000 65535 f \n", max + 1).as_bytes());
    for n in 1..=max {
        let line = match offsets.get(&n) {
            Some(&(off, gen)) => format!("{off:010} {gen:05} n \n"),
            None => "0000000000 65535 f \n".to_owned(),
        };
        out.extend_from_slice(line.as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root {} >>\nstartxref\n{xref_at}\n%%EOF\n",
            max + 1,
            root
        )
        .as_bytes(),
    );
    Some(out)
}

/// `N G R` of the catalog.
fn root_ref(bytes: &[u8], offsets: &BTreeMap<u32, (usize, u16)>) -> Option<String> {
    let root = Regex::new(r"/Root\s*(\d{1,9})\s+(\d{1,5})\s+R").ok()?;
    if let Some(c) = root.captures_iter(bytes).last() {
        let n: u32 = std::str::from_utf8(c.get(1)?.as_bytes())
            .ok()?
            .parse()
            .ok()?;
        if offsets.contains_key(&n) {
            return Some(format!("{n} {} R", offsets[&n].1));
        }
    }
    let catalog = Regex::new(r"/Type\s*/Catalog\b").ok()?;
    let at = catalog.find_iter(bytes).last()?.start();
    // the object whose definition starts last before the /Catalog entry
    offsets
        .iter()
        .filter(|(_, &(off, _))| off < at)
        .max_by_key(|(_, &(off, _))| off)
        .map(|(n, &(_, g))| format!("{n} {g} R"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rebuilds_offsets_and_finds_the_catalog() {
        let body = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\nxref\n0 3\nbroken\ntrailer\n<< /Size 3 >>\nstartxref\n999999\n%%EOF\n";
        assert!(looks_complete(body));
        assert!(!looks_complete(&body[..60]));
        let fixed = with_rebuilt_xref(body).unwrap();
        let text = String::from_utf8_lossy(&fixed);
        assert!(text.contains("0000000009 00000 n"), "{text}");
        assert!(text.contains("/Root 1 0 R"), "{text}");
        assert_eq!(with_rebuilt_xref(b"%PDF-1.4\nnothing\n%%EOF"), None);
    }
}
