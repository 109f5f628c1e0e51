//! Access log, RED metrics and the HTTP server span of every `/mcp` request,
//! as one tower layer (no boxed future; the response body is wrapped to see
//! its end).
//!
//! A request is accounted for when its response body has been sent or
//! dropped, not when the handler returns: a legacy call answered over SSE, or
//! a stream, lasts until then. One [`Record`] per request carries what the
//! log line needs and does all of the accounting in its `Drop`, so a client
//! that disconnects early (or a future dropped before its response) is
//! logged too; a request that never got a response head is logged with
//! status 499 ("client closed request", as nginx names it).
//!
//! Cost: with the access log disabled (`LOG_LEVEL` above info for
//! `mcpship::access`), metrics off and tracing off, a request pays one cached
//! callsite check and passes through. With metrics only, a few relaxed atomic
//! additions. The HTTP span exists only when tracing is on.
//!
//! Access log line (JSON, fields at the top level):
//! `message`/`event` = `http.request`, `http.method`, `http.path`,
//! `http.status`, `duration_ms`, `bytes`, `mcp.method`, `mcp.name`,
//! `mcp.protocol_version` (from the 2026-07-28 headers; absent for older
//! clients, whose method only the handler sees: `mcpship_mcp_requests_total`
//! counts those), `request_id`, `trace_id`, `principal`.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
    time::Instant,
};

use super::header_names::{MCP_METHOD, MCP_NAME, MCP_PROTOCOL_VERSION};
use crate::{
    events,
    instrument::RequestIdExt,
    telemetry::{
        HttpSpan, Principal, Telemetry, TraceIdHex,
        json_log::{self, key},
        metrics::http_method_index,
        names,
        spans::{self, AttrValue, SpanKind, SpanRecord},
        trace::{self, RemoteParent, TraceIdText},
    },
};
use bytes::Buf;
use http::{HeaderValue, Method, Request, Response, Uri};
use http_body::{Body, Frame, SizeHint};

/// Status logged for a request whose client left before the response head.
pub const CLIENT_CLOSED: u16 = 499;

/// Adds [`AccessLog`] around a service.
#[derive(Debug, Clone)]
pub struct AccessLogLayer {
    telemetry: Telemetry,
}

impl AccessLogLayer {
    /// A layer recording into `telemetry`.
    pub fn new(telemetry: Telemetry) -> Self {
        Self { telemetry }
    }
}

impl<S> tower::Layer<S> for AccessLogLayer {
    type Service = AccessLog<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AccessLog {
            inner,
            telemetry: self.telemetry.clone(),
        }
    }
}

/// See the module docs.
#[derive(Debug, Clone)]
pub struct AccessLog<S> {
    inner: S,
    telemetry: Telemetry,
}

/// The MCP headers of a 2026-07-28 request, looked up once for the stream
/// check, the log line and the span.
struct McpHeaders {
    method: Option<HeaderValue>,
    name: Option<HeaderValue>,
    protocol_version: Option<HeaderValue>,
}

impl McpHeaders {
    fn of(headers: &http::HeaderMap) -> Self {
        Self {
            method: headers.get(&MCP_METHOD).cloned(),
            name: headers.get(&MCP_NAME).cloned(),
            protocol_version: headers.get(&MCP_PROTOCOL_VERSION).cloned(),
        }
    }
}

fn is_stream(method: &Method, mcp_method: Option<&HeaderValue>) -> bool {
    method == Method::GET || mcp_method.is_some_and(|m| m.as_bytes() == b"subscriptions/listen")
}

impl<S, ReqBody, ResBody> tower::Service<Request<ReqBody>> for AccessLog<S>
where
    S: tower::Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Body,
{
    type Response = Response<AccessLogBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let record = Record::start(&self.telemetry, &mut request);
        ResponseFuture {
            inner: self.inner.call(request),
            record,
        }
    }
}

/// What the log line and the metrics of one request need.
#[derive(Debug)]
pub struct Record {
    telemetry: Telemetry,
    started: Instant,
    method_index: usize,
    stream: bool,
    status: u16,
    bytes: u64,
    /// Present when the access log is enabled.
    log: Option<LogFields>,
    /// Present when tracing is on.
    span: Option<TracedRequest>,
}

/// The HTTP span: its shared context and what its record needs from the
/// request. The record itself is built only if the trace is sampled, at the
/// end (the message's `_meta.traceparent` may still change the decision), so
/// an unsampled request keeps a few shared header values and nothing else.
#[derive(Debug)]
struct TracedRequest {
    span: HttpSpan,
    start: u64,
    method: Method,
    host: Option<HeaderValue>,
    path: RequestPath,
    user_agent: Option<HeaderValue>,
    mcp_method: Option<HeaderValue>,
}

impl TracedRequest {
    /// The span record, at the end of a sampled request.
    fn record(
        self,
        cx: spans::SpanContext,
        parent: Option<(u64, bool)>,
        status: u16,
        bytes: u64,
    ) -> SpanRecord {
        let (name, method): (&'static str, AttrValue) = match self.method {
            Method::POST => ("POST /mcp", "POST".into()),
            Method::GET => ("GET /mcp", "GET".into()),
            Method::DELETE => ("DELETE /mcp", "DELETE".into()),
            ref other => ("HTTP /mcp", other.to_string().into()),
        };
        let mut record = SpanRecord::new(cx, parent, name, SpanKind::Server);
        record.start = self.start;
        record.attributes.reserve(10);
        record.add("http.request.method", method);
        // Server spans name the scheme, host and path (`url.full` is for
        // clients); TLS ends at the load balancer, so the scheme here is http.
        record.add("url.scheme", "http");
        if let Some(host) = self.host {
            record.add("server.address", host);
        }
        record.add(
            "url.path",
            match self.path.0 {
                None => AttrValue::from(names::span::HTTP_ROUTE),
                Some(uri) => AttrValue::from(uri.path().to_owned()),
            },
        );
        record.add("http.route", names::span::HTTP_ROUTE);
        if let Some(agent) = self.user_agent {
            record.add("user_agent.original", agent);
        }
        // What the request is for, when the client said so in a header. The
        // rest of the MCP context (name, version, session, request id) is on
        // the method's span below this one, said once.
        if let Some(method) = self.mcp_method {
            record.add("mcp.method", method);
        }
        record.add("http.response.status_code", i64::from(status));
        record.add(
            "http.response.body.size",
            i64::try_from(bytes).unwrap_or(i64::MAX),
        );
        record.error = status >= 500;
        record
    }
}

/// A request's path for its log line and span: nothing kept for `/mcp`, the
/// route this layer serves, else the URI (a shared clone).
#[derive(Debug)]
struct RequestPath(Option<Uri>);

impl RequestPath {
    fn of(uri: &Uri) -> Self {
        Self((uri.path() != names::span::HTTP_ROUTE).then(|| uri.clone()))
    }

    fn as_str(&self) -> &str {
        self.0.as_ref().map_or(names::span::HTTP_ROUTE, Uri::path)
    }
}

#[derive(Debug)]
struct LogFields {
    method: Method,
    path: RequestPath,
    mcp_method: Option<HeaderValue>,
    mcp_name: Option<HeaderValue>,
    protocol_version: Option<HeaderValue>,
    request_id: Option<RequestIdExt>,
    principal: Option<Principal>,
    remote: Option<RemoteParent>,
}

/// The HTTP server span of `request`, with what its record will need.
fn http_span<B>(
    request: &Request<B>,
    mcp: &McpHeaders,
    remote: Option<RemoteParent>,
) -> Option<TracedRequest> {
    let pipeline = spans::pipeline()?;
    let headers = request.headers();
    Some(TracedRequest {
        span: HttpSpan::start(remote, &pipeline.sampler),
        start: spans::unix_nanos(),
        method: request.method().clone(),
        host: headers.get(http::header::HOST).cloned(),
        path: RequestPath::of(request.uri()),
        user_agent: headers.get(http::header::USER_AGENT).cloned(),
        mcp_method: mcp.method.clone(),
    })
}

impl Record {
    fn start<B>(telemetry: &Telemetry, request: &mut Request<B>) -> Option<Self> {
        let log = match json_log::direct() {
            Some(direct) => direct.access_info,
            None => tracing::enabled!(target: "mcpship::access", tracing::Level::INFO),
        };
        let tracing = telemetry.tracing();
        if !log && !tracing && telemetry.metrics().is_none() {
            return None;
        }
        let mcp = (log || tracing).then(|| McpHeaders::of(request.headers()));
        let stream = match &mcp {
            Some(mcp) => is_stream(request.method(), mcp.method.as_ref()),
            None => is_stream(request.method(), request.headers().get(&MCP_METHOD)),
        };
        if let Some(metrics) = telemetry.metrics() {
            metrics.request_started(stream);
        }
        let remote = (log || tracing)
            .then(|| trace::from_headers(request.headers()))
            .flatten();
        let span = match &mcp {
            Some(mcp) if tracing => {
                let traced = http_span(request, mcp, remote);
                if let Some(traced) = &traced {
                    request.extensions_mut().insert(traced.span.clone());
                }
                traced
            }
            _ => None,
        };
        let log = match mcp {
            Some(mcp) if log => Some(LogFields {
                method: request.method().clone(),
                path: RequestPath::of(request.uri()),
                mcp_method: mcp.method,
                mcp_name: mcp.name,
                protocol_version: mcp.protocol_version,
                request_id: request.extensions().get::<RequestIdExt>().cloned(),
                principal: request.extensions().get::<Principal>().cloned(),
                remote,
            }),
            _ => None,
        };
        Some(Self {
            telemetry: telemetry.clone(),
            started: Instant::now(),
            method_index: http_method_index(request.method()),
            stream,
            status: CLIENT_CLOSED,
            bytes: 0,
            log,
            span,
        })
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        let took = self.started.elapsed();
        if let Some(metrics) = self.telemetry.metrics() {
            metrics.request_finished(self.method_index, self.status, self.stream, took);
        }
        let trace_id = match self.span.take() {
            Some(traced) => {
                let (cx, parent) = traced.span.context();
                if cx.sampled {
                    let mut record = traced.record(cx, parent, self.status, self.bytes);
                    record.end = spans::unix_nanos();
                    spans::export(record);
                }
                Some(cx.trace_id)
            }
            None => self.log.as_ref().and_then(|l| l.remote).map(|r| r.trace_id),
        };
        if let Some(log) = &self.log {
            write_line(
                json_log::direct().map(|d| &d.output),
                log,
                self.status,
                self.bytes,
                took,
                trace_id,
            );
        }
    }
}

/// The access-log line: written directly when the runtime's JSON log layer is
/// the subscriber, else as a `tracing` event with the same fields in order.
fn write_line(
    direct: Option<&json_log::LineOutput>,
    log: &LogFields,
    status: u16,
    bytes: u64,
    took: std::time::Duration,
    trace_id: Option<u128>,
) {
    fn text(v: &Option<HeaderValue>) -> Option<&str> {
        v.as_ref().and_then(|v| v.to_str().ok())
    }
    let trace_id = trace_id.map(|t| TraceIdHex(t).text());
    let trace_id = trace_id.as_ref().map(TraceIdText::as_str);
    let request_id = log.request_id.as_ref().map(RequestIdExt::as_str);
    let principal = log.principal.as_ref().map(|p| &*p.0);
    match direct {
        Some(output) => {
            json_log::Line::write(output, tracing::Level::INFO, "mcpship::access", |line| {
                line.plain(key!("message"), events::HTTP_REQUEST);
                line.plain(key!("event"), events::HTTP_REQUEST);
                // A method is a token: no quotes, backslashes or controls.
                line.plain(key!("http.method"), log.method.as_str());
                line.str(key!("http.path"), log.path.as_str());
                line.integer(key!("http.status"), status);
                line.millis(key!("duration_ms"), took);
                line.integer(key!("bytes"), bytes);
                line.opt_str(key!("mcp.method"), text(&log.mcp_method));
                line.opt_str(key!("mcp.name"), text(&log.mcp_name));
                line.opt_str(key!("mcp.protocol_version"), text(&log.protocol_version));
                // Request ids are letters, digits and `-_.:` (checked when taken).
                line.opt_plain(key!("request_id"), request_id);
                line.opt_plain(key!("trace_id"), trace_id);
                line.opt_str(key!("principal"), principal);
            });
        }
        None => tracing::info!(
            target: "mcpship::access",
            message = events::HTTP_REQUEST,
            event = events::HTTP_REQUEST,
            http.method = log.method.as_str(),
            http.path = log.path.as_str(),
            http.status = status,
            duration_ms = events::millis(took),
            bytes,
            mcp.method = text(&log.mcp_method),
            mcp.name = text(&log.mcp_name),
            mcp.protocol_version = text(&log.protocol_version),
            request_id,
            trace_id,
            principal,
        ),
    }
}

pin_project_lite::pin_project! {
    /// The response future: adds the status and wraps the body.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        record: Option<Record>,
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body,
{
    type Output = Result<Response<AccessLogBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        let mut record = this.record.take();
        Poll::Ready(match result {
            Ok(response) => {
                let (parts, body) = response.into_parts();
                if let Some(record) = &mut record {
                    record.status = parts.status.as_u16();
                    if let (Some(log), Some(p)) =
                        (&mut record.log, parts.extensions.get::<Principal>())
                    {
                        log.principal = Some(p.clone());
                    }
                }
                Ok(Response::from_parts(
                    parts,
                    AccessLogBody {
                        inner: body,
                        record,
                    },
                ))
            }
            Err(e) => {
                if let Some(record) = &mut record {
                    record.status = 500;
                }
                Err(e)
            }
        })
    }
}

pin_project_lite::pin_project! {
    /// A response body that finishes its request's [`Record`] when it ends
    /// or is dropped.
    pub struct AccessLogBody<B> {
        #[pin]
        inner: B,
        record: Option<Record>,
    }
}

impl<B: Body> Body for AccessLogBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        match &frame {
            Some(Ok(frame)) => {
                if let (Some(record), Some(data)) = (this.record.as_mut(), frame.data_ref()) {
                    record.bytes += data.remaining() as u64;
                }
            }
            // The end, or a failed body: account for the request now.
            Some(Err(_)) | None => drop(this.record.take()),
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use http_body_util::{BodyExt, Full};
    use tower::{Layer, ServiceExt};

    use super::*;
    use crate::{ServeConfig, telemetry::metrics::ScrapeGauges};

    #[tokio::test]
    async fn counts_status_bytes_and_streams() {
        let telemetry = Telemetry::from_config(&ServeConfig::default());
        let service = AccessLogLayer::new(telemetry.clone()).layer(tower::service_fn(
            |_: Request<()>| async {
                Ok::<_, Infallible>(
                    Response::builder()
                        .status(201)
                        .body(Full::new(bytes::Bytes::from_static(b"hello")))
                        .unwrap(),
                )
            },
        ));
        let response = service
            .clone()
            .oneshot(Request::post("/mcp").body(()).unwrap())
            .await
            .unwrap();
        let metrics = telemetry.metrics().unwrap();
        let text = metrics.render(&ScrapeGauges::default());
        assert!(text.contains("mcpship_in_flight_requests 1"), "{text}");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"hello");
        let stream = service
            .oneshot(Request::get("/mcp").body(()).unwrap())
            .await
            .unwrap();
        let text = metrics.render(&ScrapeGauges::default());
        assert!(text.contains("mcpship_open_streams 1"), "{text}");
        drop(stream);
        let text = metrics.render(&ScrapeGauges::default());
        for line in [
            "mcpship_http_requests_total{method=\"POST\",status=\"201\"} 1",
            "mcpship_http_requests_total{method=\"GET\",status=\"201\"} 1",
            "mcpship_http_request_duration_seconds_count 1",
            "mcpship_in_flight_requests 0",
            "mcpship_open_streams 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
    }

    #[test]
    fn the_path_is_kept_only_when_it_is_not_mcp() {
        let mcp = RequestPath::of(&Uri::from_static("/mcp?x=1"));
        assert!(mcp.0.is_none());
        assert_eq!(mcp.as_str(), "/mcp");
        let other = RequestPath::of(&Uri::from_static("/mcp/extra?x=1"));
        assert_eq!(other.as_str(), "/mcp/extra");
    }

    #[test]
    fn the_line_is_the_same_written_directly_or_through_tracing() {
        use std::sync::{Arc, Mutex};

        use crate::telemetry::json_log::{LineOutput, tests::raw};
        let log = LogFields {
            method: Method::POST,
            path: RequestPath::of(&Uri::from_static("/mcp")),
            mcp_method: Some(HeaderValue::from_static("tools/call")),
            mcp_name: None,
            protocol_version: Some(HeaderValue::from_static("2026-07-28")),
            request_id: Some(RequestIdExt(HeaderValue::from_static("req-7"))),
            principal: Some(Principal("alice".into())),
            remote: None,
        };
        let took = std::time::Duration::from_micros(1234);
        let memory: Arc<Mutex<Vec<u8>>> = Arc::default();
        write_line(
            Some(&LineOutput::Memory(memory.clone())),
            &log,
            200,
            42,
            took,
            Some(7),
        );
        let direct = String::from_utf8(memory.lock().unwrap().clone()).unwrap();
        let traced = raw(|| write_line(None, &log, 200, 42, took, Some(7)));
        let strip = |line: &str| line[line.find("\"level\"").unwrap()..].to_owned();
        assert_eq!(strip(&direct), strip(&traced));
        let v: serde_json::Value = serde_json::from_str(&direct).unwrap();
        assert_eq!(v["duration_ms"], 1.234);
        assert_eq!(v["trace_id"], "00000000000000000000000000000007");
        assert_eq!(v["principal"], "alice");
        assert!(v.get("mcp.name").is_none());
    }

    #[tokio::test]
    async fn everything_off_passes_through() {
        let service = AccessLogLayer::new(Telemetry::disabled()).layer(tower::service_fn(
            |r: Request<()>| async move {
                assert!(r.extensions().get::<HttpSpan>().is_none());
                Ok::<_, Infallible>(Response::new(Full::new(bytes::Bytes::new())))
            },
        ));
        let response = service
            .oneshot(Request::post("/mcp").body(()).unwrap())
            .await
            .unwrap();
        // No subscriber in this test: the access log is disabled too.
        assert!(response.body().record.is_none());
    }
}
