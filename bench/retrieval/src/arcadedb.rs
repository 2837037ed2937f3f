//! A fresh graph database on the `bench` instance's ArcadeDB, over its HTTP API as root.

use anyhow::{bail, Context};

/// Drops `db` if a previous run left it, then creates it empty.
pub async fn recreate_database(db: &str) -> anyhow::Result<()> {
    let var = |k: &str| std::env::var(k).with_context(|| format!("{k} is not set"));
    let http = var("KB_ARCADEDB_HTTP")?;
    let password = var("KB_ARCADEDB_ROOT_PASSWORD")?;
    let client = reqwest::Client::new();
    let command = |c: String| {
        client
            .post(format!("{http}/api/v1/server"))
            .basic_auth("root", Some(&password))
            .json(&serde_json::json!({ "command": c }))
            .send()
    };
    // absent the first time: its answer does not matter
    let _ = command(format!("drop database {db}")).await;
    let r = command(format!("create database {db}"))
        .await
        .with_context(|| format!("ArcadeDB at {http} is unreachable"))?;
    if !r.status().is_success() {
        let status = r.status();
        bail!(
            "ArcadeDB refused to create database {db} ({status}): {}",
            r.text().await.unwrap_or_default()
        );
    }
    Ok(())
}
