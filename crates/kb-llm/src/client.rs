//! One chat-completions call with a JSON-schema response format: a concurrency permit per
//! attempt, retries on 429/5xx/timeouts honouring `Retry-After`, and errors classified
//! into transient, permanent and configuration.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use backon::{ExponentialBuilder, Retryable};
use kb_core::secret::redact_url;
use kb_core::Secret;
use reqwest::StatusCode;
use tokio::sync::Semaphore;

use crate::error::LlmError;
use crate::wire::{self, ChatRequest, ChatResponse, JsonSchema, Message, ResponseFormat, Usage};
use crate::LlmSettings;
use crate::{prompt, retry_after, schema};

/// Longest exponential backoff step when the server gives no `Retry-After`.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// A successful call: the assistant's text (if any), why it stopped, reported usage.
#[derive(Debug)]
pub struct Completion {
    pub content: Option<String>,
    pub finish_reason: Option<String>,
    pub usage: Option<Usage>,
    /// HTTP attempts made, the successful one included.
    pub attempts: u32,
}

pub struct ChatClient {
    http: reqwest::Client,
    endpoint: String,
    model: String,
    key: Secret,
    temperature: f32,
    max_output_tokens: u32,
    permits: Arc<Semaphore>,
    max_retries: usize,
    base_delay: Duration,
    max_retry_after: Duration,
}

impl ChatClient {
    pub fn new(s: &LlmSettings, key: Secret) -> Result<Self, LlmError> {
        let http = reqwest::Client::builder()
            .timeout(s.timeout())
            .connect_timeout(s.timeout().min(Duration::from_secs(10)))
            .build()
            .map_err(|e| LlmError::config("cannot build the HTTP client").with_source(e))?;
        Ok(Self {
            http,
            endpoint: s.endpoint(),
            model: s.effective_model().to_owned(),
            key,
            temperature: s.temperature,
            max_output_tokens: s.max_output_tokens,
            permits: Arc::new(Semaphore::new(s.max_concurrency.max(1))),
            max_retries: s.max_retries,
            base_delay: Duration::from_millis(s.retry_base_delay_ms),
            max_retry_after: Duration::from_secs(s.max_retry_after_secs),
        })
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    /// Sends the user prompt; retries transient failures, each attempt under a permit.
    pub async fn complete(&self, user: &str) -> Result<Completion, LlmError> {
        let attempts = AtomicU32::new(0);
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.base_delay)
            .with_max_delay(MAX_BACKOFF.max(self.base_delay))
            .with_max_times(self.max_retries)
            .with_jitter();
        let max_ra = self.max_retry_after;
        let mut done = (|| async {
            attempts.fetch_add(1, Ordering::Relaxed);
            self.attempt(user).await
        })
        .retry(backoff)
        .when(LlmError::is_transient)
        .adjust(move |e: &LlmError, planned| {
            // out of retries, or the server wants longer than we wait in-process
            let planned = planned?;
            match e.retry_after() {
                Some(asked) if asked > max_ra => None,
                Some(asked) => Some(asked),
                None => Some(planned),
            }
        })
        .notify(|e: &LlmError, after: Duration| {
            metrics::counter!("kb_llm_retries_total").increment(1);
            tracing::warn!(
                endpoint = %redact_url(&self.endpoint),
                status = e.status(),
                delay_ms = after.as_millis() as u64,
                error = %e,
                "LLM call failed, retrying"
            );
        })
        .await?;
        done.attempts = attempts.load(Ordering::Relaxed);
        Ok(done)
    }

    async fn attempt(&self, user: &str) -> Result<Completion, LlmError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| LlmError::transient("the extractor is shutting down"))?;
        let body = ChatRequest {
            model: &self.model,
            messages: vec![
                Message {
                    role: "system",
                    content: prompt::SYSTEM_PROMPT,
                },
                Message {
                    role: "user",
                    content: user,
                },
            ],
            temperature: self.temperature,
            max_tokens: self.max_output_tokens,
            response_format: ResponseFormat {
                kind: "json_schema",
                json_schema: JsonSchema {
                    name: schema::SCHEMA_NAME,
                    schema: schema::schema(),
                    strict: true,
                },
            },
        };
        let mut req = self.http.post(&self.endpoint).json(&body);
        if !self.key.is_empty() {
            req = req.bearer_auth(self.key.expose());
        }
        let resp = req.send().await.map_err(send_error)?;
        let status = resp.status();
        let asked = retry_after::from_headers(resp.headers(), SystemTime::now());
        let bytes = resp.bytes().await.map_err(|e| {
            LlmError::transient("reading the response failed")
                .with_status(status.as_u16())
                .with_source(e)
        })?;
        metrics::counter!("kb_llm_requests_total", "status" => status.as_u16().to_string())
            .increment(1);
        if !status.is_success() {
            return Err(status_error(status, &bytes, asked));
        }
        let parsed: ChatResponse = serde_json::from_slice(&bytes).map_err(|e| {
            LlmError::config("the endpoint did not answer with a chat completion")
                .with_status(status.as_u16())
                .with_source(e)
        })?;
        let choice = parsed.choices.into_iter().next();
        Ok(Completion {
            content: choice
                .as_ref()
                .and_then(|c| c.message.content.as_ref())
                .map(wire::Content::text),
            finish_reason: choice.and_then(|c| c.finish_reason),
            usage: parsed.usage,
            attempts: 1,
        })
    }
}

fn send_error(e: reqwest::Error) -> LlmError {
    if e.is_builder() {
        return LlmError::config("invalid request (check llm.base_url)").with_source(e);
    }
    let what = if e.is_timeout() {
        "the request timed out"
    } else if e.is_connect() {
        "cannot connect to the endpoint"
    } else {
        "the request failed"
    };
    LlmError::transient(what).with_source(e)
}

/// 429, 408, 409, 425 and 5xx are transient; 401, 403, 404 mean a wrong key, model or URL;
/// any other status (400, 413, 422, ...) says this request will never succeed.
fn status_error(status: StatusCode, body: &[u8], asked: Option<Duration>) -> LlmError {
    let code = status.as_u16();
    let msg = format!("{}: {}", status, wire::error_message(body));
    let err = match code {
        408 | 409 | 425 | 429 | 500..=599 => LlmError::transient(msg).with_retry_after(asked),
        401 | 403 | 404 => LlmError::config(msg),
        _ => LlmError::permanent(msg),
    };
    err.with_status(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::LlmErrorKind;

    #[test]
    fn statuses_are_classified() {
        let k = |c: u16| status_error(StatusCode::from_u16(c).unwrap(), b"{}", None).kind();
        assert_eq!(k(429), LlmErrorKind::Transient);
        assert_eq!(k(503), LlmErrorKind::Transient);
        assert_eq!(k(401), LlmErrorKind::Config);
        assert_eq!(k(403), LlmErrorKind::Config);
        assert_eq!(k(400), LlmErrorKind::Permanent);
        assert_eq!(k(422), LlmErrorKind::Permanent);
        let e = status_error(
            StatusCode::TOO_MANY_REQUESTS,
            br#"{"message":"Requests rate limit exceeded"}"#,
            Some(Duration::from_secs(2)),
        );
        assert_eq!(e.retry_after(), Some(Duration::from_secs(2)));
        assert!(e.message().contains("rate limit"), "{e}");
    }
}
