//! A private Postgres server (with pgvector) per test, from the stack's installed binaries:
//! own data directory and port, so a test can stop, kill and restart it without touching the
//! shared server other tests use.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use rustix::process::Signal;
use sqlx::{Connection, PgConnection};
use tempfile::TempDir;

use crate::process::{
    append_log, free_ports, freeze_tree, is_alive, kill9, log_tail, shut_down_blocking, terminate,
};
use crate::Stack;

const READY_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
const START_ATTEMPTS: usize = 3;
/// The database handed out; created at first start.
const DATABASE: &str = "kb";
/// Postgres refuses to run as root; the stack runs it as this user (deploy/local/lib/install.sh).
const SERVICE_USER: &str = "kbmirror";

/// A `postgres` owned by one test. Dropping it shuts the server down and deletes its data.
#[derive(Debug)]
pub struct PostgresServer {
    bin: PathBuf,
    port: u16,
    /// uid and gid to run as, when we are root.
    owner: Option<(u32, u32)>,
    /// SIGSTOPped by [`PostgresServer::pause`].
    paused: bool,
    // Field order matters for Drop: the process is stopped (in `drop`) before the dir goes.
    child: Option<Child>,
    dir: TempDir,
}

impl Stack {
    /// Starts a private Postgres on a free port with an empty database `kb` in which
    /// `CREATE EXTENSION vector` works. No fsync: a killed server keeps what it committed, only
    /// an OS crash would lose it.
    pub async fn private_postgres(&self) -> anyhow::Result<PostgresServer> {
        let bin = self.pg_bin_dir()?;
        let owner = if rustix::process::geteuid().is_root() {
            Some(user_ids(SERVICE_USER)?)
        } else {
            None
        };
        let dir = tempfile::Builder::new()
            .prefix("kb-pg-")
            .tempdir()
            .context("cannot create a temp dir for postgres")?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .context("cannot hand the postgres temp dir to its service user")?;
        }
        let mut server = PostgresServer {
            bin,
            port: 0,
            owner,
            paused: false,
            child: None,
            dir,
        };
        server.initdb().await?;
        // Another process may grab the port between our probe and the server's bind: retry.
        let mut last_error = anyhow!("postgres did not start");
        for _ in 0..START_ATTEMPTS {
            [server.port] = free_ports()?;
            match server.start_once().await {
                Ok(()) => {
                    server.create_database().await?;
                    return Ok(server);
                }
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }
}

impl PostgresServer {
    /// `postgres://postgres@127.0.0.1:PORT/kb`
    pub fn url(&self) -> String {
        self.url_of(DATABASE)
    }

    fn url_of(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn socket_dir(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    /// The server's log (stdout and stderr of every start), for failure reports.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    /// True while the postmaster is alive.
    pub fn is_running(&mut self) -> bool {
        is_alive(&mut self.child)
    }

    /// SIGSTOP to the postmaster and every backend: a blackhole. Connections are still
    /// accepted by the kernel and queries on open ones are taken, but nothing answers until
    /// [`PostgresServer::resume`]. Stopping or dropping a paused server resumes it first.
    pub fn pause(&mut self) -> anyhow::Result<()> {
        if let Some(child) = &self.child {
            freeze_tree(child, true, "postgres")?;
            self.paused = true;
        }
        Ok(())
    }

    /// SIGCONT to what [`PostgresServer::pause`] stopped.
    pub fn resume(&mut self) -> anyhow::Result<()> {
        if let (Some(child), true) = (&self.child, self.paused) {
            freeze_tree(child, false, "postgres")?;
        }
        self.paused = false;
        Ok(())
    }

    /// Graceful stop ("fast" shutdown: open sessions are ended), waiting until it is gone.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        self.resume()?;
        terminate(self.child.take(), Signal::INT, STOP_TIMEOUT, "postgres").await
    }

    /// SIGKILL to the postmaster, as in a crash; its backends notice and exit, and the next
    /// start runs crash recovery.
    pub fn kill9(&mut self) -> anyhow::Result<()> {
        // Stopped backends would outlive their postmaster, holding its shared memory.
        self.resume()?;
        kill9(self.child.take(), "postgres")
    }

    /// Starts (or restarts) the server on the same port and data and waits until it accepts
    /// connections. Does nothing if it is already running.
    pub async fn start(&mut self) -> anyhow::Result<()> {
        if self.is_running() {
            return Ok(());
        }
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            self.spawn()?;
            match self.wait_ready(deadline).await {
                Ok(()) => return Ok(()),
                // Right after a kill -9, backends of the old postmaster may still hold its
                // shared memory for a moment; the new one refuses to start until they are gone.
                Err(_) if Instant::now() < deadline && !self.is_running() => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => {
                    let _ = self.kill9();
                    return Err(e.context(log_tail(&self.log_path(), "postgres")));
                }
            }
        }
    }

    /// One attempt on the current port, for the first start (a clash means another port).
    async fn start_once(&mut self) -> anyhow::Result<()> {
        self.spawn()?;
        if let Err(e) = self.wait_ready(Instant::now() + READY_TIMEOUT).await {
            let _ = self.kill9();
            return Err(e.context(log_tail(&self.log_path(), "postgres")));
        }
        Ok(())
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        cmd.current_dir(self.dir.path()).stdin(Stdio::null());
        if let Some((uid, gid)) = self.owner {
            std::os::unix::process::CommandExt::uid(&mut cmd, uid);
            std::os::unix::process::CommandExt::gid(&mut cmd, gid);
        }
        cmd
    }

    async fn initdb(&self) -> anyhow::Result<()> {
        let log = append_log(&self.dir.path().join("initdb.log"))?;
        let mut cmd = self.command("initdb");
        cmd.args(["--auth=trust", "--locale=C", "-E", "UTF8", "-U", "postgres"])
            // No fsync: the data dies with the test.
            .arg("--no-sync")
            .arg("-D")
            .arg(self.data_dir())
            .stdout(log.try_clone()?)
            .stderr(log);
        let status = tokio::task::spawn_blocking(move || cmd.status())
            .await?
            .context("cannot run initdb")?;
        if !status.success() {
            bail!(
                "initdb failed ({status})\n{}",
                log_tail(&self.dir.path().join("initdb.log"), "initdb")
            );
        }
        let sock = self.socket_dir();
        std::fs::create_dir_all(&sock)?;
        if let Some((uid, gid)) = self.owner {
            std::os::unix::fs::chown(&sock, Some(uid), Some(gid))?;
        }
        Ok(())
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let log = append_log(&self.log_path())?;
        let mut cmd = self.command("postgres");
        cmd.arg("-D")
            .arg(self.data_dir())
            .args(["-p", &self.port.to_string()])
            .arg("-k")
            .arg(self.socket_dir())
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "max_connections=100"])
            .args(["-c", "shared_buffers=32MB"])
            // Throwaway data: no fsync (only an OS crash would lose data). Commits are still
            // written out before they are confirmed, so a killed server keeps them.
            .args(["-c", "fsync=off"])
            .args(["-c", "full_page_writes=off"])
            .stdout(log.try_clone()?)
            .stderr(log);
        self.child = Some(cmd.spawn().context("cannot run postgres")?);
        Ok(())
    }

    async fn wait_ready(&mut self, deadline: Instant) -> anyhow::Result<()> {
        let url = self.url_of("postgres");
        loop {
            if !self.is_running() {
                bail!("postgres on port {} exited during startup", self.port);
            }
            if let Ok(conn) = PgConnection::connect(&url).await {
                conn.close().await.ok();
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "postgres on port {} not ready after {READY_TIMEOUT:?}",
                    self.port
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn create_database(&self) -> anyhow::Result<()> {
        let mut admin = PgConnection::connect(&self.url_of("postgres")).await?;
        sqlx::query(&format!("CREATE DATABASE {DATABASE}"))
            .execute(&mut admin)
            .await
            .context("cannot create the database")?;
        admin.close().await.ok();
        Ok(())
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        // A stopped process takes no signal but SIGKILL: continue it first.
        let _ = self.resume();
        // Immediate shutdown (SIGQUIT) takes the backends down with the postmaster, so nothing
        // is left writing into the directory that is about to be deleted.
        shut_down_blocking(self.child.take(), Signal::QUIT, Duration::from_secs(10));
    }
}

/// uid and gid of `user` from /etc/passwd.
fn user_ids(user: &str) -> anyhow::Result<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").context("cannot read /etc/passwd")?;
    passwd
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|fields| fields.first() == Some(&user))
        .and_then(|fields| Some((fields.get(2)?.parse().ok()?, fields.get(3)?.parse().ok()?)))
        .ok_or_else(|| {
            anyhow!("no user {user}: run `deploy/local/stack install` (it creates the user)")
        })
}
