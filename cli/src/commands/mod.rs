pub mod ingest;
pub mod search;
pub mod status;
pub mod verify;
