pub mod dead_letters;
pub mod ingest;
pub mod mcp;
pub mod replay;
pub mod search;
pub mod status;
pub mod verify;
pub mod watcher;
