//! A private ArcadeDB Bolt server per test, from the stack's installed wheel and its own JRE
//! (as deploy/local/lib/arcadedb.sh starts the shared one): own ports and root directory, a
//! small heap, and the controls a test needs to take the graph store away and bring it back.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use rustix::process::Signal;
use serde_json::json;
use tempfile::TempDir;

use crate::process::{
    append_log, free_ports, freeze_tree, is_alive, kill9, log_tail, shut_down_blocking, terminate,
};
use crate::{GraphDb, Stack};

/// The JVM starts slowly on a busy machine.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
const START_ATTEMPTS: usize = 3;
/// Enough for a few thousand documents; keeps several servers affordable on a small machine.
const HEAP: &str = "-Xmx384m";
/// Database and user created at first start, as on the shared server.
const DATABASE: &str = "neo4j";
const USER: &str = "neo4j";
/// ArcadeDB wants at least 8 characters.
const PASSWORD: &str = "kb-private-graph";

/// An ArcadeDB server with its Bolt plugin, owned by one test. Dropping it kills the server
/// and deletes its data.
#[derive(Debug)]
pub struct GraphServer {
    home: PathBuf,
    http_port: u16,
    bolt_port: u16,
    /// SIGSTOPped by [`GraphServer::pause`].
    paused: bool,
    // Field order matters for Drop: the process is killed (in `drop`) before the dir goes.
    child: Option<Child>,
    dir: TempDir,
}

impl Stack {
    /// Starts a private ArcadeDB server with one empty database reachable over Bolt
    /// ([`GraphServer::graph_db`]).
    pub async fn private_graph(&self) -> anyhow::Result<GraphServer> {
        let home = self
            .stack_dir
            .join("pkgs/arcadedb-embedded/arcadedb_embedded");
        if !home.join("jre/bin/java").is_file() {
            bail!(
                "ArcadeDB is not installed at {}: run `deploy/local/stack install`",
                home.display()
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("kb-graph-")
            .tempdir()
            .context("cannot create a temp dir for ArcadeDB")?;
        std::fs::create_dir_all(dir.path().join("databases"))?;
        let mut server = GraphServer {
            home,
            http_port: 0,
            bolt_port: 0,
            paused: false,
            child: None,
            dir,
        };
        // Another process may grab a port between our probe and the server's bind: retry.
        let mut last_error = anyhow!("ArcadeDB did not start");
        for _ in 0..START_ATTEMPTS {
            [server.http_port, server.bolt_port] = free_ports()?;
            match server.start().await {
                Ok(()) => return Ok(server),
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }
}

impl GraphServer {
    /// Connection details of the server's database (`neo4rs::ConfigBuilder::db`).
    pub fn graph_db(&self) -> GraphDb {
        GraphDb {
            uri: format!("bolt://127.0.0.1:{}", self.bolt_port),
            user: USER.to_owned(),
            password: PASSWORD.to_owned(),
            database: DATABASE.to_owned(),
        }
    }

    pub fn bolt_port(&self) -> u16 {
        self.bolt_port
    }

    /// `http://127.0.0.1:HTTP_PORT` (ArcadeDB's HTTP API).
    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    fn root(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// The server's log (stdout and stderr of every start), for failure reports.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("arcadedb.log")
    }

    /// True while the server process is alive.
    pub fn is_running(&mut self) -> bool {
        is_alive(&mut self.child)
    }

    /// SIGSTOP to the server: a blackhole. The kernel still accepts connections on its ports,
    /// but nothing answers until [`GraphServer::resume`]. Stopping or dropping a paused server
    /// resumes it first.
    pub fn pause(&mut self) -> anyhow::Result<()> {
        if let Some(child) = &self.child {
            freeze_tree(child, true, "ArcadeDB")?;
            self.paused = true;
        }
        Ok(())
    }

    /// SIGCONT to what [`GraphServer::pause`] stopped.
    pub fn resume(&mut self) -> anyhow::Result<()> {
        if let (Some(child), true) = (&self.child, self.paused) {
            freeze_tree(child, false, "ArcadeDB")?;
        }
        self.paused = false;
        Ok(())
    }

    /// Graceful stop: SIGTERM (the JVM closes its databases), then wait until it is gone.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        self.resume()?;
        terminate(self.child.take(), Signal::TERM, STOP_TIMEOUT, "ArcadeDB").await
    }

    /// SIGKILL, as in a crash: the next start recovers the databases from their journals.
    pub fn kill9(&mut self) -> anyhow::Result<()> {
        kill9(self.child.take(), "ArcadeDB")
    }

    /// Starts (or restarts) the server on the same ports and data and waits until its database
    /// answers queries. Does nothing if it is already running.
    pub async fn start(&mut self) -> anyhow::Result<()> {
        if self.is_running() {
            return Ok(());
        }
        self.spawn()?;
        if let Err(e) = self.wait_ready().await {
            let _ = self.kill9();
            return Err(e.context(log_tail(&self.log_path(), "ArcadeDB")));
        }
        Ok(())
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let log = append_log(&self.log_path())?;
        let root = self.root();
        let prop = |name: &str, value: &dyn std::fmt::Display| format!("-D{name}={value}");
        let child = Command::new(self.home.join("jre/bin/java"))
            .current_dir(&root)
            // The client compiler only and a serial collector: less CPU on a small machine.
            .args([HEAP, "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"])
            .args([
                "--add-modules=jdk.incubator.vector",
                "--enable-native-access=ALL-UNNAMED",
                "--add-opens=java.base/java.nio=ALL-UNNAMED",
                "--add-opens=java.base/java.nio.channels.spi=ALL-UNNAMED",
                "--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED",
                "--add-opens=java.base/java.lang=ALL-UNNAMED",
                "-Djava.awt.headless=true",
            ])
            .arg(prop("arcadedb.server.rootPath", &root.display()))
            .arg(prop(
                "arcadedb.server.databaseDirectory",
                &root.join("databases").display(),
            ))
            .arg(prop("arcadedb.server.rootPassword", &PASSWORD))
            .arg(prop("arcadedb.server.httpIncomingHost", &"127.0.0.1"))
            .arg(prop("arcadedb.server.httpIncomingPort", &self.http_port))
            .arg(prop(
                "arcadedb.server.plugins",
                &"Bolt:com.arcadedb.bolt.BoltProtocolPlugin",
            ))
            .arg(prop("arcadedb.bolt.host", &"127.0.0.1"))
            .arg(prop("arcadedb.bolt.port", &self.bolt_port))
            .arg(prop("arcadedb.bolt.defaultDatabase", &DATABASE))
            .arg(prop(
                "arcadedb.server.defaultDatabases",
                &format!("{DATABASE}[{USER}:{PASSWORD}:admin]"),
            ))
            .arg("-cp")
            .arg(format!("{}/jars/*", self.home.display()))
            .arg("com.arcadedb.server.ArcadeDBServer")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("cannot run ArcadeDB's java")?;
        self.child = Some(child);
        Ok(())
    }

    /// Ready means the database answers a query as its user. Authentication is only tried
    /// once the server says it is ready: failures before that count towards ArcadeDB's
    /// brute-force lockout, which then refuses the right password too for a while.
    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        let ready = format!("{}/api/v1/ready", self.http_url());
        let query = format!("{}/api/v1/query/{DATABASE}", self.http_url());
        let body = json!({ "language": "cypher", "command": "RETURN 1 AS n" });
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut server_ready = false;
        loop {
            if !self.is_running() {
                bail!("ArcadeDB on port {} exited during startup", self.http_port);
            }
            if !server_ready {
                server_ready = client
                    .get(&ready)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().as_u16() == 204);
            } else {
                let answered = client
                    .post(&query)
                    .basic_auth(USER, Some(PASSWORD))
                    .json(&body)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                let bolt = tokio::net::TcpStream::connect(("127.0.0.1", self.bolt_port))
                    .await
                    .is_ok();
                if answered && bolt {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "ArcadeDB on port {} not ready after {READY_TIMEOUT:?}",
                    self.http_port
                );
            }
            let pause = if server_ready { 500 } else { 100 };
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
    }
}

impl Drop for GraphServer {
    fn drop(&mut self) {
        let _ = self.resume();
        // The data goes with the test: no need to let the JVM close its databases.
        shut_down_blocking(self.child.take(), Signal::KILL, Duration::from_secs(5));
    }
}
