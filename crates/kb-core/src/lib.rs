//! Settings, telemetry, ids and errors shared by every kb-mirror component
