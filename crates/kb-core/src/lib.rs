//! What every kb-mirror component shares: typed settings, telemetry (logs, metrics, health),
//! stable ids, the service runtime (signals, graceful shutdown), text made safe for terminals
//! and logs, and failpoints for fault tests.

pub mod display;
pub mod failpoint;
pub mod ids;
pub mod secret;
pub mod service;
pub mod settings;
pub mod telemetry;

pub use secret::Secret;
pub use settings::{Component, ConfigError, Settings};
