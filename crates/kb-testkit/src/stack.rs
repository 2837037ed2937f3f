//! The shared `test` stack: started once per process through `deploy/local/stack`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{anyhow, bail, Context};
use tokio::process::Command;
use tokio::sync::OnceCell;

/// Connection details of the running `test` stack, as printed by `deploy/local/stack env`.
#[derive(Debug, Clone)]
pub struct Stack {
    pub(crate) postgres_url: String,
    pub(crate) bolt_uri: String,
    pub(crate) graph_user: String,
    pub(crate) graph_password: String,
    pub(crate) arcadedb_http: String,
    pub(crate) arcadedb_root_password: String,
    pub(crate) nats_url: String,
    pub(crate) nats_monitor_url: String,
    pub(crate) nats_server_bin: PathBuf,
    pub(crate) stack_dir: PathBuf,
    pub(crate) pg_bin_dir: PathBuf,
}

static STACK: OnceCell<Stack> = OnceCell::const_new();

/// The shared `test` stack (Postgres, ArcadeDB/Bolt, NATS binary). Started once per process;
/// the script's lock makes concurrent test processes safe.
pub async fn stack() -> anyhow::Result<&'static Stack> {
    STACK.get_or_try_init(start).await
}

async fn start() -> anyhow::Result<Stack> {
    let script = script_path()?;
    if std::env::var("KB_TEST_STACK").as_deref() != Ok("external") {
        run_script(&script, "start").await?;
    }
    let vars = parse_env(&run_script(&script, "env").await?)?;
    let stack = Stack::from_env(&vars)?;
    // Best effort: a failed cleanup must not fail the test that happened to start the stack.
    let _ = stack.drop_stale_postgres().await;
    let _ = stack.drop_stale_graphs().await;
    Ok(stack)
}

fn script_path() -> anyhow::Result<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let script = root.join("deploy/local/stack");
    if !script.is_file() {
        bail!("the stack script is missing at {}", script.display());
    }
    Ok(script)
}

async fn run_script(script: &Path, command: &str) -> anyhow::Result<String> {
    let out = Command::new(script)
        .args(["--instance", "test", command])
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("cannot run {}", script.display()))?;
    if !out.status.success() {
        bail!(
            "`{} --instance test {command}` failed ({}):\n{}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8(out.stdout).context("the stack script printed non-UTF-8 output")
}

/// Parses `export NAME=VALUE` lines where VALUE is quoted by bash's `printf %q`.
pub(crate) fn parse_env(text: &str) -> anyhow::Result<HashMap<String, String>> {
    let mut vars = HashMap::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let assignment = line
            .strip_prefix("export ")
            .ok_or_else(|| anyhow!("unexpected line from `stack env`: {line}"))?;
        let (name, quoted) = assignment
            .split_once('=')
            .ok_or_else(|| anyhow!("unexpected line from `stack env`: {line}"))?;
        vars.insert(name.to_owned(), unquote(quoted)?);
    }
    Ok(vars)
}

/// `printf %q` escapes special characters with a backslash; `$'...'` (control characters) is
/// not expected in these values and is rejected rather than misread.
fn unquote(quoted: &str) -> anyhow::Result<String> {
    if quoted.starts_with("$'") {
        bail!("unsupported quoting in `stack env` output: {quoted}");
    }
    if quoted == "''" {
        return Ok(String::new());
    }
    let mut out = String::with_capacity(quoted.len());
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    Ok(out)
}

impl Stack {
    fn from_env(vars: &HashMap<String, String>) -> anyhow::Result<Self> {
        let get = |name: &str| {
            vars.get(name)
                .cloned()
                .ok_or_else(|| anyhow!("`stack env` did not print {name}"))
        };
        Ok(Self {
            postgres_url: get("KB_POSTGRES_URL")?,
            bolt_uri: get("KB_NEO4J_URI")?,
            graph_user: get("KB_NEO4J_USER")?,
            graph_password: get("KB_NEO4J_PASSWORD")?,
            arcadedb_http: get("KB_ARCADEDB_HTTP")?,
            arcadedb_root_password: get("KB_ARCADEDB_ROOT_PASSWORD")?,
            nats_url: get("KB_NATS_URL")?,
            nats_monitor_url: get("KB_NATS_MONITOR_URL")?,
            nats_server_bin: get("KB_NATS_SERVER_BIN")?.into(),
            stack_dir: get("KB_STACK_DIR")?.into(),
            pg_bin_dir: get("KB_PG_BIN_DIR")?.into(),
        })
    }

    /// Directory of the installed embedding model (`$KB_STACK_DIR/model`), may not exist yet.
    pub fn model_dir(&self) -> PathBuf {
        self.stack_dir.join("model")
    }

    /// The stack's directory (`KB_STACK_DIR`): installed packages, server data, the model.
    /// Postgres' programs (`postgres`, `psql`, `pgbench`), wherever the stack put them: under
    /// the stack's directory, or under /var/lib when the checkout is out of reach of the
    /// Postgres service user. `deploy/local/stack env` is the one place that knows.
    pub fn pg_bin_dir(&self) -> anyhow::Result<PathBuf> {
        if self.pg_bin_dir.join("postgres").is_file() {
            Ok(self.pg_bin_dir.clone())
        } else {
            bail!(
                "postgres is not installed in {}: run `deploy/local/stack install`",
                self.pg_bin_dir.display()
            )
        }
    }

    pub fn stack_dir(&self) -> PathBuf {
        self.stack_dir.clone()
    }

    /// URL of the stack's shared `kb` database. Tests that write should use
    /// [`Stack::fresh_postgres`] instead.
    pub fn postgres_url(&self) -> &str {
        &self.postgres_url
    }

    /// URL of the stack's shared NATS server. Tests that need their own streams, or stop the
    /// server, should use [`Stack::nats`] instead.
    pub fn nats_url(&self) -> &str {
        &self.nats_url
    }

    /// The shared broker's monitoring endpoint (`/varz`, `/jsz`, `/healthz`).
    pub fn nats_monitor_url(&self) -> &str {
        &self.nats_monitor_url
    }

    /// The `nats-server` binary the stack installed.
    pub fn nats_server_bin(&self) -> &Path {
        &self.nats_server_bin
    }

    /// Bolt URI, user and password of the shared default graph database (`neo4j`).
    pub fn shared_graph(&self) -> crate::GraphDb {
        crate::GraphDb {
            uri: self.bolt_uri.clone(),
            user: self.graph_user.clone(),
            password: self.graph_password.clone(),
            database: "neo4j".to_owned(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_printf_q_output() {
        let vars = parse_env(
            "export KB_NATS_URL=nats://127.0.0.1:14222\nexport KB_X=a\\ b\\'c\nexport KB_E=''\n",
        )
        .unwrap();
        assert_eq!(vars["KB_NATS_URL"], "nats://127.0.0.1:14222");
        assert_eq!(vars["KB_X"], "a b'c");
        assert_eq!(vars["KB_E"], "");
        assert!(parse_env("KB_X=1").is_err());
        assert!(parse_env("export KB_X=$'\\n'").is_err());
    }
}
