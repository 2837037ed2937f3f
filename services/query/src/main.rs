use clap::{Parser, Subcommand};
use kb_core::{Component, Settings};

/// kb-mirror query service: hybrid search over both stores as an HTTP JSON API and MCP tools.
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
        return kb_core::telemetry::probe(&settings.query.listen, "/readyz").await;
    }
    settings.validate(&[Component::Query, Component::Postgres, Component::Neo4j])?;
    kb_core::service::run("kb-query", &settings.clone(), |ctx| {
        kb_query_server::run(settings, ctx)
    })
    .await
}
