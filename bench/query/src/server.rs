//! The release `kb-query` binary as a child process on a free loopback port, with the
//! environment of the `bench` instance plus overrides; killed on drop.

use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the service may take to load the model and find both stores.
const READY_TIMEOUT: Duration = Duration::from_secs(90);

pub struct QueryServer {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub log: PathBuf,
}

impl Drop for QueryServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

#[derive(serde::Deserialize)]
struct Store {
    store: String,
    up: bool,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(serde::Deserialize)]
struct Readiness {
    stores: Vec<Store>,
}

impl QueryServer {
    /// Starts `kb-query` named `name` (its log is `LOGS/kb-query-NAME.log`) and waits until
    /// `/readyz` answers 200 with both stores up.
    pub async fn start(
        bin: &Path,
        logs: &Path,
        name: &str,
        env: &[(&str, String)],
    ) -> anyhow::Result<Self> {
        let port = free_port()?;
        let log_path = logs.join(format!("kb-query-{name}.log"));
        let log = std::fs::File::create(&log_path)?;
        let exe = bin.join("kb-query");
        let child = Command::new(&exe)
            .env("KB_QUERY__LISTEN", format!("127.0.0.1:{port}"))
            // Every request's query is embedded by the model: the questions repeat, and a
            // cache would answer most of them from memory.
            .env("KB_QUERY__EMBEDDING_CACHE", "0")
            .env_remove("KB_QUERY__API_KEYS")
            .env_remove("KB_QUERY__API_KEYS_FILE")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| {
                format!(
                    "cannot start {} (built by deploy/local/bench?)",
                    exe.display()
                )
            })?;
        let mut server = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log: log_path,
        };
        server.wait_ready().await?;
        Ok(server)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let url = format!("{}/readyz", self.base);
        let started = Instant::now();
        let mut last = String::from("no answer");
        while started.elapsed() < READY_TIMEOUT {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "kb-query exited with {status} before it was ready (log: {})",
                    self.log.display()
                );
            }
            if let Ok(r) = client
                .get(&url)
                .timeout(Duration::from_secs(2))
                .send()
                .await
            {
                let code = r.status();
                match r.json::<Readiness>().await {
                    Ok(ready) if code.is_success() && ready.stores.iter().all(|s| s.up) => {
                        return Ok(())
                    }
                    Ok(ready) => {
                        last = ready
                            .stores
                            .iter()
                            .map(|s| {
                                format!(
                                    "{} {}",
                                    s.store,
                                    if s.up {
                                        "up".to_owned()
                                    } else {
                                        s.reason.clone().unwrap_or_else(|| "away".into())
                                    }
                                )
                            })
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                    Err(e) => last = format!("{code}: {e}"),
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        bail!(
            "kb-query was not ready with both stores after {READY_TIMEOUT:?}: {last} (log: {})",
            self.log.display()
        )
    }
}
