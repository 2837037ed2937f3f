//! One store away is not an outage: with the graph or Postgres stopped, or blackholed
//! (SIGSTOP: the port still accepts connections, nothing answers), kb-query answers from the
//! other store, says what is missing in `degraded`, never answers 5xx for it, and `/readyz`
//! names the store that is away. Only with both away is the answer 503.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::mcp::QUESTION;
use support::*;

const BIN: &str = env!("CARGO_BIN_EXE_kb-query");
/// query.store_timeout_ms for this test: a store silent this long is away for the query.
const STORE_TIMEOUT_MS: u64 = 1000;
/// What an answer may take beyond that deadline on a loaded machine.
const MARGIN_MS: u64 = 2500;

struct Api {
    http: reqwest::Client,
    url: String,
}

impl Api {
    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.url))
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    async fn search(&self, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}/v1/search", self.url))
            .json(&body)
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    /// A search answered (200) with these retrievers degraded and some results; how long it took.
    async fn degraded(&self, body: Value, degraded: &[&str]) -> Duration {
        let started = Instant::now();
        let (status, answer) = self.search(body.clone()).await;
        let took = started.elapsed();
        assert_eq!(status, 200, "{body}: {answer}");
        assert_eq!(answer["degraded"], json!(degraded), "{body}: {answer}");
        assert!(
            !answer["results"].as_array().unwrap().is_empty(),
            "{body} found nothing: {answer}"
        );
        took
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_store_away_is_a_degraded_answer_not_an_outage() -> anyhow::Result<()> {
    let stack = kb_testkit::stack().await?;
    let mut pg = stack.private_postgres().await?;
    let mut graph = stack.private_graph().await?;
    let stores = Stores {
        postgres_url: pg.url(),
        graph: graph.graph_db(),
    };
    let docs = corpus();
    stores.fill(&docs).await?;
    let mut env = stores.env().await?;
    env.push((
        "KB_QUERY__STORE_TIMEOUT_MS".into(),
        STORE_TIMEOUT_MS.to_string(),
    ));
    env.push(("KB_QUERY__PROBE_INTERVAL_MS".into(), "250".into()));
    let svc = QueryService::start(Path::new(BIN), &env).await?;
    svc.wait_all_up().await?;
    let api = Api {
        http: reqwest::Client::new(),
        url: svc.url.clone(),
    };
    let transcript = docs[0].source_id();
    let (_, whole) = api.get(&format!("/v1/sources/{transcript}")).await;
    let chunks = whole["chunks"].as_array().unwrap().len();
    let hybrid = json!({"query": QUESTION});
    let mode = |m: &str| json!({"query": "remote control buttons", "mode": m});

    // The graph stopped: hybrid answers from Postgres (its copy of the entities stands in).
    graph.stop().await?;
    let (_, ready) = svc
        .wait_readyz("the graph away", |status, body| {
            status == 200
                && store_up(body, "graph") == Some(false)
                && store_up(body, "postgres") == Some(true)
        })
        .await?;
    assert_eq!(ready["ready"], true);
    assert!(ready["stores"][1]["reason"].is_string(), "{ready}");
    api.degraded(hybrid.clone(), &["graph"]).await;
    let (_, answer) = api.search(hybrid.clone()).await;
    assert!(
        !answer["entities"].as_array().unwrap().is_empty(),
        "the question's entities still come (from Postgres): {answer}"
    );
    api.degraded(mode("vector"), &[]).await;
    api.degraded(mode("keyword"), &[]).await;
    api.degraded(mode("graph"), &["graph"]).await;
    let (status, entity) = api.get("/v1/entities/Rotterdam").await;
    assert_eq!(
        (status, &entity["degraded"]),
        (200, &json!(["graph"])),
        "{entity}"
    );
    assert_eq!(entity["entities"][0]["sources"], 2);
    let (status, doc) = api.get(&format!("/v1/sources/{transcript}")).await;
    assert_eq!((status, &doc["degraded"]), (200, &json!([])), "{doc}");
    graph.start().await?;
    svc.wait_all_up().await?;
    api.degraded(hybrid.clone(), &[]).await;

    // Postgres stopped: the graph's chunks answer, its text scan stands in for keywords.
    pg.stop().await?;
    svc.wait_readyz("postgres away", |status, body| {
        status == 200
            && store_up(body, "postgres") == Some(false)
            && store_up(body, "graph") == Some(true)
    })
    .await?;
    api.degraded(hybrid.clone(), &["vector", "keyword"]).await;
    api.degraded(mode("vector"), &["vector"]).await;
    api.degraded(mode("keyword"), &["keyword"]).await;
    api.degraded(mode("graph"), &[]).await;
    let (status, doc) = api.get(&format!("/v1/sources/{transcript}")).await;
    assert_eq!(
        (status, &doc["degraded"]),
        (200, &json!(["postgres"])),
        "{doc}"
    );
    assert_eq!(
        doc["chunks"].as_array().unwrap().len(),
        chunks,
        "the whole document"
    );
    let (status, entity) = api.get("/v1/entities/Rotterdam").await;
    assert_eq!((status, &entity["degraded"]), (200, &json!([])), "{entity}");
    pg.start().await?;
    svc.wait_all_up().await?;
    api.degraded(hybrid.clone(), &[]).await;

    // Blackholes: a stopped process that holds its port costs one store deadline, no more.
    let deadline = Duration::from_millis(STORE_TIMEOUT_MS + MARGIN_MS);
    for (store, degraded) in [
        ("graph", vec!["graph"]),
        ("postgres", vec!["vector", "keyword"]),
    ] {
        if store == "graph" {
            graph.pause()?;
        } else {
            pg.pause()?;
        }
        for attempt in ["first", "second"] {
            let took = api.degraded(hybrid.clone(), &degraded).await;
            eprintln!("{store} blackholed: {attempt} answer in {took:?}");
            assert!(
                took < deadline,
                "{store} blackholed: the {attempt} answer took {took:?}\n{}",
                svc.log()
            );
        }
        let (_, ready) = svc
            .wait_readyz("the blackholed store away", |status, body| {
                status == 200 && store_up(body, store) == Some(false)
            })
            .await?;
        let reason = ready["stores"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["store"] == store)
            .unwrap()["reason"]
            .clone();
        assert!(reason.is_string(), "{ready}");
        let started = Instant::now();
        let (status, _) = api.get("/readyz").await;
        assert_eq!(status, 200);
        assert!(started.elapsed() < deadline, "/readyz waits for no store");
        graph.resume()?;
        pg.resume()?;
        svc.wait_all_up().await?;
    }

    // Both away: no store can answer, and that is the only 503.
    graph.pause()?;
    pg.pause()?;
    let (status, ready) = svc
        .wait_readyz("both stores away", |status, _| status == 503)
        .await?;
    assert_eq!((status, &ready["ready"]), (503, &json!(false)));
    let started = Instant::now();
    let (status, problem) = api.search(hybrid.clone()).await;
    assert_eq!(status, 503, "{problem}");
    assert_eq!(problem["status"], 503);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("no store could answer"),
        "{problem}"
    );
    assert!(started.elapsed() < deadline);
    graph.resume()?;
    pg.resume()?;
    svc.wait_all_up().await?;
    api.degraded(hybrid, &[]).await;
    Ok(())
}
