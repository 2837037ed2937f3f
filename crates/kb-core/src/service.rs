//! The runtime every binary shares: logging, the metrics/health endpoint, and a shutdown token
//! cancelled by Ctrl-C or SIGTERM so work loops can finish or nak what they hold.

use crate::settings::Settings;
use crate::telemetry::{self, Health};
use std::future::Future;
use tokio_util::sync::CancellationToken;

/// Handed to a service's work loop.
#[derive(Clone)]
pub struct Context {
    pub name: &'static str,
    pub shutdown: CancellationToken,
    pub health: Health,
}

/// Runs `work` as service `name` until it returns or a signal asks it to stop.
pub async fn run<F, Fut>(name: &'static str, settings: &Settings, work: F) -> anyhow::Result<()>
where
    F: FnOnce(Context) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    telemetry::init_logging(&settings.telemetry);
    // A malformed KB_FAILPOINTS would make a fault test pass without its fault.
    if crate::failpoint::init()? {
        tracing::warn!(
            spec = %crate::failpoint::spec_string(),
            "failpoints are armed (KB_FAILPOINTS): faults will be injected; for tests only"
        );
    }
    let ctx = Context {
        name,
        shutdown: CancellationToken::new(),
        health: Health::default(),
    };
    if let Some(addr) = settings.telemetry.metrics_addr.clone() {
        let health = ctx.health.clone();
        tokio::spawn(async move {
            if let Err(e) = telemetry::serve(&addr, health).await {
                tracing::error!(%addr, error = %e, "metrics endpoint failed");
            }
        });
    }
    let token = ctx.shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested");
        token.cancel();
    });
    tracing::info!(
        service = name,
        version = env!("CARGO_PKG_VERSION"),
        "starting"
    );
    let result = work(ctx).await;
    match &result {
        Ok(()) => tracing::info!(service = name, "stopped"),
        Err(e) => tracing::error!(service = name, error = %format!("{e:#}"), "stopped with error"),
    }
    result
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
