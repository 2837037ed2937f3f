//! Real servers for tests: a private NATS per test, fresh Postgres and graph databases
