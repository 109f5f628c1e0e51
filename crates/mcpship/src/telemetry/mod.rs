//! Observability: logs, metrics and traces, each costing nothing it need not.
//!
//! - **Logs** ([`init`]): JSON lines on stderr. Every `/mcp` request gets an
//!   access-log line (`http.request`, see [`crate::http`]), every tool call
//!   `tool.invoked` / `tool.succeeded` / `tool.failed` ([`crate::instrument`]),
//!   with the request id and trace id. Names: [`names`].
//! - **Metrics** ([`metrics`]): Prometheus at `GET /metrics`, atomics only on
//!   the request path; optionally CloudWatch EMF lines per tool call ([`emf`]).
//! - **Traces** ([`trace`], [`spans`], [`span_layer`], [`otlp`], [`xray`]):
//!   spans for the HTTP request, the MCP method, the tool and the tool's
//!   database queries, exported over OTLP or to the X-Ray daemon. Off by
//!   default, and then no span exists on the request path.
//!
//! Log and EMF lines go through one buffered writer ([`log_sink`]), so the
//! request path makes no system call for them.
//!
//! The subscriber is built so that disabled parts cost nothing: the log layer
//! takes events only (its span bookkeeping would be wasted, since lines are
//! flat), and the span layer, when present, takes spans only. With tracing
//! off no layer wants spans, so every `tracing` span in the process (rmcp's,
//! a tool's) is a disabled no-op after one cached check.

pub mod emf;
pub mod json_log;
pub mod layer;
pub mod log_sink;
pub mod metrics;
pub mod names;
pub mod otlp;
pub mod redact;
pub mod span_layer;
pub mod spans;
pub mod trace;
pub mod xray;

use std::{io::IsTerminal, sync::Arc};

use tracing_subscriber::{
    EnvFilter, Layer, Registry,
    filter::{FilterExt, filter_fn},
    fmt,
    layer::SubscriberExt,
    util::SubscriberInitExt,
};

use crate::config::{LogFormat, ServeConfig, TracesExporter};

pub use metrics::Metrics;
pub use spans::{SpanContext, current as current_span};
pub use trace::{HttpSpan, RemoteParent, TraceIdHex};

/// The rmcp version this runtime is built with (the workspace pins it).
pub const RMCP_VERSION: &str = "3.11.0";

/// Who made a request, for the access log. An authentication layer puts it
/// in the *response* extensions (it runs inside the access log, so the
/// request it saw is gone by then); a layer in front of the access log may
/// put it in the request extensions instead. Either is read, response first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal(pub Arc<str>);

/// The runtime's telemetry state, shared by the HTTP layers and the handler
/// wrapper. Cloning is one reference-count increment.
#[derive(Debug, Clone)]
pub struct Telemetry(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    /// Counted whenever metrics or EMF are on (EMF labels tools by the same
    /// bounded table).
    metrics: Option<Metrics>,
    prometheus: bool,
    emf: Option<emf::Emf>,
    tracing: bool,
    log_arguments: bool,
}

impl Telemetry {
    /// Telemetry as the configuration asks for. Spans are made only when an
    /// exporter is configured; [`init`] installs the layer that exports them.
    pub fn from_config(config: &ServeConfig) -> Self {
        let emf = config.emf.then(|| {
            emf::Emf::new(
                &config.emf_namespace,
                &config.service_name,
                &config.emf_extra_dimensions(),
            )
        });
        Self(Arc::new(Inner {
            metrics: (config.metrics || config.emf).then(Metrics::new),
            prometheus: config.metrics,
            emf,
            // Spans need the pipeline that `init` starts.
            tracing: config.traces_exporter != TracesExporter::None && spans::pipeline().is_some(),
            log_arguments: config.log_tool_arguments,
        }))
    }

    /// Logs only: no metrics, no EMF, no spans.
    pub fn disabled() -> Self {
        Self(Arc::new(Inner {
            metrics: None,
            prometheus: false,
            emf: None,
            tracing: false,
            log_arguments: false,
        }))
    }

    /// The counters, if metrics or EMF are on.
    pub fn metrics(&self) -> Option<&Metrics> {
        self.0.metrics.as_ref()
    }

    /// Whether `/metrics` is served.
    pub fn prometheus(&self) -> bool {
        self.0.prometheus && self.0.metrics.is_some()
    }

    /// The EMF writer, if EMF is on.
    pub fn emf(&self) -> Option<&emf::Emf> {
        self.0.emf.as_ref()
    }

    /// Whether spans are made.
    pub fn tracing(&self) -> bool {
        self.0.tracing
    }

    /// Writes what waits in memory (partial EMF lines); the server calls it
    /// when it stops.
    pub fn flush(&self) {
        if let Some(emf) = self.emf() {
            emf.flush();
        }
    }

    /// Whether tool arguments (redacted) are logged.
    pub fn log_arguments(&self) -> bool {
        self.0.log_arguments
    }
}

/// Keeps the trace pipeline running; [`TelemetryGuard::shutdown`] flushes it
/// and the buffered log lines.
#[derive(Debug, Default)]
pub struct TelemetryGuard {
    traces: Option<trace::TracePipeline>,
}

impl TelemetryGuard {
    /// Exports the spans still queued (bounded by a few seconds), stops the
    /// exporter and writes the log lines still buffered.
    pub async fn shutdown(mut self) {
        if let Some(traces) = self.traces.take() {
            traces.shutdown().await;
        }
        log_sink::flush_global();
    }
}

/// Installs the global subscriber: JSON or text logs on stderr filtered by
/// `LOG_LEVEL`, through the buffered sink, and the trace exporter the
/// configuration names. Call it once, from inside the tokio runtime, before
/// serving. Calling it again keeps the first subscriber (tests, or a host
/// application that set its own).
pub fn init(config: &ServeConfig) -> Result<TelemetryGuard, trace::TraceSetupError> {
    let traces = trace::start(config)?;
    install(
        &config.log_level,
        config.log_format,
        traces.is_some(),
        Some(log_sink::install().clone()),
    );
    Ok(TelemetryGuard { traces })
}

/// Libraries that log whole requests (rmcp logs every message and its HTTP
/// parts, headers included, at debug) stay at info unless the filter names
/// them: `LOG_LEVEL=debug` must not put tool arguments or `Authorization`
/// into the logs. Naming one (`LOG_LEVEL=debug,rmcp=debug`) is a deliberate
/// choice to see them.
///
/// rmcp also logs each stateless request's service start and stop at info
/// (three lines per call): noise that would triple log volume and cost, so it
/// is held at warn.
const DUMPERS: &[&str] = &["rmcp", "hyper", "h2", "reqwest"];

fn quiet_dumpers(filter: &str) -> String {
    use tracing_subscriber::filter::LevelFilter;
    let max = EnvFilter::try_new(filter)
        .ok()
        .and_then(|f| f.max_level_hint());
    let mut out = filter.trim().to_owned();
    for target in DUMPERS {
        let cap = if *target == "rmcp" {
            LevelFilter::WARN
        } else {
            LevelFilter::INFO
        };
        if max.is_none_or(|max| max <= cap) {
            continue;
        }
        let named = out.split(',').any(|directive| {
            let d = directive.trim();
            d == *target
                || [":", "=", "["]
                    .iter()
                    .any(|sep| d.starts_with(&format!("{target}{sep}")))
        });
        if !named {
            out.push_str(&format!(",{target}={}", cap.to_string().to_lowercase()));
        }
    }
    out
}

/// The subscriber: logs on stderr (through `sink` when given: the server;
/// else straight: commands that print progress to stderr too, tests) and,
/// when `spans`, the span recorder. JSON logs and spans are one layer
/// ([`layer::RuntimeLayer`]); text logs (a terminal) are `tracing-subscriber`'s.
/// If a subscriber is installed already (tests, or a host application), the
/// first stays.
pub(crate) fn install(
    filter: &str,
    format: LogFormat,
    spans: bool,
    sink: Option<log_sink::LogSink>,
) {
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    if json {
        let output = match &sink {
            Some(sink) => json_log::LineOutput::Sink(sink.clone()),
            None => json_log::LineOutput::Stderr,
        };
        let layer = layer::RuntimeLayer::new(env_filter(filter), output.clone(), spans);
        let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
        if dispatch.clone().try_init().is_ok() {
            json_log::set_direct(output, &dispatch);
        }
    } else {
        let logs = match sink {
            Some(sink) => text_layer(filter, sink),
            None => text_layer(filter, std::io::stderr),
        };
        let spans = spans.then(|| {
            span_layer::SpanLayer
                .with_filter(filter_fn(span_layer::wanted))
                .boxed()
        });
        let mut layers = vec![logs];
        layers.extend(spans);
        let _ = tracing_subscriber::registry().with(layers).try_init();
    }
}

fn env_filter(filter: &str) -> EnvFilter {
    EnvFilter::try_new(quiet_dumpers(filter)).unwrap_or_else(|_| EnvFilter::new("info"))
}

fn log_filter(
    filter: &str,
) -> impl tracing_subscriber::layer::Filter<Registry> + Send + Sync + use<> {
    // Not `is_event()`: `tracing::enabled!` asks with a third kind (a hint),
    // which must pass for the access log and argument logging to know they
    // are wanted.
    env_filter(filter).and(filter_fn(|meta| !meta.is_span()))
}

fn text_layer<W>(filter: &str, writer: W) -> Box<dyn Layer<Registry> + Send + Sync>
where
    W: for<'w> fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    fmt::layer()
        .with_target(false)
        .with_writer(writer)
        .with_filter(log_filter(filter))
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_logs_do_not_dump_requests_unless_asked() {
        assert_eq!(quiet_dumpers("info"), "info,rmcp=warn");
        assert_eq!(quiet_dumpers("warn"), "warn");
        assert_eq!(
            quiet_dumpers("debug"),
            "debug,rmcp=warn,hyper=info,h2=info,reqwest=info"
        );
        assert_eq!(
            quiet_dumpers("debug,rmcp=debug"),
            "debug,rmcp=debug,hyper=info,h2=info,reqwest=info"
        );
    }
}
