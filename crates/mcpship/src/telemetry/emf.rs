//! CloudWatch Embedded Metric Format: one JSON line per tool call.
//!
//! Where the lines go: **stderr**, through the same buffered sink as the log
//! lines ([`super::log_sink`]), each appended whole, so lines never
//! interleave (without the sink, one `write_all` under stderr's lock). Not stdout: in stdio mode stdout
//! is the MCP stream, and one destination for both modes keeps it simple. On
//! ECS the awslogs driver (or FireLens) ships stderr to CloudWatch Logs, which
//! extracts metrics from any log event that is an EMF document; the log lines
//! around it are unaffected.
//!
//! The line (namespace, service and dimensions from the configuration):
//!
//! ```json
//! {"_aws":{"Timestamp":1764000000000,"CloudWatchMetrics":[{"Namespace":"MCPShip",
//!   "Dimensions":[["Service","Tool"]],"Metrics":[{"Name":"ToolDuration","Unit":"Milliseconds"},
//!   {"Name":"ToolCalls","Unit":"Count"},{"Name":"ToolErrors","Unit":"Count"}]}]},
//!  "Service":"mcpship","Tool":"search_documents","ToolDuration":1.7,"ToolCalls":1,"ToolErrors":0,
//!  "trace_id":"…","request_id":"…"}
//! ```
//!
//! Extra dimensions (`MCPSHIP_EMF_DIMENSIONS=Environment=prod`) add a second
//! dimension set `[Service, Tool, Environment]`; the `[Service, Tool]` set stays,
//! so alarms written against it keep matching. Each set is a separate custom
//! metric in CloudWatch (and billed as one).
//!
//! `Tool` is the metrics label of the tool (`other` for names the server does
//! not offer), so a client cannot create CloudWatch metrics at will.

use std::{cell::RefCell, io::Write, time::Duration};

use super::names::{self, emf};

/// Writes EMF lines; built once from the configuration.
#[derive(Debug, Clone)]
pub struct Emf {
    /// What follows the timestamp in `_aws`: the metric directive, constant.
    directive: String,
    /// `,"Service":"…"` plus extra dimensions, JSON-escaped once.
    fixed: String,
}

thread_local! {
    static LINE: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(512));
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
}

impl Emf {
    /// A writer for `namespace`, `service` and extra `dimensions`.
    pub fn new(namespace: &str, service: &str, dimensions: &[(String, String)]) -> Self {
        let mut sets = vec![format!(
            "[{},{}]",
            json_string(emf::SERVICE),
            json_string(emf::TOOL)
        )];
        if !dimensions.is_empty() {
            let mut set = vec![json_string(emf::SERVICE), json_string(emf::TOOL)];
            set.extend(dimensions.iter().map(|(k, _)| json_string(k)));
            sets.push(format!("[{}]", set.join(",")));
        }
        let directive = format!(
            ",\"CloudWatchMetrics\":[{{\"Namespace\":{},\"Dimensions\":[{}],\"Metrics\":[\
             {{\"Name\":{},\"Unit\":\"Milliseconds\"}},\
             {{\"Name\":{},\"Unit\":\"Count\"}},\
             {{\"Name\":{},\"Unit\":\"Count\"}}]}}]}}",
            json_string(namespace),
            sets.join(","),
            json_string(emf::TOOL_DURATION),
            json_string(emf::TOOL_CALLS),
            json_string(emf::TOOL_ERRORS),
        );
        let mut fixed = format!(",{}:{}", json_string(emf::SERVICE), json_string(service));
        for (k, v) in dimensions {
            fixed.push_str(&format!(",{}:{}", json_string(k), json_string(v)));
        }
        Self { directive, fixed }
    }

    /// Formats the line for one tool call into `out` (newline included).
    #[allow(clippy::too_many_arguments)]
    pub fn format(
        &self,
        out: &mut Vec<u8>,
        timestamp_ms: u64,
        tool: &str,
        took: Duration,
        failed: bool,
        trace_id: Option<&str>,
        request_id: Option<&str>,
    ) {
        let _ = write!(out, "{{\"_aws\":{{\"Timestamp\":{timestamp_ms}");
        out.extend_from_slice(self.directive.as_bytes());
        out.extend_from_slice(self.fixed.as_bytes());
        let _ = write!(out, ",\"{}\":", emf::TOOL);
        let _ = serde_json::to_writer(&mut *out, tool);
        let ms = took.as_secs_f64() * 1000.0;
        let _ = write!(
            out,
            ",\"{}\":{ms:.3},\"{}\":1,\"{}\":{}",
            emf::TOOL_DURATION,
            emf::TOOL_CALLS,
            emf::TOOL_ERRORS,
            u8::from(failed)
        );
        if let Some(id) = trace_id {
            let _ = write!(out, ",\"{}\":", names::field::TRACE_ID);
            let _ = serde_json::to_writer(&mut *out, id);
        }
        if let Some(id) = request_id {
            let _ = write!(out, ",\"{}\":", names::field::REQUEST_ID);
            let _ = serde_json::to_writer(&mut *out, id);
        }
        out.extend_from_slice(b"}\n");
    }

    /// Writes the line for one tool call to stderr.
    pub fn write(
        &self,
        tool: &str,
        took: Duration,
        failed: bool,
        trace_id: Option<&str>,
        request_id: Option<&str>,
    ) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        LINE.with(|line| {
            let mut line = line.borrow_mut();
            line.clear();
            self.format(&mut line, now, tool, took, failed, trace_id, request_id);
            match super::log_sink::global() {
                Some(sink) => sink.append(&line),
                // A lost metric line is not worth failing or retrying a call for.
                None => {
                    let _ = std::io::stderr().write_all(&line);
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(emf: &Emf, tool: &str) -> serde_json::Value {
        let mut out = Vec::new();
        emf.format(
            &mut out,
            1_764_000_000_123,
            tool,
            Duration::from_micros(1700),
            true,
            Some("5f000000000000000000000000000001"),
            Some("req-1"),
        );
        assert_eq!(out.last(), Some(&b'\n'));
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn a_line_has_the_directive_and_the_values() {
        let emf = Emf::new("MCPShip", "mcpship", &[]);
        let v = line(&emf, "search_documents");
        assert_eq!(v["_aws"]["Timestamp"], 1_764_000_000_123u64);
        let d = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(d["Namespace"], "MCPShip");
        assert_eq!(d["Dimensions"], serde_json::json!([["Service", "Tool"]]));
        assert_eq!(d["Metrics"][0]["Name"], "ToolDuration");
        assert_eq!(v["Service"], "mcpship");
        assert_eq!(v["Tool"], "search_documents");
        assert_eq!(v["ToolDuration"], 1.7);
        assert_eq!(v["ToolCalls"], 1);
        assert_eq!(v["ToolErrors"], 1);
        assert_eq!(v["trace_id"], "5f000000000000000000000000000001");
        assert_eq!(v["request_id"], "req-1");
    }

    #[test]
    fn extra_dimensions_add_a_set_and_names_are_escaped() {
        let emf = Emf::new(
            "Team \"A\"",
            "svc",
            &[("Environment".into(), "prod".into())],
        );
        let v = line(&emf, "we[ird\",\"Tool");
        let d = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(d["Namespace"], "Team \"A\"");
        assert_eq!(
            d["Dimensions"],
            serde_json::json!([["Service", "Tool"], ["Service", "Tool", "Environment"]])
        );
        assert_eq!(v["Environment"], "prod");
        assert_eq!(v["Tool"], "we[ird\",\"Tool");
    }
}
