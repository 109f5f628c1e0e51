//! Admission control for `/mcp`: refuse new work while draining, shed load
//! over the concurrency limit, and count calls in flight so a drain knows
//! when they are done.
//!
//! A request counts until its response body has been sent (or dropped), not
//! merely until the handler returns: a legacy call answered over SSE is still
//! running while its stream is open. Long-lived streams (`GET` streams and
//! `subscriptions/listen`) count against the limit but are not "calls": the
//! drain closes them instead of waiting for them.

use super::header_names::{MCP_METHOD, MCP_PROTOCOL_VERSION, MCP_SESSION_ID};
use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
};

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use tokio_util::task::{TaskTracker, task_tracker::TaskTrackerToken};

use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;

use super::stream_limit::{StreamKind, StreamLimits};
use crate::lifecycle::{Lifecycle, Phase};

/// Calls in flight; a drain waits on it.
#[derive(Debug, Clone, Default)]
pub struct InFlight {
    calls: TaskTracker,
}

impl InFlight {
    /// A new, empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of calls in flight now.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    /// Whether no call is in flight.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// Resolves when every call admitted so far has finished. Admission stops
    /// first (the lifecycle is draining), so nothing new is added meanwhile.
    pub async fn finished(&self) {
        self.calls.close();
        self.calls.wait().await;
    }
}

/// The cap on legacy sessions held by this replica.
#[derive(Debug, Clone)]
pub struct SessionCap {
    /// The session manager whose sessions are counted.
    pub manager: Arc<LocalSessionManager>,
    /// Most sessions at once.
    pub max: usize,
}

impl SessionCap {
    fn full(&self) -> bool {
        // A busy map is not waited for: the cap is a bound, not a count to
        // the unit, and the request path must not block on it.
        self.manager
            .sessions
            .try_read()
            .is_ok_and(|sessions| sessions.len() >= self.max)
    }
}

/// State of the admission layer.
#[derive(Debug, Clone)]
pub struct Admission {
    lifecycle: Lifecycle,
    in_flight: InFlight,
    open: Arc<AtomicUsize>,
    max: usize,
    sessions: Option<SessionCap>,
    streams: StreamLimits,
}

impl Admission {
    pub(super) fn new(
        lifecycle: Lifecycle,
        in_flight: InFlight,
        max: usize,
        sessions: Option<SessionCap>,
        streams: StreamLimits,
    ) -> Self {
        Self {
            lifecycle,
            in_flight,
            open: Arc::new(AtomicUsize::new(0)),
            max,
            sessions,
            streams,
        }
    }
}

/// A JSON-RPC error with no id, as the transport spec allows for HTTP-level
/// refusals, plus `Retry-After` so clients and proxies retry elsewhere.
fn refuse(message: &'static str) -> Response<Body> {
    refuse_with(message, Body::from)
}

/// [`refuse`] with the body type of the caller's stack.
pub(super) fn refuse_with<B>(message: &'static str, body: impl FnOnce(String) -> B) -> Response<B> {
    let json = serde_json::json!({
        "jsonrpc": "2.0",
        "error": { "code": -32000, "message": message },
    });
    let mut response = Response::new(body(json.to_string()));
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

fn stream_kind<B>(request: &Request<B>) -> Option<StreamKind> {
    if request.method() == Method::GET {
        Some(StreamKind::Get)
    } else if request
        .headers()
        .get(&MCP_METHOD)
        .is_some_and(|m| m.as_bytes() == b"subscriptions/listen")
    {
        Some(StreamKind::Listen)
    } else {
        None
    }
}

/// A POST that may open a legacy session: no session id and not the
/// stateless 2026 protocol (whose requests name their version in a header).
pub(super) fn may_open_session<B>(request: &Request<B>) -> bool {
    request.method() == Method::POST
        && !request.headers().contains_key(&MCP_SESSION_ID)
        && names_legacy_version(request.headers())
}

/// Whether a request is (or may be) of a legacy protocol: it names a 2024 or
/// 2025 version in `MCP-Protocol-Version`, or none (rmcp then assumes
/// 2025-03-26). Stateless 2026 clients always send the header.
pub(super) fn names_legacy_version(headers: &http::HeaderMap) -> bool {
    headers
        .get(&MCP_PROTOCOL_VERSION)
        .is_none_or(|v| v.as_bytes().starts_with(b"2024") || v.as_bytes().starts_with(b"2025"))
}

struct OpenGuard(Arc<AtomicUsize>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Release);
    }
}

/// Puts [`Admission`] in front of a service.
#[derive(Debug, Clone)]
pub(super) struct AdmissionLayer(pub(super) Admission);

impl<S> tower::Layer<S> for AdmissionLayer {
    type Service = Admit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Admit {
            admission: self.0.clone(),
            inner,
        }
    }
}

/// The admission layer's service.
#[derive(Debug, Clone)]
pub(super) struct Admit<S> {
    admission: Admission,
    inner: S,
}

impl<S, B, R> tower::Service<Request<B>> for Admit<S>
where
    S: tower::Service<Request<B>, Response = Response<R>>,
    R: http_body::Body<Data = Bytes> + Unpin + Send + 'static,
    R::Error: Into<axum::BoxError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Admitted<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let admission = &self.admission;
        if admission.lifecycle.phase() >= Phase::Draining {
            let mut response = refuse("server is shutting down; retry the request");
            // Tell the client (or proxy) not to reuse this connection.
            response
                .headers_mut()
                .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
            return Admitted::Refused {
                response: Some(response),
            };
        }
        if admission.open.fetch_add(1, Ordering::AcqRel) >= admission.max {
            admission.open.fetch_sub(1, Ordering::Release);
            return Admitted::Refused {
                response: Some(refuse("server is at capacity; retry the request")),
            };
        }
        if let Some(cap) = &admission.sessions
            && may_open_session(&request)
            && cap.full()
        {
            admission.open.fetch_sub(1, Ordering::Release);
            return Admitted::Refused {
                response: Some(refuse(
                    "server holds its maximum of sessions; retry the request",
                )),
            };
        }
        let open = OpenGuard(admission.open.clone());
        let stream = stream_kind(&request);
        let call = stream.is_none().then(|| admission.in_flight.calls.token());
        Admitted::Running {
            inner: self.inner.call(request),
            guards: Some((open, call)),
            streams: stream.map(|kind| (admission.streams.clone(), kind)),
        }
    }
}

pin_project_lite::pin_project! {
    /// A refusal, or the inner call holding its admission.
    #[project = AdmittedProj]
    pub(super) enum Admitted<F> {
        Refused { response: Option<Response<Body>> },
        Running {
            #[pin]
            inner: F,
            guards: Option<(OpenGuard, Option<TaskTrackerToken>)>,
            streams: Option<(StreamLimits, StreamKind)>,
        },
    }
}

fn is_event_stream(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"))
}

impl<F, R, E> Future for Admitted<F>
where
    F: Future<Output = Result<Response<R>, E>>,
    R: http_body::Body<Data = Bytes> + Unpin + Send + 'static,
    R::Error: Into<axum::BoxError>,
{
    type Output = Result<Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            AdmittedProj::Refused { response } => Poll::Ready(Ok(response
                .take()
                .expect("a refusal is polled to completion once"))),
            AdmittedProj::Running {
                inner,
                guards,
                streams,
            } => {
                let response = std::task::ready!(inner.poll(cx))?;
                let (open, call) = guards.take().expect("polled to completion once");
                let (parts, body) = response.into_parts();
                let body = match streams.take() {
                    Some((limits, kind)) if is_event_stream(&parts.headers) => Body::new(Guarded {
                        inner: limits.wrap(body, kind),
                        _open: open,
                        _tracked: call.or_else(|| Some(limits.open(kind))),
                    }),
                    _ => Body::new(Guarded {
                        inner: body,
                        _open: open,
                        _tracked: call,
                    }),
                };
                Poll::Ready(Ok(Response::from_parts(parts, body)))
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// A body that holds its request's admission until it is finished or dropped.
    struct Guarded<B> {
        #[pin]
        inner: B,
        _open: OpenGuard,
        // A call's token in `InFlight`, or an open stream's in `StreamLimits`.
        _tracked: Option<TaskTrackerToken>,
    }
}

impl<B: http_body::Body> http_body::Body for Guarded<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
