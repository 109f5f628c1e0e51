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

use bytes::Buf;
use http::{HeaderValue, Method, Request, Response, Uri};
use http_body::{Body, Frame, SizeHint};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::{
    events,
    instrument::RequestIdExt,
    telemetry::{
        HttpSpan, Principal, Telemetry, TraceIdHex,
        metrics::http_method_index,
        trace::{self, RemoteParent},
    },
};

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

fn is_stream<B>(request: &Request<B>) -> bool {
    request.method() == Method::GET
        || request
            .headers()
            .get("mcp-method")
            .is_some_and(|m| m.as_bytes() == b"subscriptions/listen")
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
    span: Option<HttpSpan>,
}

#[derive(Debug)]
struct LogFields {
    method: Method,
    uri: Uri,
    mcp_method: Option<HeaderValue>,
    mcp_name: Option<HeaderValue>,
    protocol_version: Option<HeaderValue>,
    request_id: Option<RequestIdExt>,
    principal: Option<Principal>,
    remote: Option<RemoteParent>,
}

fn http_span<B>(request: &Request<B>, remote: Option<RemoteParent>) -> HttpSpan {
    let headers = request.headers();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let name = match *request.method() {
        Method::POST => "POST /mcp",
        Method::GET => "GET /mcp",
        Method::DELETE => "DELETE /mcp",
        _ => "HTTP /mcp",
    };
    let host = header("host").unwrap_or("localhost");
    let span = tracing::info_span!(
        target: "mcpship::http",
        parent: None,
        "http.request",
        otel.name = name,
        otel.kind = "server",
        http.request.method = %request.method(),
        url.full = %format_args!("http://{host}{}", request.uri().path()),
        url.path = request.uri().path(),
        http.route = "/mcp",
        user_agent.original = header("user-agent"),
        mcp.method = header("mcp-method"),
        mcp.name = header("mcp-name"),
        mcp.protocol_version = header("mcp-protocol-version"),
        // A sealed id (`S.kid.sealed`) is recorded as its local part `S`.
        mcp.session_id = header("mcp-session-id").and_then(|id| id.split('.').next()),
        request_id = request.extensions().get::<RequestIdExt>().map(RequestIdExt::as_str),
        http.response.status_code = tracing::field::Empty,
        http.response.body.size = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    if let Some(cx) = remote.and_then(|r| r.context()) {
        let _ = span.set_parent(cx);
    }
    HttpSpan {
        span,
        root_seed: remote.and_then(|r| r.root_seed()),
    }
}

impl Record {
    fn start<B>(telemetry: &Telemetry, request: &mut Request<B>) -> Option<Self> {
        let log = tracing::enabled!(target: "mcpship::access", tracing::Level::INFO);
        let tracing = telemetry.tracing();
        if !log && !tracing && telemetry.metrics().is_none() {
            return None;
        }
        let stream = is_stream(request);
        if let Some(metrics) = telemetry.metrics() {
            metrics.request_started(stream);
        }
        let remote = (log || tracing)
            .then(|| trace::from_headers(request.headers()))
            .flatten();
        let span = tracing.then(|| {
            let span = http_span(request, remote);
            request.extensions_mut().insert(span.clone());
            span
        });
        let log = log.then(|| {
            let headers = request.headers();
            LogFields {
                method: request.method().clone(),
                uri: request.uri().clone(),
                mcp_method: headers.get("mcp-method").cloned(),
                mcp_name: headers.get("mcp-name").cloned(),
                protocol_version: headers.get("mcp-protocol-version").cloned(),
                request_id: request.extensions().get::<RequestIdExt>().cloned(),
                principal: request.extensions().get::<Principal>().cloned(),
                remote,
            }
        });
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
        let trace_id = match &self.span {
            Some(http) => {
                http.span
                    .record("http.response.status_code", i64::from(self.status));
                http.span.record("http.response.body.size", self.bytes);
                if self.status >= 500 {
                    http.span.record("otel.status_code", "error");
                }
                http.trace_id()
            }
            None => self.log.as_ref().and_then(|l| l.remote).map(|r| r.trace_id),
        };
        let Some(log) = &self.log else { return };
        fn text(v: &Option<HeaderValue>) -> Option<&str> {
            v.as_ref().and_then(|v| v.to_str().ok())
        }
        tracing::info!(
            target: "mcpship::access",
            event = events::HTTP_REQUEST,
            http.method = %log.method,
            http.path = log.uri.path(),
            http.status = self.status,
            duration_ms = took.as_secs_f64() * 1000.0,
            bytes = self.bytes,
            mcp.method = text(&log.mcp_method),
            mcp.name = text(&log.mcp_name),
            mcp.protocol_version = text(&log.protocol_version),
            request_id = log.request_id.as_ref().map(RequestIdExt::as_str),
            trace_id = trace_id.map(|t| tracing::field::display(TraceIdHex(t))),
            principal = log.principal.as_ref().map(|p| &*p.0),
            "{}",
            events::HTTP_REQUEST
        );
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
