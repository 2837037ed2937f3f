//! A local stand-in for the remote embedding services, for tests and benchmarks: an HTTP
//! server on `127.0.0.1:0` that speaks Mistral's and OpenAI's `/v1/embeddings` and Ollama's
//! `/api/embed`, with their error bodies, and can be told to fail the ways real services do
//! (401, 429 with `Retry-After`, 5xx, slow answers, malformed JSON, wrong dimensions).
//!
//! Vectors are a deterministic function of the text ([`fake_vector`]), so a test can check
//! that every chunk got its own vector back.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Whose error bodies the fake imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FakeFlavor {
    Mistral,
    OpenAi,
    Ollama,
}

/// How the fake behaves when no [`Fault`] is queued.
#[derive(Debug, Clone)]
pub struct FakeConfig {
    pub flavor: FakeFlavor,
    pub dimensions: usize,
    /// Added to every answer: the "fixed latency per request" of benchmarks.
    pub latency: Duration,
    /// When set, requests without `Authorization: Bearer <key>` get 401.
    pub api_key: Option<String>,
    /// More inputs in one request get 400 ("Too many inputs").
    pub max_inputs: Option<usize>,
    /// More whitespace-separated words in one request get 400 ("Too many tokens").
    pub max_words: Option<usize>,
    /// More requests at once get 429 with `Retry-After: throttle_retry_after`.
    pub max_concurrent: Option<usize>,
    pub throttle_retry_after: String,
    /// A request holding an input that contains this text gets 400.
    pub poison: Option<String>,
}

impl FakeConfig {
    pub fn new(flavor: FakeFlavor, dimensions: usize) -> Self {
        Self {
            flavor,
            dimensions,
            latency: Duration::ZERO,
            api_key: None,
            max_inputs: None,
            max_words: None,
            max_concurrent: None,
            throttle_retry_after: "1".to_owned(),
            poison: None,
        }
    }
}

/// A one-off misbehaviour, applied to the next request (in the order queued).
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this status and the flavor's error body; `Retry-After` when given.
    Status {
        code: u16,
        retry_after: Option<String>,
    },
    /// Wait this long before answering normally (a timeout when longer than the client's).
    Delay(Duration),
    /// 200 with a body that is not the expected JSON.
    Malformed,
    /// 200 with vectors of this length.
    WrongDimensions(usize),
}

/// What the fake received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    pub model: String,
    pub inputs: Vec<String>,
    pub authorization: Option<String>,
    pub body: Value,
    /// HTTP status the fake answered.
    pub status: u16,
}

#[derive(Default)]
struct Book {
    faults: VecDeque<Fault>,
    requests: Vec<Recorded>,
}

struct Shared {
    cfg: FakeConfig,
    book: Mutex<Book>,
    in_flight: AtomicUsize,
    max_seen: AtomicUsize,
}

impl Shared {
    fn book(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running fake; the server stops when this is dropped.
pub struct FakeProvider {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeProvider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeProvider {
    /// Binds `127.0.0.1:0` and serves in the background.
    pub async fn start(cfg: FakeConfig) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            cfg,
            book: Mutex::default(),
            in_flight: AtomicUsize::new(0),
            max_seen: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route("/v1/embeddings", post(handle))
            .route("/api/embed", post(handle))
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!(error = %e, "fake embedding provider stopped");
            }
        });
        Ok(Self { addr, shared, task })
    }

    /// `http://127.0.0.1:PORT`, the `base_url` to configure.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn push_fault(&self, fault: Fault) {
        self.shared.book().faults.push_back(fault);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.book().requests.clone()
    }

    /// Inputs of every request answered 200, in arrival order.
    pub fn embedded_inputs(&self) -> Vec<String> {
        self.shared
            .book()
            .requests
            .iter()
            .filter(|r| r.status == 200)
            .flat_map(|r| r.inputs.clone())
            .collect()
    }

    /// Most requests seen in flight at once.
    pub fn max_concurrent_seen(&self) -> usize {
        self.shared.max_seen.load(Ordering::Relaxed)
    }
}

/// The fake's vector for `text`: unit length, derived from its SHA-256.
pub fn fake_vector(text: &str, dimensions: usize) -> Vec<f32> {
    let mut state = u64::from_le_bytes(
        Sha256::digest(text.as_bytes())[..8]
            .try_into()
            .unwrap_or([7; 8]),
    ) | 1;
    let mut v: Vec<f32> = (0..dimensions)
        .map(|_| {
            // xorshift64*: cheap, deterministic, spread over [-1, 1).
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let x = state.wrapping_mul(0x2545_F491_4F6C_DD1D);
            (x >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect();
    let norm = v
        .iter()
        .map(|x| x * x)
        .sum::<f32>()
        .sqrt()
        .max(f32::MIN_POSITIVE);
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

struct InFlight<'a>(&'a Shared);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = shared.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
    shared.max_seen.fetch_max(now, Ordering::Relaxed);
    let _guard = InFlight(&shared);
    let cfg = &shared.cfg;
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let inputs: Vec<String> = match parsed.get("input") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let over_limit = cfg.max_concurrent.is_some_and(|m| now > m);
    let fault = if over_limit {
        // A rate limiter answers at once, without doing the work.
        Some(Fault::Status {
            code: 429,
            retry_after: Some(cfg.throttle_retry_after.clone()),
        })
    } else {
        shared.book().faults.pop_front()
    };
    if let Some(Fault::Delay(d)) = &fault {
        tokio::time::sleep(*d).await;
    }
    if !over_limit {
        tokio::time::sleep(cfg.latency).await;
    }

    let ollama = uri.path() == "/api/embed";
    let answer = decide(
        cfg,
        fault,
        &parsed,
        &inputs,
        authorization.as_deref(),
        ollama,
    );
    let status = answer.status().as_u16();
    shared.book().requests.push(Recorded {
        path: uri.path().to_owned(),
        model: parsed
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        inputs,
        authorization,
        body: parsed,
        status,
    });
    answer
}

fn decide(
    cfg: &FakeConfig,
    fault: Option<Fault>,
    body: &Value,
    inputs: &[String],
    authorization: Option<&str>,
    ollama: bool,
) -> Response {
    if let Some(key) = &cfg.api_key {
        if authorization != Some(format!("Bearer {key}").as_str()) {
            return error(cfg.flavor, 401, None, "Unauthorized");
        }
    }
    match fault {
        Some(Fault::Status { code, retry_after }) => {
            return error(cfg.flavor, code, retry_after, "scripted failure")
        }
        Some(Fault::Malformed) => {
            return (
                StatusCode::OK,
                [("content-type", "application/json")],
                "{\"data\": [",
            )
                .into_response()
        }
        Some(Fault::WrongDimensions(n)) => return vectors(body, inputs, n, ollama),
        Some(Fault::Delay(_)) | None => {}
    }
    if body
        .get("model")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
        || inputs.is_empty()
    {
        return error(cfg.flavor, 422, None, "model and input are required");
    }
    if cfg.max_inputs.is_some_and(|m| inputs.len() > m) {
        return error(
            cfg.flavor,
            400,
            None,
            "Too many inputs in request, split into more batches.",
        );
    }
    let words: usize = inputs.iter().map(|t| t.split_whitespace().count()).sum();
    if cfg.max_words.is_some_and(|m| words > m) {
        return error(
            cfg.flavor,
            400,
            None,
            "Too many tokens overall, split into more batches.",
        );
    }
    if let Some(p) = &cfg.poison {
        if inputs.iter().any(|t| t.contains(p.as_str())) {
            return error(
                cfg.flavor,
                400,
                None,
                "Input rejected by the content filter.",
            );
        }
    }
    let dims = body
        .get("dimensions")
        .and_then(Value::as_u64)
        .map_or(cfg.dimensions, |d| d as usize);
    vectors(body, inputs, dims, ollama)
}

fn vectors(body: &Value, inputs: &[String], dims: usize, ollama: bool) -> Response {
    let model = body.get("model").cloned().unwrap_or(Value::Null);
    let answer = if ollama {
        json!({
            "model": model,
            "embeddings": inputs.iter().map(|t| fake_vector(t, dims)).collect::<Vec<_>>(),
            "total_duration": 1000, "load_duration": 10, "prompt_eval_count": inputs.len(),
        })
    } else {
        // Reversed on purpose: clients must order by `index`, not by position.
        let data: Vec<Value> = inputs
            .iter()
            .enumerate()
            .rev()
            .map(|(i, t)| json!({"object": "embedding", "index": i, "embedding": fake_vector(t, dims)}))
            .collect();
        json!({"id": "emb-fake", "object": "list", "data": data, "model": model,
               "usage": {"prompt_tokens": 1, "total_tokens": 1}})
    };
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        answer.to_string(),
    )
        .into_response()
}

fn error(flavor: FakeFlavor, code: u16, retry_after: Option<String>, message: &str) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = match flavor {
        FakeFlavor::Mistral if code == 401 => json!({"message": message, "request_id": "fake"}),
        FakeFlavor::Mistral => json!({"object": "error", "message": message,
                                       "type": "invalid_request_error", "param": null, "code": null}),
        FakeFlavor::OpenAi => json!({"error": {"message": message, "type": "invalid_request_error",
                                                "param": null, "code": null}}),
        FakeFlavor::Ollama => json!({"error": message}),
    };
    let mut resp = (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response();
    if let Some(v) = retry_after.and_then(|v| axum::http::HeaderValue::from_str(&v).ok()) {
        resp.headers_mut().insert("retry-after", v);
    }
    resp
}
