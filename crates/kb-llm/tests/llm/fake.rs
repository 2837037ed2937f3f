//! A local chat-completions server speaking the real wire format: scripted replies (error
//! bodies, headers, delays), or a responder that plays the model; it records every request
//! and counts requests in flight.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Response, StatusCode};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};

/// One answer of the server.
#[derive(Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    /// A 200 chat completion whose assistant content is `content`.
    pub fn chat(content: &str) -> Reply {
        Reply::raw(200, &completion(json!(content)).to_string())
    }

    /// A 200 chat completion with Mistral's list-of-parts content.
    pub fn chat_parts(content: &str) -> Reply {
        let parts = json!([{"type": "text", "text": content}]);
        Reply::raw(200, &completion(parts).to_string())
    }

    pub fn raw(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.into(),
        }
    }

    /// An error in Mistral's body format.
    pub fn error(status: u16, message: &str, kind: &str) -> Reply {
        let body = json!({"object": "error", "message": message, "type": kind, "param": null, "code": null});
        Reply::raw(status, &body.to_string())
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }
}

fn completion(content: Value) -> Value {
    json!({
        "id": "cmpl-fake",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "fake-model",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content, "tool_calls": null, "prefix": false},
            "finish_reason": "stop",
            "logprobs": null
        }],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}
    })
}

/// A request as the server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub authorization: Option<String>,
    pub body: Value,
    pub at: Instant,
}

impl Seen {
    /// The chunks sent in the user message: (chunk number, text).
    pub fn chunks(&self) -> Vec<(u64, String)> {
        chunks_of(&self.body)
    }
}

pub fn chunks_of(body: &Value) -> Vec<(u64, String)> {
    let user = body["messages"][1]["content"].as_str().unwrap_or_default();
    let json = user.split_once('\n').map(|x| x.1).unwrap_or_default();
    let items: Vec<Value> = serde_json::from_str(json).unwrap_or_default();
    items
        .iter()
        .map(|i| {
            (
                i["chunk"].as_u64().unwrap_or(u64::MAX),
                i["text"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

type Responder = Box<dyn Fn(&Value) -> Reply + Send + Sync>;

struct Inner {
    script: Mutex<VecDeque<Reply>>,
    responder: Responder,
    seen: Mutex<Vec<Seen>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    delay: Duration,
}

pub struct Fake {
    pub base_url: String,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Fake {
    /// Serves scripted replies first, then `responder` for every further request; each
    /// request waits `delay` before answering (while counted in flight).
    pub async fn start(
        script: Vec<Reply>,
        delay: Duration,
        responder: impl Fn(&Value) -> Reply + Send + Sync + 'static,
    ) -> Fake {
        let inner = Arc::new(Inner {
            script: Mutex::new(script.into()),
            responder: Box::new(responder),
            seen: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            delay,
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(handle))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Fake {
            base_url: format!("http://{addr}"),
            inner,
            task,
        }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.inner.seen.lock().unwrap().clone()
    }

    pub fn max_in_flight(&self) -> usize {
        self.inner.max_in_flight.load(Ordering::SeqCst)
    }
}

async fn handle(State(st): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response<Body> {
    let now = st.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    st.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    st.seen.lock().unwrap().push(Seen {
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: json.clone(),
        at: Instant::now(),
    });
    let scripted = st.script.lock().unwrap().pop_front();
    let reply = scripted.unwrap_or_else(|| (st.responder)(&json));
    tokio::time::sleep(st.delay).await;
    st.in_flight.fetch_sub(1, Ordering::SeqCst);
    let mut b = Response::builder().status(StatusCode::from_u16(reply.status).unwrap());
    for (k, v) in &reply.headers {
        b = b.header(k, v);
    }
    b.body(Body::from(reply.body)).unwrap()
}

/// A responder playing a model that knows a few names: for every chunk it reports the
/// known names the chunk contains, and the given relations between names both present.
pub fn knowing(
    names: &'static [(&'static str, &'static str)],
    relations: &'static [(&'static str, &'static str, &'static str, f64)],
) -> impl Fn(&Value) -> Reply + Send + Sync + 'static {
    move |body| {
        let chunks: Vec<Value> = chunks_of(body)
            .into_iter()
            .map(|(n, text)| {
                let ents: Vec<Value> = names
                    .iter()
                    .filter(|(name, _)| text.contains(name))
                    .map(|(name, ty)| json!({"name": name, "type": ty}))
                    .collect();
                let rels: Vec<Value> = relations
                    .iter()
                    .filter(|(s, t, _, _)| text.contains(s) && text.contains(t))
                    .map(|(s, t, ty, w)| json!({"source": s, "target": t, "type": ty, "weight": w}))
                    .collect();
                json!({"chunk": n, "entities": ents, "relations": rels})
            })
            .collect();
        Reply::chat(&json!({ "chunks": chunks }).to_string())
    }
}
