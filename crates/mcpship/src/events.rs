//! Names of the structured events the runtime emits, in one place so log
//! queries, dashboards and alarms can rely on them.

/// A tool call started.
pub const TOOL_INVOKED: &str = "tool.invoked";
/// A tool call finished with a result.
pub const TOOL_SUCCEEDED: &str = "tool.succeeded";
/// A tool call finished with a tool error or a protocol error.
pub const TOOL_FAILED: &str = "tool.failed";

/// An HTTP request on `/mcp` finished (the access log).
pub const HTTP_REQUEST: &str = "http.request";

/// `error_class` of a tool that ran and reported an error (`isError: true`).
pub const ERROR_CLASS_TOOL: &str = "tool_error";
/// `error_class` of a call rejected before or outside the tool (JSON-RPC error).
pub const ERROR_CLASS_PROTOCOL: &str = "protocol_error";
/// `error_class` of a call whose client went away before it finished.
pub const ERROR_CLASS_CANCELLED: &str = "cancelled";

/// A duration as the logs give it: milliseconds, to the microsecond.
pub fn millis(d: std::time::Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
}
