//! Tool-call events, metrics and spans around any rmcp `ServerHandler`.
//!
//! [`Instrumented`] wraps the user's handler and forwards every method. Each
//! request method is counted (`mcpship_mcp_requests_total`, duration) and,
//! with tracing on, gets an `mcp.<method>` span under the HTTP span. A
//! `tools/call` also gets a `tool.<name>` span, the `tool.invoked` /
//! `tool.succeeded` / `tool.failed` log events (tool name, legacy session id or
//! request id, duration, trace id), the tool metrics and, when enabled, an EMF
//! line. Arguments are logged only with `MCPSHIP_LOG_TOOL_ARGUMENTS=true`, and
//! redacted: they may hold secrets or personal data.
//!
//! The message's own trace context, `_meta.traceparent` (2026-07-28 clients),
//! is read here, since only the handler sees the parsed message: it becomes
//! the parent of the HTTP span (see [`crate::telemetry::trace`] for the order
//! of precedence). With tracing off, the `trace_id` of log lines and EMF comes
//! from `_meta.traceparent` or the request's headers, so logs still join the
//! caller's trace.
//!
//! `subscriptions/listen` gets the runtime's change feed: for a handler whose
//! `accepted_subscription_filter` accepts something, [`Instrumented`] forwards
//! the feed's changes that the stream accepted into its `SubscriptionSink`,
//! alongside the handler's own `listen`. The stream ends with the graceful
//! final result when the server drains or the stream reaches
//! `MCPSHIP_MAX_STREAM_AGE` (see [`ListenRuntime`]).

use std::{borrow::Cow, future::Future, sync::Arc, time::Duration, time::Instant};

use rmcp::{
    ErrorData, RoleServer, ServerHandler,
    model::*,
    service::{NotificationContext, RequestContext},
};
use tokio_util::sync::CancellationToken;

use crate::{
    events,
    http::header_names::{MCP_NAME, MCP_PROTOCOL_VERSION, MCP_SESSION_ID},
    state::ChangeFeed,
    telemetry::{
        HttpSpan, Telemetry, TraceIdHex,
        json_log::{self, key},
        metrics::{McpOutcome, ToolOutcome, mcp},
        redact,
        spans::{self, InSpan, Span, SpanKind},
        trace::{self, TraceIdText, parse_traceparent},
    },
};

/// The request id the HTTP layer assigns (`x-request-id`), carried in the
/// request's extensions so handlers and logs can name the request.
#[derive(Debug, Clone)]
pub struct RequestIdExt(pub(crate) http::HeaderValue);

impl RequestIdExt {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        // The HTTP layer only stores ids made of ASCII letters, digits and `-_.:`.
        self.0.to_str().unwrap_or_default()
    }
}

/// What `subscriptions/listen` streams get from the server around them.
#[derive(Debug, Clone)]
pub struct ListenRuntime {
    /// Changes forwarded to every stream that accepted them.
    pub changes: ChangeFeed,
    /// Cancelled when the server drains: every stream ends with its final result.
    pub closing: CancellationToken,
    /// Streams end with their final result after this long; `None` lets them live.
    pub max_age: Option<Duration>,
}

/// How long a handler's own `listen` gets to return once its stream is ended
/// (its request context cancelled) before it is dropped.
const INNER_LISTEN_GRACE: Duration = Duration::from_millis(500);

/// A handler whose calls are counted, traced and (tool calls) logged.
#[derive(Debug, Clone)]
pub struct Instrumented<H> {
    inner: H,
    telemetry: Telemetry,
    listen: Option<Arc<ListenRuntime>>,
}

impl<H> Instrumented<H> {
    /// Wraps `inner`, recording into `telemetry`.
    pub fn new(inner: H, telemetry: Telemetry) -> Self {
        Self {
            inner,
            telemetry,
            listen: None,
        }
    }

    /// Gives listen streams the change feed, the drain signal and the
    /// maximum age. Without it `listen` is the handler's own, unchanged.
    pub fn with_listen(mut self, listen: Arc<ListenRuntime>) -> Self {
        self.listen = Some(listen);
        self
    }

    /// The wrapped handler.
    pub fn inner(&self) -> &H {
        &self.inner
    }
}

/// Whom a call belongs to, for the log line: the legacy session if any, else
/// the request id. Shared header bytes, not copies.
fn correlation(
    context: &RequestContext<RoleServer>,
) -> (Option<http::HeaderValue>, Option<RequestIdExt>) {
    let parts = context.extensions.get::<http::request::Parts>();
    let session = parts.and_then(|p| p.headers.get(&MCP_SESSION_ID)).cloned();
    let request = parts
        .and_then(|p| p.extensions.get::<RequestIdExt>())
        .cloned();
    (session, request)
}

/// The caller's trace id without tracing: `_meta.traceparent`, else headers.
fn incoming_trace_id(context: &RequestContext<RoleServer>) -> Option<u128> {
    context
        .meta
        .get_traceparent()
        .and_then(parse_traceparent)
        .or_else(|| {
            context
                .extensions
                .get::<http::request::Parts>()
                .and_then(|p| trace::from_headers(&p.headers))
        })
        .map(|p| p.trace_id)
}

/// An MCP request being observed.
struct Begun {
    method: usize,
    started: Instant,
    span: Option<Span>,
}

fn mcp_outcome<T>(result: &Result<T, ErrorData>, ct: &CancellationToken) -> McpOutcome {
    match result {
        Ok(_) => McpOutcome::Ok,
        Err(_) if ct.is_cancelled() => McpOutcome::Cancelled,
        Err(_) => McpOutcome::Error,
    }
}

impl<H: ServerHandler> Instrumented<H> {
    /// Starts observing a request: the clock and, with tracing, its span.
    fn begin(&self, method: usize, context: &RequestContext<RoleServer>) -> Begun {
        Begun {
            method,
            started: Instant::now(),
            span: self
                .telemetry
                .tracing()
                .then(|| method_span(method, context))
                .flatten(),
        }
    }

    fn end(&self, begun: Begun, outcome: McpOutcome) {
        if let Some(metrics) = self.telemetry.metrics() {
            metrics.mcp_finished(begun.method, outcome, Some(begun.started.elapsed()));
        }
        if let Some(mut span) = begun.span {
            if outcome != McpOutcome::Ok
                && let Some(record) = span.record()
            {
                record.fail();
            }
            span.end();
        }
    }

    /// Runs one request method with its metrics and span.
    async fn observed<T, F>(
        &self,
        method: usize,
        context: RequestContext<RoleServer>,
        call: impl FnOnce(RequestContext<RoleServer>) -> F,
    ) -> Result<T, ErrorData>
    where
        F: Future<Output = Result<T, ErrorData>>,
    {
        if self.telemetry.metrics().is_none() && !self.telemetry.tracing() {
            return call(context).await;
        }
        let ct = context.ct.clone();
        let begun = self.begin(method, &context);
        let result = match &begun.span {
            Some(span) => InSpan::new(call(context), span.context()).await,
            None => call(context).await,
        };
        self.end(begun, mcp_outcome(&result, &ct));
        result
    }
}

/// The `mcp.<method>` span, under the HTTP span of the request. A
/// `_meta.traceparent` re-parents the HTTP span first (it is still open to
/// that until its first child, this one, exists). Without an HTTP span
/// (stdio) it starts the request's trace here.
fn method_span(method: usize, context: &RequestContext<RoleServer>) -> Option<Span> {
    let pipeline = spans::pipeline()?;
    let parts = context.extensions.get::<http::request::Parts>();
    let header = |name: &http::HeaderName| parts.and_then(|p| p.headers.get(name));
    let meta = context.meta.get_traceparent().and_then(parse_traceparent);
    let http = parts.and_then(|p| p.extensions.get::<HttpSpan>());
    let mut span = match http {
        Some(http) => {
            if let Some(meta) = &meta {
                http.adopt(meta, &pipeline.sampler);
            }
            Span::child(
                http.parent_of_children(),
                mcp::SPAN_NAMES[method],
                SpanKind::Internal,
            )
        }
        None => Span::root(
            meta,
            &pipeline.sampler,
            mcp::SPAN_NAMES[method],
            SpanKind::Server,
        ),
    };
    if let Some(record) = span.record() {
        record.attributes.reserve(5);
        record.add("mcp.method", mcp::METHODS[method]);
        for (name, key) in [
            (MCP_NAME, "mcp.name"),
            (MCP_PROTOCOL_VERSION, "mcp.protocol_version"),
        ] {
            if let Some(value) = header(&name) {
                record.add(key, value.clone());
            }
        }
        // A sealed id (`S.kid.sealed`) is recorded as its local part `S`.
        if let Some(session) = header(&MCP_SESSION_ID)
            .and_then(|v| v.to_str().ok())
            .and_then(|id| id.split('.').next())
        {
            record.add("mcp.session_id", session.to_owned());
        }
        if let Some(id) = parts.and_then(|p| p.extensions.get::<RequestIdExt>()) {
            record.add("request_id", id.0.clone());
        }
    }
    Some(span)
}

/// The `tool.*` log events of one call. Written as JSON lines directly when
/// the runtime's JSON log layer is the subscriber, else as `tracing` events
/// with the same fields in the same order.
struct ToolEvent<'a> {
    /// Whether `LOG_LEVEL` wants the INFO events (`tool.invoked`,
    /// `tool.succeeded`) and the WARN one (`tool.failed`).
    info: bool,
    warn: bool,
    tool: &'a str,
    session_id: Option<&'a str>,
    request_id: Option<&'a str>,
    trace_id: Option<&'a str>,
}

impl ToolEvent<'_> {
    fn line(&self, line: &mut json_log::Line<'_>, event: &str) {
        line.plain(key!("message"), event);
        line.plain(key!("event"), event);
        line.str(key!("tool"), self.tool);
        line.opt_str(key!("session_id"), self.session_id);
        // Request ids are letters, digits and `-_.:` (checked when taken).
        line.opt_plain(key!("request_id"), self.request_id);
        line.opt_plain(key!("trace_id"), self.trace_id);
    }

    /// Which tool events `LOG_LEVEL` wants: cached when the runtime's JSON
    /// layer is the subscriber (see [`json_log::Direct`]), else asked.
    fn levels() -> (bool, bool) {
        match json_log::direct() {
            Some(direct) => (direct.tool_info, direct.tool_warn),
            None => (
                tracing::enabled!(target: "mcpship::tool", tracing::Level::INFO),
                tracing::enabled!(target: "mcpship::tool", tracing::Level::WARN),
            ),
        }
    }

    fn output() -> Option<&'static json_log::LineOutput> {
        json_log::direct().map(|d| &d.output)
    }

    fn invoked(&self, arguments: Option<&str>) {
        if self.info {
            self.write_invoked(Self::output(), arguments);
        }
    }

    fn succeeded(&self, took: Duration) {
        if self.info {
            self.write_succeeded(Self::output(), took);
        }
    }

    fn failed(&self, took: Duration, error_class: &str, error: Option<&str>) {
        if self.warn {
            self.write_failed(Self::output(), took, error_class, error);
        }
    }

    fn write_invoked(&self, direct: Option<&json_log::LineOutput>, arguments: Option<&str>) {
        match direct {
            Some(output) => {
                json_log::Line::write(output, tracing::Level::INFO, "mcpship::tool", |line| {
                    self.line(line, events::TOOL_INVOKED);
                    line.opt_str(key!("arguments"), arguments);
                });
            }
            None => tracing::info!(
                target: "mcpship::tool",
                message = events::TOOL_INVOKED,
                event = events::TOOL_INVOKED,
                tool = self.tool,
                session_id = self.session_id,
                request_id = self.request_id,
                trace_id = self.trace_id,
                arguments,
            ),
        }
    }

    fn write_succeeded(&self, direct: Option<&json_log::LineOutput>, took: Duration) {
        match direct {
            Some(output) => {
                json_log::Line::write(output, tracing::Level::INFO, "mcpship::tool", |line| {
                    self.line(line, events::TOOL_SUCCEEDED);
                    line.millis(key!("duration_ms"), took);
                });
            }
            None => tracing::info!(
                target: "mcpship::tool",
                message = events::TOOL_SUCCEEDED,
                event = events::TOOL_SUCCEEDED,
                tool = self.tool,
                session_id = self.session_id,
                request_id = self.request_id,
                trace_id = self.trace_id,
                duration_ms = events::millis(took),
            ),
        }
    }

    fn write_failed(
        &self,
        direct: Option<&json_log::LineOutput>,
        took: Duration,
        error_class: &str,
        error: Option<&str>,
    ) {
        match direct {
            Some(output) => {
                json_log::Line::write(output, tracing::Level::WARN, "mcpship::tool", |line| {
                    self.line(line, events::TOOL_FAILED);
                    line.millis(key!("duration_ms"), took);
                    line.plain(key!("error_class"), error_class);
                    line.opt_str(key!("error"), error);
                });
            }
            None => tracing::warn!(
                target: "mcpship::tool",
                message = events::TOOL_FAILED,
                event = events::TOOL_FAILED,
                tool = self.tool,
                session_id = self.session_id,
                request_id = self.request_id,
                trace_id = self.trace_id,
                duration_ms = events::millis(took),
                error_class,
                error,
            ),
        }
    }
}

impl<H: ServerHandler> ServerHandler for Instrumented<H> {
    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let telemetry = &self.telemetry;
        let (session_id, request_id) = correlation(&context);
        let session_id = session_id.as_ref().and_then(|v| v.to_str().ok());
        let request_id = request_id.as_ref().map(RequestIdExt::as_str);
        // One copy of the name for the span, its attributes and the logs.
        let tool: Arc<str> = Arc::from(&*request.name);
        let ct = context.ct.clone();
        let begun = self.begin(mcp::TOOLS_CALL, &context);
        let mut tool_span = begun.span.as_ref().map(|parent| {
            let mut span = Span::child(parent.context(), tool.clone(), SpanKind::Internal);
            if let Some(record) = span.record() {
                record.name_prefix = "tool.";
                record.attributes.reserve(3);
                record.add("mcp.method", "tools/call");
                record.add("mcp.tool", tool.clone());
            }
            span
        });
        let (info, warn) = ToolEvent::levels();
        // Only the log lines carry the trace id; WARN is the least a tool
        // event needs.
        let trace_id = match &begun.span {
            _ if !warn => None,
            Some(span) => Some(span.context().trace_id),
            None => incoming_trace_id(&context),
        };
        let trace_text: Option<TraceIdText> = trace_id.map(|t| TraceIdHex(t).text());
        let trace_text = trace_text.as_ref().map(TraceIdText::as_str);
        let arguments = (telemetry.log_arguments() && info)
            .then(|| redact::arguments_for_log(request.arguments.as_ref()));
        let event = ToolEvent {
            info,
            warn,
            tool: &tool,
            session_id,
            request_id,
            trace_id: trace_text,
        };
        event.invoked(arguments.as_deref());
        let started = Instant::now();
        let result = match &tool_span {
            Some(span) => InSpan::new(self.inner.call_tool(request, context), span.context()).await,
            None => self.inner.call_tool(request, context).await,
        };
        let took = started.elapsed();
        let failure = match &result {
            Ok(CallToolResponse::Complete(r)) if r.is_error == Some(true) => {
                Some((ToolOutcome::ToolError, events::ERROR_CLASS_TOOL, None))
            }
            Ok(_) => None,
            Err(e) if ct.is_cancelled() => Some((
                ToolOutcome::Cancelled,
                events::ERROR_CLASS_CANCELLED,
                Some(e.message.to_string()),
            )),
            Err(e) => Some((
                ToolOutcome::ProtocolError,
                events::ERROR_CLASS_PROTOCOL,
                Some(e.message.to_string()),
            )),
        };
        let outcome = failure.as_ref().map_or(ToolOutcome::Ok, |f| f.0);
        if let Some(metrics) = telemetry.metrics() {
            // A name gets its own series only once the server showed it has
            // such a tool: callers cannot mint label values.
            let exists =
                outcome != ToolOutcome::ProtocolError || self.inner.get_tool(&tool).is_some();
            let series = if exists {
                metrics.known_tool(&tool)
            } else {
                metrics.tool(&tool)
            };
            series.record(outcome, took);
            if let Some(emf) = telemetry.emf() {
                let failed = !matches!(outcome, ToolOutcome::Ok | ToolOutcome::Cancelled);
                emf.record(series.label(), took, failed);
            }
        }
        if let Some(mut span) = tool_span.take() {
            if outcome != ToolOutcome::Ok
                && let Some(record) = span.record()
            {
                record.fail();
                if let Some((_, _, Some(error))) = &failure {
                    record.status_message = Some(error.clone().into());
                }
            }
            span.end();
        }
        match failure {
            None => event.succeeded(took),
            Some((_, error_class, error)) => {
                event.failed(took, error_class, error.as_deref());
            }
        }
        let mcp_outcome = match outcome {
            ToolOutcome::Ok | ToolOutcome::ToolError => McpOutcome::Ok,
            ToolOutcome::Cancelled => McpOutcome::Cancelled,
            ToolOutcome::ProtocolError => McpOutcome::Error,
        };
        self.end(begun, mcp_outcome);
        result
    }

    // Everything below forwards unchanged: a wrapper that forgot one would
    // silently turn a feature of the user's server off.

    async fn ping(&self, context: RequestContext<RoleServer>) -> Result<(), ErrorData> {
        self.observed(mcp::PING, context, |c| self.inner.ping(c))
            .await
    }
    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, ErrorData> {
        self.observed(mcp::INITIALIZE, context, |c| {
            self.inner.initialize(request, c)
        })
        .await
    }
    fn negotiate_initialize(
        &self,
        request: &InitializeRequestParams,
    ) -> Result<InitializeResult, ErrorData> {
        self.inner.negotiate_initialize(request)
    }
    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        self.inner.supported_protocol_versions()
    }
    async fn discover(
        &self,
        context: RequestContext<RoleServer>,
    ) -> Result<DiscoverResult, ErrorData> {
        self.observed(mcp::SERVER_DISCOVER, context, |c| self.inner.discover(c))
            .await
    }
    async fn complete(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        self.observed(mcp::COMPLETION_COMPLETE, context, |c| {
            self.inner.complete(request, c)
        })
        .await
    }
    #[allow(deprecated)]
    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.observed(mcp::LOGGING_SET_LEVEL, context, |c| {
            self.inner.set_level(request, c)
        })
        .await
    }
    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        self.observed(mcp::PROMPTS_GET, context, |c| {
            self.inner.get_prompt(request, c)
        })
        .await
    }
    async fn list_prompts(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        self.observed(mcp::PROMPTS_LIST, context, |c| {
            self.inner.list_prompts(request, c)
        })
        .await
    }
    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        self.observed(mcp::RESOURCES_LIST, context, |c| {
            self.inner.list_resources(request, c)
        })
        .await
    }
    async fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        self.observed(mcp::RESOURCES_TEMPLATES_LIST, context, |c| {
            self.inner.list_resource_templates(request, c)
        })
        .await
    }
    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        self.observed(mcp::RESOURCES_READ, context, |c| {
            self.inner.read_resource(request, c)
        })
        .await
    }
    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        self.inner.accepted_subscription_filter(requested)
    }
    async fn listen(&self, context: rmcp::service::SubscriptionContext) -> Result<(), ErrorData> {
        // A stream, not a call: counted when it ends, without a duration.
        let result = match &self.listen {
            Some(runtime) => listen_with_runtime(&self.inner, runtime, context).await,
            None => self.inner.listen(context).await,
        };
        if let Some(metrics) = self.telemetry.metrics() {
            let outcome = match &result {
                Ok(()) => McpOutcome::Ok,
                Err(_) => McpOutcome::Error,
            };
            metrics.mcp_finished(mcp::SUBSCRIPTIONS_LISTEN, outcome, None);
        }
        result
    }
    #[allow(deprecated)]
    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.observed(mcp::RESOURCES_SUBSCRIBE, context, |c| {
            self.inner.subscribe(request, c)
        })
        .await
    }
    #[allow(deprecated)]
    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.observed(mcp::RESOURCES_UNSUBSCRIBE, context, |c| {
            self.inner.unsubscribe(request, c)
        })
        .await
    }
    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        self.observed(mcp::TOOLS_LIST, context, |c| {
            self.inner.list_tools(request, c)
        })
        .await
    }
    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.inner.get_tool(name)
    }
    async fn on_custom_request(
        &self,
        request: CustomRequest,
        context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, ErrorData> {
        self.observed(mcp::OTHER, context, |c| {
            self.inner.on_custom_request(request, c)
        })
        .await
    }
    async fn on_cancelled(
        &self,
        notification: CancelledNotificationParam,
        context: NotificationContext<RoleServer>,
    ) {
        self.inner.on_cancelled(notification, context).await
    }
    async fn on_progress(
        &self,
        notification: ProgressNotificationParam,
        context: NotificationContext<RoleServer>,
    ) {
        self.inner.on_progress(notification, context).await
    }
    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        self.inner.on_initialized(context).await
    }
    async fn on_roots_list_changed(&self, context: NotificationContext<RoleServer>) {
        self.inner.on_roots_list_changed(context).await
    }
    async fn on_custom_notification(
        &self,
        notification: CustomNotification,
        context: NotificationContext<RoleServer>,
    ) {
        self.inner
            .on_custom_notification(notification, context)
            .await
    }
    fn get_info(&self) -> ServerConfig {
        self.inner.get_info()
    }
    async fn get_task(
        &self,
        request: GetTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, ErrorData> {
        self.observed(mcp::TASKS_GET, context, |c| self.inner.get_task(request, c))
            .await
    }
    async fn update_task(
        &self,
        request: UpdateTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.observed(mcp::TASKS_UPDATE, context, |c| {
            self.inner.update_task(request, c)
        })
        .await
    }
    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.observed(mcp::TASKS_CANCEL, context, |c| {
            self.inner.cancel_task(request, c)
        })
        .await
    }
    async fn list_skills(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListSkillsResult, ErrorData> {
        self.observed(mcp::SKILLS_LIST, context, |c| {
            self.inner.list_skills(request, c)
        })
        .await
    }
    async fn get_skill(
        &self,
        request: GetSkillRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetSkillResult, ErrorData> {
        self.observed(mcp::SKILLS_GET, context, |c| {
            self.inner.get_skill(request, c)
        })
        .await
    }
    async fn read_resource_directory(
        &self,
        request: ReadResourceDirectoryRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceDirectoryResult, ErrorData> {
        self.observed(mcp::RESOURCES_DIRECTORY_READ, context, |c| {
            self.inner.read_resource_directory(request, c)
        })
        .await
    }
}

/// Runs the handler's `listen` with the change feed forwarded beside it, and
/// ends it gracefully on drain or maximum age.
async fn listen_with_runtime<H: ServerHandler>(
    inner: &H,
    runtime: &ListenRuntime,
    context: rmcp::service::SubscriptionContext,
) -> Result<(), ErrorData> {
    let sink = context.sink().clone();
    let request_ct = context.request_context().ct.clone();
    let changes = runtime.changes.subscribe();
    let own = inner.listen(context);
    tokio::pin!(own);
    let forwarding = async {
        forward(changes, &sink).await;
        // The stream closed: the handler's own listen sees it and returns.
        std::future::pending::<()>().await
    };
    let age = async {
        match runtime.max_age {
            Some(age) => tokio::time::sleep(age).await,
            None => std::future::pending().await,
        }
    };
    let why = tokio::select! {
        biased;
        result = &mut own => return result,
        () = runtime.closing.cancelled() => "server draining",
        () = age => "maximum stream age",
        () = forwarding => unreachable!("forwarding never ends by itself"),
    };
    // End it as a client's cancel would, so the handler's own listen cleans
    // up and returns; then send the final result whatever it said.
    request_ct.cancel();
    match tokio::time::timeout(INNER_LISTEN_GRACE, own).await {
        Ok(Err(error)) => tracing::debug!(
            error = %error.message,
            reason = why,
            "a listen handler failed while its stream was being ended"
        ),
        Ok(Ok(())) => {}
        Err(_) => tracing::debug!(
            reason = why,
            "a listen handler did not return after its stream was ended; dropped"
        ),
    }
    tracing::debug!(reason = why, "subscriptions/listen stream completed");
    Ok(())
}

/// Sends the stream every change it accepted, until it closes. Changes it
/// did not accept are skipped quietly; the sink enforces the filter too.
async fn forward(
    mut changes: crate::state::ChangeReceiver,
    sink: &rmcp::service::SubscriptionSink,
) {
    use rmcp::service::SubscriptionSendError as E;
    let accepted = sink.accepted().clone();
    if accepted == SubscriptionFilter::default() {
        return;
    }
    while let Some(batch) = changes.recv().await {
        for change in batch.iter().filter(|c| c.accepted_by(&accepted)) {
            match sink.send(change.notification()).await {
                Ok(()) | Err(E::NotificationNotAccepted(_) | E::UnsupportedNotification(_)) => {}
                Err(_) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::telemetry::json_log::{LineOutput, tests::raw};

    /// The keys and values of each line, the timestamp left out.
    fn fields(text: &str) -> Vec<Vec<(String, serde_json::Value)>> {
        text.lines()
            .map(|l| {
                let v: serde_json::Map<String, serde_json::Value> =
                    serde_json::from_str(l).unwrap();
                // Key order as written (serde_json's map keeps it here only
                // with preserve_order; compare positions in the text).
                let mut keys: Vec<(usize, String)> = v
                    .keys()
                    .map(|k| (l.find(&format!("\"{k}\":")).unwrap(), k.clone()))
                    .collect();
                keys.sort();
                keys.into_iter()
                    .filter(|(_, k)| k != "timestamp")
                    .map(|(_, k)| (k.clone(), v[&k].clone()))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn tool_events_are_the_same_lines_written_directly_or_through_tracing() {
        let event = ToolEvent {
            info: true,
            warn: true,
            tool: "get_\"document\"",
            session_id: None,
            request_id: Some("req-1"),
            trace_id: Some("5759e988bd862e3fe1be46a994272793"),
        };
        let emit = |direct: Option<&LineOutput>| {
            event.write_invoked(direct, Some("{\"id\":\"a\"}"));
            event.write_succeeded(direct, Duration::from_micros(153));
            event.write_failed(
                direct,
                Duration::from_micros(2500),
                "tool_error",
                Some("bad\nquery"),
            );
        };
        let memory: Arc<Mutex<Vec<u8>>> = Arc::default();
        emit(Some(&LineOutput::Memory(memory.clone())));
        let direct = String::from_utf8(memory.lock().unwrap().clone()).unwrap();
        let traced = raw(|| emit(None));
        assert_eq!(fields(&direct), fields(&traced), "{direct}\n{traced}");
        // Byte for byte, apart from the time.
        let strip = |text: &str| -> Vec<String> {
            text.lines()
                .map(|l| l[l.find("\"level\"").unwrap()..].to_owned())
                .collect()
        };
        assert_eq!(strip(&direct), strip(&traced));
        assert_eq!(fields(&direct).len(), 3);
    }
}
