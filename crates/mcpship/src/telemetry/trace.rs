//! Traces: incoming context, X-Ray-compatible ids, sampling, and the export
//! pipeline (OTLP/HTTP or the X-Ray daemon).
//!
//! Spans are ordinary `tracing` spans turned into OpenTelemetry spans by
//! `tracing-opentelemetry`. When `MCPSHIP_TRACES_EXPORTER=none` (the default)
//! that layer is not installed and the runtime creates no span at all, and
//! spans written by tools (`db.query`) find no interested subscriber: the
//! `tracing` macros then cost one cached interest check.
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
//! A `Root` without `Parent` (what an ALB sends) has no parent span to hang
//! from. OpenTelemetry's SDK always draws a fresh trace id for a root span, so
//! the id generator here takes a *seed*: the HTTP layer builds its span inside
//! [`with_root_seed`], and the generator hands out the seeded id for that one
//! root span. Everything happens synchronously on one thread.
//!
//! ## Ids
//! New trace ids have the current epoch seconds in their first 32 bits, as
//! X-Ray requires (`1-{8 hex seconds}-{24 hex random}`), so one id works in
//! X-Ray, in OTLP backends and in the logs (`trace_id`, 32 hex digits).
//!
//! ## Export never blocks a request
//! Ended spans go to a bounded queue (the SDK's batch processor, behind a
//! counter that refuses spans beyond [`MAX_QUEUED_SPANS`]); a background
//! thread exports them. A slow or absent collector fills the queue and spans
//! are dropped and counted (`mcpship_trace_spans_dropped_total`), with one
//! warning per minute at most. OTLP requests run on the server's tokio runtime
//! through the reqwest client it already has; X-Ray documents go out through a
//! non-blocking UDP socket.

use std::{
    cell::Cell,
    sync::{
        Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use opentelemetry::{
    Context, KeyValue,
    trace::{
        Link, SpanContext, SpanId, SpanKind, TraceContextExt, TraceFlags, TraceId, TraceState,
        TracerProvider as _,
    },
};
use opentelemetry_sdk::{
    Resource,
    error::{OTelSdkError, OTelSdkResult},
    trace::{
        BatchConfigBuilder, BatchSpanProcessor, IdGenerator, RandomIdGenerator, Sampler,
        SamplingDecision, SamplingResult, SdkTracer, SdkTracerProvider, ShouldSample, SpanData,
        SpanExporter, SpanProcessor,
    },
};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::config::{ServeConfig, TracesExporter, env};

/// Most spans waiting for export; beyond it new spans are dropped.
pub const MAX_QUEUED_SPANS: usize = 8192;
/// Time between exports of a partial batch.
const EXPORT_INTERVAL: Duration = Duration::from_secs(1);
/// Spans per export.
const EXPORT_BATCH: usize = 512;
/// Time an OTLP export may take before it counts as failed.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

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

/// Marks a remote parent that left the sampling decision to us.
#[derive(Debug, Clone, Copy)]
struct DecideHere;

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
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    header("traceparent")
        .and_then(parse_traceparent)
        .or_else(|| header("x-amzn-trace-id").and_then(parse_amzn_trace_id))
}

impl RemoteParent {
    /// The OpenTelemetry parent context, or `None` when there is no parent
    /// span (then the trace id is a [root seed](Self::root_seed)).
    pub fn context(&self) -> Option<Context> {
        if self.span_id == 0 {
            return None;
        }
        let flags = if self.sampled == Some(true) {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        let span = SpanContext::new(
            TraceId::from(self.trace_id),
            SpanId::from(self.span_id),
            flags,
            true,
            TraceState::default(),
        );
        let cx = Context::new().with_remote_span_context(span);
        Some(if self.sampled.is_none() {
            cx.with_value(DecideHere)
        } else {
            cx
        })
    }

    /// The trace id to give a new root span when there is no parent span.
    pub fn root_seed(&self) -> Option<u128> {
        (self.span_id == 0).then_some(self.trace_id)
    }
}

/// A trace id as logged: 32 lowercase hex digits.
#[derive(Debug, Clone, Copy)]
pub struct TraceIdHex(pub u128);

impl std::fmt::Display for TraceIdHex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// The X-Ray form of a trace id: `1-{8 hex}-{24 hex}`.
pub fn xray_trace_id(id: u128) -> String {
    let hex = format!("{id:032x}");
    format!("1-{}-{}", &hex[..8], &hex[8..])
}

// ---------------------------------------------------------------------------
// The HTTP span and its activation

/// The HTTP server span of a request, carried in the request's extensions so
/// the MCP handler (which rmcp runs in another task) can hang its spans from
/// it and, when the message carries `_meta.traceparent`, re-parent it first.
#[derive(Debug, Clone)]
pub struct HttpSpan {
    pub(crate) span: tracing::Span,
    /// Trace id for the span if it ends up a root (header `Root` only).
    pub(crate) root_seed: Option<u128>,
}

impl HttpSpan {
    /// Builds the OpenTelemetry span now (with the root seed) if nothing has
    /// yet, and returns its trace id.
    pub(crate) fn trace_id(&self) -> Option<u128> {
        let cx = with_root_seed(self.root_seed, || self.span.context());
        let sc = cx.span().span_context().clone();
        sc.is_valid()
            .then(|| u128::from_be_bytes(sc.trace_id().to_bytes()))
    }

    /// Replaces the parent with the message's own (`_meta.traceparent`).
    /// Only possible before the span was built, i.e. for the first message
    /// of a request; later ones keep the request's parent.
    pub(crate) fn adopt(&self, parent: &RemoteParent) -> bool {
        match parent.context() {
            Some(cx) => self.span.set_parent(cx).is_ok(),
            None => false,
        }
    }
}

/// The trace id of a `tracing` span that the OpenTelemetry layer tracks.
pub(crate) fn span_trace_id(span: &tracing::Span) -> Option<u128> {
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid()
        .then(|| u128::from_be_bytes(sc.trace_id().to_bytes()))
}

thread_local! {
    static ROOT_SEED: Cell<Option<u128>> = const { Cell::new(None) };
}

/// Runs `f` with `seed` as the trace id of the first root span built in it.
pub(crate) fn with_root_seed<R>(seed: Option<u128>, f: impl FnOnce() -> R) -> R {
    if seed.is_none() {
        return f();
    }
    ROOT_SEED.with(|s| s.set(seed));
    let out = f();
    ROOT_SEED.with(|s| s.set(None));
    out
}

/// Trace ids X-Ray accepts: epoch seconds in the top 32 bits, 96 random bits.
/// (opentelemetry-aws has one too; it formats strings for every id.)
#[derive(Debug, Default)]
struct XrayIds {
    random: RandomIdGenerator,
}

impl IdGenerator for XrayIds {
    fn new_trace_id(&self) -> TraceId {
        if let Some(seed) = ROOT_SEED.with(Cell::take) {
            return TraceId::from(seed);
        }
        let random = u128::from_be_bytes(self.random.new_trace_id().to_bytes());
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()) as u32;
        TraceId::from((u128::from(secs) << 96) | (random & ((1u128 << 96) - 1)))
    }

    fn new_span_id(&self) -> SpanId {
        self.random.new_span_id()
    }
}

/// Parent-based sampling with a ratio for new traces, where a remote parent
/// that made no decision (`Sampled=?` or absent in `X-Amzn-Trace-Id`) counts
/// as no decision rather than as "not sampled".
#[derive(Debug, Clone)]
struct ParentOrRatio {
    ratio: Sampler,
}

impl ShouldSample for ParentOrRatio {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        name: &str,
        span_kind: &SpanKind,
        attributes: &[KeyValue],
        links: &[Link],
    ) -> SamplingResult {
        if let Some(cx) = parent_context {
            let parent = cx.span().span_context().clone();
            let undecided = parent.is_remote() && cx.get::<DecideHere>().is_some();
            if parent.is_valid() && !undecided {
                return SamplingResult {
                    decision: if parent.is_sampled() {
                        SamplingDecision::RecordAndSample
                    } else {
                        SamplingDecision::Drop
                    },
                    attributes: Vec::new(),
                    trace_state: parent.trace_state().clone(),
                };
            }
        }
        self.ratio
            .should_sample(parent_context, trace_id, name, span_kind, attributes, links)
    }
}

// ---------------------------------------------------------------------------
// Export accounting

static QUEUED: AtomicUsize = AtomicUsize::new(0);
static EXPORTED: AtomicU64 = AtomicU64::new(0);
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Spans exported and dropped by this process so far.
pub fn export_counts() -> (u64, u64) {
    (
        EXPORTED.load(Ordering::Relaxed),
        DROPPED.load(Ordering::Relaxed),
    )
}

pub(crate) fn count_exported(n: u64) {
    EXPORTED.fetch_add(n, Ordering::Relaxed);
}

pub(crate) fn count_dropped(n: u64) {
    DROPPED.fetch_add(n, Ordering::Relaxed);
}

/// Refuses spans beyond [`MAX_QUEUED_SPANS`] (counting them) before they reach
/// the SDK's batch queue, whose own drops are not observable.
#[derive(Debug)]
struct Bounded<P> {
    inner: P,
}

impl<P: SpanProcessor> SpanProcessor for Bounded<P> {
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        if QUEUED.fetch_add(1, Ordering::Relaxed) >= MAX_QUEUED_SPANS {
            QUEUED.fetch_sub(1, Ordering::Relaxed);
            count_dropped(1);
            return;
        }
        self.inner.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// Counts what an exporter did and warns (at most once a minute) when it
/// fails. `counts_success`: false for exporters that count per document.
#[derive(Debug)]
struct Counted<E> {
    inner: E,
    counts_success: bool,
    what: &'static str,
    last_warning: Mutex<Option<Instant>>,
}

impl<E> Counted<E> {
    fn new(inner: E, what: &'static str, counts_success: bool) -> Self {
        Self {
            inner,
            counts_success,
            what,
            last_warning: Mutex::new(None),
        }
    }

    fn warn(&self, error: &OTelSdkError, spans: usize) {
        let mut last = self.last_warning.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|t| t.elapsed() < Duration::from_secs(60)) {
            return;
        }
        *last = Some(Instant::now());
        drop(last);
        tracing::warn!(
            exporter = self.what,
            error = %error,
            spans,
            "trace export failed; spans are dropped until it recovers (see mcpship_trace_spans_dropped_total)"
        );
    }
}

impl<E: SpanExporter> SpanExporter for Counted<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let n = batch.len();
        let result = self.inner.export(batch).await;
        QUEUED.fetch_sub(n.min(QUEUED.load(Ordering::Relaxed)), Ordering::Relaxed);
        match &result {
            Ok(()) if self.counts_success => count_exported(n as u64),
            Ok(()) => {}
            Err(e) => {
                count_dropped(n as u64);
                self.warn(e, n);
            }
        }
        // The failure is counted and reported here; the SDK need not.
        Ok(())
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

// ---------------------------------------------------------------------------
// OTLP over the runtime's reqwest client

/// Runs OTLP requests on the server's tokio runtime: the batch processor
/// exports from a thread of its own, where reqwest's async client cannot run.
#[derive(Debug)]
struct RuntimeHttpClient {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for RuntimeHttpClient {
    async fn send_bytes(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        let client = self.client.clone();
        let task = self.runtime.spawn(async move {
            let request = reqwest::Request::try_from(request)?;
            let response = client.execute(request).await?;
            let mut builder = http::Response::builder().status(response.status().as_u16());
            for (k, v) in response.headers() {
                builder = builder.header(k.as_str(), v.as_bytes());
            }
            let body = response.bytes().await?;
            Ok::<_, opentelemetry_http::HttpError>(builder.body(body)?)
        });
        task.await?
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

/// Builds the tracer provider the configuration asks for (`None` for
/// `MCPSHIP_TRACES_EXPORTER=none`). Must run inside the tokio runtime when the
/// exporter is OTLP.
pub fn provider(config: &ServeConfig) -> Result<Option<SdkTracerProvider>, TraceSetupError> {
    let processor = match config.traces_exporter {
        TracesExporter::None => return Ok(None),
        TracesExporter::Otlp => {
            use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
            let runtime = tokio::runtime::Handle::try_current().map_err(|_| TraceSetupError {
                variable: env::TRACES_EXPORTER,
                why: "the OTLP exporter needs the tokio runtime; start tracing from inside it"
                    .into(),
            })?;
            let client = reqwest::Client::builder()
                .timeout(EXPORT_TIMEOUT)
                .build()
                .map_err(|e| TraceSetupError {
                    variable: env::OTLP_ENDPOINT,
                    why: format!("cannot build the HTTP client: {e}"),
                })?;
            let mut builder = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_http_client(RuntimeHttpClient { client, runtime })
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_timeout(EXPORT_TIMEOUT);
            // The signal-specific variable, when set, wins as in every OTel SDK.
            if std::env::var_os("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_none() {
                builder = builder.with_endpoint(format!(
                    "{}/v1/traces",
                    config.otlp_endpoint.trim_end_matches('/')
                ));
            }
            let exporter = builder.build().map_err(|e| TraceSetupError {
                variable: env::OTLP_ENDPOINT,
                why: e.to_string(),
            })?;
            batch(Counted::new(exporter, "otlp", true))
        }
        TracesExporter::Xray => {
            let (variable, address) = config.xray_daemon();
            let client =
                super::xray::UdpDaemonClient::connect(&address).map_err(|e| TraceSetupError {
                    variable,
                    why: format!("cannot reach the X-Ray daemon at {address}: {e}"),
                })?;
            let translator = opentelemetry_aws::xray_exporter::SegmentTranslator::new()
                // Ids that came in a W3C traceparent need not carry a time.
                .skip_timestamp_validation()
                .with_indexed_attrs(
                    [
                        "mcp.method",
                        "mcp.tool",
                        "mcp.protocol_version",
                        "request_id",
                    ]
                    .map(String::from),
                );
            let exporter = opentelemetry_aws::xray_exporter::XrayExporter::new(client)
                .with_translator(translator);
            batch(Counted::new(exporter, "xray", false))
        }
    };
    let mut resource = Resource::builder().with_service_name(config.service_name.clone());
    // The X-Ray translator files `service.version` under Elastic Beanstalk's
    // `version_label`, which would mislead there; X-Ray gets no version
    // (`mcpship_build_info` has it).
    if config.traces_exporter == TracesExporter::Otlp {
        resource =
            resource.with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
    }
    let resource = resource.build();
    let ratio = Sampler::TraceIdRatioBased(config.traces_sampler_ratio);
    Ok(Some(
        SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_id_generator(XrayIds::default())
            .with_sampler(ParentOrRatio { ratio })
            .with_resource(resource)
            .build(),
    ))
}

fn batch<E: SpanExporter + 'static>(exporter: E) -> Bounded<BatchSpanProcessor> {
    let config = BatchConfigBuilder::default()
        .with_max_queue_size(MAX_QUEUED_SPANS)
        .with_max_export_batch_size(EXPORT_BATCH)
        .with_scheduled_delay(EXPORT_INTERVAL)
        .build();
    Bounded {
        inner: BatchSpanProcessor::builder(exporter)
            .with_batch_config(config)
            .build(),
    }
}

/// The tracer the `tracing` layer records into.
pub fn tracer(provider: &SdkTracerProvider) -> SdkTracer {
    provider.tracer("mcpship")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent() {
        let p =
            parse_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01").unwrap();
        assert_eq!(p.trace_id, 0x0af7651916cd43dd8448eb211c80319c);
        assert_eq!(p.span_id, 0xb7ad6b7169203331);
        assert_eq!(p.sampled, Some(true));
        assert!(p.context().is_some());
        assert_eq!(p.root_seed(), None);
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
        assert_eq!(alb.root_seed(), Some(alb.trace_id));
        assert!(alb.context().is_none());
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
    fn ids_carry_the_time_and_seeds_win_once() {
        let ids = XrayIds::default();
        let id = u128::from_be_bytes(ids.new_trace_id().to_bytes());
        let secs = (id >> 96) as u64;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(now.abs_diff(secs) < 5, "{secs} vs {now}");
        let seeded = with_root_seed(Some(42), || {
            (
                u128::from_be_bytes(ids.new_trace_id().to_bytes()),
                u128::from_be_bytes(ids.new_trace_id().to_bytes()),
            )
        });
        assert_eq!(seeded.0, 42);
        assert_ne!(seeded.1, 42);
    }

    #[test]
    fn undecided_remote_parents_use_the_ratio() {
        let never = ParentOrRatio {
            ratio: Sampler::TraceIdRatioBased(0.0),
        };
        let always = ParentOrRatio {
            ratio: Sampler::TraceIdRatioBased(1.0),
        };
        let decide = |s: &ParentOrRatio, p: RemoteParent| {
            let cx = p.context().unwrap();
            s.should_sample(
                Some(&cx),
                TraceId::from(p.trace_id),
                "x",
                &SpanKind::Server,
                &[],
                &[],
            )
            .decision
        };
        let mut p = RemoteParent {
            trace_id: 7,
            span_id: 9,
            sampled: None,
        };
        assert_eq!(decide(&never, p), SamplingDecision::Drop);
        assert_eq!(decide(&always, p), SamplingDecision::RecordAndSample);
        p.sampled = Some(true);
        assert_eq!(decide(&never, p), SamplingDecision::RecordAndSample);
        p.sampled = Some(false);
        assert_eq!(decide(&always, p), SamplingDecision::Drop);
    }
}
