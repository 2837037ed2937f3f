//! The `bench` stack instance as `deploy/local/bench` exports it (`KB_*`), and new empty
//! databases on it: one per measured run, so every run starts from an empty store.

use anyhow::{bail, Context};
use kb_graph::{GraphConfig, GraphStore};
use neo4rs::{ConfigBuilder, Graph};
use sqlx::{Connection, PgConnection};

pub struct Servers {
    pub nats_url: String,
    postgres_url: String,
    bolt_uri: String,
    arcadedb_http: String,
    root_password: String,
}

fn var(name: &str) -> anyhow::Result<String> {
    std::env::var(name).with_context(|| {
        format!("{name} is not set: run this through `make bench-writers` (deploy/local/bench)")
    })
}

impl Servers {
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            nats_url: var("KB_NATS_URL")?,
            postgres_url: var("KB_POSTGRES_URL")?,
            bolt_uri: var("KB_NEO4J_URI")?,
            arcadedb_http: var("KB_ARCADEDB_HTTP")?,
            root_password: var("KB_ARCADEDB_ROOT_PASSWORD")?,
        })
    }

    /// `KB_POSTGRES_URL` with another database name.
    fn pg_url(&self, db: &str) -> anyhow::Result<String> {
        let (base, query) = match self.postgres_url.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (self.postgres_url.as_str(), None),
        };
        let Some((server, _)) = base.rsplit_once('/') else {
            bail!("KB_POSTGRES_URL has no database: {}", self.postgres_url);
        };
        Ok(match query {
            Some(q) => format!("{server}/{db}?{q}"),
            None => format!("{server}/{db}"),
        })
    }

    /// A new, empty Postgres database (dropped first if a previous run left it); its URL.
    pub async fn fresh_postgres(&self, db: &str) -> anyhow::Result<String> {
        let mut admin = PgConnection::connect(&self.pg_url("postgres")?).await?;
        // `db` is one of our fixed names, safe unquoted.
        sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
            .execute(&mut admin)
            .await?;
        sqlx::query(&format!("CREATE DATABASE {db}"))
            .execute(&mut admin)
            .await?;
        self.pg_url(db)
    }

    async fn arcadedb(&self, command: &str) -> anyhow::Result<reqwest::StatusCode> {
        let response = reqwest::Client::new()
            .post(format!("{}/api/v1/server", self.arcadedb_http))
            .basic_auth("root", Some(&self.root_password))
            .json(&serde_json::json!({ "command": command }))
            .send()
            .await
            .with_context(|| format!("ArcadeDB at {} is unreachable", self.arcadedb_http))?;
        Ok(response.status())
    }

    /// A new, empty graph database (dropped first if a previous run left it).
    pub async fn fresh_graph(&self, db: &str) -> anyhow::Result<GraphConfig> {
        let _ = self.arcadedb(&format!("drop database {db}")).await?;
        let status = self.arcadedb(&format!("create database {db}")).await?;
        if !status.is_success() {
            bail!("ArcadeDB refused to create database {db}: {status}");
        }
        Ok(GraphConfig {
            uri: self.bolt_uri.clone(),
            user: "root".to_string(),
            password: self.root_password.clone(),
            database: Some(db.to_string()),
            max_connections: 4,
        })
    }

    pub async fn graph_store(cfg: &GraphConfig) -> anyhow::Result<GraphStore> {
        Ok(GraphStore::connect(cfg).await?)
    }

    /// A plain Bolt client on the same database, for the baseline and for counting.
    pub async fn raw_graph(cfg: &GraphConfig) -> anyhow::Result<Graph> {
        let mut b = ConfigBuilder::default()
            .uri(cfg.uri.as_str())
            .user(cfg.user.as_str())
            .password(cfg.password.as_str())
            .max_connections(cfg.max_connections);
        if let Some(db) = &cfg.database {
            b = b.db(db.as_str());
        }
        Ok(Graph::connect(b.build()?).await?)
    }
}
