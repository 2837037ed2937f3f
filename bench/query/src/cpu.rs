//! CPU time per process group from `/proc` (Linux), to say where the cores go under load:
//! the `kb-query` process (HTTP, query embedding, fusion), the `bench` instance's Postgres
//! (postmaster and its backends; backends that exited count through the postmaster's
//! `cutime`), its ArcadeDB server (the graph), this process (the load generator), and
//! everything else on the machine.

use std::collections::HashMap;

/// Linux reports times in clock ticks of `USER_HZ`, 100 on every mainstream architecture.
const TICKS_PER_S: f64 = 100.0;

#[derive(Debug, Clone, Copy, Default)]
pub struct Snapshot {
    pub query: f64,
    pub postgres: f64,
    pub graph: f64,
    pub bench: f64,
    /// Busy time of the whole machine (all cores).
    pub machine: f64,
}

impl Snapshot {
    pub fn since(&self, before: &Snapshot) -> Snapshot {
        Snapshot {
            query: self.query - before.query,
            postgres: self.postgres - before.postgres,
            graph: self.graph - before.graph,
            bench: self.bench - before.bench,
            machine: self.machine - before.machine,
        }
    }

    /// The machine's busy time not in the groups above.
    pub fn other(&self) -> f64 {
        (self.machine - self.query - self.postgres - self.graph - self.bench).max(0.0)
    }
}

struct Stat {
    ppid: u32,
    own: u64,
    children: u64,
}

fn stat(pid: u32) -> Option<Stat> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // the command may hold spaces and parentheses: fields start after the last ')'
    let rest = &s[s.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
    Some(Stat {
        ppid: u32::try_from(n(1)?).ok()?,
        own: n(11)? + n(12)?,
        children: n(13)? + n(14)?,
    })
}

fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

fn pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

fn machine_busy() -> f64 {
    let Ok(s) = std::fs::read_to_string("/proc/stat") else {
        return 0.0;
    };
    let Some(line) = s.lines().next() else {
        return 0.0;
    };
    // cpu user nice system idle iowait irq softirq steal ...
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let busy: u64 = v
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4 && *i < 8)
        .map(|(_, x)| x)
        .sum();
    busy as f64 / TICKS_PER_S
}

fn port_of(url: &str) -> Option<String> {
    let after_host = url.split("://").nth(1)?;
    let host_port = after_host.split(['/', '?']).next()?;
    let host_port = host_port.rsplit('@').next()?;
    Some(host_port.rsplit_once(':')?.1.to_owned())
}

pub struct Meter {
    query: Option<u32>,
    postmaster: Option<u32>,
    graph: Option<u32>,
}

impl Meter {
    /// Finds the bench instance's servers by their ports (`KB_POSTGRES_URL`, `KB_NEO4J_URI`).
    pub fn new(query_pid: Option<u32>) -> Self {
        let pg_port = std::env::var("KB_POSTGRES_URL")
            .ok()
            .and_then(|u| port_of(&u));
        let bolt_port = std::env::var("KB_NEO4J_URI").ok().and_then(|u| port_of(&u));
        let (mut postmaster, mut graph) = (None, None);
        for pid in pids() {
            let cmd = cmdline(pid);
            if let Some(p) = &pg_port {
                let first = cmd.split_whitespace().next().unwrap_or("");
                if first.ends_with("/postgres") && cmd.contains(&format!(" -p {p} ")) {
                    postmaster = Some(pid);
                }
            }
            if let Some(p) = &bolt_port {
                if cmd.contains("ArcadeDBServer") && cmd.contains(&format!("bolt.port={p} ")) {
                    graph = Some(pid);
                }
            }
        }
        Self {
            query: query_pid,
            postmaster,
            graph,
        }
    }

    pub fn found(&self) -> bool {
        self.postmaster.is_some() && self.graph.is_some()
    }

    pub fn snapshot(&self) -> Snapshot {
        let own = |pid: Option<u32>| {
            pid.and_then(stat)
                .map_or(0.0, |s| s.own as f64 / TICKS_PER_S)
        };
        let mut postgres = 0.0;
        if let Some(pm) = self.postmaster {
            let mut ticks = stat(pm).map_or(0, |s| s.own + s.children);
            let all: HashMap<u32, Stat> = pids()
                .into_iter()
                .filter_map(|p| Some((p, stat(p)?)))
                .collect();
            ticks += all
                .values()
                .filter(|s| s.ppid == pm)
                .map(|s| s.own)
                .sum::<u64>();
            postgres = ticks as f64 / TICKS_PER_S;
        }
        Snapshot {
            query: own(self.query),
            postgres,
            graph: own(self.graph),
            bench: own(Some(std::process::id())),
            machine: machine_busy(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_from_urls() {
        assert_eq!(
            port_of("postgres://postgres@127.0.0.1:25433/kb").as_deref(),
            Some("25433")
        );
        assert_eq!(port_of("bolt://127.0.0.1:27687").as_deref(), Some("27687"));
    }

    #[test]
    fn this_process_has_cpu_time() {
        let s = Meter::new(None).snapshot();
        assert!(s.bench >= 0.0 && s.machine > 0.0);
    }
}
