//! Harness for end-to-end tests: starts the real service binaries against private servers
//! (a NATS per test, a fresh Postgres database and graph database), and waits for the stores.

use anyhow::{bail, Context as _};
use kb_graph::{GraphConfig, GraphStore};
use kb_pg::PgStore;
use kb_store::{MirrorStore, SourceSummary};
use kb_testkit::{GraphDb, NatsServer};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SERVICES: [&str; 5] = ["watcher", "parser", "embedder", "pg-writer", "graph-writer"];

/// Where cargo put the binaries: next to the test executable's `deps/` folder.
pub fn bin_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("KB_BIN_DIR") {
        return PathBuf::from(d);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// One isolated deployment: its own broker, databases, watched folder and processes.
pub struct Pipeline {
    pub nats: NatsServer,
    pub postgres_url: String,
    pub graph: GraphDb,
    pub watch_dir: tempfile::TempDir,
    pub log_dir: tempfile::TempDir,
    model_dir: PathBuf,
    children: BTreeMap<&'static str, Child>,
    /// Environment added to one service at its next start (failpoints, say).
    extra_env: BTreeMap<&'static str, Vec<(String, String)>>,
    /// The URL the services reach NATS at, when not the broker's own (a proxy the test controls).
    services_nats_url: Option<String>,
    /// Environment every binary and `kb` get on top of [`Pipeline::env`]'s defaults.
    common_env: Vec<(String, String)>,
}

impl Pipeline {
    pub async fn new() -> anyhow::Result<Self> {
        let stack = kb_testkit::stack().await?;
        Self::with_stores(stack.fresh_postgres().await?, stack.fresh_graph().await?).await
    }

    /// A deployment writing into the given stores (e.g. private servers a test stops).
    pub async fn with_stores(postgres_url: String, graph: GraphDb) -> anyhow::Result<Self> {
        let nats = kb_testkit::stack().await?.nats().await?;
        Self::with_parts(nats, postgres_url, graph).await
    }

    /// A deployment on fresh stores and a broker the test made (a small store, sync always).
    pub async fn with_nats(nats: NatsServer) -> anyhow::Result<Self> {
        let stack = kb_testkit::stack().await?;
        Self::with_parts(
            nats,
            stack.fresh_postgres().await?,
            stack.fresh_graph().await?,
        )
        .await
    }

    /// A deployment on the given broker and stores.
    pub async fn with_parts(
        nats: NatsServer,
        postgres_url: String,
        graph: GraphDb,
    ) -> anyhow::Result<Self> {
        let stack = kb_testkit::stack().await?;
        let model_dir = stack.model_dir();
        if !model_dir.join(kb_embed::DEFAULT_MODEL_DIR_NAME).exists() {
            bail!(
                "the embedding model is not installed under {}: run `deploy/local/stack install`",
                model_dir.display()
            );
        }
        Ok(Self {
            nats,
            postgres_url,
            graph,
            watch_dir: tempfile::tempdir()?,
            log_dir: tempfile::tempdir()?,
            model_dir,
            children: BTreeMap::new(),
            extra_env: BTreeMap::new(),
            services_nats_url: None,
            common_env: Vec::new(),
        })
    }

    /// The environment every binary of this deployment runs with.
    pub fn env(&self) -> Vec<(String, String)> {
        let m = &self.model_dir;
        [
            ("KB_NATS_URL", self.nats.url()),
            ("KB_POSTGRES_URL", self.postgres_url.clone()),
            ("KB_NEO4J_URI", self.graph.uri.clone()),
            ("KB_NEO4J_USER", self.graph.user.clone()),
            ("KB_NEO4J_PASSWORD", self.graph.password.clone()),
            ("KB_NEO4J__DATABASE", self.graph.database.clone()),
            ("KB_WATCH_DIR", self.watch_dir.path().display().to_string()),
            ("KB_WATCHER__RESCAN_SECS", "3".into()),
            ("KB_WATCHER__DEBOUNCE_MS", "200".into()),
            (
                "KB_EMBEDDER__MODEL_DIR",
                m.join(kb_embed::DEFAULT_MODEL_DIR_NAME)
                    .display()
                    .to_string(),
            ),
            (
                "KB_EMBEDDER__ONNXRUNTIME_LIB",
                m.join("libonnxruntime.so").display().to_string(),
            ),
            ("RUST_LOG", "info".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .chain(self.common_env.iter().cloned())
        .collect()
    }

    /// Adds `key=value` to the environment of every service and `kb` (from their next start).
    pub fn set_env_all(&mut self, key: &str, value: &str) {
        self.common_env.push((key.to_string(), value.to_string()));
    }

    /// Adds `key=value` to the environment `service` gets from its next start on.
    pub fn set_env(&mut self, service: &'static str, key: &str, value: &str) {
        self.extra_env
            .entry(service)
            .or_default()
            .push((key.to_string(), value.to_string()));
    }

    /// Forgets what [`Pipeline::set_env`] added for `service` (from its next start on).
    pub fn clear_env(&mut self, service: &'static str) {
        self.extra_env.remove(service);
    }

    /// The services (not the test's own clients, nor `kb`) reach NATS at `url` from their next
    /// start on: a proxy between them and the broker.
    pub fn route_services_nats(&mut self, url: String) {
        self.services_nats_url = Some(url);
    }

    /// The process id of a running service.
    pub fn pid(&self, service: &str) -> Option<u32> {
        self.children.get(service).map(Child::id)
    }

    pub fn start(&mut self, service: &'static str) -> anyhow::Result<()> {
        let extra = self.extra_env.get(service).cloned().unwrap_or_default();
        self.start_instance(service, service, &extra)
    }

    pub fn start_all(&mut self) -> anyhow::Result<()> {
        for s in SERVICES {
            self.start(s)?;
        }
        Ok(())
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn stop(&mut self, service: &'static str) -> anyhow::Result<()> {
        if let Some(mut child) = self.children.remove(service) {
            let pid = child.id().to_string();
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
            let deadline = Instant::now() + Duration::from_secs(30);
            while child.try_wait()?.is_none() {
                if Instant::now() > deadline {
                    child.kill()?;
                    bail!("{service} did not stop within 30 s of SIGTERM");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(())
    }

    /// Runs the `kb` CLI against this deployment.
    pub fn kb(&self, args: &[&str]) -> anyhow::Result<std::process::Output> {
        let bin = bin_dir().join("kb");
        Command::new(&bin)
            .args(args)
            .envs(self.env())
            .env_remove("KB_CONFIG")
            .output()
            .with_context(|| format!("cannot run {}", bin.display()))
    }

    pub fn logs(&self) -> String {
        let mut out = String::new();
        for s in SERVICES {
            let text = std::fs::read_to_string(self.log_dir.path().join(format!("{s}.log")))
                .unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(30).collect();
            out.push_str(&format!("---- {s} (last 30 lines) ----\n"));
            for l in tail.into_iter().rev() {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }

    pub async fn postgres(&self) -> anyhow::Result<PgStore> {
        Ok(PgStore::connect(&self.postgres_url, 384, 2).await?)
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

    /// Summaries of both stores once `done` holds for both, or an error with the service logs.
    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&[SourceSummary]) -> bool,
    ) -> anyhow::Result<(Vec<SourceSummary>, Vec<SourceSummary>)> {
        let deadline = Instant::now() + timeout;
        loop {
            let pg = match self.postgres().await {
                Ok(s) => s.summaries().await.map_err(anyhow::Error::from),
                Err(e) => Err(e),
            };
            let graph = match self.graph_store().await {
                Ok(s) => s.summaries().await.map_err(anyhow::Error::from),
                Err(e) => Err(e),
            };
            match (pg, graph) {
                (Ok(p), Ok(g)) if done(&p) && done(&g) => return Ok((p, g)),
                (p, g) if Instant::now() > deadline => {
                    bail!(
                        "timed out waiting for {what}\npostgres: {p:?}\ngraph: {g:?}\n{}",
                        self.logs()
                    )
                }
                _ => {}
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        for (_, mut child) in std::mem::take(&mut self.children) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs one of `tests/sql/*.sql` (the seed's SQL, verbatim) with psql, as a user would;
/// returns the rows, fields separated by '|'. Rows are split on an ASCII record separator, not on
/// newlines, because chunk text in the rows contains newlines.
pub async fn psql_file(url: &str, file: &str) -> anyhow::Result<Vec<String>> {
    let psql = kb_testkit::stack().await?.pg_bin_dir()?.join("psql");
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("sql")
        .join(file);
    let out = Command::new(psql)
        .args([
            "-X",
            "-A",
            "-t",
            "-F",
            "|",
            "-R",
            "\u{1e}",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            url,
            "-f",
        ])
        .arg(&path)
        .output()?;
    if !out.status.success() {
        bail!(
            "psql {file} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .split('\u{1e}')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

/// Fault injection (tests/e2e/faults.rs): crashing services the way a machine or the OOM killer
/// would, and telling a crash we caused from one we did not.
impl Pipeline {
    /// SIGKILL, as in a crash: no shutdown, work in flight is neither finished nor acked.
    pub fn kill9(&mut self, service: &'static str) -> anyhow::Result<()> {
        if let Some(mut child) = self.children.remove(service) {
            child
                .kill()
                .with_context(|| format!("cannot kill {service}"))?;
            child.wait()?;
        }
        Ok(())
    }

    /// The services whose process exited although nobody stopped or killed it, with the status.
    pub fn exited(&mut self) -> Vec<(&'static str, std::process::ExitStatus)> {
        self.children
            .iter_mut()
            .filter_map(|(name, child)| match child.try_wait() {
                Ok(Some(status)) => Some((*name, status)),
                _ => None,
            })
            .collect()
    }

    /// The whole log of one service (the failure report of a long run needs more than a tail).
    pub fn log_of(&self, service: &str) -> String {
        std::fs::read_to_string(self.log_dir.path().join(format!("{service}.log")))
            .unwrap_or_default()
    }
}

/// More than one process of a service (tests/e2e/embedder_scaling.rs): N embedders sharing
/// the durable consumer.
impl Pipeline {
    /// Starts a process of `service` (e.g. "embedder") under `name` (its key for `stop`/`kill9`
    /// and its log file `<name>.log`), with `extra_env` on top of [`Pipeline::env`] (and of the
    /// services' NATS route).
    pub fn start_instance(
        &mut self,
        service: &str,
        name: &'static str,
        extra_env: &[(String, String)],
    ) -> anyhow::Result<()> {
        let bin = bin_dir().join(format!("kb-{service}"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_dir.path().join(format!("{name}.log")))?;
        let nats = self
            .services_nats_url
            .as_ref()
            .map(|url| ("KB_NATS_URL".to_string(), url.clone()));
        let child = Command::new(&bin)
            .envs(self.env())
            .envs(nats)
            .envs(extra_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env_remove("KB_CONFIG")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| {
                format!(
                    "cannot start {} (run `cargo build --workspace --bins`)",
                    bin.display()
                )
            })?;
        self.children.insert(name, child);
        Ok(())
    }
}

/// Writes `text` to `root/rel` the way editors save: a hidden temp file renamed into place,
/// so the watcher never reads half a file.
pub fn write_atomic(root: &Path, rel: &str, text: &str) -> anyhow::Result<()> {
    let path = root.join(rel);
    let dir = path
        .parent()
        .ok_or_else(|| anyhow::anyhow!("no parent for {rel}"))?;
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| anyhow::anyhow!("bad name {rel}"))?;
    let tmp = dir.join(format!(".{name}.partial"));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, &path)?;
    Ok(())
}
