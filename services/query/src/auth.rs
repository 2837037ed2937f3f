//! Bearer-token authentication of `/v1/*` and `/mcp`, required whenever keys are configured
//! (`query.api_keys`, `query.api_keys_file`). Tokens are compared in constant time and never
//! logged.

use std::sync::Arc;

use anyhow::bail;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use kb_core::settings::QuerySettings;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

use crate::problem::ApiError;

/// The accepted keys, kept as SHA-256 digests: comparing digests of equal length in constant
/// time tells nothing about a key's length or prefix.
#[derive(Clone, Default)]
pub struct Keys(Arc<Vec<[u8; 32]>>);

impl Keys {
    /// The configured keys. A keys file that holds no key is an error: the operator asked for
    /// authentication, and serving without it would be the opposite.
    pub fn from_settings(q: &QuerySettings) -> anyhow::Result<Self> {
        let keys = match q.load_keys() {
            Ok(keys) => keys,
            Err(e) => bail!("cannot read query.api_keys_file: {e}"),
        };
        if q.has_keys() && keys.is_empty() {
            bail!(
                "query.api_keys_file names no key (one per line; `#` starts a comment): \
                 refusing to serve without authentication"
            );
        }
        Ok(Self(Arc::new(
            keys.iter().map(|k| digest(k.expose())).collect(),
        )))
    }

    #[cfg(test)]
    fn new<'a>(keys: impl IntoIterator<Item = &'a str>) -> Self {
        Self(Arc::new(keys.into_iter().map(digest).collect()))
    }

    /// Whether requests need a token.
    pub fn required(&self) -> bool {
        !self.0.is_empty()
    }

    fn accepts(&self, token: &str) -> bool {
        let d = digest(token);
        // Every key is compared, whichever matches.
        let any = self
            .0
            .iter()
            .fold(Choice::from(0), |acc, key| acc | key.ct_eq(&d));
        any.into()
    }
}

fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Middleware: passes requests with an accepted token (or all, when no keys are configured);
/// anything else is a 401 problem with a `WWW-Authenticate` challenge.
pub async fn require_bearer(State(keys): State<Keys>, req: Request, next: Next) -> Response {
    if !keys.required() {
        return next.run(req).await;
    }
    let (detail, challenge) = match bearer(req.headers()) {
        Some(token) if keys.accepts(token) => return next.run(req).await,
        Some(_) => (
            "the bearer token is not one of the configured keys",
            r#"Bearer realm="kb-query", error="invalid_token""#,
        ),
        None => (
            "this path needs an `Authorization: Bearer <key>` header",
            r#"Bearer realm="kb-query""#,
        ),
    };
    let mut response = ApiError::new(StatusCode::UNAUTHORIZED, detail).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    response
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_matched_exactly_against_every_key() {
        let keys = Keys::new(["k-one", "k-two"]);
        assert!(keys.required());
        assert!(keys.accepts("k-one") && keys.accepts("k-two"));
        assert!(!keys.accepts("k-on") && !keys.accepts("k-one ") && !keys.accepts(""));
        assert!(!Keys::default().required());
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, "bearer abc".parse().unwrap());
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, "Bearer ".parse().unwrap());
        assert_eq!(bearer(&h), None);
    }

    #[test]
    fn a_keys_file_without_keys_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("keys");
        std::fs::write(&file, "# nobody yet\n\n").unwrap();
        let q = QuerySettings {
            api_keys_file: Some(file),
            ..QuerySettings::default()
        };
        let err = Keys::from_settings(&q).err().unwrap();
        assert!(err.to_string().contains("names no key"), "{err}");
        assert!(!Keys::from_settings(&QuerySettings::default())
            .unwrap()
            .required());
    }
}
