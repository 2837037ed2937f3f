//! The `fields` partial-response selector (`nextPageToken,files(id,name)`, `a/b`, `*`),
//! applied to a JSON answer the way the API does: only the named members are returned.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub enum Selection {
    /// The whole value.
    All,
    Members(BTreeMap<String, Selection>),
}

impl Selection {
    pub fn parse(s: &str) -> Result<Self, String> {
        let chars: Vec<char> = s.chars().filter(|c| !c.is_whitespace()).collect();
        let mut pos = 0;
        let sel = parse_list(&chars, &mut pos)?;
        if pos != chars.len() {
            return Err(format!("unexpected {:?} in fields", chars[pos]));
        }
        Ok(sel)
    }

    pub fn apply(&self, v: &Value) -> Value {
        match (self, v) {
            (Selection::All, v) => v.clone(),
            (Selection::Members(_), Value::Array(items)) => {
                Value::Array(items.iter().map(|i| self.apply(i)).collect())
            }
            (Selection::Members(m), Value::Object(obj)) => {
                if m.contains_key("*") {
                    return v.clone();
                }
                let mut out = Map::new();
                for (k, sub) in m {
                    if let Some(x) = obj.get(k) {
                        out.insert(k.clone(), sub.apply(x));
                    }
                }
                Value::Object(out)
            }
            (Selection::Members(_), other) => other.clone(),
        }
    }
}

fn merge(into: &mut BTreeMap<String, Selection>, path: &[String], sub: Selection) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    if rest.is_empty() {
        into.insert(first.clone(), sub);
        return;
    }
    let entry = into
        .entry(first.clone())
        .or_insert_with(|| Selection::Members(BTreeMap::new()));
    if let Selection::Members(m) = entry {
        merge(m, rest, sub);
    }
}

fn parse_list(c: &[char], pos: &mut usize) -> Result<Selection, String> {
    let mut members = BTreeMap::new();
    loop {
        let mut path = vec![String::new()];
        while *pos < c.len() && !matches!(c[*pos], ',' | '(' | ')') {
            if c[*pos] == '/' {
                path.push(String::new());
            } else if let Some(last) = path.last_mut() {
                last.push(c[*pos]);
            }
            *pos += 1;
        }
        if path.iter().any(String::is_empty) {
            return Err("empty field name".into());
        }
        let sub = if *pos < c.len() && c[*pos] == '(' {
            *pos += 1;
            let inner = parse_list(c, pos)?;
            if *pos >= c.len() || c[*pos] != ')' {
                return Err("unbalanced parentheses in fields".into());
            }
            *pos += 1;
            inner
        } else {
            Selection::All
        };
        merge(&mut members, &path, sub);
        if *pos < c.len() && c[*pos] == ',' {
            *pos += 1;
            continue;
        }
        return Ok(Selection::Members(members));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selects_nested_members_in_arrays() {
        let v = json!({"kind":"k","nextPageToken":"t","files":[{"id":"1","name":"a","size":"3"}]});
        let s = Selection::parse("nextPageToken, files(id,name)").unwrap();
        assert_eq!(
            s.apply(&v),
            json!({"nextPageToken":"t","files":[{"id":"1","name":"a"}]})
        );
        let s = Selection::parse("files/id").unwrap();
        assert_eq!(s.apply(&v), json!({"files":[{"id":"1"}]}));
        assert_eq!(Selection::parse("*").unwrap().apply(&v), v);
        assert!(Selection::parse("files(id").is_err());
    }
}
