//! Peak resident memory of the services, each with its child processes (the parser's isolated
//! workers), sampled from /proc every 200 ms on a thread of its own.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Default, Clone)]
pub struct Peaks {
    /// The largest sum over all services at one sample, MiB.
    pub total: f64,
    /// Each service's own peak (its process tree), MiB.
    pub per_service: BTreeMap<String, f64>,
}

pub struct Sampler {
    stop: Arc<AtomicBool>,
    peaks: Arc<Mutex<Peaks>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn rss_kib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<f64>().ok())
        })
        .unwrap_or(0.0)
}

/// Parent of every process now running.
fn parents() -> HashMap<u32, u32> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        // stat: "pid (comm) state ppid ..."; comm may hold spaces and parentheses.
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if let Some(ppid) = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
        {
            out.insert(pid, ppid);
        }
    }
    out
}

/// RSS of `root` and all its descendants, KiB.
fn tree_kib(root: u32, parents: &HashMap<u32, u32>) -> f64 {
    let mut total = rss_kib(root);
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for (&child, &parent) in parents {
            if parent == p {
                total += rss_kib(child);
                frontier.push(child);
            }
        }
    }
    total
}

impl Sampler {
    pub fn start(services: Vec<(String, u32)>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let peaks = Arc::new(Mutex::new(Peaks::default()));
        let (s, p) = (stop.clone(), peaks.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let parents = parents();
                let now: Vec<(&String, f64)> = services
                    .iter()
                    .map(|(name, pid)| (name, tree_kib(*pid, &parents) / 1024.0))
                    .collect();
                if let Ok(mut peaks) = p.lock() {
                    let sum: f64 = now.iter().map(|(_, v)| v).sum();
                    peaks.total = peaks.total.max(sum);
                    for (name, v) in now {
                        let e = peaks.per_service.entry(name.clone()).or_insert(0.0);
                        *e = e.max(v);
                    }
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        Self {
            stop,
            peaks,
            thread: Some(thread),
        }
    }

    pub fn finish(mut self) -> Peaks {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.peaks.lock().map(|p| p.clone()).unwrap_or_default()
    }
}
