//! CloudWatch Embedded Metric Format: per-tool metrics as JSON log lines.
//!
//! Calls are aggregated per tool: one line carries up to [`MAX_VALUES`]
//! durations (EMF allows an array of up to 100 values per metric, and
//! CloudWatch computes every statistic, percentiles included, over the values
//! as if each had been sent alone), the number of calls and the number of
//! failures. A tool's line is written when it holds [`MAX_VALUES`] calls, or
//! at most [`FLUSH_INTERVAL`] after its first call, and when the server
//! stops. A line per call would cost a log event per call in CloudWatch Logs
//! ingestion (the main EMF bill) and a few hundred bytes of stderr each; the
//! per-call record, with trace and request ids, is the `tool.*` log events.
//!
//! Where the lines go: **stderr**, through the same buffered sink as the log
//! lines ([`super::log_sink`]), each appended whole, so lines never
//! interleave (without the sink, one `write_all` under stderr's lock). Not
//! stdout: in stdio mode stdout is the MCP stream. On ECS the awslogs driver
//! (or FireLens) ships stderr to CloudWatch Logs, which extracts metrics from
//! any log event that is an EMF document; the log lines around it are
//! unaffected.
//!
//! The line (namespace, service and dimensions from the configuration):
//!
//! ```json
//! {"_aws":{"Timestamp":1764000000000,"CloudWatchMetrics":[{"Namespace":"MCPShip",
//!   "Dimensions":[["Service","Tool"]],"Metrics":[{"Name":"ToolDuration","Unit":"Milliseconds"},
//!   {"Name":"ToolCalls","Unit":"Count"},{"Name":"ToolErrors","Unit":"Count"}]}]},
//!  "Service":"mcpship","Tool":"search_documents","ToolDuration":[1.7,0.4,2.1],"ToolCalls":3,"ToolErrors":0}
//! ```
//!
//! `ToolCalls` and `ToolErrors` are counts of the calls in the line, so their
//! `Sum` over any period is the number of calls and failures (`SampleCount`
//! counts lines, not calls). `Timestamp` is the time of the line's first call.
//!
//! Extra dimensions (`MCPSHIP_EMF_DIMENSIONS=Environment=prod`) add a second
//! dimension set `[Service, Tool, Environment]`; the `[Service, Tool]` set stays,
//! so alarms written against it keep matching. Each set is a separate custom
//! metric in CloudWatch (and billed as one).
//!
//! `Tool` is the metrics label of the tool (`other` for names the server does
//! not offer), so a client cannot create CloudWatch metrics at will.

use std::{
    collections::HashMap,
    io::Write,
    sync::{Arc, Mutex, Weak},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use super::names::emf;

/// Most durations in one line (the EMF limit for a metric's value array).
pub const MAX_VALUES: usize = 100;
/// Longest a call waits in a partial line before it is written.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// Writes EMF lines; built once from the configuration.
#[derive(Debug)]
pub struct Emf(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    /// What follows the timestamp in `_aws`: the metric directive, constant.
    directive: String,
    /// `,"Service":"…"` plus extra dimensions, JSON-escaped once.
    fixed: String,
    /// Calls not yet written, by tool label.
    pending: Mutex<HashMap<Box<str>, Batch>>,
}

/// One tool's calls waiting for their line.
#[derive(Debug, Default)]
pub struct Batch {
    /// Milliseconds since the Unix epoch of the first call.
    first_ms: u64,
    /// The calls' durations (written in milliseconds, to the microsecond).
    durations: Vec<Duration>,
    errors: u64,
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Emf {
    /// A writer for `namespace`, `service` and extra `dimensions`. Inside a
    /// tokio runtime it also starts the task that writes partial lines every
    /// [`FLUSH_INTERVAL`] (it ends when the writer is dropped).
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
        let inner = Arc::new(Inner {
            directive,
            fixed,
            pending: Mutex::new(HashMap::new()),
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(flush_every_interval(Arc::downgrade(&inner)));
        }
        Self(inner)
    }

    /// Formats the line for `tool`'s `batch` into `out` (newline included).
    pub fn format(&self, out: &mut Vec<u8>, tool: &str, batch: &Batch) {
        self.0.format(out, tool, batch);
    }

    /// Counts one call of `tool` (its metrics label).
    pub fn record(&self, tool: &str, took: Duration, failed: bool) {
        let full = {
            let mut pending = self.0.pending.lock().unwrap_or_else(|e| e.into_inner());
            let batch = match pending.get_mut(tool) {
                Some(batch) => batch,
                None => pending.entry(tool.into()).or_default(),
            };
            if batch.durations.is_empty() {
                batch.first_ms = now_ms();
                batch.durations.reserve(MAX_VALUES);
            }
            batch.durations.push(took);
            batch.errors += u64::from(failed);
            (batch.durations.len() >= MAX_VALUES).then(|| std::mem::take(batch))
        };
        if let Some(batch) = full {
            self.write(tool, &batch);
        }
    }

    /// Writes every partial line now (at shutdown, or from the timer).
    pub fn flush(&self) {
        self.0.flush();
    }

    fn write(&self, tool: &str, batch: &Batch) {
        self.0.write(tool, batch);
    }
}

impl Inner {
    /// Formats the line for `tool`'s `batch` into `out` (newline included).
    fn format(&self, out: &mut Vec<u8>, tool: &str, batch: &Batch) {
        let _ = write!(out, "{{\"_aws\":{{\"Timestamp\":{}", batch.first_ms);
        out.extend_from_slice(self.directive.as_bytes());
        out.extend_from_slice(self.fixed.as_bytes());
        let _ = write!(out, ",\"{}\":", emf::TOOL);
        let _ = serde_json::to_writer(&mut *out, tool);
        let _ = write!(out, ",\"{}\":[", emf::TOOL_DURATION);
        for (i, took) in batch.durations.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            super::json_log::write_millis(out, *took);
        }
        let _ = writeln!(
            out,
            "],\"{}\":{},\"{}\":{}}}",
            emf::TOOL_CALLS,
            batch.durations.len(),
            emf::TOOL_ERRORS,
            batch.errors
        );
    }

    fn write(&self, tool: &str, batch: &Batch) {
        let mut line = Vec::with_capacity(512 + 8 * batch.durations.len());
        self.format(&mut line, tool, batch);
        match super::log_sink::global() {
            Some(sink) => sink.append(&line),
            // A lost metric line is not worth failing or retrying a call for.
            None => {
                let _ = std::io::stderr().write_all(&line);
            }
        }
    }

    fn flush(&self) {
        let ready: Vec<(Box<str>, Batch)> = {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            pending
                .iter_mut()
                .filter(|(_, batch)| !batch.durations.is_empty())
                .map(|(tool, batch)| (tool.clone(), std::mem::take(batch)))
                .collect()
        };
        for (tool, batch) in ready {
            self.write(&tool, &batch);
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last calls, if the server stopped without a flush.
        self.flush();
    }
}

async fn flush_every_interval(inner: Weak<Inner>) {
    let mut tick = tokio::time::interval(FLUSH_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match inner.upgrade() {
            Some(inner) => inner.flush(),
            None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(micros: &[u64], errors: u64) -> Batch {
        Batch {
            first_ms: 1_764_000_000_123,
            durations: micros.iter().copied().map(Duration::from_micros).collect(),
            errors,
        }
    }

    fn line(emf: &Emf, tool: &str, b: &Batch) -> serde_json::Value {
        let mut out = Vec::new();
        emf.format(&mut out, tool, b);
        assert_eq!(out.last(), Some(&b'\n'));
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn a_line_has_the_directive_and_the_values() {
        let emf = Emf::new("MCPShip", "mcpship", &[]);
        let v = line(&emf, "search_documents", &batch(&[1700, 250], 1));
        assert_eq!(v["_aws"]["Timestamp"], 1_764_000_000_123u64);
        let d = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(d["Namespace"], "MCPShip");
        assert_eq!(d["Dimensions"], serde_json::json!([["Service", "Tool"]]));
        assert_eq!(d["Metrics"][0]["Name"], "ToolDuration");
        assert_eq!(v["Service"], "mcpship");
        assert_eq!(v["Tool"], "search_documents");
        assert_eq!(v["ToolDuration"], serde_json::json!([1.7, 0.25]));
        assert_eq!(v["ToolCalls"], 2);
        assert_eq!(v["ToolErrors"], 1);
    }

    #[test]
    fn extra_dimensions_add_a_set_and_names_are_escaped() {
        let emf = Emf::new(
            "Team \"A\"",
            "svc",
            &[("Environment".into(), "prod".into())],
        );
        let v = line(&emf, "we[ird\",\"Tool", &batch(&[1000], 0));
        let d = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(d["Namespace"], "Team \"A\"");
        assert_eq!(
            d["Dimensions"],
            serde_json::json!([["Service", "Tool"], ["Service", "Tool", "Environment"]])
        );
        assert_eq!(v["Environment"], "prod");
        assert_eq!(v["Tool"], "we[ird\",\"Tool");
    }

    #[test]
    fn calls_gather_per_tool_until_a_line_is_full() {
        let emf = Emf::new("N", "s", &[]);
        for i in 0..(MAX_VALUES + 3) {
            emf.record("a", Duration::from_micros(1500), i % 10 == 0);
        }
        emf.record("b", Duration::from_millis(2), false);
        let pending = emf.0.pending.lock().unwrap();
        // The full line of `a` was written; three calls wait, and `b`'s one.
        assert_eq!(pending["a"].durations.len(), 3);
        assert_eq!(pending["a"].durations[0], Duration::from_micros(1500));
        assert_eq!(pending["a"].errors, 1, "call 100 failed");
        assert_eq!(pending["b"].durations, vec![Duration::from_millis(2)]);
        drop(pending);
        emf.flush();
        assert!(
            emf.0
                .pending
                .lock()
                .unwrap()
                .values()
                .all(|b| b.durations.is_empty())
        );
    }
}
