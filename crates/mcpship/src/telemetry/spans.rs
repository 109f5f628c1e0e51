//! Spans as the runtime records them, and the queue they wait in for export.
//!
//! A span here is a plain value: ids, a name, a kind, two timestamps and a
//! short list of attributes, built by the code that times the operation and
//! handed to the exporter when it ends. The runtime's own spans (the HTTP
//! request, the MCP method, the tool) are made directly, with no `tracing`
//! span behind them; spans that tool code writes with `tracing` (`db.query`)
//! are recorded by [`super::span_layer`] into the same form.
//!
//! Why not `tracing-opentelemetry` and the OpenTelemetry SDK: measured on the
//! benchmark machine, their path cost about 16 µs per traced `get_document`
//! call, 40 % of the call itself: a `tracing` span, an OpenTelemetry builder
//! and SDK span per span, a context attached on every poll, attributes as
//! owned strings, and `SpanData` converted again into protobuf structures on
//! export. Here a span costs a few allocations and a push onto a queue under
//! a lock, and the exporters ([`super::otlp`], [`super::xray`]) encode
//! straight from these values.
//!
//! An unsampled request records nothing: its spans are contexts only (trace
//! id, span id, `sampled = false`), which their children inherit.

use std::{
    borrow::Cow,
    cell::Cell,
    future::Future,
    pin::Pin,
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::{SystemTime, UNIX_EPOCH},
};

use http::HeaderValue;

use super::trace::{RemoteParent, Sampler, new_span_id, new_trace_id};

/// Most spans waiting for export; beyond it new spans are dropped (counted).
pub const MAX_QUEUED_SPANS: usize = 8192;
/// Spans per export; a full batch wakes the exporter early.
pub const EXPORT_BATCH: usize = 1024;

/// Who a span is, as its children and the logs see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanContext {
    /// 128-bit trace id.
    pub trace_id: u128,
    /// 64-bit span id (never 0).
    pub span_id: u64,
    /// Whether the trace is recorded and exported.
    pub sampled: bool,
}

impl SpanContext {
    /// The W3C `traceparent` header value for a call made on behalf of this
    /// span, e.g. from a tool to another service.
    pub fn traceparent(&self) -> String {
        format!(
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id,
            self.span_id,
            u8::from(self.sampled)
        )
    }
}

/// What kind of operation a span is (the OpenTelemetry kinds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    /// Work inside the process.
    Internal,
    /// A request this process serves.
    Server,
    /// A call this process makes (a database query).
    Client,
    /// A message sent.
    Producer,
    /// A message received.
    Consumer,
}

impl SpanKind {
    /// From the `otel.kind` field of a `tracing` span.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "internal" => Self::Internal,
            "server" => Self::Server,
            "client" => Self::Client,
            "producer" => Self::Producer,
            "consumer" => Self::Consumer,
            _ => return None,
        })
    }
}

/// An attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    /// Text.
    Str(Cow<'static, str>),
    /// Text from a request header, shared rather than copied; only visible
    /// ASCII (see `From<HeaderValue>`), so its bytes are valid text.
    Header(HeaderValue),
    /// Text shared with other spans and the logs (a tool's name).
    Shared(Arc<str>),
    /// A whole number.
    I64(i64),
    /// A number.
    F64(f64),
    /// A flag.
    Bool(bool),
}

impl AttrValue {
    /// The bytes of a textual value, valid UTF-8, without checking again.
    pub fn text_bytes(&self) -> Option<&[u8]> {
        match self {
            Self::Str(s) => Some(s.as_bytes()),
            Self::Header(h) => Some(h.as_bytes()),
            Self::Shared(s) => Some(s.as_bytes()),
            _ => None,
        }
    }

    /// The text of a textual value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            Self::Header(h) => Some(h.to_str().unwrap_or_default()),
            Self::Shared(s) => Some(s),
            _ => None,
        }
    }
}

impl From<&'static str> for AttrValue {
    fn from(s: &'static str) -> Self {
        Self::Str(Cow::Borrowed(s))
    }
}

impl From<String> for AttrValue {
    fn from(s: String) -> Self {
        Self::Str(Cow::Owned(s))
    }
}

impl From<Arc<str>> for AttrValue {
    fn from(s: Arc<str>) -> Self {
        Self::Shared(s)
    }
}

impl From<HeaderValue> for AttrValue {
    /// Shared when the value is visible ASCII (checked once, here); other
    /// bytes (obs-text) become text with replacement characters.
    fn from(h: HeaderValue) -> Self {
        if h.to_str().is_ok() {
            Self::Header(h)
        } else {
            Self::Str(Cow::Owned(
                String::from_utf8_lossy(h.as_bytes()).into_owned(),
            ))
        }
    }
}

impl From<i64> for AttrValue {
    fn from(n: i64) -> Self {
        Self::I64(n)
    }
}

impl From<bool> for AttrValue {
    fn from(b: bool) -> Self {
        Self::Bool(b)
    }
}

/// A span being recorded or ended: what the exporters read.
#[derive(Debug, Clone)]
pub struct SpanRecord {
    /// Trace id.
    pub trace_id: u128,
    /// This span's id.
    pub span_id: u64,
    /// The parent's span id, 0 for a root.
    pub parent_span_id: u64,
    /// The parent is another process's (a header or `_meta` said so).
    pub parent_is_remote: bool,
    /// Span name: `name_prefix` then `name` (`tool.` + the tool's name,
    /// without a string of its own per call).
    pub name_prefix: &'static str,
    /// See `name_prefix`.
    pub name: SpanName,
    /// Span kind.
    pub kind: SpanKind,
    /// Start, nanoseconds since the Unix epoch.
    pub start: u64,
    /// End, nanoseconds since the Unix epoch (0 while running).
    pub end: u64,
    /// Attributes, in the order they were set.
    pub attributes: Vec<(&'static str, AttrValue)>,
    /// The operation failed (span status error).
    pub error: bool,
    /// What went wrong, when known.
    pub status_message: Option<Cow<'static, str>>,
}

impl SpanRecord {
    /// A new record for `cx` under `parent`, started now.
    pub fn new(
        cx: SpanContext,
        parent: Option<(u64, bool)>,
        name: impl Into<SpanName>,
        kind: SpanKind,
    ) -> Self {
        let (parent_span_id, parent_is_remote) = parent.unwrap_or((0, false));
        Self {
            trace_id: cx.trace_id,
            span_id: cx.span_id,
            parent_span_id,
            parent_is_remote,
            name_prefix: "",
            name: name.into(),
            kind,
            start: unix_nanos(),
            end: 0,
            attributes: Vec::new(),
            error: false,
            status_message: None,
        }
    }

    /// Adds `key`, which the span does not have yet (no search: the spans
    /// the runtime builds name each attribute once).
    pub fn add(&mut self, key: &'static str, value: impl Into<AttrValue>) {
        debug_assert!(self.get(key).is_none(), "{key} set twice");
        self.attributes.push((key, value.into()));
    }

    /// Sets `key` (replacing an earlier value).
    pub fn set(&mut self, key: &'static str, value: impl Into<AttrValue>) {
        let value = value.into();
        match self.attributes.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.attributes.push((key, value)),
        }
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&AttrValue> {
        self.attributes
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }

    /// The whole name.
    pub fn full_name(&self) -> Cow<'_, str> {
        if self.name_prefix.is_empty() {
            Cow::Borrowed(self.name.as_str())
        } else {
            Cow::Owned(format!("{}{}", self.name_prefix, self.name.as_str()))
        }
    }

    /// Marks the span failed: status error and `error = true`.
    pub fn fail(&mut self) {
        self.error = true;
        self.set("error", true);
    }
}

/// A span name: fixed, made once, or shared with other spans and the logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpanName {
    /// A name known at compile time.
    Static(&'static str),
    /// A name made for this span.
    Owned(String),
    /// A name shared (a tool's).
    Shared(Arc<str>),
}

impl SpanName {
    /// The text.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Static(s) => s,
            Self::Owned(s) => s,
            Self::Shared(s) => s,
        }
    }
}

impl PartialEq<&str> for SpanName {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl From<&'static str> for SpanName {
    fn from(s: &'static str) -> Self {
        Self::Static(s)
    }
}

impl From<String> for SpanName {
    fn from(s: String) -> Self {
        Self::Owned(s)
    }
}

impl From<Arc<str>> for SpanName {
    fn from(s: Arc<str>) -> Self {
        Self::Shared(s)
    }
}

/// Nanoseconds since the Unix epoch, now.
pub fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

// ---------------------------------------------------------------------------
// The pipeline's entry: sampling and the queue

/// What spans need from the trace pipeline; installed once per process.
#[derive(Debug)]
pub(crate) struct Pipeline {
    pub(crate) sampler: Sampler,
    queue: Mutex<Vec<SpanRecord>>,
    /// Wakes the exporter when a batch is full.
    pub(crate) full: tokio::sync::Notify,
}

static PIPELINE: OnceLock<Pipeline> = OnceLock::new();
static EXPORTED: AtomicU64 = AtomicU64::new(0);
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Installs the pipeline; false if one was installed already (the first
/// stays, like the first `tracing` subscriber).
pub(crate) fn install(sampler: Sampler) -> bool {
    PIPELINE
        .set(Pipeline {
            sampler,
            queue: Mutex::new(Vec::with_capacity(EXPORT_BATCH * 2)),
            full: tokio::sync::Notify::new(),
        })
        .is_ok()
}

/// The pipeline, when tracing is on.
pub(crate) fn pipeline() -> Option<&'static Pipeline> {
    PIPELINE.get()
}

impl Pipeline {
    /// Queues an ended span; drops and counts it when the queue is full.
    pub(crate) fn push(&self, span: SpanRecord) {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        if queue.len() >= MAX_QUEUED_SPANS {
            drop(queue);
            count_dropped(1);
            return;
        }
        queue.push(span);
        let full = queue.len() == EXPORT_BATCH;
        drop(queue);
        if full {
            self.full.notify_one();
        }
    }

    /// Takes what is queued, leaving `spare`'s allocation in its place.
    pub(crate) fn take(&self, spare: &mut Vec<SpanRecord>) {
        spare.clear();
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::swap(&mut *queue, spare);
    }
}

/// Hands an ended span to the exporter (nothing without a pipeline).
pub(crate) fn export(span: SpanRecord) {
    if let Some(pipeline) = pipeline() {
        pipeline.push(span);
    }
}

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

// ---------------------------------------------------------------------------
// Spans of the runtime

/// A span the runtime times: always a context, a record only when sampled.
#[derive(Debug)]
pub struct Span {
    cx: SpanContext,
    record: Option<SpanRecord>,
}

impl Span {
    /// A child of `parent`, started now; records only if `parent` is sampled.
    pub fn child(parent: SpanContext, name: impl Into<SpanName>, kind: SpanKind) -> Self {
        let cx = SpanContext {
            trace_id: parent.trace_id,
            span_id: new_span_id(),
            sampled: parent.sampled,
        };
        let record = parent
            .sampled
            .then(|| SpanRecord::new(cx, Some((parent.span_id, false)), name, kind));
        Self { cx, record }
    }

    /// The first span of a request in this process, under `remote` if the
    /// caller sent a context, sampled as [`root_context`] decides.
    pub fn root(
        remote: Option<RemoteParent>,
        sampler: &Sampler,
        name: impl Into<SpanName>,
        kind: SpanKind,
    ) -> Self {
        let (cx, parent) = root_context(remote, sampler);
        let record = cx.sampled.then(|| SpanRecord::new(cx, parent, name, kind));
        Self { cx, record }
    }

    /// Ids and sampling, for children and logs.
    pub fn context(&self) -> SpanContext {
        self.cx
    }

    /// The record, when sampled: set attributes here.
    pub fn record(&mut self) -> Option<&mut SpanRecord> {
        self.record.as_mut()
    }

    /// Ends the span now and queues it for export.
    pub fn end(self) {
        if let Some(mut record) = self.record {
            record.end = unix_nanos();
            export(record);
        }
    }
}

/// The context of a span starting a request here: the remote parent's trace
/// (and its sampling decision, when it made one), a root id when the caller
/// sent only a trace id (an ALB's `Root`), or a new trace. Returns the
/// parent's span id and that it is remote, when there is one.
pub fn root_context(
    remote: Option<RemoteParent>,
    sampler: &Sampler,
) -> (SpanContext, Option<(u64, bool)>) {
    let trace_id = remote.map_or_else(new_trace_id, |r| r.trace_id);
    let sampled = remote
        .and_then(|r| r.sampled)
        .unwrap_or_else(|| sampler.sample(trace_id));
    let parent = remote.filter(|r| r.span_id != 0).map(|r| (r.span_id, true));
    (
        SpanContext {
            trace_id,
            span_id: new_span_id(),
            sampled,
        },
        parent,
    )
}

// ---------------------------------------------------------------------------
// The span around a piece of work, for spans made with `tracing` inside it

thread_local! {
    static CURRENT: Cell<Option<SpanContext>> = const { Cell::new(None) };
}

/// The runtime span whose work is running on this thread: the tool call or
/// MCP method being polled. Spans that tool code makes with `tracing` hang
/// from it, and a tool may read it to pass `traceparent` downstream.
pub fn current() -> Option<SpanContext> {
    CURRENT.get()
}

pin_project_lite::pin_project! {
    /// A future that runs with `cx` as [`current`] while it is polled.
    pub struct InSpan<F> {
        #[pin]
        inner: F,
        cx: SpanContext,
    }
}

impl<F> InSpan<F> {
    /// Wraps `inner`.
    pub fn new(inner: F, cx: SpanContext) -> Self {
        Self { inner, cx }
    }
}

impl<F: Future> Future for InSpan<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let outer = CURRENT.replace(Some(*this.cx));
        // Restored even if the poll panics, so the thread's next task does
        // not inherit this span.
        struct Restore(Option<SpanContext>);
        impl Drop for Restore {
            fn drop(&mut self) {
                CURRENT.set(self.0);
            }
        }
        let _restore = Restore(outer);
        this.inner.poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_inherit_the_trace_and_the_decision() {
        let sampler = Sampler::new(1.0);
        let root = Span::root(None, &sampler, "root", SpanKind::Server);
        let child = Span::child(root.context(), "child", SpanKind::Internal);
        assert_eq!(child.context().trace_id, root.context().trace_id);
        assert_ne!(child.context().span_id, root.context().span_id);
        assert!(child.record.as_ref().unwrap().parent_span_id == root.context().span_id);

        let off = Sampler::new(0.0);
        let unsampled = Span::root(None, &off, "root", SpanKind::Server);
        assert!(!unsampled.context().sampled && unsampled.record.is_none());
        let child = Span::child(unsampled.context(), "child", SpanKind::Internal);
        assert!(child.record.is_none());
    }

    #[test]
    fn a_caller_decision_wins_over_the_ratio() {
        let never = Sampler::new(0.0);
        let remote = RemoteParent {
            trace_id: 7,
            span_id: 9,
            sampled: Some(true),
        };
        let (cx, parent) = root_context(Some(remote), &never);
        assert!(cx.sampled);
        assert_eq!(cx.trace_id, 7);
        assert_eq!(parent, Some((9, true)));
        // An ALB root: the trace id, no parent span, our decision.
        let alb = RemoteParent {
            trace_id: 8,
            span_id: 0,
            sampled: None,
        };
        let (cx, parent) = root_context(Some(alb), &Sampler::new(1.0));
        assert!(cx.sampled && cx.trace_id == 8 && parent.is_none());
    }

    #[test]
    fn traceparent_of_a_context() {
        let cx = SpanContext {
            trace_id: 0x0af7651916cd43dd8448eb211c80319c,
            span_id: 0xb7ad6b7169203331,
            sampled: true,
        };
        assert_eq!(
            cx.traceparent(),
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        );
    }

    #[tokio::test]
    async fn the_current_span_is_set_only_while_polled() {
        let cx = SpanContext {
            trace_id: 1,
            span_id: 2,
            sampled: true,
        };
        assert_eq!(current(), None);
        let seen = InSpan::new(async { current() }, cx).await;
        assert_eq!(seen, Some(cx));
        assert_eq!(current(), None);
    }
}
