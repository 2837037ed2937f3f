//! Fresh Postgres databases on the shared `test` server, one per call.

use anyhow::Context;
use reqwest::Url;
use sqlx::{Connection, PgConnection};

use crate::names::{is_stale, unique_db_name};
use crate::Stack;

impl Stack {
    /// Creates a new, empty Postgres database with a unique name; returns its URL.
    /// pgvector is available in it (`CREATE EXTENSION vector` works); nothing is pre-installed.
    pub async fn fresh_postgres(&self) -> anyhow::Result<String> {
        let name = unique_db_name();
        let mut admin = self.postgres_admin().await?;
        // The name is ours (letters, digits, underscores), so it is safe unquoted.
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .with_context(|| format!("cannot create the Postgres database {name}"))?;
        admin.close().await.ok();
        self.postgres_db_url(&name)
    }

    /// URL of database `name` on the stack's Postgres server.
    fn postgres_db_url(&self, name: &str) -> anyhow::Result<String> {
        let mut url = Url::parse(&self.postgres_url)
            .with_context(|| format!("bad KB_POSTGRES_URL {}", self.postgres_url))?;
        url.set_path(&format!("/{name}"));
        Ok(url.into())
    }

    async fn postgres_admin(&self) -> anyhow::Result<PgConnection> {
        let url = self.postgres_db_url("postgres")?;
        PgConnection::connect(&url)
            .await
            .with_context(|| format!("cannot connect to the test Postgres at {url}"))
    }

    /// Drops the databases that test processes which have since exited left behind.
    pub(crate) async fn drop_stale_postgres(&self) -> anyhow::Result<()> {
        let mut admin = self.postgres_admin().await?;
        let names: Vec<String> =
            sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 't\\_%'")
                .fetch_all(&mut admin)
                .await?;
        for name in names.iter().filter(|n| is_stale(n)) {
            // FORCE: a killed test may have left a connection behind.
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut admin)
                .await;
        }
        admin.close().await.ok();
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    async fn exists(stack: &Stack, name: &str) -> bool {
        let mut admin = stack.postgres_admin().await.unwrap();
        sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)",
        )
        .bind(name)
        .fetch_one(&mut admin)
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn databases_of_exited_processes_are_dropped_ours_are_kept() {
        let stack = crate::stack().await.unwrap();
        // Above the kernel's pid limit: no live process can own it.
        let stale = format!("t_4194305_{:016x}", rand::random::<u64>());
        let mut admin = stack.postgres_admin().await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {stale}"))
            .execute(&mut admin)
            .await
            .unwrap();
        let ours = stack.fresh_postgres().await.unwrap();
        let ours = ours.rsplit('/').next().unwrap().to_owned();
        assert!(exists(stack, &stale).await);

        stack.drop_stale_postgres().await.unwrap();
        assert!(!exists(stack, &stale).await);
        assert!(exists(stack, &ours).await);
    }
}
