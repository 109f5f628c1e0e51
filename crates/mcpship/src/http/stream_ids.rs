//! A resumable first event on legacy standalone (`GET`) streams when state is
//! in Redis.
//!
//! With an event store set, rmcp opens a standalone stream with a priming
//! event that carries `retry:` but no `id:` (rmcp 3.11.0,
//! `streamable_http_server/tower.rs`, `handle_get`: `ServerSseMessage::retry`
//! where the in-memory case uses `ServerSseMessage::priming("0", ..)`), and
//! its later events carry ids only when something is published to the
//! session. A client whose quiet stream is cut (a drain, the maximum stream
//! age, a load balancer) has no `Last-Event-ID`: it opens a new stream and
//! loses whatever was published while it had none.
//!
//! So before rmcp opens the stream this layer reads the position of the
//! session's standalone log in Redis, and sends it as the stream's first
//! event (`id:` and an empty `data:`, which SSE clients record as their last
//! event id without dispatching anything). A resume after it replays exactly
//! what was logged since, from any replica. Read first, the position may
//! precede an event logged while the stream was being opened: such an event
//! is replayed on resume rather than lost.

use super::header_names::MCP_SESSION_ID;
use std::{
    convert::Infallible,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use futures::future::{BoxFuture, Either};
use http::{Method, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, combinators::BoxBody};

use super::{admission::names_legacy_version, state_outage::unavailable};
use crate::state::RedisState;

type BoxResponse = Response<BoxBody<Bytes, Infallible>>;

/// Gives legacy standalone streams a first event id.
#[derive(Debug, Clone)]
pub(super) struct StreamIdsLayer(pub(super) Arc<RedisState>);

impl<S> tower::Layer<S> for StreamIdsLayer {
    type Service = StreamIds<S>;

    fn layer(&self, inner: S) -> Self::Service {
        StreamIds {
            redis: self.0.clone(),
            inner,
        }
    }
}

/// The stream id layer's service.
#[derive(Debug, Clone)]
pub(super) struct StreamIds<S> {
    redis: Arc<RedisState>,
    inner: S,
}

/// The session of a request that opens a legacy standalone stream (not a
/// resume, which has its ids).
fn opens_standalone_stream<B>(request: &Request<B>) -> Option<String> {
    if request.method() != Method::GET
        || request.headers().contains_key("last-event-id")
        || !names_legacy_version(request.headers())
    {
        return None;
    }
    let session = request.headers().get(&MCP_SESSION_ID)?.to_str().ok()?;
    Some(session.to_owned())
}

impl<S, B> tower::Service<Request<B>> for StreamIds<S>
where
    S: tower::Service<Request<B>, Response = BoxResponse, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = BoxResponse;
    type Error = Infallible;
    type Future = Either<S::Future, BoxFuture<'static, Result<BoxResponse, Infallible>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let Some(session) = opens_standalone_stream(&request) else {
            return Either::Left(self.inner.call(request));
        };
        // The ready service goes with the request; a clone takes its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let redis = self.redis.clone();
        Either::Right(Box::pin(async move {
            let Ok(position) = redis.standalone_stream_position(&session).await else {
                // A stream opened now could log nothing: refuse it, as every
                // legacy request is refused while Redis is away.
                return Ok(unavailable());
            };
            let response = inner.call(request).await?;
            let is_stream = response.status() == StatusCode::OK
                && response
                    .headers()
                    .get(http::header::CONTENT_TYPE)
                    .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
            if !is_stream {
                return Ok(response);
            }
            let first = Bytes::from(format!("id: {position}\ndata:\n\n"));
            Ok(response.map(|body| {
                Prefixed {
                    first: Some(first),
                    inner: body,
                }
                .boxed()
            }))
        }))
    }
}

/// A body that sends one frame before another body.
struct Prefixed {
    first: Option<Bytes>,
    inner: BoxBody<Bytes, Infallible>,
}

impl http_body::Body for Prefixed {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.inner.is_end_stream()
    }
}
