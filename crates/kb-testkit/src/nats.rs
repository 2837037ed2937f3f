//! A private `nats-server` with JetStream per test: own ports, own data directory, and the
//! controls a test needs to exercise broker failures (graceful stop, SIGKILL, restart), with
//! the broker options the pipeline's settings name ([`NatsConfig`]: sync interval, store
//! limit, authentication, TLS).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use rustix::process::Signal;
use tempfile::TempDir;

use crate::process::{append_log, free_ports, is_alive, kill9, log_tail, terminate};
use crate::{Stack, TestCerts};

const READY_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
const START_ATTEMPTS: usize = 3;

/// What a private nats-server runs with besides JetStream; `Default` is a plain server.
#[derive(Debug, Clone, Default)]
pub struct NatsConfig {
    /// `jetstream { sync_interval }`: `"always"`, or a duration such as `"2m"` (the server's
    /// default when unset). `kb_core::settings::NatsSync::sync_interval` gives the value.
    pub sync_interval: Option<String>,
    /// `jetstream { max_file_store }`, bytes: JetStream refuses writes beyond it.
    pub max_file_store: Option<u64>,
    /// Where JetStream keeps its store (e.g. a [`crate::SmallFs`] that can fill up); the
    /// server's own temp dir when unset.
    pub store_parent: Option<PathBuf>,
    pub auth: NatsAuth,
    /// TLS on the client port.
    pub tls: Option<NatsTls>,
}

/// Who the server lets in.
#[derive(Debug, Clone, Default)]
pub enum NatsAuth {
    #[default]
    Anyone,
    Token(String),
    User {
        user: String,
        password: String,
    },
    /// A user NKey's public key (`U…`); see [`nkey_user`].
    Nkey(String),
}

/// The server's certificate and key, and the CA client certificates are checked against
/// when `verify_clients`.
#[derive(Debug, Clone)]
pub struct NatsTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
    pub verify_clients: bool,
}

impl NatsTls {
    /// The server side of `certs`.
    pub fn server_side(certs: &TestCerts, verify_clients: bool) -> Self {
        Self {
            cert: certs.server_cert(),
            key: certs.server_key(),
            ca: certs.ca(),
            verify_clients,
        }
    }
}

/// A new user NKey: (public key `U…`, seed `SU…`).
pub fn nkey_user() -> anyhow::Result<(String, String)> {
    let pair = nkeys::KeyPair::new_user();
    let seed = pair
        .seed()
        .map_err(|e| anyhow!("cannot encode an nkey seed: {e}"))?;
    Ok((pair.public_key(), seed))
}

/// A `nats-server -js` owned by one test. Dropping it kills the server and deletes its data.
#[derive(Debug)]
pub struct NatsServer {
    bin: PathBuf,
    port: u16,
    monitor_port: u16,
    config: NatsConfig,
    // Field order matters for Drop: the process is killed (in `drop`) before the dir goes.
    child: Option<Child>,
    dir: TempDir,
}

impl Stack {
    /// Starts a private nats-server with JetStream on a free port, data in its own temp dir.
    pub async fn nats(&self) -> anyhow::Result<NatsServer> {
        self.nats_with(NatsConfig::default()).await
    }

    /// [`Stack::nats`] with broker options.
    pub async fn nats_with(&self, config: NatsConfig) -> anyhow::Result<NatsServer> {
        let dir = tempfile::Builder::new()
            .prefix("kb-nats-")
            .tempdir()
            .context("cannot create a temp dir for nats-server")?;
        let mut server = NatsServer {
            bin: self.nats_server_bin.clone(),
            port: 0,
            monitor_port: 0,
            config,
            child: None,
            dir,
        };
        // Another process may grab a port between our probe and the server's bind: retry.
        let mut last_error = anyhow!("nats-server did not start");
        for _ in 0..START_ATTEMPTS {
            [server.port, server.monitor_port] = free_ports()?;
            match server.start().await {
                Ok(()) => return Ok(server),
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }
}

impl NatsServer {
    /// `nats://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:MONITOR_PORT` (`/healthz`, `/jsz`, ...).
    pub fn monitor_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.monitor_port)
    }

    /// The JetStream store directory, kept across restarts.
    pub fn store_dir(&self) -> PathBuf {
        match &self.config.store_parent {
            Some(parent) => parent.join("jetstream"),
            None => self.dir.path().join("jetstream"),
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("nats-server.log")
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("nats-server.conf")
    }

    /// What the server was started with.
    pub fn config(&self) -> &NatsConfig {
        &self.config
    }

    /// The server's configuration file: ports, store and the [`NatsConfig`] options.
    fn render_config(&self) -> anyhow::Result<String> {
        let q = |text: &str| serde_json::to_string(text).context("cannot quote for the config");
        let path = |p: &std::path::Path| {
            p.to_str()
                .ok_or_else(|| anyhow!("not UTF-8: {}", p.display()))
                .and_then(&q)
        };
        let mut conf = format!(
            "listen: {}\nhttp: {}\njetstream {{\n  store_dir: {}\n",
            q(&format!("127.0.0.1:{}", self.port))?,
            q(&format!("127.0.0.1:{}", self.monitor_port))?,
            path(&self.store_dir())?,
        );
        if let Some(interval) = &self.config.sync_interval {
            conf += &format!("  sync_interval: {}\n", q(interval)?);
        }
        if let Some(bytes) = self.config.max_file_store {
            conf += &format!("  max_file_store: {bytes}\n");
        }
        conf += "}\n";
        match &self.config.auth {
            NatsAuth::Anyone => {}
            NatsAuth::Token(token) => {
                conf += &format!("authorization {{ token: {} }}\n", q(token)?)
            }
            NatsAuth::User { user, password } => {
                conf += &format!(
                    "authorization {{ user: {}, password: {} }}\n",
                    q(user)?,
                    q(password)?
                )
            }
            NatsAuth::Nkey(public) => {
                conf += &format!(
                    "authorization {{ users: [ {{ nkey: {} }} ] }}\n",
                    q(public)?
                )
            }
        }
        if let Some(tls) = &self.config.tls {
            conf += &format!(
                "tls {{\n  cert_file: {}\n  key_file: {}\n  ca_file: {}\n  verify: {}\n  timeout: 5\n}}\n",
                path(&tls.cert)?,
                path(&tls.key)?,
                path(&tls.ca)?,
                tls.verify_clients
            );
        }
        Ok(conf)
    }

    /// True while the server process is alive.
    pub fn is_running(&mut self) -> bool {
        is_alive(&mut self.child)
    }

    /// Graceful stop: SIGTERM, then wait until the process is gone (SIGKILL after a timeout).
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        terminate(self.child.take(), Signal::TERM, STOP_TIMEOUT, "nats-server").await
    }

    /// Changes `max_file_store` on the running server (configuration reload, SIGHUP) and waits
    /// until the server reports the new limit: space given back without a restart.
    pub async fn set_max_file_store(&mut self, bytes: u64) -> anyhow::Result<()> {
        self.config.max_file_store = Some(bytes);
        std::fs::write(self.config_path(), self.render_config()?)
            .context("cannot write the nats-server config")?;
        let child = self
            .child
            .as_ref()
            .ok_or_else(|| anyhow!("nats-server is not running"))?;
        rustix::process::kill_process(rustix::process::Pid::from_child(child), Signal::HUP)
            .context("cannot signal nats-server")?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()?;
        let url = format!("{}/jsz", self.monitor_url());
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(r) = client.get(&url).send().await {
                if let Ok(jsz) = r.json::<serde_json::Value>().await {
                    if jsz["config"]["max_storage"].as_u64() == Some(bytes) {
                        return Ok(());
                    }
                }
            }
            if Instant::now() > deadline {
                bail!("nats-server did not take max_file_store = {bytes}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: the broker dies without flushing, as in a crash.
    pub fn kill9(&mut self) -> anyhow::Result<()> {
        kill9(self.child.take(), "nats-server")
    }

    /// Starts (or restarts) the server on the same ports and data dir and waits until JetStream
    /// is ready. Does nothing if it is already running.
    pub async fn start(&mut self) -> anyhow::Result<()> {
        if self.is_running() {
            return Ok(());
        }
        let log = append_log(&self.log_path())?;
        std::fs::write(self.config_path(), self.render_config()?)
            .context("cannot write the nats-server config")?;
        let child = Command::new(&self.bin)
            .arg("-c")
            .arg(self.config_path())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot run {}", self.bin.display()))?;
        self.child = Some(child);
        if let Err(e) = self.wait_ready().await {
            let _ = self.kill9();
            return Err(e.context(log_tail(&self.log_path(), "nats-server")));
        }
        Ok(())
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()?;
        let url = format!("{}/healthz?js-enabled-only=true", self.monitor_url());
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if !self.is_running() {
                bail!("nats-server on port {} exited during startup", self.port);
            }
            if let Ok(response) = client.get(&url).send().await {
                if response.status().is_success() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "nats-server on port {} not ready after {READY_TIMEOUT:?}",
                    self.port
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.kill9();
    }
}
