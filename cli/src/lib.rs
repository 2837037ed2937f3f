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
    about = "kb-mirror: ingest, status, verify and search the knowledge base; replay stores, handle dead letters, confirm held deletions"
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
        #[arg(required_unless_present = "drive")]
        paths: Vec<PathBuf>,
        /// A Google Drive folder (or shared drive) id to ingest recursively, with the `[drive]`
        /// credentials; repeatable.
        #[arg(long, value_name = "FOLDER_ID")]
        drive: Vec<String>,
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
    /// Ask the knowledge base: hybrid retrieval (vector + keyword + graph) with filters.
    Search(commands::search::Args),
    /// Rebuild or backfill one store from the mirror stream (into the database the settings name).
    Replay {
        /// The store to write: the one KB_POSTGRES_URL or KB_NEO4J_* (and neo4j.database) names.
        #[arg(long, value_enum)]
        store: commands::replay::StoreName,
        /// Every source's latest state (the default).
        #[arg(long, conflicts_with = "since")]
        from_start: bool,
        /// Only sources changed at or after TIME: RFC 3339 (2025-06-01T12:00:00Z) or an age (90m, 6h, 2d).
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Keep the vector index while loading, even into an empty store.
        #[arg(long)]
        no_bulk: bool,
        /// Documents applied at once [default: 4 for postgres, 1 for graph].
        #[arg(long)]
        concurrency: Option<usize>,
        #[arg(long)]
        json: bool,
    },
    /// Serve the knowledge base to an AI assistant: MCP (Model Context Protocol) over
    /// stdin/stdout, with the tools search, get_document and get_entity, until stdin closes.
    Mcp,
    /// Failed messages: list them, show one, send them again after a fix.
    DeadLetters {
        #[command(subcommand)]
        action: commands::dead_letters::Action,
    },
    /// The folder watcher: confirm the deletions it holds.
    Watcher {
        #[command(subcommand)]
        action: commands::watcher::Action,
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
            drive,
            timeout,
            json,
        } => commands::ingest::run(&settings, &paths, &drive, timeout, json).await,
        Command::Status { json } => commands::status::run(&settings, json).await,
        Command::Verify { json } => commands::verify::run(&settings, json).await,
        Command::Search(args) => commands::search::run(&settings, args).await,
        Command::Replay {
            store,
            from_start: _,
            since,
            no_bulk,
            concurrency,
            json,
        } => {
            let args = commands::replay::Args {
                store,
                since,
                no_bulk,
                concurrency,
                json,
            };
            commands::replay::run(&settings, args).await
        }
        Command::Mcp => commands::mcp::run(&settings).await,
        Command::DeadLetters { action } => commands::dead_letters::run(&settings, action).await,
        Command::Watcher { action } => commands::watcher::run(&settings, action).await,
    }
}
