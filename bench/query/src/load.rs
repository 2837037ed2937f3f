//! A closed-loop load generator: N concurrent clients, each sending the corpus questions
//! round-robin in its own shuffled order to `POST /v1/search`, the next request as soon as the
//! previous answer has been read, for a warm-up (not recorded) and then a measured window.

use anyhow::bail;
use kb_query::api::Filters;
use kb_query::{Mode, SearchRequest};
use serde::de::IgnoredAny;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cpu::{Meter, Snapshot};
use crate::stats::{percentile, Rng};

/// One cell of the matrix: a mode at a client count.
#[derive(Debug, Clone)]
pub struct Cell {
    pub mode: Mode,
    pub clients: usize,
    /// 200 answers recorded (requests started within the measured window).
    pub requests: usize,
    /// Non-200 answers and transport errors (all within the window).
    pub errors: usize,
    /// 200 answers that said a retriever could not answer (a store missed its deadline).
    pub degraded: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub qps: f64,
    /// CPU seconds spent per process group during the measured window.
    pub cpu: Snapshot,
    /// The measured window's length, seconds.
    pub seconds: f64,
}

#[derive(serde::Deserialize)]
struct Answer {
    degraded: Vec<IgnoredAny>,
    #[allow(dead_code)]
    results: Vec<IgnoredAny>,
}

#[derive(Default)]
struct Recorded {
    latencies: Vec<Duration>,
    errors: usize,
    degraded: usize,
    last_end: Option<Instant>,
    first_error: Option<String>,
}

/// What one request came to.
enum Outcome {
    Ok { degraded: bool },
    Failed(String),
}

async fn send(client: &reqwest::Client, url: &str, body: &str) -> Outcome {
    let response = match client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_owned())
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let status = response.status();
    let bytes = match response.bytes().await {
        Ok(b) => b,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    if !status.is_success() {
        return Outcome::Failed(format!("{status}: {}", String::from_utf8_lossy(&bytes)));
    }
    match serde_json::from_slice::<Answer>(&bytes) {
        Ok(a) => Outcome::Ok {
            degraded: !a.degraded.is_empty(),
        },
        Err(e) => Outcome::Failed(format!("not a search response: {e}")),
    }
}

/// Sends every body once, one at a time, and fails on the first failed answer: warms the
/// service and the stores' caches (and the graph server's JIT) before anything is measured.
pub async fn prime(client: &reqwest::Client, base: &str, bodies: &[String]) -> anyhow::Result<()> {
    let url = format!("{base}/v1/search");
    for body in bodies {
        if let Outcome::Failed(e) = send(client, &url, body).await {
            bail!("the service failed a search while warming up: {e}");
        }
    }
    Ok(())
}

/// Request bodies for every question in one mode.
pub fn bodies(questions: &[String], mode: Mode) -> anyhow::Result<Arc<Vec<String>>> {
    let out: Result<Vec<String>, _> = questions
        .iter()
        .map(|q| {
            serde_json::to_string(&SearchRequest {
                query: q.clone(),
                mode,
                k: Some(10),
                filters: Filters::default(),
            })
        })
        .collect();
    Ok(Arc::new(out?))
}

/// Runs one cell against `base` (`http://host:port`).
#[allow(clippy::too_many_arguments)]
pub async fn cell(
    meter: &Meter,
    client: &reqwest::Client,
    base: &str,
    bodies: Arc<Vec<String>>,
    mode: Mode,
    clients: usize,
    warmup: Duration,
    window: Duration,
) -> anyhow::Result<Cell> {
    if bodies.is_empty() {
        bail!("no questions to send");
    }
    let url = Arc::new(format!("{base}/v1/search"));
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + window;
    let mut tasks = Vec::with_capacity(clients);
    for c in 0..clients {
        let (client, url, bodies) = (client.clone(), url.clone(), bodies.clone());
        tasks.push(tokio::spawn(async move {
            let mut order: Vec<usize> = (0..bodies.len()).collect();
            Rng::new(0x5EED ^ ((clients as u64) << 32) ^ c as u64).shuffle(&mut order);
            let mut rec = Recorded::default();
            let mut i = 0usize;
            loop {
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                let body = &bodies[order[i % order.len()]];
                i += 1;
                let outcome = send(&client, &url, body).await;
                let done = Instant::now();
                if sent < measure_from {
                    continue;
                }
                match outcome {
                    Outcome::Ok { degraded } => {
                        rec.latencies.push(done - sent);
                        rec.degraded += usize::from(degraded);
                    }
                    Outcome::Failed(e) => {
                        rec.errors += 1;
                        rec.first_error.get_or_insert(e);
                    }
                }
                rec.last_end = Some(done);
            }
            rec
        }));
    }
    tokio::time::sleep_until(measure_from.into()).await;
    let before = meter.snapshot();
    let mut all = Recorded::default();
    for t in tasks {
        let r = t.await?;
        all.latencies.extend(r.latencies);
        all.errors += r.errors;
        all.degraded += r.degraded;
        all.last_end = all.last_end.max(r.last_end);
        if all.first_error.is_none() {
            all.first_error = r.first_error;
        }
    }
    let cpu = meter.snapshot().since(&before);
    if let Some(e) = &all.first_error {
        eprintln!(
            "warning: {} {} clients: {} failed requests, e.g. {e}",
            mode.as_str(),
            clients,
            all.errors
        );
    }
    let elapsed = all
        .last_end
        .map_or(window, |t| t.saturating_duration_since(measure_from))
        .as_secs_f64();
    let ms: Vec<f64> = all
        .latencies
        .iter()
        .map(|d| d.as_secs_f64() * 1e3)
        .collect();
    let done = all.latencies.len();
    Ok(Cell {
        mode,
        clients,
        requests: done,
        errors: all.errors,
        degraded: all.degraded,
        p50_ms: percentile(&ms, 50.0),
        p99_ms: percentile(&ms, 99.0),
        // answers, not failures: a 503 after a store was taken as away comes back at once
        qps: if elapsed > 0.0 {
            done as f64 / elapsed
        } else {
            0.0
        },
        cpu,
        seconds: elapsed,
    })
}
