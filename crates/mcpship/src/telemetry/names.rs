//! Every name the runtime emits, in one place: log event names and fields,
//! Prometheus metrics, CloudWatch EMF metrics and dimensions, span names.
//!
//! Dashboards, alarms and Logs Insights queries (the Terraform under
//! `deploy/`) rely on these exact strings; a test scans the deploy files and
//! fails on any name not listed here. `tracing` needs field names as literal
//! tokens at each call site, so the call sites spell them out and the
//! integration tests check every key of every emitted line against
//! [`LOG_FIELDS`].

pub use crate::events::{
    ERROR_CLASS_CANCELLED, ERROR_CLASS_PROTOCOL, ERROR_CLASS_TOOL, HTTP_REQUEST, TOOL_FAILED,
    TOOL_INVOKED, TOOL_SUCCEEDED,
};

/// Log event names (the `message` and `event` fields of a JSON line).
pub const LOG_EVENTS: &[&str] = &[HTTP_REQUEST, TOOL_INVOKED, TOOL_SUCCEEDED, TOOL_FAILED];

/// Keys of JSON log lines.
pub mod field {
    /// ISO 8601 time of the event (written by the JSON formatter).
    pub const TIMESTAMP: &str = "timestamp";
    /// `INFO`, `WARN`, ... (written by the JSON formatter).
    pub const LEVEL: &str = "level";
    /// The event name for structured events (written by the JSON formatter).
    pub const MESSAGE: &str = "message";
    /// The Rust module that logged (written by the JSON formatter).
    pub const TARGET: &str = "target";
    /// The event name again, as a field of its own.
    pub const EVENT: &str = "event";
    /// Tool name.
    pub const TOOL: &str = "tool";
    /// Duration in milliseconds, a number.
    pub const DURATION_MS: &str = "duration_ms";
    /// Legacy (2025-xx) session id.
    pub const SESSION_ID: &str = "session_id";
    /// `x-request-id`, assigned or passed through.
    pub const REQUEST_ID: &str = "request_id";
    /// W3C trace id, 32 lowercase hex digits (the X-Ray id without dashes).
    pub const TRACE_ID: &str = "trace_id";
    /// `tool_error`, `protocol_error` or `cancelled`.
    pub const ERROR_CLASS: &str = "error_class";
    /// Error message of a failed call.
    pub const ERROR: &str = "error";
    /// Tool arguments, redacted JSON (only with `MCPSHIP_LOG_TOOL_ARGUMENTS`).
    pub const ARGUMENTS: &str = "arguments";
    /// HTTP method of the access log.
    pub const HTTP_METHOD: &str = "http.method";
    /// Request path of the access log.
    pub const HTTP_PATH: &str = "http.path";
    /// Response status of the access log, a number.
    pub const HTTP_STATUS: &str = "http.status";
    /// Response body bytes sent, a number.
    pub const BYTES: &str = "bytes";
    /// `Mcp-Method` header (2026-07-28 clients).
    pub const MCP_METHOD: &str = "mcp.method";
    /// `Mcp-Name` header: the tool, resource or prompt.
    pub const MCP_NAME: &str = "mcp.name";
    /// `MCP-Protocol-Version` header.
    pub const MCP_PROTOCOL_VERSION: &str = "mcp.protocol_version";
    /// Who called, when an authentication layer says so.
    pub const PRINCIPAL: &str = "principal";
}

/// Every key a JSON log line of a request may carry.
pub const LOG_FIELDS: &[&str] = &[
    field::TIMESTAMP,
    field::LEVEL,
    field::MESSAGE,
    field::TARGET,
    field::EVENT,
    field::TOOL,
    field::DURATION_MS,
    field::SESSION_ID,
    field::REQUEST_ID,
    field::TRACE_ID,
    field::ERROR_CLASS,
    field::ERROR,
    field::ARGUMENTS,
    field::HTTP_METHOD,
    field::HTTP_PATH,
    field::HTTP_STATUS,
    field::BYTES,
    field::MCP_METHOD,
    field::MCP_NAME,
    field::MCP_PROTOCOL_VERSION,
    field::PRINCIPAL,
];

/// Prometheus metric names (`GET /metrics`).
pub mod metric {
    /// Counter `{method, status}`.
    pub const HTTP_REQUESTS_TOTAL: &str = "mcpship_http_requests_total";
    /// Histogram, seconds to the end of the response (streams excluded).
    pub const HTTP_REQUEST_DURATION_SECONDS: &str = "mcpship_http_request_duration_seconds";
    /// Counter `{mcp_method, outcome}`.
    pub const MCP_REQUESTS_TOTAL: &str = "mcpship_mcp_requests_total";
    /// Histogram `{mcp_method}`.
    pub const MCP_REQUEST_DURATION_SECONDS: &str = "mcpship_mcp_request_duration_seconds";
    /// Counter `{tool, outcome}`.
    pub const TOOL_CALLS_TOTAL: &str = "mcpship_tool_calls_total";
    /// Histogram `{tool}`.
    pub const TOOL_DURATION_SECONDS: &str = "mcpship_tool_duration_seconds";
    /// Gauge: `/mcp` requests whose response has not finished, streams excluded.
    pub const IN_FLIGHT_REQUESTS: &str = "mcpship_in_flight_requests";
    /// Gauge: open SSE streams (GET streams, `subscriptions/listen`).
    pub const OPEN_STREAMS: &str = "mcpship_open_streams";
    /// Gauge: legacy (2025-xx) sessions held by this process.
    pub const LEGACY_SESSIONS: &str = "mcpship_legacy_sessions";
    /// Gauge: 1 while the shared state backend answers (always 1 in memory).
    pub const STATE_BACKEND_UP: &str = "mcpship_state_backend_up";
    /// Gauge: 0 starting, 1 ready, 2 draining, 3 stopped.
    pub const DRAIN_STATE: &str = "mcpship_drain_state";
    /// Gauge, always 1, `{version, rmcp_version}`.
    pub const BUILD_INFO: &str = "mcpship_build_info";
    /// Counter: spans handed to the trace exporter.
    pub const TRACE_SPANS_EXPORTED_TOTAL: &str = "mcpship_trace_spans_exported_total";
    /// Counter: spans lost (queue full, collector or daemon unreachable).
    pub const TRACE_SPANS_DROPPED_TOTAL: &str = "mcpship_trace_spans_dropped_total";
    /// Counter: log and EMF lines lost because stderr did not keep up.
    pub const LOG_LINES_DROPPED_TOTAL: &str = "mcpship_log_lines_dropped_total";
}

/// Prometheus histograms (exposed as `_bucket`, `_sum` and `_count` series).
pub const PROMETHEUS_HISTOGRAMS: &[&str] = &[
    metric::HTTP_REQUEST_DURATION_SECONDS,
    metric::MCP_REQUEST_DURATION_SECONDS,
    metric::TOOL_DURATION_SECONDS,
];

/// Every Prometheus metric family.
pub const PROMETHEUS_METRICS: &[&str] = &[
    metric::HTTP_REQUESTS_TOTAL,
    metric::HTTP_REQUEST_DURATION_SECONDS,
    metric::MCP_REQUESTS_TOTAL,
    metric::MCP_REQUEST_DURATION_SECONDS,
    metric::TOOL_CALLS_TOTAL,
    metric::TOOL_DURATION_SECONDS,
    metric::IN_FLIGHT_REQUESTS,
    metric::OPEN_STREAMS,
    metric::LEGACY_SESSIONS,
    metric::STATE_BACKEND_UP,
    metric::DRAIN_STATE,
    metric::BUILD_INFO,
    metric::TRACE_SPANS_EXPORTED_TOTAL,
    metric::TRACE_SPANS_DROPPED_TOTAL,
    metric::LOG_LINES_DROPPED_TOTAL,
];

/// Prometheus label names.
pub const PROMETHEUS_LABELS: &[&str] = &[
    "method",
    "status",
    "mcp_method",
    "outcome",
    "tool",
    "version",
    "rmcp_version",
    "le",
];

/// Every series name a scrape can show (histograms with their suffixes).
pub fn prometheus_series() -> Vec<String> {
    let mut names: Vec<String> = PROMETHEUS_METRICS.iter().map(|s| s.to_string()).collect();
    for h in PROMETHEUS_HISTOGRAMS {
        for suffix in ["_bucket", "_sum", "_count"] {
            names.push(format!("{h}{suffix}"));
        }
    }
    names
}

/// Label value for tool names the server does not offer (and beyond the
/// per-process cap): keeps label cardinality bounded.
pub const OTHER: &str = "other";

/// `outcome` label values.
pub mod outcome {
    /// Answered with a result.
    pub const OK: &str = "ok";
    /// Answered with a JSON-RPC error.
    pub const ERROR: &str = "error";
    /// The tool ran and reported an error (`isError: true`).
    pub const TOOL_ERROR: &str = crate::events::ERROR_CLASS_TOOL;
    /// Rejected before or outside the tool (unknown tool, bad arguments).
    pub const PROTOCOL_ERROR: &str = crate::events::ERROR_CLASS_PROTOCOL;
    /// The client went away first.
    pub const CANCELLED: &str = crate::events::ERROR_CLASS_CANCELLED;
}

/// CloudWatch Embedded Metric Format names.
pub mod emf {
    /// Default namespace (`MCPSHIP_EMF_NAMESPACE`).
    pub const NAMESPACE: &str = "MCPShip";
    /// Dimension: the service (`MCPSHIP_SERVICE_NAME`).
    pub const SERVICE: &str = "Service";
    /// Dimension: the tool (known tools; others are `other`).
    pub const TOOL: &str = "Tool";
    /// Milliseconds a tool call took.
    pub const TOOL_DURATION: &str = "ToolDuration";
    /// 1 per tool call.
    pub const TOOL_CALLS: &str = "ToolCalls";
    /// 1 per failed tool call, else 0.
    pub const TOOL_ERRORS: &str = "ToolErrors";
}

/// EMF metric names.
pub const EMF_METRICS: &[&str] = &[emf::TOOL_DURATION, emf::TOOL_CALLS, emf::TOOL_ERRORS];

/// Each EMF metric with its unit.
pub const EMF_METRIC_UNITS: &[(&str, &str)] = &[
    (emf::TOOL_DURATION, "Milliseconds"),
    (emf::TOOL_CALLS, "Count"),
    (emf::TOOL_ERRORS, "Count"),
];

/// EMF dimension names written by default.
pub const EMF_DIMENSIONS: &[&str] = &[emf::SERVICE, emf::TOOL];

/// Top-level keys of an EMF line that a configured extra dimension may not use.
pub const EMF_RESERVED_KEYS: &[&str] = &[
    "_aws",
    emf::SERVICE,
    emf::TOOL,
    emf::TOOL_DURATION,
    emf::TOOL_CALLS,
    emf::TOOL_ERRORS,
    field::TRACE_ID,
    field::REQUEST_ID,
    field::SESSION_ID,
    field::ERROR_CLASS,
];

/// Span names (as exported; `tracing` spans set them with `otel.name`).
pub mod span {
    /// Prefix of the span of each MCP method: `mcp.tools/call`.
    pub const MCP_PREFIX: &str = "mcp.";
    /// Prefix of the span of each tool call: `tool.search_documents`.
    pub const TOOL_PREFIX: &str = "tool.";
    /// A database query of a tool.
    pub const DB_QUERY: &str = "db.query";
    /// The HTTP server span, `{METHOD} /mcp`.
    pub const HTTP_ROUTE: &str = "/mcp";
}
