use clap::{Parser, Subcommand};
use kb_core::{Component, Settings};

/// kb-mirror parser: raw documents in, chunks, entities and relations out.
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
    /// Parses one document from stdin to stdout (`parser.isolation = "process"` starts it).
    ParseWorker {
        /// The source id, only to name the document in `ps`.
        #[arg(long)]
        source: Option<String>,
    },
    /// Exits 0 if the running service answers ready on its endpoint (container healthchecks).
    Health,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match args.command {
        // No runtime, no settings, no logging: a worker only parses.
        Some(Command::ParseWorker { .. }) => kb_parser::worker::serve::serve_stdio(),
        Some(Command::Health) => health(args.config),
        None => serve(args.config),
    }
}

#[tokio::main]
async fn serve(config: Option<std::path::PathBuf>) -> anyhow::Result<()> {
    let settings = Settings::load(config.as_deref())?;
    settings.validate(&[Component::Nats, Component::Llm])?;
    kb_core::service::run("kb-parser", &settings.clone(), |ctx| {
        kb_parser::run(settings, ctx)
    })
    .await
}

#[tokio::main(flavor = "current_thread")]
async fn health(config: Option<std::path::PathBuf>) -> anyhow::Result<()> {
    let settings = Settings::load(config.as_deref())?;
    kb_core::telemetry::probe_ready(&settings.telemetry).await
}
