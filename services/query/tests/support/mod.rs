//! Shared by the query service's tests and `kb mcp`'s (cli/tests includes this file): stores
//! holding real documents in the state the pipeline leaves them (parsed by the parser's code,
//! embedded by the local model, applied by the writers' own store code), and the kb-query
//! service run as a process.
#![allow(dead_code, clippy::unwrap_used)]

pub mod mcp;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use kb_embed::{Embedder, LocalModel, LocalModelConfig};
use kb_graph::{GraphConfig, GraphStore};
use kb_pg::PgStore;
use kb_proto::SourceRef;
use kb_store::{Change, MirrorStore};
use kb_testkit::GraphDb;
use serde_json::Value;

/// The local model's dimension.
pub const DIMENSIONS: usize = 384;

/// One document of the test corpus.
pub struct Doc {
    pub origin: &'static str,
    pub path: &'static str,
    pub media_type: &'static str,
    /// The file's modified time (the document's time when it states no date of its own).
    pub modified: &'static str,
    pub link: &'static str,
    pub bytes: Vec<u8>,
}

impl Doc {
    pub fn source_id(&self) -> String {
        kb_core::ids::source_id(self.origin, self.path)
    }
}

pub const TRANSCRIPT: &str = "meetings/TS3010a.txt";
pub const BUDGET: &str = "notes/budget-2024.md";
pub const HANDBOOK: &str = "handbook/onboarding.md";

/// A real meeting transcript (speakers, times) and two notes written for these tests: one
/// dated by its front matter, one from Google Drive. Between them every filter has something
/// to keep and something to drop.
pub fn corpus() -> Vec<Doc> {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    // cli/tests includes this file: its manifest dir is cli/, the fixtures are the service's.
    let fixtures = if fixtures.is_dir() {
        fixtures
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../services/query/tests/fixtures")
    };
    let transcript = std::fs::read(fixtures.join("TS3010a.txt")).unwrap();
    vec![
        Doc {
            origin: "folder:inbox",
            path: TRANSCRIPT,
            media_type: "text/plain",
            modified: "2024-03-14T10:00:00Z",
            link: "",
            bytes: transcript,
        },
        Doc {
            origin: "folder:inbox",
            path: BUDGET,
            media_type: "text/markdown",
            modified: "2024-06-30T08:00:00Z",
            link: "",
            bytes: BUDGET_TEXT.as_bytes().to_vec(),
        },
        Doc {
            origin: "drive:team",
            path: HANDBOOK,
            media_type: "text/markdown",
            modified: "2023-01-10T12:00:00Z",
            link: "https://docs.google.com/document/d/handbook",
            bytes: HANDBOOK_TEXT.as_bytes().to_vec(),
        },
    ]
}

const BUDGET_TEXT: &str = "---
title: Remote control budget 2024
date: 2024-05-02
---

# Remote control budget 2024

The steering committee decided to cap the production cost of the new remote control at twelve
and a half euros per unit, so that it can sell at twenty five euros. Acme Corporation will make
the rubber casing in Rotterdam; the batteries come from Voltaic Industries.

## Risks

Marketing warned that a remote control that looks cheap will not sell. The committee kept the
LED on the corner and the large buttons, and dropped the speech recognition module to stay
within the budget.
";

const HANDBOOK_TEXT: &str = "# Onboarding handbook

New engineers get a laptop, a badge and a mentor on their first day. The mentor walks them
through the design process: functional design, conceptual design, then detailed design.

## Suppliers

Acme Corporation has been our supplier of plastic parts since 2019. Questions about orders go
to the purchasing team in Rotterdam.
";

/// A Postgres database and a graph database.
#[derive(Debug, Clone)]
pub struct Stores {
    pub postgres_url: String,
    pub graph: GraphDb,
}

impl Stores {
    /// Fresh databases on the shared test stack.
    pub async fn fresh() -> anyhow::Result<Self> {
        let stack = kb_testkit::stack().await?;
        Ok(Self {
            postgres_url: stack.fresh_postgres().await?,
            graph: stack.fresh_graph().await?,
        })
    }

    pub async fn postgres(&self) -> anyhow::Result<PgStore> {
        Ok(PgStore::connect(&self.postgres_url, DIMENSIONS, 2).await?)
    }

    pub async fn graph_store(&self) -> anyhow::Result<GraphStore> {
        Ok(GraphStore::connect(&GraphConfig {
            uri: self.graph.uri.clone(),
            user: self.graph.user.clone(),
            password: self.graph.password.clone(),
            database: Some(self.graph.database.clone()),
            max_connections: 2,
        })
        .await?)
    }

    /// Parses, embeds and applies `docs` to both stores, as parser, embedder and writers do.
    pub async fn fill(&self, docs: &[Doc]) -> anyhow::Result<()> {
        let model = local_model().await?;
        let pg = self.postgres().await?;
        let graph = self.graph_store().await?;
        pg.prepare().await?;
        graph.prepare().await?;
        for doc in docs {
            let source = SourceRef {
                source_id: doc.source_id(),
                version: 1,
                origin: doc.origin.to_owned(),
                path: doc.path.to_owned(),
                content_hash: kb_core::ids::content_hash(&doc.bytes),
                media_type: doc.media_type.to_owned(),
                modified_unix_ms: unix_ms(doc.modified)?,
                size: doc.bytes.len() as u64,
                link: doc.link.to_owned(),
            };
            let mut parsed =
                kb_parse::parse(&source, &doc.bytes, &kb_parse::ParseOptions::default())
                    .with_context(|| format!("parsing {}", doc.path))?;
            parsed.source = Some(source);
            let texts: Vec<String> = parsed.chunks.iter().map(|c| c.text.clone()).collect();
            let vectors = model.embed(&texts).await?;
            for (chunk, v) in parsed.chunks.iter_mut().zip(vectors) {
                chunk.embedding = v;
            }
            parsed.embedding_model = model.model().to_owned();
            parsed.embedding_dimensions = DIMENSIONS as u32;
            pg.apply(Change::Upsert(&parsed)).await?;
            graph.apply(Change::Upsert(&parsed)).await?;
        }
        Ok(())
    }

    /// The environment a read-side binary (kb-query, `kb mcp`) needs for these stores.
    pub async fn env(&self) -> anyhow::Result<Vec<(String, String)>> {
        let model = kb_testkit::stack().await?.model_dir();
        Ok([
            ("KB_POSTGRES_URL", self.postgres_url.clone()),
            ("KB_NEO4J_URI", self.graph.uri.clone()),
            ("KB_NEO4J_USER", self.graph.user.clone()),
            ("KB_NEO4J_PASSWORD", self.graph.password.clone()),
            ("KB_NEO4J__DATABASE", self.graph.database.clone()),
            (
                "KB_EMBEDDER__MODEL_DIR",
                model
                    .join(kb_embed::DEFAULT_MODEL_DIR_NAME)
                    .display()
                    .to_string(),
            ),
            (
                "KB_EMBEDDER__ONNXRUNTIME_LIB",
                model.join("libonnxruntime.so").display().to_string(),
            ),
            ("RUST_LOG", "info".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect())
    }
}

async fn local_model() -> anyhow::Result<LocalModel> {
    let dir = kb_testkit::stack().await?.stack_dir();
    let model = tokio::task::spawn_blocking(move || {
        LocalModel::load(&LocalModelConfig::from_stack_dir(dir))
    })
    .await??;
    Ok(model)
}

fn unix_ms(rfc3339: &str) -> anyhow::Result<i64> {
    let t = time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)?;
    Ok(i64::try_from(t.unix_timestamp_nanos() / 1_000_000)?)
}

/// A running kb-query, killed when dropped.
pub struct QueryService {
    child: Child,
    pub url: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

/// The JVM and the model load slowly on a loaded machine: generous, never a fixed sleep.
pub const START_TIMEOUT: Duration = Duration::from_secs(180);

impl QueryService {
    /// Starts `bin` (kb-query) with `env` on a free loopback port and waits until it serves
    /// `/healthz`. A port taken between choosing and binding makes it exit: another try.
    pub async fn start(bin: &Path, env: &[(String, String)]) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let log = dir.path().join("kb-query.log");
        let mut attempts = 0;
        loop {
            attempts += 1;
            let port = std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port();
            let stderr = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)?;
            let mut child = Command::new(bin)
                .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .env("KB_QUERY__LISTEN", format!("127.0.0.1:{port}"))
                .env_remove("KB_CONFIG")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(stderr)
                .spawn()
                .with_context(|| format!("cannot start {}", bin.display()))?;
            let url = format!("http://127.0.0.1:{port}");
            match wait_serving(&mut child, &url).await {
                Ok(()) => {
                    return Ok(Self {
                        child,
                        url,
                        log,
                        _dir: dir,
                    })
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let exited_early = e.to_string().contains("exited");
                    if !exited_early || attempts == 3 {
                        return Err(e.context(tail(&log)));
                    }
                }
            }
        }
    }

    /// Polls `/readyz` until `want` holds for its JSON (status, body), or fails with the log.
    pub async fn wait_readyz(
        &self,
        what: &str,
        want: impl Fn(u16, &Value) -> bool,
    ) -> anyhow::Result<(u16, Value)> {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + START_TIMEOUT;
        let mut last = None;
        loop {
            if let Ok(r) = http
                .get(format!("{}/readyz", self.url))
                .timeout(Duration::from_secs(5))
                .send()
                .await
            {
                let status = r.status().as_u16();
                let body: Value = r.json().await.unwrap_or(Value::Null);
                if want(status, &body) {
                    return Ok((status, body));
                }
                last = Some((status, body));
            }
            if Instant::now() > deadline {
                bail!("/readyz never showed {what}; last {last:?}\n{}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until both stores are up.
    pub async fn wait_all_up(&self) -> anyhow::Result<()> {
        self.wait_readyz("both stores up", |status, body| {
            status == 200
                && store_up(body, "postgres") == Some(true)
                && store_up(body, "graph") == Some(true)
        })
        .await
        .map(drop)
    }

    pub fn log(&self) -> String {
        tail(&self.log)
    }

    /// The whole log (e.g. to check what it never writes).
    pub fn full_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for QueryService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn wait_serving(child: &mut Child, url: &str) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait()? {
            bail!("kb-query exited ({status})");
        }
        let ok = http
            .get(format!("{url}/healthz"))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ok {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("kb-query not serving after {START_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    format!(
        "---- kb-query log (last 40 lines) ----\n{}",
        lines[lines.len().saturating_sub(40)..].join("\n")
    )
}

/// `up` of one store in a `/readyz` body.
pub fn store_up(readyz: &Value, store: &str) -> Option<bool> {
    readyz["stores"]
        .as_array()?
        .iter()
        .find(|s| s["store"] == store)?["up"]
        .as_bool()
}
