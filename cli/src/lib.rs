//! `kb`: the operator's command line. Every command reads the same settings as the services
//! (`--config`, `KB_*` environment). `--json` output is a stable contract (docs/cli.md).
//!
//! Exit codes: 0 success, 1 the command ran and found a problem (failed files, stores that
//! disagree), 2 the command could not run (bad settings, unreachable server).

mod commands;
mod stores;

use clap::{Parser, Subcommand};
use kb_core::Settings;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "kb",
    version,
    about = "kb-mirror: ingest, status, verify and search the knowledge base"
)]
pub struct Cli {
    /// TOML settings file (environment variables override it).
    #[arg(long, global = true, env = "KB_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Publish files (folders recursively) and wait until both stores applied them.
    Ingest {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Give up waiting after this many seconds.
        #[arg(long, default_value_t = 900)]
        timeout: u64,
        #[arg(long)]
        json: bool,
    },
    /// Streams, consumer lag, documents per store, dead letters.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// The seed's Phase 5 checks plus per-source agreement between Postgres and the graph.
    Verify {
        #[arg(long)]
        json: bool,
    },
    /// Vector search over chunks.
    Search {
        query: String,
        #[arg(short, long, default_value_t = 5)]
        k: usize,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(cli.config.as_deref())?;
    // Logs go to stderr and stay quiet unless asked for, so stdout is the command's output.
    let mut telemetry = settings.telemetry.clone();
    if std::env::var_os("RUST_LOG").is_none() {
        telemetry.log_level = "warn".into();
    }
    kb_core::telemetry::init_logging(&telemetry);
    match cli.command {
        Command::Ingest {
            paths,
            timeout,
            json,
        } => commands::ingest::run(&settings, &paths, timeout, json).await,
        Command::Status { json } => commands::status::run(&settings, json).await,
        Command::Verify { json } => commands::verify::run(&settings, json).await,
        Command::Search { query, k, json } => {
            commands::search::run(&settings, &query, k, json).await
        }
    }
}
