//! Logs, metrics and health, the same for every component.
//!
//! Internal events are typed structs that log and count at once (the pattern Vector uses), so
//! every stage reports received / sent / failed the same way with a `stage` label.

use crate::settings::{LogFormat, TelemetrySettings};
use axum::{extract::State, http::StatusCode, routing::get, Router};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::format::{self, FormatFields};
use tracing_subscriber::EnvFilter;

/// Sets up `tracing` once per process; later calls are no-ops.
pub fn init_logging(cfg: &TelemetrySettings) {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let filter = EnvFilter::try_from_default_env()
            .or_else(|_| EnvFilter::try_new(&cfg.log_level))
            .unwrap_or_else(|_| EnvFilter::new("info"));
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr);
        // A second global subscriber (tests, embedding) is not an error worth failing for.
        // JSON escapes control characters itself; text lines get clean fields.
        let _ = match cfg.log_format {
            LogFormat::Json => builder.json().try_init(),
            LogFormat::Text => builder.fmt_fields(clean_fields()).try_init(),
        };
    });
}

/// Field formatting for text logs: as tracing's default, but every value passes through
/// [`crate::display::clean`], so a file name cannot put escape sequences on a terminal or
/// forge a log line.
pub fn clean_fields() -> impl for<'w> FormatFields<'w> + Send + Sync + 'static {
    format::debug_fn(|w, field, value| {
        let name = field.name();
        // Metadata of `log` records, already shown by the line itself (as tracing does).
        if name.starts_with("log.") {
            return Ok(());
        }
        let text = format!("{value:?}");
        let text = crate::display::clean(&text);
        match name {
            "message" => write!(w, "{text}"),
            name => write!(w, "{}={text}", name.trim_start_matches("r#")),
        }
    })
    .delimited(" ")
}

/// The Prometheus recorder, installed once per process.
pub fn metrics_handle() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| PrometheusBuilder::new().install_recorder().ok())
        .clone()
}

/// Readiness shared between a service's work loop and its `/readyz` endpoint: the loop says
/// when it is set up (connected to NATS and its store), and live checks (the NATS connection)
/// must still hold at every probe.
#[derive(Clone, Default)]
pub struct Health {
    ready: Arc<AtomicBool>,
    checks: Arc<Mutex<Vec<Check>>>,
}

type Check = (&'static str, Box<dyn Fn() -> bool + Send + Sync>);

impl Health {
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed) && self.failing().is_empty()
    }
    /// A condition `/readyz` checks at every probe, e.g. "nats" → the client is connected.
    pub fn add_check(&self, name: &'static str, check: impl Fn() -> bool + Send + Sync + 'static) {
        self.checks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((name, Box::new(check)));
    }
    /// Names of the live checks that fail now.
    pub fn failing(&self) -> Vec<&'static str> {
        self.checks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, check)| !check())
            .map(|(name, _)| *name)
            .collect()
    }
}

/// Serves `/metrics`, `/healthz` (the process answers) and `/readyz` (set up, and every live
/// check holds) until the process ends.
pub async fn serve(addr: &str, health: Health) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "serving /metrics, /healthz and /readyz");
    axum::serve(listener, router(health)).await
}

fn router(health: Health) -> Router {
    let handle = metrics_handle();
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let h = handle.clone();
                async move { h.map(|h| h.render()).unwrap_or_default() }
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(health)
}

async fn readyz(State(health): State<Health>) -> (StatusCode, String) {
    if !health.ready.load(Ordering::Relaxed) {
        return (StatusCode::SERVICE_UNAVAILABLE, "starting\n".into());
    }
    let failing = health.failing();
    if failing.is_empty() {
        (StatusCode::OK, "ready\n".into())
    } else {
        let list = failing.join(", ");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {list}\n"),
        )
    }
}

/// The `health` subcommand of every service binary (container healthchecks need no tool in
/// the image): GET `path` on the service's own endpoint, `Ok` only for 200. An unspecified
/// listen address (0.0.0.0, [::]) is asked on loopback.
pub async fn probe(addr: &str, path: &str) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut target: std::net::SocketAddr = addr
        .parse()
        .with_context(|| format!("not an address: {addr:?}"))?;
    if target.ip().is_unspecified() {
        target.set_ip(match target {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(target).await?;
        let request = format!("GET {path} HTTP/1.0\r\nHost: {target}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.take(64 * 1024).read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    let response = tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .with_context(|| format!("{target}{path} did not answer within 5 s"))?
        .with_context(|| format!("cannot reach {target}{path}"))?;
    let text = String::from_utf8_lossy(&response);
    let status = text.lines().next().unwrap_or_default();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default().trim();
    if status.split_whitespace().nth(1) == Some("200") {
        Ok(())
    } else {
        anyhow::bail!("{target}{path}: {status} {body}")
    }
}

/// [`probe`] of `/readyz` on `telemetry.metrics_addr`, the endpoint of the write-path services.
pub async fn probe_ready(cfg: &TelemetrySettings) -> anyhow::Result<()> {
    let Some(addr) = cfg.metrics_addr.as_deref() else {
        anyhow::bail!(
            "telemetry.metrics_addr (KB_TELEMETRY__METRICS_ADDR) is unset: no endpoint to ask"
        );
    };
    probe(addr, "/readyz").await
}

/// A stage took a message from its input.
pub struct EventsReceived<'a> {
    pub stage: &'a str,
    pub source_id: &'a str,
    pub version: u64,
}

impl EventsReceived<'_> {
    pub fn emit(&self) {
        tracing::debug!(
            stage = self.stage,
            source_id = self.source_id,
            version = self.version,
            "received"
        );
        metrics::counter!("kb_events_received_total", "stage" => self.stage.to_string())
            .increment(1);
    }
}

/// A stage finished a message (published downstream or committed to its store).
pub struct EventsSent<'a> {
    pub stage: &'a str,
    pub source_id: &'a str,
    pub version: u64,
    pub outcome: &'a str,
    pub elapsed: Duration,
}

impl EventsSent<'_> {
    pub fn emit(&self) {
        tracing::info!(
            stage = self.stage,
            source_id = self.source_id,
            version = self.version,
            outcome = self.outcome,
            ms = self.elapsed.as_millis() as u64,
            "done"
        );
        metrics::counter!("kb_events_sent_total", "stage" => self.stage.to_string(), "outcome" => self.outcome.to_string())
            .increment(1);
        metrics::histogram!("kb_stage_seconds", "stage" => self.stage.to_string())
            .record(self.elapsed.as_secs_f64());
    }
}

/// A stage failed on a message; `transient` says whether it will be retried.
pub struct ProcessingError<'a> {
    pub stage: &'a str,
    pub source_id: &'a str,
    pub error_kind: &'a str,
    pub transient: bool,
    pub reason: &'a str,
}

impl ProcessingError<'_> {
    pub fn emit(&self) {
        if self.transient {
            tracing::warn!(
                stage = self.stage,
                source_id = self.source_id,
                error_kind = self.error_kind,
                reason = self.reason,
                "transient failure, will retry"
            );
        } else {
            tracing::error!(
                stage = self.stage,
                source_id = self.source_id,
                error_kind = self.error_kind,
                reason = self.reason,
                "permanent failure, dead-lettered"
            );
        }
        metrics::counter!(
            "kb_processing_errors_total",
            "stage" => self.stage.to_string(),
            "error_kind" => self.error_kind.to_string(),
            "transient" => self.transient.to_string()
        )
        .increment(1);
    }
}

/// A background collector (the blob GC, the tombstone retention, a writer's store tombstones)
/// finished a run: counts what it removed and logs its report (info when it removed
/// something, debug otherwise, so an idle collector stays quiet).
pub struct CollectorRan<'a> {
    /// Its name in logs: `blob gc`, `tombstone retention`, `store tombstones`.
    pub collector: &'static str,
    /// The counter of what it removed (docs/telemetry.md), with its labels.
    pub counter: &'static str,
    pub labels: &'a [(&'static str, &'static str)],
    pub removed: u64,
    /// The run's own figures, logged as they are.
    pub report: &'a dyn std::fmt::Debug,
}

impl CollectorRan<'_> {
    pub fn emit(&self) {
        metrics::counter!(self.counter, self.labels).increment(self.removed);
        if self.removed > 0 {
            tracing::info!(collector = self.collector, labels = ?self.labels, removed = self.removed, report = ?self.report, "collector ran");
        } else {
            tracing::debug!(collector = self.collector, labels = ?self.labels, report = ?self.report, "collector ran");
        }
    }
}

/// A background collector's run failed; it tries again at its next run.
pub struct CollectorFailed<'a> {
    pub collector: &'static str,
    pub error: &'a dyn std::fmt::Display,
}

impl CollectorFailed<'_> {
    pub fn emit(&self) {
        tracing::warn!(collector = self.collector, error = %self.error, "collector failed; trying again at its next run");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::future::IntoFuture;

    #[test]
    fn text_logs_carry_no_control_characters() {
        let out = Arc::new(Mutex::new(Vec::<u8>::new()));
        let sink = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .fmt_fields(clean_fields())
            .with_writer(move || Sink(sink.clone()))
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let path = "a\x1b[2Jb\u{202e}.md";
            tracing::warn!(path = %path, debugged = ?path, n = 3, "read {path}\nforged line");
        });
        let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        assert!(
            !text.contains('\x1b') && !text.contains('\u{202e}'),
            "{text:?}"
        );
        assert_eq!(text.lines().count(), 1, "{text:?}");
        assert!(
            text.contains(r"read a\u{1b}[2Jb\u{202e}.md\u{a}forged line"),
            "{text:?}"
        );
        assert!(text.contains(r" path=a\u{1b}[2Jb\u{202e}.md "), "{text:?}");
        assert!(text.ends_with(" n=3\n"), "{text:?}");
    }

    struct Sink(Arc<Mutex<Vec<u8>>>);

    #[tokio::test]
    async fn readyz_needs_setup_and_every_live_check_healthz_only_the_process() {
        let health = Health::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(axum::serve(listener, router(health.clone())).into_future());
        probe(&addr, "/healthz").await.unwrap();
        let err = probe(&addr, "/readyz").await.unwrap_err().to_string();
        assert!(err.contains("503") && err.contains("starting"), "{err}");
        health.set_ready(true);
        probe(&addr, "/readyz").await.unwrap();
        let connected = Arc::new(AtomicBool::new(false));
        let flag = connected.clone();
        health.add_check("nats", move || flag.load(Ordering::Relaxed));
        let err = probe(&addr, "/readyz").await.unwrap_err().to_string();
        assert!(err.contains("not ready: nats"), "{err}");
        connected.store(true, Ordering::Relaxed);
        probe(&addr, "/readyz").await.unwrap();
        // 0.0.0.0 (a container's listen address) is probed on loopback.
        let port = addr.rsplit(':').next().unwrap();
        probe(&format!("0.0.0.0:{port}"), "/healthz").await.unwrap();
    }

    #[tokio::test]
    async fn probe_of_nothing_listening_fails_with_the_address() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        let err = format!("{:#}", probe(&addr, "/readyz").await.unwrap_err());
        assert!(err.contains(&addr), "{err}");
    }

    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
