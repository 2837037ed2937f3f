use clap::{Parser, Subcommand};
use kb_core::{Component, Settings};

/// kb-mirror graph-writer: writes every document into the Neo4j knowledge graph.
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
    settings.validate(&[Component::Nats, Component::Neo4j, Component::Writer])?;
    kb_core::service::run("kb-graph-writer", &settings.clone(), |ctx| {
        kb_graph_writer::run(settings, ctx)
    })
    .await
}
