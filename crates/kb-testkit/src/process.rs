//! Child-process plumbing shared by the private servers: free ports, signals, log files.

use std::fs::{File, OpenOptions};
use std::net::TcpListener;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rustix::process::{kill_process, Pid, Signal};

/// `N` distinct ports that were free a moment ago (all bound at once so they differ).
pub(crate) fn free_ports<const N: usize>() -> anyhow::Result<[u16; N]> {
    let listeners = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()?;
    let mut ports = [0u16; N];
    for (port, listener) in ports.iter_mut().zip(&listeners) {
        *port = listener.local_addr()?.port();
    }
    Ok(ports)
}

/// Opens `path` for appending: a server's log survives its restarts.
pub(crate) fn append_log(path: &Path) -> anyhow::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open the log {}", path.display()))
}

/// True while the process has not exited.
pub(crate) fn is_alive(child: &mut Option<Child>) -> bool {
    match child.as_mut() {
        Some(c) => matches!(c.try_wait(), Ok(None)),
        None => false,
    }
}

/// Sends `signal`, then waits for the process to exit; SIGKILL (and an error) after `timeout`.
pub(crate) async fn terminate(
    child: Option<Child>,
    signal: Signal,
    timeout: Duration,
    name: &str,
) -> anyhow::Result<()> {
    let Some(mut child) = child else {
        return Ok(());
    };
    if child.try_wait()?.is_some() {
        return Ok(());
    }
    kill_process(Pid::from_child(&child), signal)
        .with_context(|| format!("cannot signal {name}"))?;
    let deadline = Instant::now() + timeout;
    while child.try_wait()?.is_none() {
        if Instant::now() > deadline {
            child.kill()?;
            child.wait()?;
            bail!("{name} ignored {signal:?} for {timeout:?} and was killed");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// SIGKILL and reap, as in a crash. Safe to call on a process that already exited.
pub(crate) fn kill9(child: Option<Child>, name: &str) -> anyhow::Result<()> {
    if let Some(mut child) = child {
        child
            .kill()
            .with_context(|| format!("cannot kill {name}"))?;
        child
            .wait()
            .with_context(|| format!("cannot reap {name}"))?;
    }
    Ok(())
}

/// For Drop: a graceful signal first (so the server takes its own children down), SIGKILL
/// after `grace`. Blocking, bounded by `grace`.
pub(crate) fn shut_down_blocking(child: Option<Child>, signal: Signal, grace: Duration) {
    let Some(mut child) = child else {
        return;
    };
    if matches!(child.try_wait(), Ok(None)) {
        let _ = kill_process(Pid::from_child(&child), signal);
        let deadline = Instant::now() + grace;
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The last lines of a server log, for error messages.
pub(crate) fn log_tail(path: &Path, what: &str) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(20);
    format!(
        "{what} log ({}):\n{}",
        path.display(),
        lines[start..].join("\n")
    )
}

/// SIGSTOP (`stop = true`) or SIGCONT to a process and every descendant it has, as a
/// blackhole: the kernel still accepts connections on its ports but nothing answers. The root
/// is stopped first (it cannot fork while its children are found) and continued last.
pub(crate) fn freeze_tree(child: &Child, stop: bool, name: &str) -> anyhow::Result<()> {
    let root = child.id();
    let signal = if stop { Signal::STOP } else { Signal::CONT };
    let send = |pid: u32| -> anyhow::Result<()> {
        let Some(p) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
            bail!("{name}: no such pid {pid}");
        };
        kill_process(p, signal).with_context(|| format!("cannot send {signal:?} to {name}"))
    };
    if stop {
        send(root)?;
    }
    for pid in descendants(root) {
        // A child may have exited meanwhile; only the root must get the signal.
        let _ = send(pid);
    }
    if !stop {
        send(root)?;
    }
    Ok(())
}

/// Every descendant of `root`, from /proc (parents before their children).
fn descendants(root: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if let Some(ppid) = ppid {
                parents.push((pid, ppid));
            }
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for &(pid, ppid) in &parents {
            if ppid == parent && !out.contains(&pid) {
                out.push(pid);
                frontier.push(pid);
            }
        }
    }
    out
}
