//! The parser's side of a worker: start it for one document, limit its address space before
//! it reads the document, feed it, read its answer, and kill it at the deadline.

use std::fmt;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use kb_core::failpoint;
use kb_parse::ParseOptions;
use kb_proto::{ParsedDocument, SourceRef};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

use super::wire;
use crate::runner::{ParseFailure, HARD_TIMEOUT_GRACE};

/// The subcommand of the worker program.
pub const SUBCOMMAND: &str = "parse-worker";

/// How workers are started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerConfig {
    /// `parser.worker_bin`, else the parser's own program.
    pub bin: PathBuf,
    /// Address-space limit (`parser.worker_memory_mb`).
    pub memory_bytes: u64,
}

/// A worker that gave no answer.
#[derive(Debug)]
pub enum WorkerError {
    /// Still working at the deadline: killed.
    Timeout,
    /// Could not be started or limited: nothing to do with the document.
    Start(String),
    /// Ended without an answer: an abort, a signal, running out of its memory limit.
    Died(Died),
}

/// How a worker died.
#[derive(Debug, Clone)]
pub struct Died {
    /// e.g. "killed by signal 6 (SIGABRT)".
    pub status: String,
    /// The end of what it wrote to stderr (the panic or allocation failure message).
    pub stderr_tail: String,
}

impl fmt::Display for Died {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.status)?;
        // The runtime's last words, not its notes about backtraces.
        let lines = || self.stderr_tail.lines().map(str::trim);
        let said = lines()
            .rfind(|l| l.starts_with("memory allocation of"))
            .or_else(|| {
                lines()
                    .rfind(|l| !l.is_empty() && !l.starts_with("note:") && !l.contains("backtrace"))
            });
        if let Some(line) = said {
            write!(f, ": {line}")?;
        }
        Ok(())
    }
}

impl Died {
    /// For the dead letter: how it died, and whether it was the memory limit.
    pub fn describe(&self, w: &WorkerConfig) -> String {
        if self.stderr_tail.contains("memory allocation of") {
            format!(
                "{self} (out of its memory limit, parser.worker_memory_mb = {})",
                w.memory_bytes / (1024 * 1024)
            )
        } else {
            self.to_string()
        }
    }
}

/// Parses one document in a fresh worker: the document's own result (parsed or failed), or
/// why the worker gave none.
pub async fn parse(
    w: &WorkerConfig,
    source: &SourceRef,
    bytes: &[u8],
    options: &ParseOptions,
    budget: Duration,
) -> Result<Result<ParsedDocument, ParseFailure>, WorkerError> {
    let mut cmd = Command::new(&w.bin);
    // The source id on the command line names the document in `ps`.
    cmd.args([SUBCOMMAND, "--source", &source.source_id])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .env_remove(failpoint::ENV);
    if failpoint::armed() {
        // The tests' failpoints, armed in this process, reach the worker.
        cmd.env(failpoint::ENV, failpoint::spec_string());
    }
    let mut child = cmd.spawn().map_err(|e| {
        WorkerError::Start(format!(
            "cannot start the parse worker {}: {e}",
            w.bin.display()
        ))
    })?;
    // Before it reads the document: spawn returns once the program is running, and the
    // worker reads nothing until it is fed.
    if let Err(e) = limit_memory(&child, w.memory_bytes) {
        let _ = child.start_kill();
        let _ = child.wait().await;
        return Err(WorkerError::Start(e));
    }
    let (Some(mut stdin), Some(mut stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(WorkerError::Start("the worker has no pipes".into()));
    };
    let head = wire::request_head(source, options, bytes.len());
    let exchange = async {
        let feed = async move {
            // A worker that dies reading breaks the pipe: its exit status says why.
            if stdin.write_all(&head).await.is_ok() {
                let _ = stdin.write_all(bytes).await;
            }
        };
        let mut out = Vec::new();
        let (_, read, err_tail) = tokio::join!(feed, stdout.read_to_end(&mut out), tail(stderr));
        let status = child.wait().await;
        (out, read, err_tail, status)
    };
    let outcome = tokio::time::timeout(budget + HARD_TIMEOUT_GRACE, exchange).await;
    let Ok((out, read, stderr_tail, status)) = outcome else {
        let _ = child.start_kill();
        let _ = child.wait().await;
        return Err(WorkerError::Timeout);
    };
    let status =
        status.map_err(|e| WorkerError::Start(format!("cannot wait for the parse worker: {e}")))?;
    if status.success() && read.is_ok() {
        if let Some(result) = wire::decode_response(&out) {
            return Ok(result);
        }
    }
    Err(WorkerError::Died(Died {
        status: describe_status(status),
        stderr_tail,
    }))
}

/// Sets the worker's address-space limit (RLIMIT_AS, soft and hard).
fn limit_memory(child: &Child, bytes: u64) -> Result<(), String> {
    use rustix::process::{prlimit, Pid, Resource, Rlimit};
    let pid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .and_then(Pid::from_raw)
        .ok_or_else(|| "the parse worker has no process id".to_string())?;
    let limit = Rlimit {
        current: Some(bytes),
        maximum: Some(bytes),
    };
    prlimit(Some(pid), Resource::As, limit)
        .map(drop)
        .map_err(|e| format!("cannot limit the parse worker's memory: {e}"))
}

/// The last few KiB a worker wrote to stderr (the rest is read and dropped, so a chatty
/// worker never blocks on a full pipe).
async fn tail(mut stderr: impl AsyncRead + Unpin) -> String {
    const KEEP: usize = 4096;
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    while let Ok(n) = stderr.read(&mut buf).await {
        if n == 0 {
            break;
        }
        kept.extend_from_slice(&buf[..n]);
        if kept.len() > 2 * KEEP {
            kept.drain(..kept.len() - KEEP);
        }
    }
    if kept.len() > KEEP {
        kept.drain(..kept.len() - KEEP);
    }
    String::from_utf8_lossy(&kept).into_owned()
}

fn describe_status(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code} without an answer"),
        (None, Some(sig)) => {
            let name = match sig {
                4 => " (SIGILL)",
                6 => " (SIGABRT)",
                7 => " (SIGBUS)",
                9 => " (SIGKILL)",
                11 => " (SIGSEGV)",
                _ => "",
            };
            format!("killed by signal {sig}{name}")
        }
        (None, None) => format!("ended without an answer ({status})"),
    }
}
