//! What an MCP client sees of the knowledge base, the same over every transport.

use anyhow::{bail, ensure, Context};
use rmcp::model::CallToolRequestParams;
use rmcp::service::{RunningService, Service};
use rmcp::RoleClient;
use serde_json::{json, Value};

use super::{corpus, BUDGET};

/// The question every transport is asked; its answer is compared with the other interfaces'.
pub const QUESTION: &str = "what did they decide about the budget of the remote control?";

/// Calls `tool` with `args`: the JSON text of a success, or the message of a tool error.
pub async fn call<S: Service<RoleClient>>(
    client: &RunningService<RoleClient, S>,
    tool: &'static str,
    args: Value,
) -> anyhow::Result<Result<Value, String>> {
    let Value::Object(args) = args else {
        bail!("arguments must be an object");
    };
    let res = client
        .call_tool(CallToolRequestParams::new(tool).with_arguments(args))
        .await?;
    let text = res
        .content
        .first()
        .and_then(|c| c.as_text())
        .map(|t| t.text.clone())
        .context("a tool answers with text")?;
    Ok(if res.is_error == Some(true) {
        Err(text)
    } else {
        Ok(serde_json::from_str(&text).with_context(|| format!("not JSON: {text}"))?)
    })
}

/// Lists the tools, calls each (answers and refusals); returns the answer to [`QUESTION`]
/// (k = 5) for comparison with the HTTP API or `kb search`.
pub async fn exercise<S: Service<RoleClient>>(
    client: &RunningService<RoleClient, S>,
) -> anyhow::Result<Value> {
    let info = client.peer_info().context("the server introduced itself")?;
    ensure!(
        info.server_info.as_ref().map(|s| s.name.as_str()) == Some("kb-mirror"),
        "server info: {info:?}"
    );

    let tools = client.list_all_tools().await?;
    let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    names.sort_unstable();
    ensure!(
        names == ["get_document", "get_entity", "search"],
        "{names:?}"
    );
    for t in &tools {
        ensure!(
            t.description.as_deref().is_some_and(|d| d.len() > 40),
            "{} says what it does",
            t.name
        );
    }
    let search = tools
        .iter()
        .find(|t| t.name == "search")
        .context("search")?;
    let schema = serde_json::to_value(&*search.input_schema)?;
    ensure!(
        schema["required"] == json!(["query"]) && schema["properties"]["filters"].is_object(),
        "search's input schema: {schema}"
    );

    let answer = call(client, "search", json!({"query": QUESTION, "k": 5}))
        .await?
        .map_err(anyhow::Error::msg)?;
    let results = answer["results"].as_array().context("results")?;
    ensure!(results.len() == 5, "{answer}");
    ensure!(results[0]["path"] == BUDGET, "{answer}");
    ensure!(answer["degraded"] == json!([]), "{answer}");

    let filtered = call(
        client,
        "search",
        json!({"query": "buttons", "mode": "keyword", "filters": {"speaker": "industrial"}}),
    )
    .await?
    .map_err(anyhow::Error::msg)?;
    let hits = filtered["results"].as_array().context("results")?;
    ensure!(!hits.is_empty(), "{filtered}");
    for h in hits {
        ensure!(
            h["speakers"]
                .as_array()
                .is_some_and(|s| s.iter().any(|s| s == "Industrial Designer")),
            "{h}"
        );
    }

    let transcript = &corpus()[0];
    let doc = call(
        client,
        "get_document",
        json!({"source_id": transcript.source_id()}),
    )
    .await?
    .map_err(anyhow::Error::msg)?;
    ensure!(doc["path"] == transcript.path, "{doc}");
    ensure!(
        doc["chunks"].as_array().is_some_and(|c| c.len() >= 5),
        "{doc}"
    );

    let entity = call(client, "get_entity", json!({"name": "rotterdam"}))
        .await?
        .map_err(anyhow::Error::msg)?;
    ensure!(entity["entities"][0]["entity_type"] == "PLACE", "{entity}");

    // Refusals and misses reach the model as tool errors with the engine's message.
    for (tool, args, says) in [
        ("search", json!({"query": "  "}), "query is empty"),
        (
            "search",
            json!({"query": "budget", "k": 1000}),
            "k must be between",
        ),
        (
            "search",
            json!({"query": "budget", "filters": {"from": "someday"}}),
            "filters.from",
        ),
        (
            "get_document",
            json!({"source_id": "0123abcd"}),
            "no source",
        ),
        ("get_entity", json!({"name": "Nobody Atall"}), "no entity"),
        // arguments not of the tool's schema
        (
            "search",
            json!({"question": "budget"}),
            "unknown field `question`",
        ),
        ("get_document", json!({}), "source_id"),
    ] {
        match call(client, tool, args.clone()).await? {
            Err(message) => ensure!(message.contains(says), "{tool} {args}: {message}"),
            Ok(v) => bail!("{tool} {args} answered {v}"),
        }
    }
    Ok(answer)
}

/// `a` and `b` are the same answer, but for the time each took.
pub fn same_answer(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(o) = v.as_object_mut() {
            o.remove("took_ms");
        }
        v
    };
    strip(a) == strip(b)
}
