//! Sealed legacy sessions (`MCPSHIP_STATE=sealed`): the session's state in
//! its `Mcp-Session-Id`, so any replica with the keys continues it.
//!
//! - A request that may open a session (a POST with no session id and no
//!   2026 protocol version) runs inside a [`Carried`] slot; if rmcp answers
//!   with `Mcp-Session-Id: S`, the `initialize` parameters rmcp stored in the
//!   slot are sealed and the header becomes `S.{kid}.{sealed}`. The body is
//!   not read here: rmcp parses it once, as always.
//! - A request naming `S.{kid}.{sealed}` is opened first. What fails to
//!   verify, or has expired, is answered 404 as rmcp answers an unknown
//!   session, so the client initializes again; otherwise the header becomes
//!   `S` and the opened state waits in the slot for rmcp's `load(S)`.
//! - A `DELETE` that rmcp accepts marks the session ended on this replica:
//!   its id answers 404 here from then on. Other replicas accept it until it
//!   expires, as nothing is shared.
//! - Anything else (the stateless 2026-07-28 protocol) passes straight
//!   through: one header lookup, nothing allocated.
//!
//! See [`crate::state::SealedSessions`] for the format.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header::HeaderName};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use tokio::task::futures::TaskLocalFuture;

use crate::state::{Carried, OpenError, SealError, SealedSessions, carry};

const SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");

type BoxResponse = Response<BoxBody<Bytes, Infallible>>;

/// Seals and opens legacy session ids around rmcp.
#[derive(Debug, Clone)]
pub(super) struct SealedSessionsLayer(pub(super) Arc<SealedSessions>);

impl<S> tower::Layer<S> for SealedSessionsLayer {
    type Service = SealSessions<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SealSessions {
            sealed: self.0.clone(),
            inner,
        }
    }
}

/// The sealed-session layer's service.
#[derive(Debug, Clone)]
pub(super) struct SealSessions<S> {
    sealed: Arc<SealedSessions>,
    inner: S,
}

/// The same answer rmcp gives for a session it does not know.
fn not_found() -> BoxResponse {
    let mut response = Response::new(
        Full::new(Bytes::from_static(b"Not Found: Session not found"))
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() = StatusCode::NOT_FOUND;
    response
}

fn cannot_seal(error: &SealError) -> BoxResponse {
    let (status, message) = match error {
        SealError::TooLarge(_) => (
            StatusCode::BAD_REQUEST,
            "the initialize parameters are too large to carry in a session id",
        ),
        SealError::Internal(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "the session could not be created",
        ),
    };
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "error": { "code": -32603, "message": message },
    });
    let mut response = Response::new(
        Full::new(Bytes::from(body.to_string()))
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

impl<S, B> tower::Service<Request<B>> for SealSessions<S>
where
    S: tower::Service<Request<B>, Response = BoxResponse>,
{
    type Response = BoxResponse;
    type Error = S::Error;
    type Future = Sealing<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        if let Some(value) = request.headers().get(&SESSION_ID) {
            let opened = value
                .to_str()
                .map_err(|_| OpenError::Malformed)
                .and_then(|id| self.sealed.open(id))
                .and_then(|opened| {
                    // A part of a valid header value is one too.
                    let header =
                        HeaderValue::from_str(opened.local).map_err(|_| OpenError::Malformed)?;
                    Ok((
                        opened.local.to_owned(),
                        header,
                        opened.expires_ms,
                        opened.state,
                    ))
                });
            return match opened {
                Ok((local, header, expires_ms, state)) => {
                    request.headers_mut().insert(SESSION_ID, header);
                    let ending = (request.method() == Method::DELETE)
                        .then(|| (self.sealed.clone(), local.clone(), expires_ms));
                    Sealing::Opened {
                        inner: carry(Carried::opened(local, state), self.inner.call(request)),
                        ending,
                    }
                }
                Err(error) => {
                    tracing::debug!(%error, "session id refused");
                    Sealing::Refused {
                        response: Some(not_found()),
                    }
                }
            };
        }
        if super::admission::may_open_session(&request) {
            return Sealing::Opening {
                inner: carry(Carried::default(), self.inner.call(request)),
                sealed: self.sealed.clone(),
            };
        }
        Sealing::Direct {
            inner: self.inner.call(request),
        }
    }
}

pin_project_lite::pin_project! {
    /// The inner call, run with what it needs of the session id.
    #[project = SealingProj]
    pub(super) enum Sealing<F> {
        Direct { #[pin] inner: F },
        Refused { response: Option<BoxResponse> },
        Opened {
            #[pin]
            inner: TaskLocalFuture<std::cell::RefCell<Carried>, F>,
            // A DELETE: the session to remember as ended once rmcp ends it.
            ending: Option<(Arc<SealedSessions>, String, u64)>,
        },
        Opening {
            #[pin]
            inner: TaskLocalFuture<std::cell::RefCell<Carried>, F>,
            sealed: Arc<SealedSessions>,
        },
    }
}

impl<F, E> Future for Sealing<F>
where
    F: Future<Output = Result<BoxResponse, E>>,
{
    type Output = Result<BoxResponse, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            SealingProj::Direct { inner } => inner.poll(cx),
            SealingProj::Opened { inner, ending } => {
                let response = std::task::ready!(inner.poll(cx))?;
                if let Some((sealed, local, expires_ms)) = ending.take()
                    && response.status().is_success()
                {
                    sealed.end(&local, expires_ms);
                }
                Poll::Ready(Ok(response))
            }
            SealingProj::Refused { response } => Poll::Ready(Ok(response
                .take()
                .expect("a refusal is polled to completion once"))),
            SealingProj::Opening { mut inner, sealed } => {
                let mut response = std::task::ready!(inner.as_mut().poll(cx))?;
                let Some(local) = response.headers().get(&SESSION_ID) else {
                    return Poll::Ready(Ok(response));
                };
                let stored = inner
                    .take_value()
                    .and_then(|carried| carried.into_inner().into_stored());
                let sealed_id = match (local.to_str(), stored) {
                    (Ok(local), Some(state)) => sealed.seal(local, &state),
                    _ => Err(SealError::Internal(
                        "rmcp made a session without storing its state".into(),
                    )),
                };
                let header = sealed_id.and_then(|id| {
                    HeaderValue::try_from(id).map_err(|e| SealError::Internal(e.to_string()))
                });
                match header {
                    Ok(header) => {
                        response.headers_mut().insert(SESSION_ID, header);
                        Poll::Ready(Ok(response))
                    }
                    Err(error) => {
                        // The session rmcp made ends with its idle timeout.
                        match &error {
                            SealError::TooLarge(_) => tracing::debug!(%error, "session refused"),
                            SealError::Internal(_) => tracing::error!(%error, "session refused"),
                        }
                        Poll::Ready(Ok(cannot_seal(&error)))
                    }
                }
            }
        }
    }
}
