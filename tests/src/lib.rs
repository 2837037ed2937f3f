//! End-to-end tests of kb-mirror against real NATS, Postgres and a Bolt server
