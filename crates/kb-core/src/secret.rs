//! A string that never shows up in logs or debug output.

use serde::{Deserialize, Deserializer};
use std::fmt;

#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The secret value; call only where it is handed to a client library.
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"***\"" })
    }
}

impl<'de> Deserialize<'de> for Secret {
    // Environment values that look like numbers arrive as numbers; a password "12345" is still text.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Secret;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A URL with its secrets replaced, safe to log: the password of `user:password@`, a lone
/// userinfo (`nats://***@host`: a token) except for the schemes where it is a user name
/// (Postgres, Bolt), and `password=` / `sslpassword=` query parameters. A comma-separated
/// server list is redacted URL by URL.
pub fn redact_url(url: &str) -> String {
    if url.contains(',') {
        return url.split(',').map(redact_one).collect::<Vec<_>>().join(",");
    }
    redact_one(url)
}

fn redact_one(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        // The later hosts of a server list: `h2:5432/db?password=…`.
        return match url.find('?') {
            Some(i) => format!("{}{}", &url[..i], redact_query(&url[i..])),
            None => url.to_string(),
        };
    };
    let (authority, tail) = match rest.find(['/', '?', '#']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let tail = redact_query(tail);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let masked = match userinfo.split_once(':') {
                Some((user, _)) => format!("{user}:***"),
                None if names_a_user(scheme) => userinfo.to_string(),
                // NATS (and most others): a lone userinfo is a token.
                None => "***".to_string(),
            };
            format!("{scheme}://{masked}@{host}{tail}")
        }
        None => format!("{scheme}://{authority}{tail}"),
    }
}

/// Schemes whose lone userinfo is a user name, not a secret.
fn names_a_user(scheme: &str) -> bool {
    let scheme = scheme.to_ascii_lowercase();
    scheme == "postgres"
        || scheme == "postgresql"
        || scheme.starts_with("bolt")
        || scheme.starts_with("neo4j")
}

/// `?a=1&password=x#f` → `?a=1&password=***#f`.
fn redact_query(tail: &str) -> String {
    let Some((path, query)) = tail.split_once('?') else {
        return tail.to_string();
    };
    let (query, fragment) = match query.split_once('#') {
        Some((q, f)) => (q, Some(f)),
        None => (query, None),
    };
    let params: Vec<String> = query
        .split('&')
        .map(|param| match param.split_once('=') {
            Some((name, _))
                if name.eq_ignore_ascii_case("password")
                    || name.eq_ignore_ascii_case("sslpassword") =>
            {
                format!("{name}=***")
            }
            _ => param.to_string(),
        })
        .collect();
    let mut out = format!("{path}?{}", params.join("&"));
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_value() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "\"***\"");
    }

    #[test]
    fn redacts_passwords_in_urls() {
        assert_eq!(
            redact_url("postgresql://owner:pa:ss@ep-1.example/db?sslmode=require"),
            "postgresql://owner:***@ep-1.example/db?sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1:5433/kb"),
            "postgres://postgres@127.0.0.1:5433/kb"
        );
        assert_eq!(redact_url("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
    }

    #[test]
    fn redacts_nats_tokens_query_passwords_and_server_lists() {
        assert_eq!(
            redact_url("nats://s3cret@127.0.0.1:4222"),
            "nats://***@127.0.0.1:4222"
        );
        assert_eq!(
            redact_url("TLS://s3cret@nats.example"),
            "TLS://***@nats.example"
        );
        assert_eq!(redact_url("nats://kb:pw@h:4222"), "nats://kb:***@h:4222");
        assert_eq!(
            redact_url("nats://t1@a:4222,nats://u:p@b:4222"),
            "nats://***@a:4222,nats://u:***@b:4222"
        );
        assert_eq!(
            redact_url("postgres://kb@db/kb?sslmode=verify-full&password=pw&sslpassword=k#x"),
            "postgres://kb@db/kb?sslmode=verify-full&password=***&sslpassword=***#x"
        );
        assert_eq!(
            redact_url("postgres://h1:5432,h2:5432/db?Password=pw"),
            "postgres://h1:5432,h2:5432/db?Password=***"
        );
        for scheme in ["wss", "ws", "http", "nats"] {
            assert_eq!(
                redact_url(&format!("{scheme}://s3cret@h")),
                format!("{scheme}://***@h")
            );
        }
        assert_eq!(redact_url("bolt://neo4j@h:7687"), "bolt://neo4j@h:7687");
        assert_eq!(redact_url("not a url"), "not a url");
    }
}
