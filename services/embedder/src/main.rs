use clap::{Parser, Subcommand};
use kb_core::{Component, Settings};

/// kb-mirror embedder: adds an embedding to every chunk; run as many as you like.
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
    settings.validate(&[Component::Nats, Component::Embedder])?;
    kb_core::service::run("kb-embedder", &settings.clone(), |ctx| {
        kb_embedder::run(settings, ctx)
    })
    .await
}
