//! The HTTP API end to end: the real kb-query binary over real stores holding real documents
//! (a meeting transcript and two notes), as a client sees it: every mode and filter, the
//! provenance of each hit, documents and entities, limits, errors as problem documents,
//! bearer authentication, and the OpenAPI document fuzzed by schemathesis.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BIN: &str = env!("CARGO_BIN_EXE_kb-query");

/// A JSON client of one kb-query.
struct Api {
    http: reqwest::Client,
    url: String,
    token: Option<String>,
}

/// Status, content type and JSON body of an answer.
struct Answer {
    status: u16,
    content_type: String,
    body: Value,
}

impl Api {
    fn new(svc: &QueryService, token: Option<&str>) -> Self {
        Self {
            http: reqwest::Client::new(),
            url: svc.url.clone(),
            token: token.map(str::to_owned),
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Answer {
        let req = match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        let r = req.timeout(Duration::from_secs(60)).send().await.unwrap();
        let status = r.status().as_u16();
        let content_type = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let text = r.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer {
            status,
            content_type,
            body,
        }
    }

    async fn search(&self, body: Value) -> Answer {
        self.send(
            self.http
                .post(format!("{}/v1/search", self.url))
                .json(&body),
        )
        .await
    }

    /// A search that must succeed; its results.
    async fn results(&self, body: Value) -> Vec<Value> {
        let a = self.search(body.clone()).await;
        assert_eq!(a.status, 200, "{body} → {}", a.body);
        assert_eq!(a.body["degraded"], json!([]), "{body} → {}", a.body);
        a.body["results"].as_array().unwrap().clone()
    }

    async fn get(&self, path: &str) -> Answer {
        self.send(self.http.get(format!("{}{path}", self.url)))
            .await
    }
}

/// An RFC 9457 problem document with this status.
fn assert_problem(a: &Answer, status: u16, detail_has: &str) {
    assert_eq!(a.status, status, "{}", a.body);
    assert_eq!(a.content_type, "application/problem+json", "{}", a.body);
    assert_eq!(a.body["type"], "about:blank", "{}", a.body);
    assert_eq!(a.body["status"], status, "{}", a.body);
    assert!(a.body["title"].as_str().is_some_and(|t| !t.is_empty()));
    let detail = a.body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(detail_has),
        "detail {detail:?} should mention {detail_has:?}"
    );
}

fn paths(results: &[Value]) -> Vec<&str> {
    results
        .iter()
        .map(|h| h["path"].as_str().unwrap())
        .collect()
}

/// Whether a hit satisfies a filter.
type Holds = Box<dyn Fn(&Value) -> bool>;

const MODES: [&str; 4] = ["hybrid", "vector", "keyword", "graph"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_documents_entities_limits_and_errors() -> anyhow::Result<()> {
    let stores = Stores::fresh().await?;
    let docs = corpus();
    stores.fill(&docs).await?;
    let svc = QueryService::start(Path::new(BIN), &stores.env().await?).await?;
    svc.wait_all_up().await?;
    let api = Api::new(&svc, None);
    let transcript_id = docs[0].source_id();
    let budget_id = docs[1].source_id();

    // Every mode answers with its own retriever's ranks; hybrid fuses them by reciprocal rank.
    for mode in MODES {
        let a = api
            .search(json!({"query": "remote control budget", "mode": mode, "k": 5}))
            .await;
        assert_eq!(a.status, 200, "{mode}: {}", a.body);
        assert_eq!(a.content_type, "application/json");
        assert_eq!(a.body["mode"], mode);
        assert_eq!(a.body["query"], "remote control budget");
        assert_eq!(a.body["degraded"], json!([]), "{mode}: {}", a.body);
        assert!(a.body["took_ms"].is_u64());
        let results = a.body["results"].as_array().unwrap();
        assert!(
            !results.is_empty() && results.len() <= 5,
            "{mode}: {}",
            a.body
        );
        let mut last_score = f64::INFINITY;
        for (i, h) in results.iter().enumerate() {
            assert_eq!(h["rank"], i + 1);
            let score = h["score"].as_f64().unwrap();
            assert!(score > 0.0 && score <= last_score, "{mode}: scores fall");
            last_score = score;
            let ranks = h["ranks"].as_object().unwrap();
            // score = Σ weight / (rrf_k + rank), with the default settings
            let q = kb_core::settings::QuerySettings::default();
            let expected: f64 = ranks
                .iter()
                .map(|(r, rank)| {
                    let w = match r.as_str() {
                        "graph" => q.weight_graph,
                        "keyword" => q.weight_keyword,
                        _ => q.weight_vector,
                    };
                    w / (q.rrf_k + rank.as_f64().unwrap())
                })
                .sum();
            assert!((score - expected).abs() < 1e-9, "{mode}: {h}");
            if mode != "hybrid" {
                assert_eq!(ranks.keys().collect::<Vec<_>>(), [mode], "{h}");
                assert_eq!(ranks[mode], i + 1, "a single retriever's own order");
            }
        }
        if mode == "hybrid" {
            assert!(
                results
                    .iter()
                    .any(|h| h["ranks"].as_object().unwrap().len() >= 2),
                "hybrid fuses several retrievers: {}",
                a.body
            );
        }
    }

    // Provenance: what a reader needs to cite each hit, checked against the document itself.
    let a = api
        .search(json!({"query": "what did they decide about the budget of the remote control?", "k": 20}))
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let results = a.body["results"].as_array().unwrap();
    let note = results
        .iter()
        .find(|h| h["path"] == BUDGET)
        .expect("the budget note answers a budget question");
    assert_eq!(
        note["rank"], 1,
        "the note that states the decision comes first"
    );
    assert_eq!(note["source_id"], budget_id.as_str());
    assert_eq!(note["title"], "Remote control budget 2024");
    assert_eq!(note["origin"], "folder:inbox");
    assert_eq!(note["media_type"], "text/markdown");
    assert_eq!(note["document_date"], "2024-05-02T00:00:00Z");
    assert_eq!(note["modified_at"], "2024-06-30T08:00:00Z");
    assert!(note["section"]
        .as_str()
        .unwrap()
        .contains("Remote control budget 2024"));
    let turn = results
        .iter()
        .find(|h| h["path"] == TRANSCRIPT)
        .expect("the meeting answers too");
    assert_eq!(turn["source_id"], transcript_id.as_str());
    assert_eq!(turn["media_type"], "text/plain");
    let speakers: Vec<&str> = turn["speakers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(!speakers.is_empty());
    for s in &speakers {
        assert!(
            [
                "Project Manager",
                "Marketing",
                "Industrial Designer",
                "User Interface"
            ]
            .contains(s),
            "{s}"
        );
    }
    let (start, end) = (
        turn["start_seconds"].as_f64().unwrap(),
        turn["end_seconds"].as_f64().unwrap(),
    );
    assert!(0.0 <= start && start < end && end < 600.0, "{turn}");
    for h in results {
        let importance = h["importance"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&importance), "{h}");
        assert!(!h["chunk_id"].as_str().unwrap().is_empty());
        assert!(!h["text"].as_str().unwrap().is_empty());
        // The hit is that chunk of that document, word for word.
        let doc = api
            .get(&format!("/v1/sources/{}", h["source_id"].as_str().unwrap()))
            .await;
        assert_eq!(doc.status, 200, "{}", doc.body);
        let index = h["chunk_index"].as_u64().unwrap() as usize;
        let chunk = &doc.body["chunks"][index];
        assert_eq!(chunk["chunk_index"], index);
        assert_eq!(chunk["chunk_id"], h["chunk_id"]);
        assert_eq!(chunk["text"], h["text"]);
        assert_eq!(chunk["speakers"], h["speakers"]);
        assert_eq!(doc.body["path"], h["path"]);
    }

    // A document: every chunk in order, the source's fields, from Postgres (nothing degraded).
    let doc = api.get(&format!("/v1/sources/{transcript_id}")).await;
    assert_eq!(doc.status, 200);
    assert_eq!(doc.body["source_id"], transcript_id.as_str());
    assert_eq!(doc.body["status"], "ok");
    assert_eq!(doc.body["version"], 1);
    assert_eq!(doc.body["degraded"], json!([]));
    let chunks = doc.body["chunks"].as_array().unwrap();
    assert!(chunks.len() >= 5);
    for (i, c) in chunks.iter().enumerate() {
        assert_eq!(c["chunk_index"], i);
    }
    assert!(chunks[0]["text"]
        .as_str()
        .unwrap()
        .contains("We m have to make a new remote control"));
    assert_eq!(chunks[0]["start_seconds"], 0.0);
    assert_problem(
        &api.get("/v1/sources/0123456789abcdef").await,
        404,
        "no source",
    );
    assert_problem(
        &api.get(&format!("/v1/sources/{}", "a".repeat(201))).await,
        400,
        "source id",
    );

    // An entity with its relations, in any of the forms ingest gives names.
    for name in ["Rotterdam", "rotterdam"] {
        let e = api.get(&format!("/v1/entities/{name}")).await;
        assert_eq!(e.status, 200, "{}", e.body);
        let found = &e.body["entities"][0];
        assert_eq!(found["name"], "Rotterdam");
        assert_eq!(found["entity_type"], "PLACE");
        assert_eq!(found["sources"], 2, "both notes name it");
        assert!(!found["neighbours"].as_array().unwrap().is_empty());
        assert_eq!(e.body["degraded"], json!([]));
    }
    let e = api.get("/v1/entities/Remote%20Controls").await;
    assert_eq!(e.status, 200, "a plural finds the entity: {}", e.body);
    assert_eq!(e.body["entities"][0]["canonical_name"], "remote control");
    assert_problem(
        &api.get("/v1/entities/Nobody%20Atall").await,
        404,
        "no entity",
    );
    assert_problem(&api.get("/v1/entities/%20%20").await, 400, "entity name");

    // Filters, in every mode: each hit satisfies them; hybrid and vector always find some.
    let filters: Vec<(Value, Holds)> = vec![
        (
            json!({"path_prefix": "notes/"}),
            Box::new(|h: &Value| h["path"].as_str().unwrap().starts_with("notes/")),
        ),
        (
            json!({"origin": "drive"}),
            Box::new(|h: &Value| h["origin"] == "drive:team"),
        ),
        (
            json!({"origin": "folder"}),
            Box::new(|h: &Value| h["origin"] == "folder:inbox"),
        ),
        (
            json!({"origin": "folder:inbox"}),
            Box::new(|h: &Value| h["origin"] == "folder:inbox"),
        ),
        (
            json!({"media_type": "text/markdown"}),
            Box::new(|h: &Value| h["media_type"] == "text/markdown"),
        ),
        (
            json!({"media_type": "text/*"}),
            Box::new(|h: &Value| h["media_type"].as_str().unwrap().starts_with("text/")),
        ),
        (
            json!({"speaker": "industrial"}),
            Box::new(|h: &Value| {
                h["speakers"]
                    .as_array()
                    .is_some_and(|s| s.iter().any(|s| s == "Industrial Designer"))
            }),
        ),
        (
            // document date 2024-05-02 (front matter); the others are older
            json!({"from": "2024-04-01"}),
            Box::new(|h: &Value| h["path"] == BUDGET),
        ),
        (
            json!({"to": "2024-03-31T23:00:00Z"}),
            Box::new(|h: &Value| h["path"] != BUDGET),
        ),
        (
            // the transcript states no date: its modified time (2024-03-14) counts
            json!({"from": "2024-03-01", "to": "2024-03-31"}),
            Box::new(|h: &Value| h["path"] == TRANSCRIPT),
        ),
        (
            json!({"entity": "Rotterdam"}),
            Box::new(|h: &Value| h["text"].as_str().unwrap().contains("Rotterdam")),
        ),
        (
            json!({"path_prefix": "meetings/", "speaker": "marketing"}),
            Box::new(|h: &Value| {
                h["path"] == TRANSCRIPT
                    && h["speakers"]
                        .as_array()
                        .is_some_and(|s| s.iter().any(|s| s == "Marketing"))
            }),
        ),
    ];
    for (filter, holds) in &filters {
        for mode in MODES {
            let results = api
                .results(json!({
                    "query": "remote control buttons and the budget of Rotterdam suppliers",
                    "mode": mode, "k": 50, "filters": filter,
                }))
                .await;
            for h in &results {
                assert!(holds(h), "{mode} {filter}: {h}");
            }
            if mode == "hybrid" || mode == "vector" {
                assert!(!results.is_empty(), "{mode} {filter} found nothing");
            }
        }
    }
    // ... and a filter nothing satisfies leaves nothing, not everything.
    let none = api
        .results(json!({"query": "remote control", "filters": {"media_type": "application/pdf"}}))
        .await;
    assert!(none.is_empty(), "{none:?}");
    let drive = api
        .results(json!({"query": "remote control", "k": 50, "filters": {"origin": "drive"}}))
        .await;
    assert_eq!(
        paths(&drive).iter().filter(|p| **p == HANDBOOK).count(),
        drive.len()
    );

    // k: default 10, as asked, and bounded by query.max_k (100).
    assert_eq!(
        api.results(json!({"query": "remote control"})).await.len(),
        10
    );
    assert_eq!(
        api.results(json!({"query": "remote control", "k": 3}))
            .await
            .len(),
        3
    );
    assert!(
        api.results(json!({"query": "remote control", "k": 100}))
            .await
            .len()
            > 10
    );
    assert_problem(
        &api.search(json!({"query": "remote control", "k": 101}))
            .await,
        400,
        "k must be between 1 and 100",
    );
    assert_problem(
        &api.search(json!({"query": "remote control", "k": 0})).await,
        400,
        "k must be",
    );

    // Query length: query.max_query_chars (2000), counted in characters, not bytes.
    let long = "é".repeat(2000);
    assert_eq!(api.search(json!({"query": long})).await.status, 200);
    let longer = "é".repeat(2001);
    assert_problem(
        &api.search(json!({"query": longer})).await,
        400,
        "longer than 2000 characters",
    );
    assert_problem(
        &api.search(json!({"query": "   "})).await,
        400,
        "query is empty",
    );

    // Bad filters are all named at once.
    let bad = api
        .search(json!({"query": "budget", "filters": {"from": "yesterday", "speaker": " "}}))
        .await;
    assert_problem(&bad, 400, "filters.from");
    assert!(bad.body["detail"]
        .as_str()
        .unwrap()
        .contains("filters.speaker"));

    // Bodies that are not a search request: problem documents, never a 5xx.
    let raw = |body: &'static str, content_type: &'static str| {
        api.http
            .post(format!("{}/v1/search", api.url))
            .header("content-type", content_type)
            .body(body)
    };
    assert_problem(
        &api.send(raw("{\"query\": \"budget\"", "application/json"))
            .await,
        400,
        "",
    );
    assert_problem(
        &api.send(raw("not json at all", "application/json")).await,
        400,
        "",
    );
    assert_problem(&api.send(raw("", "application/json")).await, 400, "");
    assert_problem(
        &api.send(raw("[\"budget\"]", "application/json")).await,
        400,
        "",
    );
    assert_problem(
        &api.send(raw("{\"query\": 42}", "application/json")).await,
        400,
        "query",
    );
    assert_problem(
        &api.send(raw(
            "{\"query\": \"b\", \"k\": \"ten\"}",
            "application/json",
        ))
        .await,
        400,
        "k",
    );
    assert_problem(
        &api.send(raw("{\"query\": \"b\", \"k\": -1}", "application/json"))
            .await,
        400,
        "k",
    );
    assert_problem(
        &api.send(raw(
            "{\"query\": \"b\", \"mode\": \"magic\"}",
            "application/json",
        ))
        .await,
        400,
        "mode",
    );
    assert_problem(
        &api.send(raw("{\"query\": \"b\", \"limit\": 5}", "application/json"))
            .await,
        400,
        "limit",
    );
    assert_problem(
        &api.send(raw(
            "{\"query\": \"b\", \"filters\": {\"colour\": \"red\"}}",
            "application/json",
        ))
        .await,
        400,
        "colour",
    );
    assert_problem(
        &api.send(raw("{\"query\": \"budget\"}", "text/plain")).await,
        415,
        "",
    );

    // Body size: query.max_body_bytes (64 KiB), announced or not.
    let big = json!({"query": "x".repeat(70 * 1024)});
    assert_problem(&api.search(big).await, 413, "larger than 65536 bytes");
    let (status, content_type, body) = chunked_post(&svc.url, "/v1/search", 70 * 1024).await?;
    assert_eq!(
        (status, content_type.as_str()),
        (413, "application/problem+json"),
        "{body}"
    );
    let (status, _, body) = chunked_post(&svc.url, "/v1/search", 0).await?;
    assert_eq!(status, 200, "a small chunked body is fine: {body}");

    // Paths and methods that do not exist.
    assert_problem(&api.get("/v2/search").await, 404, "");
    assert_problem(&api.get("/v1/search").await, 405, "");

    // Operations: readiness with each store, the OpenAPI document, the counters.
    let ready = api.get("/readyz").await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.body["ready"], true);
    assert_eq!(store_up(&ready.body, "postgres"), Some(true));
    assert_eq!(store_up(&ready.body, "graph"), Some(true));
    let doc = api.get("/openapi.json").await;
    assert_eq!(doc.status, 200);
    assert!(doc.body["openapi"].as_str().unwrap().starts_with("3."));
    for p in [
        "/v1/search",
        "/v1/sources/{id}",
        "/v1/entities/{name}",
        "/readyz",
    ] {
        assert!(doc.body["paths"][p].is_object(), "{p} is documented");
    }
    assert_eq!(
        doc.body["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert!(doc.body["components"]["schemas"]["SearchResponse"].is_object());
    let metrics = api.get("/metrics").await;
    assert_eq!(metrics.status, 200);
    let text = metrics.body.as_str().unwrap();
    for line in [
        r#"kb_query_http_requests_total{route="/v1/search",status="200"}"#,
        r#"kb_query_http_requests_total{route="/v1/search",status="400"}"#,
        r#"kb_query_http_requests_total{route="/v1/search",status="413"}"#,
        r#"kb_query_http_requests_total{route="unmatched",status="404"}"#,
        r#"kb_query_searches_total{mode="hybrid",outcome="ok"}"#,
        r#"kb_query_store_up{store="postgres"} 1"#,
    ] {
        assert!(text.contains(line), "/metrics lacks {line}");
    }
    Ok(())
}

/// POSTs a search whose body is sent chunked (no Content-Length), padded with `pad` spaces,
/// over a raw connection; status, content type and body of the answer.
async fn chunked_post(url: &str, path: &str, pad: usize) -> anyhow::Result<(u16, String, String)> {
    let addr = url.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(addr).await?;
    let body = format!("{{\"query\": \"remote control\"{}}}", " ".repeat(pad));
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    for piece in body.as_bytes().chunks(8192) {
        req.extend(format!("{:x}\r\n", piece.len()).as_bytes());
        req.extend(piece);
        req.extend(b"\r\n");
    }
    req.extend(b"0\r\n\r\n");
    // The server may answer 413 and close before it has read everything: that is fine.
    let _ = conn.write_all(&req).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), conn.read_to_end(&mut answer)).await;
    Ok(parse_answer(&answer))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_tokens_guard_the_api_and_mcp_but_not_operations() -> anyhow::Result<()> {
    let stores = Stores::fresh().await?;
    // Empty stores with their schema: searches answer (nothing), and that is all this needs.
    stores.fill(&[]).await?;
    let keys = tempfile::tempdir()?;
    let keys_file = keys.path().join("keys");
    std::fs::write(&keys_file, "# ops team\nkey-from-file\n")?;
    let mut env = stores.env().await?;
    env.push((
        "KB_QUERY__API_KEYS".into(),
        "key-inline-1,key-inline-2".into(),
    ));
    env.push((
        "KB_QUERY__API_KEYS_FILE".into(),
        keys_file.display().to_string(),
    ));
    // Everything the service logs, to check no token is ever in it.
    env.retain(|(k, _)| k != "RUST_LOG");
    env.push(("RUST_LOG".into(), "debug".into()));
    // A short request budget (two store deadlines and a second) for the slow client below.
    env.push(("KB_QUERY__STORE_TIMEOUT_MS".into(), "1000".into()));
    env.push(("KB_QUERY__REQUEST_TIMEOUT_MS".into(), "3000".into()));
    let svc = QueryService::start(Path::new(BIN), &env).await?;
    svc.wait_all_up().await?;
    let search = json!({"query": "remote control"});

    for token in ["key-inline-1", "key-inline-2", "key-from-file"] {
        let a = Api::new(&svc, Some(token)).search(search.clone()).await;
        assert_eq!(a.status, 200, "{token}: {}", a.body);
        assert_eq!(a.body["results"], json!([]));
    }
    let http = reqwest::Client::new();
    let lower = http
        .post(format!("{}/v1/search", svc.url))
        .header("authorization", "bearer key-from-file")
        .json(&search)
        .send()
        .await?;
    assert_eq!(lower.status(), 200, "the scheme is case-insensitive");

    for (label, api) in [
        ("no token", Api::new(&svc, None)),
        ("wrong token", Api::new(&svc, Some("key-inline"))),
        (
            "another key's prefix",
            Api::new(&svc, Some("key-from-file-and-more")),
        ),
    ] {
        let a = api.search(search.clone()).await;
        assert_problem(&a, 401, "");
        for path in ["/v1/sources/0123", "/v1/entities/Rotterdam"] {
            assert_problem(&api.get(path).await, 401, "");
        }
        let mcp = api
            .send(
                api.http
                    .post(format!("{}/mcp", api.url))
                    .header("accept", "application/json, text/event-stream")
                    .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})),
            )
            .await;
        assert_problem(&mcp, 401, "");
        // Probes and tools stay open.
        for path in ["/healthz", "/readyz", "/metrics", "/openapi.json"] {
            assert_eq!(api.get(path).await.status, 200, "{label} {path}");
        }
    }
    let challenge = http
        .post(format!("{}/v1/search", svc.url))
        .bearer_auth("nope")
        .json(&search)
        .send()
        .await?;
    let www = challenge.headers()["www-authenticate"].to_str()?.to_owned();
    assert!(
        www.starts_with("Bearer ") && www.contains("invalid_token"),
        "{www}"
    );

    // A client that announces a body and never sends it all gets the request budget, then
    // a 503 problem, not a connection held forever.
    let started = Instant::now();
    let (status, content_type, answer) = stalled_post(&svc.url, "key-inline-1").await?;
    let took = started.elapsed();
    assert_eq!(
        (status, content_type.as_str()),
        (503, "application/problem+json"),
        "{answer}"
    );
    assert!(answer.contains("request_timeout_ms"), "{answer}");
    assert!(
        took >= Duration::from_millis(2900) && took < Duration::from_millis(3000 + 5000),
        "{took:?}"
    );

    let log = svc.full_log();
    assert!(log.contains("DEBUG"), "the log was at debug level");
    for secret in ["key-inline-1", "key-inline-2", "key-from-file"] {
        assert!(!log.contains(secret), "a token is in the log");
    }
    Ok(())
}

/// Sends the headers of a search announcing 100 bytes of body, then only 10, and waits;
/// status, content type and whole answer.
async fn stalled_post(url: &str, token: &str) -> anyhow::Result<(u16, String, String)> {
    let addr = url.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(addr).await?;
    let req = format!(
        "POST /v1/search HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\nConnection: close\r\n\r\n\
         {{\"query\": "
    );
    conn.write_all(req.as_bytes()).await?;
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), conn.read_to_end(&mut answer)).await??;
    Ok(parse_answer(&answer))
}

fn parse_answer(answer: &[u8]) -> (u16, String, String) {
    let answer = String::from_utf8_lossy(answer).into_owned();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let content_type = answer
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_owned())
        })
        .unwrap_or_default();
    (status, content_type, answer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_to_serve_beyond_loopback_without_keys() -> anyhow::Result<()> {
    let env = Stores::fresh().await?.env().await?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let dir = tempfile::tempdir()?;
    let empty = dir.path().join("keys");
    std::fs::write(&empty, "# keys come later\n")?;
    for (extra, why) in [
        (vec![], "query.api_keys"),
        (
            vec![("KB_QUERY__API_KEYS_FILE", empty.display().to_string())],
            "names no key",
        ),
    ] {
        let mut cmd = tokio::process::Command::new(BIN);
        cmd.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("KB_QUERY__LISTEN", format!("0.0.0.0:{port}"))
            .envs(extra)
            .env_remove("KB_CONFIG")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        let out = tokio::time::timeout(START_TIMEOUT, cmd.output()).await??;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(stderr.contains(why), "{stderr}");
    }
    Ok(())
}

/// The OpenAPI document, fuzzed by schemathesis (tests/fuzz/openapi): requests generated
/// from it, valid and not, against every operation, with real data behind; no 5xx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_fuzzing_finds_no_server_error() -> anyhow::Result<()> {
    let stores = Stores::fresh().await?;
    stores.fill(&corpus()).await?;
    let mut env = stores.env().await?;
    env.push(("KB_QUERY__API_KEYS".into(), "fuzz-key".into()));
    let svc = QueryService::start(Path::new(BIN), &env).await?;
    svc.wait_all_up().await?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fuzz/openapi");
    let examples = std::env::var("KB_FUZZ_EXAMPLES").unwrap_or_else(|_| "100".into());
    let started = Instant::now();
    let out = tokio::process::Command::new(&script)
        .args([svc.url.as_str(), "fuzz-key", examples.as_str()])
        .env("KB_FUZZ_TIMEOUT", "300")
        .kill_on_drop(true)
        .output()
        .await?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("schemathesis took {:?}\n{stdout}", started.elapsed());
    assert!(
        out.status.success(),
        "schemathesis failed ({}):\n{stdout}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        svc.log()
    );
    // The service answered all of it and is still ready.
    svc.wait_all_up().await?;
    // A token the service refuses fails the run instead of passing untested.
    let refused = tokio::process::Command::new(&script)
        .args([svc.url.as_str(), "not-the-key", "5"])
        .env("KB_FUZZ_TIMEOUT", "300")
        .kill_on_drop(true)
        .output()
        .await?;
    assert!(
        !refused.status.success(),
        "{}",
        String::from_utf8_lossy(&refused.stdout)
    );
    Ok(())
}
