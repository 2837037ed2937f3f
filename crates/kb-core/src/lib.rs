//! What every kb-mirror component shares: typed settings, telemetry (logs, metrics, health),
//! stable ids, the service runtime (signals, graceful shutdown), text made safe for terminals
//! and logs, failpoints for fault tests, and the one error shape ([`error::Error`]).

pub mod display;
pub mod error;
pub mod failpoint;
pub mod ids;
pub mod secret;
pub mod service;
pub mod settings;
pub mod telemetry;

pub use secret::Secret;
pub use settings::{Component, ConfigError, Settings};
