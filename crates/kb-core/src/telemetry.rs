//! Logs, metrics and health, the same for every component.
//!
//! Internal events are typed structs that log and count at once (the pattern Vector uses), so
//! every stage reports received / sent / failed the same way with a `stage` label.

use crate::settings::{LogFormat, TelemetrySettings};
use axum::{extract::State, http::StatusCode, routing::get, Router};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
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

/// Readiness shared between a service's work loop and its `/healthz` endpoint.
#[derive(Clone, Default)]
pub struct Health(Arc<AtomicBool>);

impl Health {
    pub fn set_ready(&self, ready: bool) {
        self.0.store(ready, Ordering::Relaxed);
    }
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Serves `/metrics` and `/healthz` until the process ends.
pub async fn serve(addr: &str, health: Health) -> std::io::Result<()> {
    let handle = metrics_handle();
    let app = Router::new()
        .route(
            "/metrics",
            get(move || {
                let h = handle.clone();
                async move { h.map(|h| h.render()).unwrap_or_default() }
            }),
        )
        .route("/healthz", get(healthz))
        .with_state(health);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "serving /metrics and /healthz");
    axum::serve(listener, app).await
}

async fn healthz(State(health): State<Health>) -> (StatusCode, &'static str) {
    if health.is_ready() {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n")
    }
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::Mutex;

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
