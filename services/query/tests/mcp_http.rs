//! MCP over streamable HTTP at kb-query's `/mcp`: a real MCP client (rmcp's) with a bearer
//! token lists the tools and calls them; `search` answers what `POST /v1/search` answers.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;

use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::ServiceExt;
use serde_json::{json, Value};
use support::mcp::{exercise, same_answer, QUESTION};
use support::*;

const BIN: &str = env!("CARGO_BIN_EXE_kb-query");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_over_http_serves_the_same_answers_as_the_api() -> anyhow::Result<()> {
    let stores = Stores::fresh().await?;
    stores.fill(&corpus()).await?;
    let mut env = stores.env().await?;
    env.push(("KB_QUERY__API_KEYS".into(), "mcp-key".into()));
    let svc = QueryService::start(Path::new(BIN), &env).await?;
    svc.wait_all_up().await?;

    // The token goes without "Bearer ": the client adds it.
    let transport = |token: &str| {
        StreamableHttpClientTransport::from_config(
            StreamableHttpClientTransportConfig::with_uri(format!("{}/mcp", svc.url))
                .auth_header(token),
        )
    };
    let client = ().serve(transport("mcp-key")).await?;
    let answer = exercise(&client).await?;
    client.cancel().await?;

    let http: Value = reqwest::Client::new()
        .post(format!("{}/v1/search", svc.url))
        .bearer_auth("mcp-key")
        .json(&json!({"query": QUESTION, "k": 5}))
        .send()
        .await?
        .json()
        .await?;
    assert!(same_answer(&answer, &http), "MCP {answer}\nHTTP {http}");

    // Without the right token the session does not even start.
    assert!(().serve(transport("wrong-key")).await.is_err());

    let metrics = reqwest::get(format!("{}/metrics", svc.url))
        .await?
        .text()
        .await?;
    for line in [
        r#"kb_query_http_requests_total{route="/mcp",status="200"}"#,
        r#"kb_query_http_requests_total{route="/mcp",status="401"}"#,
    ] {
        assert!(metrics.contains(line), "/metrics lacks {line}");
    }
    Ok(())
}
