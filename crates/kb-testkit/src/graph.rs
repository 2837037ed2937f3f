//! Fresh graph databases on the shared ArcadeDB server, one per call, reachable over Bolt.
//!
//! ArcadeDB serves every database over Bolt: a client selects one with the Bolt `db` field
//! (`neo4rs::ConfigBuilder::db`). Databases are created through ArcadeDB's HTTP API as root,
//! and root (admin on every database) is the user handed out.

use anyhow::{bail, Context};
use serde_json::{json, Value};

use crate::names::{is_stale, unique_db_name};
use crate::Stack;

/// A graph database reachable over Bolt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphDb {
    /// `bolt://127.0.0.1:PORT`
    pub uri: String,
    pub user: String,
    pub password: String,
    /// Pass it to `neo4rs::ConfigBuilder::db`.
    pub database: String,
}

const ROOT_USER: &str = "root";

impl Stack {
    /// A new, empty graph database reachable over Bolt (unique per call).
    pub async fn fresh_graph(&self) -> anyhow::Result<GraphDb> {
        let name = unique_db_name();
        self.arcadedb_command(&format!("create database {name}"))
            .await
            .with_context(|| format!("cannot create the graph database {name}"))?;
        Ok(GraphDb {
            uri: self.bolt_uri.clone(),
            user: ROOT_USER.to_owned(),
            password: self.arcadedb_root_password.clone(),
            database: name,
        })
    }

    /// Runs a server command (`create database X`, `drop database X`) as root.
    async fn arcadedb_command(&self, command: &str) -> anyhow::Result<()> {
        let response = reqwest::Client::new()
            .post(format!("{}/api/v1/server", self.arcadedb_http))
            .basic_auth(ROOT_USER, Some(&self.arcadedb_root_password))
            .json(&json!({ "command": command }))
            .send()
            .await
            .with_context(|| format!("ArcadeDB at {} is unreachable", self.arcadedb_http))?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!("ArcadeDB refused `{command}` ({status}): {body}");
        }
        Ok(())
    }

    async fn arcadedb_databases(&self) -> anyhow::Result<Vec<String>> {
        let body: Value = reqwest::Client::new()
            .get(format!("{}/api/v1/databases", self.arcadedb_http))
            .basic_auth(ROOT_USER, Some(&self.arcadedb_root_password))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(body["result"]
            .as_array()
            .map(|names| {
                names
                    .iter()
                    .filter_map(|n| n.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Drops the databases that test processes which have since exited left behind: each open
    /// database costs the server memory.
    pub(crate) async fn drop_stale_graphs(&self) -> anyhow::Result<()> {
        for name in self.arcadedb_databases().await? {
            if is_stale(&name) {
                // Another process may be dropping the same one: ignore failures.
                let _ = self
                    .arcadedb_command(&format!("drop database {name}"))
                    .await;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[tokio::test]
    async fn databases_of_exited_processes_are_dropped_ours_are_kept() {
        let stack = crate::stack().await.unwrap();
        // Above the kernel's pid limit: no live process can own it.
        let stale = format!("t_4194305_{:016x}", rand::random::<u64>());
        stack
            .arcadedb_command(&format!("create database {stale}"))
            .await
            .unwrap();
        let ours = stack.fresh_graph().await.unwrap().database;
        assert!(stack.arcadedb_databases().await.unwrap().contains(&stale));

        stack.drop_stale_graphs().await.unwrap();
        let left = stack.arcadedb_databases().await.unwrap();
        assert!(!left.contains(&stale));
        assert!(left.contains(&ours));
        assert!(
            left.contains(&"neo4j".to_owned()),
            "the shared database stays"
        );
    }
}
