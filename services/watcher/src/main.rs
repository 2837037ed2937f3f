use clap::{Parser, Subcommand};
use kb_core::{Component, Settings};

/// kb-mirror watcher: publishes new, changed and deleted files of a folder (and of Google
/// Drive folders, with `[drive] enabled`).
#[derive(Parser)]
#[command(version)]
struct Args {
    /// TOML settings file (environment variables override it).
    #[arg(long, env = "KB_CONFIG")]
    config: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Exits 0 if the running service answers ready on its endpoint (container healthchecks).
    Health,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let settings = Settings::load(args.config.as_deref())?;
    if let Some(Command::Health) = args.command {
        return kb_core::telemetry::probe_ready(&settings.telemetry).await;
    }
    let mut needs = vec![Component::Nats, Component::Watcher];
    if settings.drive.enabled {
        needs.push(Component::Drive);
    }
    settings.validate(&needs)?;
    kb_core::service::run("kb-watcher", &settings.clone(), |ctx| {
        kb_watcher::run(settings, ctx)
    })
    .await
}
