//! Admission control for `/mcp`: refuse new work while draining, shed load
//! over the concurrency limit, and count calls in flight so a drain knows
//! when they are done.
//!
//! A request counts until its response body has been sent (or dropped), not
//! merely until the handler returns: a legacy call answered over SSE is still
//! running while its stream is open. Long-lived streams (`GET` streams and
//! `subscriptions/listen`) count against the limit but are not "calls": the
//! drain closes them instead of waiting for them.

use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
};

use axum::{
    body::Body,
    extract::{Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use http::{HeaderValue, Method, StatusCode};
use tokio_util::task::{TaskTracker, task_tracker::TaskTrackerToken};

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

/// State of the admission layer.
#[derive(Debug, Clone)]
pub struct Admission {
    lifecycle: Lifecycle,
    in_flight: InFlight,
    open: Arc<AtomicUsize>,
    max: usize,
}

impl Admission {
    pub(super) fn new(lifecycle: Lifecycle, in_flight: InFlight, max: usize) -> Self {
        Self {
            lifecycle,
            in_flight,
            open: Arc::new(AtomicUsize::new(0)),
            max,
        }
    }
}

/// A JSON-RPC error with no id, as the transport spec allows for HTTP-level
/// refusals, plus `Retry-After` so clients and proxies retry elsewhere.
fn refuse(message: &str) -> Response {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "error": { "code": -32000, "message": message },
    });
    let mut response = (
        StatusCode::SERVICE_UNAVAILABLE,
        [(http::header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response();
    response
        .headers_mut()
        .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

fn is_stream(request: &Request) -> bool {
    request.method() == Method::GET
        || request
            .headers()
            .get("mcp-method")
            .is_some_and(|m| m.as_bytes() == b"subscriptions/listen")
}

struct OpenGuard(Arc<AtomicUsize>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Release);
    }
}

pub(super) async fn admit(
    State(admission): State<Admission>,
    request: Request,
    next: Next,
) -> Response {
    if admission.lifecycle.phase() >= Phase::Draining {
        let mut response = refuse("server is shutting down; retry the request");
        // Tell the client (or proxy) not to reuse this connection.
        response
            .headers_mut()
            .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        return response;
    }
    if admission.open.fetch_add(1, Ordering::AcqRel) >= admission.max {
        admission.open.fetch_sub(1, Ordering::Release);
        return refuse("server is at capacity; retry the request");
    }
    let open = OpenGuard(admission.open.clone());
    let call = (!is_stream(&request)).then(|| admission.in_flight.calls.token());
    let response = next.run(request).await;
    let (parts, body) = response.into_parts();
    Response::from_parts(
        parts,
        Body::new(Guarded {
            inner: body,
            _open: open,
            _call: call,
        }),
    )
}

/// A body that holds its request's admission until it is finished or dropped.
struct Guarded {
    inner: Body,
    _open: OpenGuard,
    _call: Option<TaskTrackerToken>,
}

impl http_body::Body for Guarded {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
