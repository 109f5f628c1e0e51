//! Traces: incoming context, X-Ray-compatible ids, sampling, the HTTP span,
//! and the export pipeline (OTLP/HTTP or the X-Ray daemon).
//!
//! Spans are recorded by the runtime itself ([`super::spans`]): the HTTP
//! request, the MCP method and the tool, plus spans that tool code writes
//! with `tracing` (`db.query`), which [`super::span_layer`] records. With
//! `MCPSHIP_TRACES_EXPORTER=none` (the default) there is no pipeline, the
//! request path makes no span, and `tracing` spans find no interested
//! subscriber: the macros then cost one cached interest check.
//!
//! ## Where the parent comes from, in order
//! 1. `_meta.traceparent` of the JSON-RPC request (2026-07-28 clients, read by
//!    [`crate::instrument`]). It is the MCP client's own statement of which
//!    operation this message belongs to; it is per message and survives any
//!    HTTP intermediary (gateways that drop or rewrite headers, a connection
//!    pool shared by several agent operations).
//! 2. The W3C `traceparent` header: the HTTP client's or an instrumented
//!    proxy's context.
//! 3. `X-Amzn-Trace-Id`. An ALB adds one to *every* request (a fresh `Root`
//!    when the client sent none), so it must never override a context the
//!    client chose; but when it is all there is, its `Root` becomes the trace
//!    id, so the ALB's access log (which records the header) and the trace
//!    share one id. Load balancers send nothing to X-Ray themselves and are
//!    not nodes of the service map; the shared id is the join.
//!
//! The HTTP span is made when the request arrives, from the headers, and may
//! still take the message's `_meta.traceparent` until its first child (the
//! MCP method's span) is made: [`HttpSpan::adopt`].
//!
//! ## Ids and sampling
//! New trace ids have the current epoch seconds in their first 32 bits, as
//! X-Ray requires (`1-{8 hex seconds}-{24 hex random}`), so one id works in
//! X-Ray, in OTLP backends and in the logs (`trace_id`, 32 hex digits). A
//! caller's sampling decision is kept; a trace that starts here (or whose
//! caller left the decision open: `Sampled=?`) is sampled by
//! `MCPSHIP_TRACES_SAMPLER_RATIO`, from the trace id as OpenTelemetry's
//! `TraceIdRatioBased` does, so every service sharing the ratio agrees.
//!
//! ## Export never blocks a request
//! Ended spans go to a bounded queue ([`MAX_QUEUED_SPANS`]); a task on the
//! runtime takes them every [`EXPORT_INTERVAL`], or as soon as a batch of
//! [`EXPORT_BATCH`] is full, and sends them. A slow or absent collector
//! fills the queue and spans are dropped and counted
//! (`mcpship_trace_spans_dropped_total`), with one warning per minute at most.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use tokio_util::sync::CancellationToken;

use super::spans::{self, SpanContext, SpanRecord};
pub use super::spans::{EXPORT_BATCH, MAX_QUEUED_SPANS, export_counts};
use crate::config::{ServeConfig, TracesExporter, env};

/// Time between exports of a partial batch.
pub const EXPORT_INTERVAL: Duration = Duration::from_secs(1);
/// Time an OTLP export may take before it counts as failed.
pub const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a shutdown waits for the last spans to be exported.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(3);

// ---------------------------------------------------------------------------
// Incoming context

/// A trace context from a request: header or `_meta`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteParent {
    /// The trace id, as a number (big-endian hex digits).
    pub trace_id: u128,
    /// The caller's span id, or 0 when only a trace id was given (an ALB's
    /// `Root` without `Parent`).
    pub span_id: u64,
    /// The caller's sampling decision, if it made one.
    pub sampled: Option<bool>,
}

fn hex_u128(s: &str) -> Option<u128> {
    (s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u128::from_str_radix(s, 16).ok())
        .flatten()
}

fn hex_u64(s: &str) -> Option<u64> {
    (s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u64::from_str_radix(s, 16).ok())
        .flatten()
}

/// Parses a W3C `traceparent` (`00-{32 hex}-{16 hex}-{2 hex}`).
pub fn parse_traceparent(value: &str) -> Option<RemoteParent> {
    let mut parts = value.trim().split('-');
    let version = parts.next()?;
    let trace = parts.next()?;
    let span = parts.next()?;
    let flags = parts.next()?;
    // Version 00 has exactly four parts; later versions may add more.
    if version.len() != 2 || version == "ff" || (version == "00" && parts.next().is_some()) {
        return None;
    }
    let flags = u8::from_str_radix(flags.get(..2)?, 16).ok()?;
    let trace_id = hex_u128(trace).filter(|&t| t != 0)?;
    let span_id = hex_u64(span).filter(|&s| s != 0)?;
    Some(RemoteParent {
        trace_id,
        span_id,
        sampled: Some(flags & 1 == 1),
    })
}

/// Parses `X-Amzn-Trace-Id` (`Root=1-{8 hex}-{24 hex};Parent={16 hex};Sampled=1`).
/// `Self=` (added by ALBs) and unknown fields are ignored.
pub fn parse_amzn_trace_id(value: &str) -> Option<RemoteParent> {
    let mut trace_id = None;
    let mut span_id = 0;
    let mut sampled = None;
    for part in value.split(';') {
        let Some((key, val)) = part.trim().split_once('=') else {
            continue;
        };
        match key.trim() {
            "Root" => {
                let mut pieces = val.trim().split('-');
                if pieces.next()? != "1" {
                    return None;
                }
                let (time, id) = (pieces.next()?, pieces.next()?);
                if time.len() != 8 || id.len() != 24 || pieces.next().is_some() {
                    return None;
                }
                trace_id = hex_u128(&format!("{time}{id}"));
            }
            "Parent" => span_id = hex_u64(val.trim()).unwrap_or(0),
            "Sampled" => {
                sampled = match val.trim() {
                    "1" => Some(true),
                    "0" => Some(false),
                    _ => None,
                }
            }
            _ => {}
        }
    }
    Some(RemoteParent {
        trace_id: trace_id.filter(|&t| t != 0)?,
        span_id,
        sampled,
    })
}

/// The context a request's headers carry: `traceparent`, else `X-Amzn-Trace-Id`.
pub fn from_headers(headers: &http::HeaderMap) -> Option<RemoteParent> {
    use crate::http::header_names::{TRACEPARENT, X_AMZN_TRACE_ID};
    let header = |name: &http::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    header(&TRACEPARENT)
        .and_then(parse_traceparent)
        .or_else(|| header(&X_AMZN_TRACE_ID).and_then(parse_amzn_trace_id))
}

/// A trace id as logged: 32 lowercase hex digits.
#[derive(Debug, Clone, Copy)]
pub struct TraceIdHex(pub u128);

/// `bytes` as lowercase hex into `out` (two digits a byte; `out` holds
/// twice as many bytes). A byte at a time: shifting the whole id per digit,
/// as for a `u128` trace id, took twice as long.
pub(crate) fn write_hex(out: &mut [u8], bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (pair, byte) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = HEX[usize::from(byte >> 4)];
        pair[1] = HEX[usize::from(byte & 0xf)];
    }
}

impl TraceIdHex {
    /// The digits, formatted once, for several log lines and EMF.
    pub fn text(self) -> TraceIdText {
        let mut digits = [0u8; 32];
        write_hex(&mut digits, &self.0.to_be_bytes());
        TraceIdText(digits)
    }
}

impl std::fmt::Display for TraceIdHex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.text().as_str())
    }
}

/// A trace id's 32 hex digits, on the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceIdText([u8; 32]);

impl TraceIdText {
    /// The digits.
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever stored.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// The X-Ray form of a trace id: `1-{8 hex}-{24 hex}`.
pub fn xray_trace_id(id: u128) -> String {
    let hex = TraceIdHex(id).text();
    let hex = hex.as_str();
    format!("1-{}-{}", &hex[..8], &hex[8..])
}

/// A new trace id: the epoch seconds in the top 32 bits (X-Ray checks them),
/// 96 random bits below.
pub fn new_trace_id() -> u128 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as u32;
    let random = (u128::from(fastrand::u64(..)) << 32) | u128::from(fastrand::u32(..));
    (u128::from(secs) << 96) | random
}

/// A new span id: 64 random bits, never 0 (which means "none").
pub fn new_span_id() -> u64 {
    fastrand::u64(1..)
}

/// Decides whether a new trace is recorded: the first `per_second` new
/// traces of each second, then `ratio` of the others (X-Ray's rule of a
/// reservoir and a fixed rate).
#[derive(Debug)]
pub struct Sampler {
    /// Traces whose id's low 63 bits fall below this are sampled.
    bound: u64,
    always: bool,
    per_second: u32,
    /// The second (since the epoch) and how many traces the reservoir took
    /// in it: `second << 32 | taken`.
    reservoir: AtomicU64,
}

impl Sampler {
    /// Samples `ratio` (0.0 to 1.0) of new traces, with no reservoir.
    pub fn new(ratio: f64) -> Self {
        Self::with_reservoir(ratio, 0)
    }

    /// Samples the first `per_second` new traces each second and `ratio`
    /// (0.0 to 1.0) of the others.
    pub fn with_reservoir(ratio: f64, per_second: u32) -> Self {
        Self {
            bound: (ratio.clamp(0.0, 1.0) * (1u64 << 63) as f64) as u64,
            always: ratio >= 1.0,
            per_second,
            reservoir: AtomicU64::new(0),
        }
    }

    /// The decision for a new trace. The ratio is applied to the trace id as
    /// OpenTelemetry's `TraceIdRatioBased` does (the low 64 bits, shifted
    /// right once), so services with the same ratio agree on a shared trace.
    pub fn sample(&self, trace_id: u128) -> bool {
        self.always || ((trace_id as u64) >> 1) < self.bound || self.take_from_reservoir()
    }

    fn take_from_reservoir(&self) -> bool {
        if self.per_second == 0 {
            return false;
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut state = self.reservoir.load(Ordering::Relaxed);
        loop {
            let (second, taken) = (state >> 32, state & 0xffff_ffff);
            let next = if second != now & 0xffff_ffff {
                (now << 32) | 1
            } else if taken < u64::from(self.per_second) {
                state + 1
            } else {
                return false;
            };
            match self.reservoir.compare_exchange_weak(
                state,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => state = actual,
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The HTTP span

/// The context of a request's HTTP server span, carried in the request's
/// extensions so the MCP handler (which rmcp runs in another task) can hang
/// its spans from it and, when the message carries `_meta.traceparent`,
/// re-parent it first. Cloning is one reference-count increment.
#[derive(Debug, Clone)]
pub struct HttpSpan(Arc<Mutex<HttpSpanState>>);

#[derive(Debug)]
struct HttpSpanState {
    cx: SpanContext,
    parent: Option<(u64, bool)>,
    /// A child exists: the parent can no longer change.
    frozen: bool,
}

impl HttpSpan {
    /// The span of a request that arrived with `remote` (from its headers).
    pub(crate) fn start(remote: Option<RemoteParent>, sampler: &Sampler) -> Self {
        let (cx, parent) = spans::root_context(remote, sampler);
        Self(Arc::new(Mutex::new(HttpSpanState {
            cx,
            parent,
            frozen: false,
        })))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, HttpSpanState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the parent with the message's own (`_meta.traceparent`).
    /// Only possible before the span has a child, i.e. for the first message
    /// of a request; later ones keep the request's parent.
    pub(crate) fn adopt(&self, parent: &RemoteParent, sampler: &Sampler) -> bool {
        let mut state = self.state();
        if state.frozen || parent.span_id == 0 {
            return false;
        }
        let (cx, parent) = spans::root_context(Some(*parent), sampler);
        state.cx = SpanContext {
            span_id: state.cx.span_id,
            ..cx
        };
        state.parent = parent;
        true
    }

    /// The context children hang from; fixes the parent from now on.
    pub(crate) fn parent_of_children(&self) -> SpanContext {
        let mut state = self.state();
        state.frozen = true;
        state.cx
    }

    /// The span's context and its parent (span id, remote) as they are now.
    pub(crate) fn context(&self) -> (SpanContext, Option<(u64, bool)>) {
        let state = self.state();
        (state.cx, state.parent)
    }
}

// ---------------------------------------------------------------------------
// The pipeline

/// Why tracing could not start.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {why}")]
pub struct TraceSetupError {
    pub variable: &'static str,
    pub why: String,
}

/// Where batches of spans go.
enum Exporter {
    Otlp(super::otlp::OtlpExporter),
    Xray(super::xray::XrayExporter),
}

impl Exporter {
    fn name(&self) -> &'static str {
        match self {
            Self::Otlp(_) => "otlp",
            Self::Xray(_) => "xray",
        }
    }

    /// Sends a batch; returns how many spans were lost and why.
    async fn export(&mut self, batch: &[SpanRecord]) -> Result<(), (u64, String)> {
        match self {
            Self::Otlp(otlp) => otlp
                .export(batch)
                .await
                .map_err(|e| (batch.len() as u64, e)),
            Self::Xray(xray) => xray.export(batch),
        }
    }
}

/// The running exporter; [`TracePipeline::shutdown`] sends what is left.
#[derive(Debug)]
pub struct TracePipeline {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

/// Starts the pipeline the configuration asks for (`None` for
/// `MCPSHIP_TRACES_EXPORTER=none`, or when a pipeline is already running in
/// this process: the first stays). Must run inside the tokio runtime.
pub fn start(config: &ServeConfig) -> Result<Option<TracePipeline>, TraceSetupError> {
    let exporter = match config.traces_exporter {
        TracesExporter::None => return Ok(None),
        TracesExporter::Otlp => Exporter::Otlp(super::otlp::OtlpExporter::new(config)?),
        TracesExporter::Xray => {
            let (variable, address) = config.xray_daemon();
            Exporter::Xray(
                super::xray::XrayExporter::connect(&address, &config.service_name).map_err(
                    |e| TraceSetupError {
                        variable,
                        why: format!("cannot reach the X-Ray daemon at {address}: {e}"),
                    },
                )?,
            )
        }
    };
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| TraceSetupError {
        variable: env::TRACES_EXPORTER,
        why: "the trace exporter needs the tokio runtime; start tracing from inside it".into(),
    })?;
    if !spans::install(Sampler::with_reservoir(
        config.traces_sampler_ratio,
        config.traces_per_second,
    )) {
        return Ok(None);
    }
    let stop = CancellationToken::new();
    let task = runtime.spawn(export_loop(exporter, stop.clone()));
    Ok(Some(TracePipeline { stop, task }))
}

impl TracePipeline {
    /// Exports what is queued (bounded by a few seconds) and stops.
    pub async fn shutdown(self) {
        self.stop.cancel();
        let _ = tokio::time::timeout(FLUSH_TIMEOUT, self.task).await;
    }
}

async fn export_loop(mut exporter: Exporter, stop: CancellationToken) {
    let Some(pipeline) = spans::pipeline() else {
        return;
    };
    let mut batch = Vec::with_capacity(EXPORT_BATCH * 2);
    let mut last_warning: Option<Instant> = None;
    loop {
        let stopping = tokio::select! {
            () = pipeline.full.notified() => false,
            () = tokio::time::sleep(EXPORT_INTERVAL) => false,
            () = stop.cancelled() => true,
        };
        pipeline.take(&mut batch);
        // Bounded batches: a backlog goes out in several requests.
        for chunk in batch.chunks(EXPORT_BATCH) {
            match exporter.export(chunk).await {
                Ok(()) => spans::count_exported(chunk.len() as u64),
                Err((lost, error)) => {
                    spans::count_exported(chunk.len() as u64 - lost);
                    spans::count_dropped(lost);
                    if last_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                        last_warning = Some(Instant::now());
                        tracing::warn!(
                            exporter = exporter.name(),
                            error = %error,
                            spans = lost,
                            "trace export failed; spans are dropped until it recovers (see mcpship_trace_spans_dropped_total)"
                        );
                    }
                }
            }
        }
        if stopping {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_id_text_is_32_lowercase_hex_digits() {
        let mut rng = fastrand::Rng::with_seed(3);
        for id in [0, 1, u128::MAX, 0x0af7651916cd43dd8448eb211c80319c]
            .into_iter()
            .chain((0..1000).map(|_| rng.u128(..)))
        {
            assert_eq!(TraceIdHex(id).text().as_str(), format!("{id:032x}"));
        }
    }

    #[test]
    fn traceparent() {
        let p =
            parse_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01").unwrap();
        assert_eq!(p.trace_id, 0x0af7651916cd43dd8448eb211c80319c);
        assert_eq!(p.span_id, 0xb7ad6b7169203331);
        assert_eq!(p.sampled, Some(true));
        for bad in [
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
            "00-0af7651916cd43dd8448eb211c80319-b7ad6b7169203331-01",
        ] {
            assert!(parse_traceparent(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn amzn_trace_id() {
        let p = parse_amzn_trace_id(
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        )
        .unwrap();
        assert_eq!(p.trace_id, 0x5759e988bd862e3fe1be46a994272793);
        assert_eq!(p.span_id, 0x53995c3f42cd8ad8);
        assert_eq!(p.sampled, Some(true));
        // What an ALB adds: a root only.
        let alb = parse_amzn_trace_id(
            "Self=1-67891234-12456789abcdef012345678;Root=1-67891233-abcdef012345678912345678",
        )
        .unwrap();
        assert_eq!(alb.trace_id, 0x67891233abcdef012345678912345678);
        assert_eq!(alb.span_id, 0);
        assert_eq!(alb.sampled, None);
        assert!(parse_amzn_trace_id("Root=2-5759e988-bd862e3fe1be46a994272793").is_none());
        assert!(parse_amzn_trace_id("Parent=53995c3f42cd8ad8").is_none());
        assert_eq!(
            xray_trace_id(0x5759e988bd862e3fe1be46a994272793),
            "1-5759e988-bd862e3fe1be46a994272793"
        );
    }

    #[test]
    fn header_precedence() {
        let mut h = http::HeaderMap::new();
        h.insert(
            "x-amzn-trace-id",
            "Root=1-5759e988-bd862e3fe1be46a994272793".parse().unwrap(),
        );
        assert_eq!(
            from_headers(&h).unwrap().trace_id,
            0x5759e988bd862e3fe1be46a994272793
        );
        h.insert(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
                .parse()
                .unwrap(),
        );
        let p = from_headers(&h).unwrap();
        assert_eq!(p.trace_id, 0x0af7651916cd43dd8448eb211c80319c);
        assert_eq!(p.sampled, Some(false));
    }

    #[test]
    fn new_ids_carry_the_time_and_are_not_zero() {
        let id = new_trace_id();
        let secs = (id >> 96) as u64;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(now.abs_diff(secs) < 5, "{secs} vs {now}");
        assert_ne!(new_trace_id(), id);
        assert!((0..10_000).all(|_| new_span_id() != 0));
        assert_eq!(
            TraceIdHex(0x0af7651916cd43dd8448eb211c80319c).to_string(),
            "0af7651916cd43dd8448eb211c80319c"
        );
        assert_eq!(TraceIdHex(1).text().as_str(), format!("{:032x}", 1));
    }

    #[test]
    fn the_ratio_samples_that_share_of_trace_ids_as_opentelemetry_does() {
        let tenth = Sampler::new(0.1);
        let sampled = (0..100_000u64)
            .filter(|i| tenth.sample(u128::from(i.wrapping_mul(0x9e37_79b9_7f4a_7c15))))
            .count();
        assert!((9_000..11_000).contains(&sampled), "{sampled}");
        assert!(!Sampler::new(0.0).sample(0));
        assert!(Sampler::new(1.0).sample(u128::MAX));
        // TraceIdRatioBased: the low 8 bytes of the id, shifted right once,
        // against ratio * 2^63.
        assert!(Sampler::new(0.5).sample((1u128 << 63) - 2));
        assert!(!Sampler::new(0.5).sample(u128::from(u64::MAX)));
    }

    #[test]
    fn the_reservoir_takes_the_first_traces_of_each_second() {
        let sampler = Sampler::with_reservoir(0.0, 3);
        let taken = (0..100).filter(|_| sampler.sample(u128::MAX)).count();
        // All within one second, unless the clock ticked over meanwhile.
        assert!((3..=6).contains(&taken), "{taken}");
        std::thread::sleep(Duration::from_millis(1100));
        assert!(sampler.sample(u128::MAX), "a new second refills it");
        assert!(!Sampler::with_reservoir(0.0, 0).sample(u128::MAX));
    }

    #[test]
    fn the_http_span_takes_meta_until_its_first_child() {
        let sampler = Sampler::new(1.0);
        let alb = RemoteParent {
            trace_id: 0x5759e988bd862e3fe1be46a994272793,
            span_id: 0,
            sampled: None,
        };
        let span = HttpSpan::start(Some(alb), &sampler);
        assert_eq!(span.context().0.trace_id, alb.trace_id);
        assert_eq!(span.context().1, None, "an ALB root has no parent span");
        let meta = RemoteParent {
            trace_id: 42,
            span_id: 7,
            sampled: Some(false),
        };
        assert!(span.adopt(&meta, &sampler));
        let (cx, parent) = span.context();
        assert_eq!(
            (cx.trace_id, cx.sampled, parent),
            (42, false, Some((7, true)))
        );
        let child_parent = span.parent_of_children();
        assert_eq!(child_parent, cx);
        let later = RemoteParent {
            trace_id: 43,
            span_id: 8,
            sampled: Some(true),
        };
        assert!(!span.adopt(&later, &sampler), "fixed once a child exists");
        assert_eq!(span.context().0.trace_id, 42);
    }
}
