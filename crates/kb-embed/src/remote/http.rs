//! One JSON POST and the mapping of its outcome onto [`EmbedError`] kinds:
//!
//! | answer | kind | why |
//! | --- | --- | --- |
//! | 2xx, valid JSON | ok | |
//! | 2xx, malformed body | transient | the start-up probe proved the format; a bad body later is a cut or proxied answer |
//! | 429 | transient, throttled, `Retry-After` honoured | rate limit |
//! | 408, 5xx, timeout, connection failure | transient (`Retry-After` honoured on 503) | the service is busy or away |
//! | 401, 403 | permanent | the key is wrong or revoked: retrying cannot help |
//! | 400, 413, 422 | permanent, input-specific | these inputs are refused; smaller requests may pass |
//! | other 4xx | permanent | e.g. 404 for an unknown model |
//!
//! Messages quote the provider's own error text, never the request or the key.

use std::time::{Duration, SystemTime};

use kb_core::Secret;
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::EmbedError;

/// Provider text quoted in an error, at most this many characters.
const MAX_QUOTE: usize = 300;
/// A `Retry-After` beyond this is treated as this: a broken header must not park work for days.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

pub(crate) struct Call<'a> {
    pub client: &'a reqwest::Client,
    pub url: &'a str,
    pub provider: &'static str,
    pub key: Option<&'a Secret>,
    pub timeout: Duration,
}

impl Call<'_> {
    pub async fn post<T: DeserializeOwned>(&self, body: &impl Serialize) -> Result<T, EmbedError> {
        let mut req = self.client.post(self.url).json(body);
        if let Some(key) = self.key.filter(|k| !k.is_empty()) {
            // reqwest marks the header sensitive, so it never shows in its Debug output either.
            req = req.bearer_auth(key.expose());
        }
        let resp = req.send().await.map_err(|e| self.send_error(e))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.map_err(|e| self.send_error(e))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| {
                EmbedError::transient(format!(
                    "{} sent a malformed response body ({e})",
                    self.provider
                ))
                .with_source(e)
            });
        }
        Err(self.status_error(status, &headers, &bytes))
    }

    fn send_error(&self, e: reqwest::Error) -> EmbedError {
        let what = if e.is_timeout() {
            format!("no answer within {} s", self.timeout.as_secs_f32())
        } else if e.is_connect() {
            "cannot connect".to_owned()
        } else {
            "request failed".to_owned()
        };
        // reqwest's Display names the URL, which carries no secret (the key is a header).
        EmbedError::transient(format!("{}: {what}: {e}", self.provider)).with_source(e)
    }

    fn status_error(&self, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> EmbedError {
        let code = status.as_u16();
        let detail = quote(body);
        let msg = |what: &str| format!("{} answered HTTP {code} ({what}): {detail}", self.provider);
        let e = match code {
            429 => {
                let mut e = EmbedError::transient(msg("rate limited"));
                if let Some(d) = retry_after(headers, SystemTime::now()) {
                    e = e.with_retry_after(d);
                }
                e
            }
            401 | 403 => EmbedError::permanent(msg("the API key was refused")),
            400 | 413 | 422 => EmbedError::permanent(msg("request refused")),
            408 | 500..=599 => {
                let mut e = EmbedError::transient(msg("service unavailable"));
                if let Some(d) = retry_after(headers, SystemTime::now()) {
                    e = e.with_retry_after(d);
                }
                e
            }
            _ => EmbedError::permanent(msg("unexpected status")),
        };
        // The status tells a throttled or input-specific answer (`EmbedErrorExt`).
        e.with_status(code)
    }
}

/// The provider's error text: `error.message`, `message`, `error` or `detail`, else the body.
fn quote(body: &[u8]) -> String {
    let text = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(v) => [
            v.pointer("/error/message"),
            v.get("message"),
            v.get("error"),
            v.get("detail"),
        ]
        .into_iter()
        .flatten()
        .find_map(|m| match m {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Null => None,
            other => Some(other.to_string()),
        })
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned()),
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    };
    let text = text.trim();
    if text.is_empty() {
        return "no details".to_owned();
    }
    let mut out: String = text.chars().take(MAX_QUOTE).collect();
    if text.chars().count() > MAX_QUOTE {
        out.push('…');
    }
    out
}

/// `Retry-After` (seconds or an HTTP date) or OpenAI's `retry-after-ms`.
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let delay = if let Some(ms) = text("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        Duration::try_from_secs_f64(ms / 1000.0).ok()
    } else {
        let v = text("retry-after")?;
        match v.parse::<f64>() {
            Ok(secs) => Duration::try_from_secs_f64(secs).ok(),
            Err(_) => httpdate::parse_http_date(v)
                .ok()
                .map(|at| at.duration_since(now).unwrap_or(Duration::ZERO)),
        }
    }?;
    Some(delay.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn retry_after_in_seconds_dates_and_milliseconds() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            retry_after(&headers(&[("retry-after", "7")]), now),
            Some(Duration::from_secs(7))
        );
        let date = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            retry_after(&headers(&[("retry-after", &date)]), now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after-ms", "250")]), now),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "999999999")]), now),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")]), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn quotes_each_providers_error_shape() {
        assert_eq!(
            quote(br#"{"error":{"message":"Incorrect API key","type":"x"}}"#),
            "Incorrect API key"
        );
        assert_eq!(
            quote(br#"{"object":"error","message":"Too many tokens in batch"}"#),
            "Too many tokens in batch"
        );
        assert_eq!(quote(br#"{"error":"model not found"}"#), "model not found");
        assert_eq!(
            quote(b"<html>bad gateway</html>"),
            "<html>bad gateway</html>"
        );
        assert_eq!(quote(b""), "no details");
        assert_eq!(
            quote("x".repeat(500).as_bytes()).chars().count(),
            MAX_QUOTE + 1
        );
    }
}
