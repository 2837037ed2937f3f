//! `kb mcp`: MCP over stdio, as a desktop assistant runs it. A real MCP client (rmcp's) starts
//! the `kb` binary, lists the tools and calls them; `search` answers what `kb search --json`
//! answers.
#![allow(clippy::unwrap_used)]

#[path = "../../services/query/tests/support/mod.rs"]
mod support;

use rmcp::transport::{ConfigureCommandExt, TokioChildProcess};
use rmcp::ServiceExt;
use serde_json::Value;
use support::mcp::{exercise, same_answer, QUESTION};
use support::*;

const KB: &str = env!("CARGO_BIN_EXE_kb");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_over_stdio_serves_the_same_answers_as_kb_search() -> anyhow::Result<()> {
    let stores = Stores::fresh().await?;
    stores.fill(&corpus()).await?;
    let env = stores.env().await?;
    let logs = tempfile::tempdir()?;
    let stderr = std::fs::File::create(logs.path().join("kb-mcp.log"))?;

    let command = tokio::process::Command::new(KB).configure(|c| {
        c.arg("mcp")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env_remove("KB_CONFIG");
    });
    // Logs must not touch stdout (the protocol): they go to stderr, kept for the report.
    let (transport, _) = TokioChildProcess::builder(command)
        .stderr(std::process::Stdio::from(stderr))
        .spawn()?;
    let client = ().serve(transport).await?;
    let answer = exercise(&client).await;
    client.cancel().await?;
    let log = std::fs::read_to_string(logs.path().join("kb-mcp.log"))?;
    let answer = answer.map_err(|e| e.context(format!("kb mcp's log:\n{log}")))?;

    let out = tokio::process::Command::new(KB)
        .args(["search", QUESTION, "-k", "5", "--json"])
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env_remove("KB_CONFIG")
        .output()
        .await?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A normal run warns about nothing: the stack's ONNX Runtime is the one the `ort` crate
    // was built for.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("WARN"), "kb search warned:\n{stderr}");
    let cli: Value = serde_json::from_slice(&out.stdout)?;
    assert!(same_answer(&answer, &cli), "MCP {answer}\nkb search {cli}");
    Ok(())
}
