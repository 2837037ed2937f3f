//! What every kb-mirror component shares: typed settings, telemetry (logs, metrics, health),
//! stable ids and the service runtime (signals, graceful shutdown).

pub mod ids;
pub mod secret;
pub mod service;
pub mod settings;
pub mod telemetry;

pub use secret::Secret;
pub use settings::{Component, ConfigError, Settings};
