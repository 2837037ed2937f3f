use clap::{Parser, Subcommand};
use kb_core::{Component, Settings};

/// kb-mirror pg-writer: mirrors every document into Postgres with pgvector.
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
    settings.validate(&[Component::Nats, Component::Postgres, Component::Writer])?;
    let dimensions = settings.embedder.dimensions;
    kb_core::service::run("kb-pg-writer", &settings.clone(), |ctx| {
        kb_pg_writer::run(settings, dimensions, ctx)
    })
    .await
}
