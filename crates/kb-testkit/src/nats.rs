//! A private `nats-server` with JetStream per test: own ports, own data directory, and the
//! controls a test needs to exercise broker failures (graceful stop, SIGKILL, restart).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use rustix::process::Signal;
use tempfile::TempDir;

use crate::process::{append_log, free_ports, is_alive, kill9, log_tail, terminate};
use crate::Stack;

const READY_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
const START_ATTEMPTS: usize = 3;

/// A `nats-server -js` owned by one test. Dropping it kills the server and deletes its data.
#[derive(Debug)]
pub struct NatsServer {
    bin: PathBuf,
    port: u16,
    monitor_port: u16,
    // Field order matters for Drop: the process is killed (in `drop`) before the dir goes.
    child: Option<Child>,
    dir: TempDir,
}

impl Stack {
    /// Starts a private nats-server with JetStream on a free port, data in its own temp dir.
    pub async fn nats(&self) -> anyhow::Result<NatsServer> {
        let dir = tempfile::Builder::new()
            .prefix("kb-nats-")
            .tempdir()
            .context("cannot create a temp dir for nats-server")?;
        let mut server = NatsServer {
            bin: self.nats_server_bin.clone(),
            port: 0,
            monitor_port: 0,
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
        self.dir.path().join("jetstream")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("nats-server.log")
    }

    /// True while the server process is alive.
    pub fn is_running(&mut self) -> bool {
        is_alive(&mut self.child)
    }

    /// Graceful stop: SIGTERM, then wait until the process is gone (SIGKILL after a timeout).
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        terminate(self.child.take(), Signal::TERM, STOP_TIMEOUT, "nats-server").await
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
        let child = Command::new(&self.bin)
            .arg("-js")
            .args(["-a", "127.0.0.1"])
            .args(["-p", &self.port.to_string()])
            .args(["-m", &self.monitor_port.to_string()])
            .arg("-sd")
            .arg(self.store_dir())
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
