//! Plain JSON clients on `/mcp`.
//!
//! The transport spec has clients accept both `application/json` and
//! `text/event-stream`, and rmcp answers 406 otherwise. Health probes and
//! deploy smoke tests written with a bare HTTP library send no `Accept` (or
//! `*/*`, or only JSON) and expect a JSON body. For those requests this layer
//! fills `Accept` in, and if rmcp still answers with an SSE stream (legacy
//! sessions always do), it reads the stream up to the JSON-RPC response and
//! returns that as `application/json`, keeping status and headers such as
//! `Mcp-Session-Id`. Clients that accept SSE are not touched.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use futures::future::BoxFuture;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Either, Full};

use super::sse::{find_event_end, response_in_event};

const BOTH: HeaderValue = HeaderValue::from_static("application/json, text/event-stream");
/// The most SSE this layer buffers looking for a response; a larger reply is
/// better served to a client that reads SSE.
const MAX_BUFFERED: usize = 16 * 1024 * 1024;

/// The inner body untouched, or a JSON body read out of an SSE reply.
pub(super) type CompatBody<B> = Either<B, Full<Bytes>>;

/// What the client's `Accept` allows.
fn accepts<B>(request: &Request<B>) -> (bool, bool) {
    let mut json = false;
    let mut sse = false;
    for value in request.headers().get_all(header::ACCEPT) {
        let Ok(value) = value.to_str() else { continue };
        for range in value.split(',') {
            let essence = range.split(';').next().unwrap_or("").trim();
            if essence.eq_ignore_ascii_case("application/json") {
                json = true;
            } else if essence.eq_ignore_ascii_case("text/event-stream") {
                sse = true;
            } else if essence == "*/*" || essence.eq_ignore_ascii_case("application/*") {
                json = true;
            }
        }
    }
    (json, sse)
}

/// Serves plain JSON clients.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct PlainJsonClientsLayer;

impl<S> tower::Layer<S> for PlainJsonClientsLayer {
    type Service = PlainJsonClients<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PlainJsonClients { inner }
    }
}

#[derive(Debug, Clone)]
pub(super) struct PlainJsonClients<S> {
    inner: S,
}

impl<S, B, R> tower::Service<Request<B>> for PlainJsonClients<S>
where
    S: tower::Service<Request<B>, Response = Response<R>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    R: http_body::Body<Data = Bytes> + Unpin + Send + 'static,
    R::Error: std::fmt::Display,
{
    type Response = Response<CompatBody<R>>;
    type Error = S::Error;
    type Future = Compat<S::Future, R, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        if request.method() != Method::POST {
            return Compat::Direct {
                inner: self.inner.call(request),
            };
        }
        let (json, sse) = accepts(&request);
        if sse && json {
            return Compat::Direct {
                inner: self.inner.call(request),
            };
        }
        request.headers_mut().insert(header::ACCEPT, BOTH);
        let reply = self.inner.call(request);
        Compat::Converting {
            inner: Box::pin(async move {
                let response = reply.await?;
                if sse || !is_event_stream(&response) {
                    return Ok(response.map(Either::Left));
                }
                Ok(sse_to_json(response).await)
            }),
        }
    }
}

pin_project_lite::pin_project! {
    /// Clients that read SSE pass straight through; the rest are converted.
    #[project = CompatProj]
    pub(super) enum Compat<F, R, E> {
        Direct { #[pin] inner: F },
        Converting { inner: BoxFuture<'static, Result<Response<CompatBody<R>>, E>> },
    }
}

impl<F, R, E> Future for Compat<F, R, E>
where
    F: Future<Output = Result<Response<R>, E>>,
{
    type Output = Result<Response<CompatBody<R>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            CompatProj::Direct { inner } => inner
                .poll(cx)
                .map(|result| result.map(|response| response.map(Either::Left))),
            CompatProj::Converting { inner } => inner.as_mut().poll(cx),
        }
    }
}

fn is_event_stream<R>(response: &Response<R>) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"))
}

/// Reads SSE events until one carries a JSON-RPC response or error.
async fn sse_to_json<R>(response: Response<R>) -> Response<CompatBody<R>>
where
    R: http_body::Body<Data = Bytes> + Unpin,
    R::Error: std::fmt::Display,
{
    let (mut parts, mut body) = response.into_parts();
    let mut buffer: Vec<u8> = Vec::new();
    let mut scanned = 0;
    loop {
        // Scan complete events (terminated by a blank line) for a response.
        while let Some(end) = find_event_end(&buffer[scanned..]) {
            let event = &buffer[scanned..scanned + end];
            scanned += end;
            if let Some(message) = response_in_event(event) {
                parts.headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                parts.headers.remove(header::CONTENT_LENGTH);
                parts.headers.remove(header::CACHE_CONTROL);
                parts.headers.remove("x-accel-buffering");
                return Response::from_parts(parts, Either::Right(Full::from(message)));
            }
        }
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    buffer.extend_from_slice(&data);
                    if buffer.len() > MAX_BUFFERED {
                        break;
                    }
                }
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "response stream failed before its result");
                break;
            }
            None => break,
        }
    }
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "error": { "code": -32603, "message": "the server's stream ended without a response; retry, or accept text/event-stream" },
    });
    let mut response = Response::new(Either::Right(Full::from(body.to_string())));
    *response.status_mut() = StatusCode::BAD_GATEWAY;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
