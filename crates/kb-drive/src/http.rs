//! What both endpoints share: reading error bodies (the API's
//! `{"error":{"code","message","errors":[{"reason"}]}}` and OAuth's `{"error","error_description"}`),
//! classifying them, and exponential backoff (with `backon`) on quota errors, 5xx and network
//! trouble, honouring `Retry-After`.

use crate::error::{DriveError, DriveErrorExt as _, DriveErrorKind};
use backon::{ExponentialBuilder, Retryable};
use reqwest::header::RETRY_AFTER;
use reqwest::{Response, StatusCode};
use serde::Deserialize;
use std::future::Future;
use std::time::Duration;

/// How often and how patiently one request is retried.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_retries: usize,
    pub min_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 8,
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(64),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ApiErrorBody {
    error: ApiErrorValue,
}

/// The API nests an object under `error`; the OAuth endpoint puts a code string there.
#[derive(Deserialize)]
#[serde(untagged)]
enum ApiErrorValue {
    Api {
        #[serde(default)]
        message: String,
        #[serde(default)]
        errors: Vec<ApiErrorItem>,
    },
    OAuth(String),
}

impl Default for ApiErrorValue {
    fn default() -> Self {
        Self::OAuth(String::new())
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ApiErrorItem {
    reason: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct OAuthErrorBody {
    error_description: String,
}

/// Turns a non-success response into a typed error. `oauth` marks the token endpoint, where
/// any 4xx means the credentials are wrong.
pub(crate) async fn error_from(resp: Response, what: &str, oauth: bool) -> DriveError {
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    // Bodies of errors are small; a broken one still leaves the status to classify by.
    let text = resp.text().await.unwrap_or_default();
    let (reason, detail) = match serde_json::from_str::<ApiErrorBody>(&text) {
        Ok(ApiErrorBody {
            error: ApiErrorValue::Api { message, errors },
        }) => (errors.into_iter().next().map(|e| e.reason), message),
        Ok(ApiErrorBody {
            error: ApiErrorValue::OAuth(code),
        }) => {
            let desc = serde_json::from_str::<OAuthErrorBody>(&text)
                .map(|b| b.error_description)
                .unwrap_or_default();
            ((!code.is_empty()).then_some(code), desc)
        }
        Err(_) => (None, String::new()),
    };
    let rate_limited = status == StatusCode::TOO_MANY_REQUESTS
        || (status == StatusCode::FORBIDDEN
            && matches!(
                reason.as_deref(),
                Some("userRateLimitExceeded" | "rateLimitExceeded")
            ));
    let kind = match status.as_u16() {
        _ if rate_limited => DriveErrorKind::Transient,
        408 | 500..=599 => DriveErrorKind::Transient,
        400..=403 if oauth => DriveErrorKind::Auth,
        401 => DriveErrorKind::Auth,
        403 => DriveErrorKind::Refused,
        404 => DriveErrorKind::NotFound,
        // The export endpoint answers an impossible conversion with 400.
        400 if reason.as_deref() == Some("badRequest") => DriveErrorKind::Refused,
        _ => DriveErrorKind::Invalid,
    };
    let mut message = what.to_string();
    if !detail.is_empty() {
        message.push_str(": ");
        message.push_str(&detail);
    }
    DriveError::new(kind, message)
        .with_status(status.as_u16())
        .with_code(reason)
        .with_retry_after(retry_after)
}

/// Runs `call` until it succeeds, fails permanently, or `policy` is used up. A 401 is retried
/// once, after which a fresh token must have been fetched (callers invalidate theirs).
pub(crate) async fn with_backoff<T, F, Fut>(
    policy: &RetryPolicy,
    what: &str,
    call: F,
) -> Result<T, DriveError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, DriveError>>,
{
    let backoff = ExponentialBuilder::default()
        .with_min_delay(policy.min_delay)
        .with_max_delay(policy.max_delay)
        .with_max_times(policy.max_retries)
        .with_jitter();
    let max_delay = policy.max_delay;
    let mut auth_retried = false;
    call.retry(backoff)
        .when(move |e: &DriveError| {
            if e.status() == Some(401) && !auth_retried {
                auth_retried = true;
                return true;
            }
            e.is_transient()
        })
        .adjust(move |e: &DriveError, planned| {
            planned.map(|d| e.retry_after().map_or(d, |ra| ra.min(max_delay).max(d)))
        })
        .notify(|e: &DriveError, wait: Duration| {
            tracing::debug!(what, error = %e, rate_limited = e.is_rate_limited(),
                wait_ms = wait.as_millis() as u64, "Drive request failed; retrying");
        })
        .await
}
