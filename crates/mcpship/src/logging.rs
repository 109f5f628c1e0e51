//! Log output: JSON lines in production, readable text on a terminal.
//!
//! Logs go to stderr always: stdout belongs to the MCP stream in stdio mode,
//! and container log drivers (awslogs) collect both. The subscriber itself is
//! built in [`crate::telemetry`], which adds the trace exporter when one is
//! configured; this is the logs-only entry point.

use crate::config::LogFormat;

/// Installs the global subscriber with logs only. `filter` is a level or an
/// `EnvFilter` directive (validated by [`crate::ServeConfig::validate`]).
/// Calling it again is harmless: the first subscriber stays. To export traces
/// as well, call [`crate::telemetry::init`] instead.
pub fn init(filter: &str, format: LogFormat) {
    crate::telemetry::install(filter, format, false, None);
}
