//! Prometheus metrics: fixed-bucket histograms and counters made of atomics,
//! written out in the text exposition format (0.0.4) at `GET /metrics`.
//!
//! Why not a metrics crate: `prometheus-client` takes a mutex on every
//! histogram observation and a read lock on every labelled-family lookup, and
//! `metrics-exporter-prometheus` keeps every raw sample in atomic buckets that
//! an upkeep task must drain. Here an observation is two relaxed atomic
//! additions on a handle found without a lock or an allocation:
//!
//! - HTTP counters are a dense table indexed by method and status code;
//! - MCP methods are a fixed list (anything else is `other`);
//! - tools are learned from the server itself: a name gets its own series
//!   once a call to it did not fail as unroutable (an unknown tool is a
//!   protocol error), up to [`MAX_TOOLS`] names; everything else is `other`.
//!   The table is open-addressed over `OnceLock` slots, so a lookup is a hash
//!   and acquire loads, and a new name is published without a lock.
//!
//! The text format is a few dozen lines; the only subtle part, label value
//! escaping, is in [`escape_label`].

use std::{
    fmt::Write as _,
    hash::{BuildHasher, BuildHasherDefault, DefaultHasher},
    sync::{
        OnceLock,
        atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use super::names::{self, metric, outcome};

/// Histogram bucket bounds, seconds: 0.5 ms to 10 s.
pub const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const BUCKET_NANOS: [u64; 14] = {
    let mut out = [0u64; 14];
    let mut i = 0;
    while i < 14 {
        out[i] = (BUCKETS[i] * 1e9) as u64;
        i += 1;
    }
    out
};

/// Most distinct tool names given their own series.
pub const MAX_TOOLS: usize = 256;
const TOOL_SLOTS: usize = 512;

/// A fixed-bucket histogram of durations: per-bucket counts and a sum in
/// nanoseconds, each an atomic. The count is the sum of the buckets.
#[derive(Debug, Default)]
pub struct Histogram {
    /// Non-cumulative counts; the last one is `+Inf`.
    buckets: [AtomicU64; 15],
    sum_nanos: AtomicU64,
}

impl Histogram {
    /// Records one duration.
    pub fn observe(&self, d: Duration) {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let i = BUCKET_NANOS.partition_point(|&b| b < nanos);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, bucket) in self.buckets.iter().enumerate() {
            cumulative += bucket.load(Ordering::Relaxed);
            let le = BUCKETS.get(i).map_or("+Inf".to_owned(), |b| b.to_string());
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {cumulative}"
            );
        }
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {cumulative}");
    }
}

/// MCP methods with their own series (anything else counts as `other`), and
/// the index of each.
pub mod mcp {
    macro_rules! methods {
        ($($index:literal $konst:ident $name:literal)*) => {
            $(
                #[doc = concat!("Index of `", $name, "`.")]
                pub const $konst: usize = $index;
            )*
            /// Method names, by index.
            pub const METHODS: &[&str] = &[$($name),*];
            /// Span names, by index.
            pub const SPAN_NAMES: &[&str] = &[$(concat!("mcp.", $name)),*];
        };
    }
    methods! {
        0 INITIALIZE "initialize"
        1 PING "ping"
        2 SERVER_DISCOVER "server/discover"
        3 TOOLS_LIST "tools/list"
        4 TOOLS_CALL "tools/call"
        5 RESOURCES_LIST "resources/list"
        6 RESOURCES_TEMPLATES_LIST "resources/templates/list"
        7 RESOURCES_READ "resources/read"
        8 RESOURCES_SUBSCRIBE "resources/subscribe"
        9 RESOURCES_UNSUBSCRIBE "resources/unsubscribe"
        10 RESOURCES_DIRECTORY_READ "resources/directory/read"
        11 PROMPTS_LIST "prompts/list"
        12 PROMPTS_GET "prompts/get"
        13 COMPLETION_COMPLETE "completion/complete"
        14 LOGGING_SET_LEVEL "logging/setLevel"
        15 SUBSCRIPTIONS_LISTEN "subscriptions/listen"
        16 TASKS_GET "tasks/get"
        17 TASKS_UPDATE "tasks/update"
        18 TASKS_CANCEL "tasks/cancel"
        19 SKILLS_LIST "skills/list"
        20 SKILLS_GET "skills/get"
        21 OTHER "other"
    }
}

/// Index of `method` in [`mcp::METHODS`] (`other` if unknown).
pub fn mcp_method_index(method: &str) -> usize {
    mcp::METHODS
        .iter()
        .position(|m| *m == method)
        .unwrap_or(mcp::OTHER)
}

const MCP_OUTCOMES: [&str; 3] = [outcome::OK, outcome::ERROR, outcome::CANCELLED];

/// How an MCP request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum McpOutcome {
    Ok = 0,
    Error = 1,
    Cancelled = 2,
}

/// How a tool call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolOutcome {
    Ok = 0,
    ToolError = 1,
    ProtocolError = 2,
    Cancelled = 3,
}

const TOOL_OUTCOMES: [&str; 4] = [
    outcome::OK,
    outcome::TOOL_ERROR,
    outcome::PROTOCOL_ERROR,
    outcome::CANCELLED,
];

#[derive(Debug, Default)]
struct McpSeries {
    outcomes: [AtomicU64; 3],
    duration: Histogram,
}

/// One tool's series.
#[derive(Debug)]
pub struct ToolSeries {
    name: Box<str>,
    outcomes: [AtomicU64; 4],
    duration: Histogram,
}

impl ToolSeries {
    fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            outcomes: Default::default(),
            duration: Histogram::default(),
        }
    }

    /// The label value: the tool's name, or `other`.
    pub fn label(&self) -> &str {
        &self.name
    }

    /// Records one call.
    pub fn record(&self, outcome: ToolOutcome, duration: Duration) {
        self.outcomes[outcome as usize].fetch_add(1, Ordering::Relaxed);
        self.duration.observe(duration);
    }
}

const HTTP_METHODS: [&str; 4] = ["GET", "POST", "DELETE", "other"];

/// Index of an HTTP method in the request counters.
pub fn http_method_index(method: &http::Method) -> usize {
    match *method {
        http::Method::GET => 0,
        http::Method::POST => 1,
        http::Method::DELETE => 2,
        _ => 3,
    }
}

/// All of the runtime's counters, gauges and histograms.
#[derive(Debug)]
pub struct Metrics {
    /// `[method][status - 100]`.
    http_requests: Box<[[AtomicU64; 500]; 4]>,
    http_duration: Histogram,
    in_flight: AtomicI64,
    open_streams: AtomicI64,
    mcp: Box<[McpSeries]>,
    tools: Box<[OnceLock<Box<ToolSeries>>]>,
    tool_count: AtomicUsize,
    other_tool: ToolSeries,
    hasher: BuildHasherDefault<DefaultHasher>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Empty metrics.
    pub fn new() -> Self {
        Self {
            http_requests: Box::new(std::array::from_fn(|_| {
                std::array::from_fn(|_| AtomicU64::new(0))
            })),
            http_duration: Histogram::default(),
            in_flight: AtomicI64::new(0),
            open_streams: AtomicI64::new(0),
            mcp: mcp::METHODS.iter().map(|_| McpSeries::default()).collect(),
            tools: (0..TOOL_SLOTS).map(|_| OnceLock::new()).collect(),
            tool_count: AtomicUsize::new(0),
            other_tool: ToolSeries::new(names::OTHER),
            hasher: BuildHasherDefault::default(),
        }
    }

    /// A request on `/mcp` started (`stream`: a long-lived SSE stream).
    pub fn request_started(&self, stream: bool) {
        let gauge = if stream {
            &self.open_streams
        } else {
            &self.in_flight
        };
        gauge.fetch_add(1, Ordering::Relaxed);
    }

    /// A request on `/mcp` finished: its response was sent or dropped.
    pub fn request_finished(&self, method: usize, status: u16, stream: bool, took: Duration) {
        if let Some(counter) = status
            .checked_sub(100)
            .and_then(|i| self.http_requests[method.min(3)].get(usize::from(i)))
        {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        if stream {
            self.open_streams.fetch_sub(1, Ordering::Relaxed);
        } else {
            self.in_flight.fetch_sub(1, Ordering::Relaxed);
            self.http_duration.observe(took);
        }
    }

    /// An MCP request (by [`mcp_method_index`]) finished.
    pub fn mcp_finished(&self, method: usize, outcome: McpOutcome, took: Option<Duration>) {
        let series = &self.mcp[method.min(self.mcp.len() - 1)];
        series.outcomes[outcome as usize].fetch_add(1, Ordering::Relaxed);
        if let Some(took) = took {
            series.duration.observe(took);
        }
    }

    fn slot_of(&self, name: &str) -> usize {
        (self.hasher.hash_one(name) as usize) % TOOL_SLOTS
    }

    /// The series of a tool seen before, else `other`.
    pub fn tool(&self, name: &str) -> &ToolSeries {
        let mut i = self.slot_of(name);
        for _ in 0..TOOL_SLOTS {
            match self.tools[i].get() {
                Some(series) if &*series.name == name => return series,
                Some(_) => i = (i + 1) % TOOL_SLOTS,
                None => break,
            }
        }
        &self.other_tool
    }

    /// The series of a tool that exists (the caller checked: the call was
    /// routed), registering it on first sight while under [`MAX_TOOLS`].
    pub fn known_tool(&self, name: &str) -> &ToolSeries {
        let mut i = self.slot_of(name);
        for _ in 0..TOOL_SLOTS {
            let slot = &self.tools[i];
            match slot.get() {
                Some(series) if &*series.name == name => return series,
                Some(_) => i = (i + 1) % TOOL_SLOTS,
                None => {
                    if self.tool_count.fetch_add(1, Ordering::Relaxed) >= MAX_TOOLS {
                        self.tool_count.fetch_sub(1, Ordering::Relaxed);
                        return &self.other_tool;
                    }
                    // Another thread may publish into this slot first: then
                    // look at what it published and probe on if it differs.
                    if slot.set(Box::new(ToolSeries::new(name))).is_err() {
                        self.tool_count.fetch_sub(1, Ordering::Relaxed);
                        continue;
                    }
                }
            }
        }
        &self.other_tool
    }

    /// The exposition text. `gauges` are values read at scrape time.
    pub fn render(&self, gauges: &ScrapeGauges) -> String {
        let mut out = String::with_capacity(8 * 1024);
        header(
            &mut out,
            metric::HTTP_REQUESTS_TOTAL,
            "counter",
            "HTTP requests on /mcp by method and status.",
        );
        for (m, row) in self.http_requests.iter().enumerate() {
            for (i, counter) in row.iter().enumerate() {
                let n = counter.load(Ordering::Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "{}{{method=\"{}\",status=\"{}\"}} {n}",
                        metric::HTTP_REQUESTS_TOTAL,
                        HTTP_METHODS[m],
                        i + 100
                    );
                }
            }
        }
        header(
            &mut out,
            metric::HTTP_REQUEST_DURATION_SECONDS,
            "histogram",
            "Time from request to the end of the response on /mcp, streams excluded.",
        );
        self.http_duration
            .render(&mut out, metric::HTTP_REQUEST_DURATION_SECONDS, "");

        header(
            &mut out,
            metric::MCP_REQUESTS_TOTAL,
            "counter",
            "MCP requests by method and outcome.",
        );
        for (m, series) in self.mcp.iter().enumerate() {
            for (o, counter) in series.outcomes.iter().enumerate() {
                let n = counter.load(Ordering::Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "{}{{mcp_method=\"{}\",outcome=\"{}\"}} {n}",
                        metric::MCP_REQUESTS_TOTAL,
                        mcp::METHODS[m],
                        MCP_OUTCOMES[o]
                    );
                }
            }
        }
        header(
            &mut out,
            metric::MCP_REQUEST_DURATION_SECONDS,
            "histogram",
            "Time an MCP request took in the handler, by method.",
        );
        for (m, series) in self.mcp.iter().enumerate() {
            if series.duration.count() > 0 {
                let labels = format!("mcp_method=\"{}\"", mcp::METHODS[m]);
                series
                    .duration
                    .render(&mut out, metric::MCP_REQUEST_DURATION_SECONDS, &labels);
            }
        }

        let tools: Vec<&ToolSeries> = self
            .tools
            .iter()
            .filter_map(|slot| slot.get().map(|b| &**b))
            .chain(std::iter::once(&self.other_tool))
            .collect();
        header(
            &mut out,
            metric::TOOL_CALLS_TOTAL,
            "counter",
            "Tool calls by tool and outcome.",
        );
        for series in &tools {
            for (o, counter) in series.outcomes.iter().enumerate() {
                let n = counter.load(Ordering::Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "{}{{tool=\"{}\",outcome=\"{}\"}} {n}",
                        metric::TOOL_CALLS_TOTAL,
                        escape_label(&series.name),
                        TOOL_OUTCOMES[o]
                    );
                }
            }
        }
        header(
            &mut out,
            metric::TOOL_DURATION_SECONDS,
            "histogram",
            "Time a tool call took, by tool.",
        );
        for series in &tools {
            if series.duration.count() > 0 {
                let labels = format!("tool=\"{}\"", escape_label(&series.name));
                series
                    .duration
                    .render(&mut out, metric::TOOL_DURATION_SECONDS, &labels);
            }
        }

        gauge(
            &mut out,
            metric::IN_FLIGHT_REQUESTS,
            "Requests on /mcp being answered now, streams excluded.",
            self.in_flight.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            metric::OPEN_STREAMS,
            "Open SSE streams on /mcp (GET streams and subscriptions/listen).",
            self.open_streams.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            metric::LEGACY_SESSIONS,
            "Legacy (2025-xx) sessions held by this process.",
            gauges.legacy_sessions,
        );
        gauge(
            &mut out,
            metric::STATE_BACKEND_UP,
            "1 while the shared state backend (Redis) answers, 0 while it does not; 1 with in-process state.",
            gauges.state_backend_up,
        );
        gauge(
            &mut out,
            metric::DRAIN_STATE,
            "Lifecycle: 0 starting, 1 ready, 2 draining, 3 stopped.",
            gauges.drain_state,
        );
        header(
            &mut out,
            metric::BUILD_INFO,
            "gauge",
            "Build information; always 1.",
        );
        let _ = writeln!(
            out,
            "{}{{version=\"{}\",rmcp_version=\"{}\"}} 1",
            metric::BUILD_INFO,
            env!("CARGO_PKG_VERSION"),
            super::RMCP_VERSION
        );
        let (exported, dropped) = super::trace::export_counts();
        header(
            &mut out,
            metric::TRACE_SPANS_EXPORTED_TOTAL,
            "counter",
            "Spans handed to the trace exporter.",
        );
        let _ = writeln!(out, "{} {exported}", metric::TRACE_SPANS_EXPORTED_TOTAL);
        header(
            &mut out,
            metric::TRACE_SPANS_DROPPED_TOTAL,
            "counter",
            "Spans lost: export queue full, or collector or daemon unreachable.",
        );
        let _ = writeln!(out, "{} {dropped}", metric::TRACE_SPANS_DROPPED_TOTAL);
        header(
            &mut out,
            metric::LOG_LINES_DROPPED_TOTAL,
            "counter",
            "Log and EMF lines lost because stderr did not keep up.",
        );
        let lost = super::log_sink::global().map_or(0, super::log_sink::LogSink::dropped);
        let _ = writeln!(out, "{} {lost}", metric::LOG_LINES_DROPPED_TOTAL);
        out
    }
}

/// Values read when `/metrics` is scraped rather than counted per request.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScrapeGauges {
    /// Legacy sessions held now.
    pub legacy_sessions: i64,
    /// Lifecycle phase as a number.
    pub drain_state: i64,
    /// 1 while shared state answers.
    pub state_backend_up: i64,
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn gauge(out: &mut String, name: &str, help: &str, value: i64) {
    header(out, name, "gauge", help);
    let _ = writeln!(out, "{name} {value}");
}

/// A label value in the exposition format: backslash, double quote and line
/// feed escaped.
pub fn escape_label(value: &str) -> std::borrow::Cow<'_, str> {
    if !value.contains(['\\', '"', '\n']) {
        return value.into();
    }
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_indices_line_up() {
        assert_eq!(mcp::METHODS[mcp::TOOLS_CALL], "tools/call");
        assert_eq!(mcp::SPAN_NAMES[mcp::TOOLS_CALL], "mcp.tools/call");
        assert_eq!(mcp::METHODS[mcp::OTHER], names::OTHER);
        assert_eq!(mcp::METHODS.len(), mcp::OTHER + 1);
        for (i, m) in mcp::METHODS.iter().enumerate() {
            assert_eq!(mcp_method_index(m), i);
        }
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(300));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(60));
        let mut out = String::new();
        h.render(&mut out, "x", "a=\"b\"");
        assert!(out.contains("x_bucket{a=\"b\",le=\"0.0005\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{a=\"b\",le=\"0.005\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{a=\"b\",le=\"10\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{a=\"b\",le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_count{a=\"b\"} 3\n"), "{out}");
        assert!(out.contains("x_sum{a=\"b\"} 60.0033"), "{out}");
    }

    #[test]
    fn tools_are_learned_up_to_the_cap() {
        let m = Metrics::new();
        assert_eq!(m.tool("search").label(), "other");
        assert_eq!(m.known_tool("search").label(), "search");
        assert_eq!(m.tool("search").label(), "search");
        for i in 0..MAX_TOOLS + 10 {
            m.known_tool(&format!("t{i}"));
        }
        assert_eq!(m.tool_count.load(Ordering::Relaxed), MAX_TOOLS);
        assert_eq!(m.known_tool("one-too-many").label(), "other");
        assert_eq!(m.tool("search").label(), "search");
    }

    #[test]
    fn exposition_lists_what_was_counted() {
        let m = Metrics::new();
        m.request_started(false);
        m.request_finished(1, 200, false, Duration::from_millis(2));
        m.request_started(true);
        m.mcp_finished(
            mcp_method_index("tools/call"),
            McpOutcome::Ok,
            Some(Duration::from_millis(1)),
        );
        m.mcp_finished(mcp_method_index("x/y"), McpOutcome::Error, None);
        m.known_tool("a\"b")
            .record(ToolOutcome::ToolError, Duration::from_millis(1));
        let text = m.render(&ScrapeGauges {
            legacy_sessions: 2,
            drain_state: 1,
            state_backend_up: 0,
        });
        for line in [
            "mcpship_http_requests_total{method=\"POST\",status=\"200\"} 1",
            "mcpship_http_request_duration_seconds_count 1",
            "mcpship_mcp_requests_total{mcp_method=\"tools/call\",outcome=\"ok\"} 1",
            "mcpship_mcp_requests_total{mcp_method=\"other\",outcome=\"error\"} 1",
            "mcpship_tool_calls_total{tool=\"a\\\"b\",outcome=\"tool_error\"} 1",
            "mcpship_in_flight_requests 0",
            "mcpship_open_streams 1",
            "mcpship_legacy_sessions 2",
            "mcpship_drain_state 1",
            "mcpship_state_backend_up 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
    }
}
