use clap::Parser;
use kb_core::{Component, Settings};

/// kb-mirror parser: raw documents in, chunks, entities and relations out.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// TOML settings file (environment variables override it).
    #[arg(long, env = "KB_CONFIG")]
    config: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let settings = Settings::load(args.config.as_deref())?;
    settings.validate(&[Component::Nats, Component::Llm])?;
    kb_core::service::run("kb-parser", &settings.clone(), |ctx| {
        kb_parser::run(settings, ctx)
    })
    .await
}
