//! Legacy requests while shared state (Redis) is down: a fast, retryable
//! refusal instead of a slow `500` with rmcp's internals in the body.
//!
//! Installed only when legacy sessions live in Redis. Stateless (2026-07-28)
//! requests need no shared state: they pass after one header lookup and are
//! never refused or rewritten here.
//!
//! A legacy request (one naming a 2024/2025 protocol version, or none):
//! - while [`StateHealth`] says Redis is down, is refused before rmcp sees it
//!   with `503`, `Retry-After: 1` and a JSON-RPC error, like the admission
//!   layer's refusals. Nothing ran, so the client may retry anywhere.
//! - that ran into the outage (Redis went down during it): rmcp's `500`
//!   (a session that could not be restored, a reply stream whose first event
//!   could not be logged) becomes the same `503`. rmcp logs the event store
//!   before it hands the message to the handler, so nothing ran here either.
//! - an `initialize` whose answer is a `200` but whose session could not be
//!   stored (rmcp logs that and answers `200` anyway, leaving a session no
//!   other replica can restore) becomes the same `503`, and the session this
//!   replica made for it is closed.
//!
//! Sessions held in this replica's memory are refused too: with an event
//! store, rmcp logs every SSE event before sending it and resumes only from
//! the store, so a reply could not be logged, and an event id handed out
//! without Redis could never be resumed from. One rule for every legacy
//! request, whichever replica it lands on, and nothing that runs half-way.

use super::header_names::MCP_SESSION_ID;
use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use rmcp::transport::streamable_http_server::session::{
    SessionManager, local::LocalSessionManager,
};

use super::admission::{names_legacy_version, refuse_with};
use crate::state::StateHealth;

type BoxResponse = Response<BoxBody<Bytes, Infallible>>;

/// What the refusal says.
pub(super) const UNAVAILABLE: &str = "shared session state is unavailable; retry shortly";

/// The refusal: `503`, `Retry-After: 1`, a JSON-RPC error.
pub(super) fn unavailable() -> BoxResponse {
    refuse_with(UNAVAILABLE, |json| Full::from(json).boxed())
}

/// Puts the outage check in front of rmcp.
#[derive(Debug, Clone)]
pub(super) struct StateOutageLayer {
    /// Whether Redis answers.
    pub(super) health: StateHealth,
    /// Where a refused `initialize` left its session.
    pub(super) sessions: Arc<LocalSessionManager>,
}

impl<S> tower::Layer<S> for StateOutageLayer {
    type Service = StateOutage<S>;

    fn layer(&self, inner: S) -> Self::Service {
        StateOutage {
            layer: self.clone(),
            inner,
        }
    }
}

/// The outage layer's service.
#[derive(Debug, Clone)]
pub(super) struct StateOutage<S> {
    layer: StateOutageLayer,
    inner: S,
}

fn is_legacy<B>(request: &Request<B>) -> bool {
    match *request.method() {
        Method::POST | Method::GET => names_legacy_version(request.headers()),
        Method::DELETE => true,
        _ => false,
    }
}

impl<S, B> tower::Service<Request<B>> for StateOutage<S>
where
    S: tower::Service<Request<B>, Response = BoxResponse>,
{
    type Response = BoxResponse;
    type Error = S::Error;
    type Future = Outcome<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if !is_legacy(&request) {
            return Outcome::Passed {
                inner: self.inner.call(request),
            };
        }
        let health = &self.layer.health;
        let outages = health.outages();
        if !health.is_up() {
            return Outcome::Refused {
                response: Some(unavailable()),
            };
        }
        let initialize =
            request.method() == Method::POST && !request.headers().contains_key(&MCP_SESSION_ID);
        Outcome::Watched {
            inner: self.inner.call(request),
            outages,
            initialize,
            layer: self.layer.clone(),
        }
    }
}

pin_project_lite::pin_project! {
    /// Refused at once, passed through, or watched for a failure of state.
    #[project = OutcomeProj]
    pub(super) enum Outcome<F> {
        Refused { response: Option<BoxResponse> },
        Passed { #[pin] inner: F },
        Watched {
            #[pin]
            inner: F,
            outages: u64,
            initialize: bool,
            layer: StateOutageLayer,
        },
    }
}

impl<F, E> Future for Outcome<F>
where
    F: Future<Output = Result<BoxResponse, E>>,
{
    type Output = Result<BoxResponse, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            OutcomeProj::Refused { response } => Poll::Ready(Ok(response
                .take()
                .expect("a refusal is polled to completion once"))),
            OutcomeProj::Passed { inner } => inner.poll(cx),
            OutcomeProj::Watched {
                inner,
                outages,
                initialize,
                layer,
            } => {
                let response = std::task::ready!(inner.poll(cx))?;
                if !layer.health.failed_since(*outages) {
                    return Poll::Ready(Ok(response));
                }
                match response.status() {
                    StatusCode::INTERNAL_SERVER_ERROR => Poll::Ready(Ok(unavailable())),
                    status if *initialize && status.is_success() => {
                        // Its session may not be in Redis: another replica
                        // could not restore it. Close it here and refuse.
                        if let Some(id) = response
                            .headers()
                            .get(&MCP_SESSION_ID)
                            .and_then(|v| v.to_str().ok())
                        {
                            let sessions = layer.sessions.clone();
                            let id = id.into();
                            tokio::spawn(async move {
                                let _ = sessions.close_session(&id).await;
                            });
                        }
                        Poll::Ready(Ok(unavailable()))
                    }
                    _ => Poll::Ready(Ok(response)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use tower::{Layer, ServiceExt};

    use super::*;

    fn rmcp_500() -> BoxResponse {
        let mut response = Response::new(
            Full::from("Encounter an error when get session: Session error: Event store error")
                .boxed(),
        );
        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        response
    }

    fn layer(health: &StateHealth) -> StateOutageLayer {
        StateOutageLayer {
            health: health.clone(),
            sessions: Arc::new(LocalSessionManager::default()),
        }
    }

    fn legacy_call() -> Request<()> {
        Request::post("/mcp")
            .header("mcp-session-id", "s")
            .header("mcp-protocol-version", "2025-06-18")
            .body(())
            .unwrap()
    }

    async fn body_text(response: BoxResponse) -> String {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn legacy_requests_are_refused_at_once_while_state_is_down() {
        let health = StateHealth::new();
        health.mark_down(&"test");
        let service = layer(&health).layer(tower::service_fn(|_: Request<()>| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok::<_, Infallible>(rmcp_500())
        }));
        let started = Instant::now();
        let response = service.oneshot(legacy_call()).await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()["retry-after"], "1");
        assert!(body_text(response).await.contains(UNAVAILABLE));
    }

    #[tokio::test]
    async fn a_500_from_an_outage_during_the_request_becomes_a_503() {
        let health = StateHealth::new();
        let during = health.clone();
        let service = layer(&health).layer(tower::service_fn(move |_: Request<()>| {
            let during = during.clone();
            async move {
                during.mark_down(&"connection refused");
                during.mark_up();
                Ok::<_, Infallible>(rmcp_500())
            }
        }));
        let response = service.oneshot(legacy_call()).await.unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let text = body_text(response).await;
        assert!(!text.contains("Encounter"), "{text}");
    }

    #[tokio::test]
    async fn other_500s_and_stateless_requests_pass_untouched() {
        let health = StateHealth::new();
        let service = layer(&health).layer(tower::service_fn(|_: Request<()>| async {
            Ok::<_, Infallible>(rmcp_500())
        }));
        let response = service.clone().oneshot(legacy_call()).await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);

        health.mark_down(&"test");
        let stateless = Request::post("/mcp")
            .header("mcp-protocol-version", "2026-07-28")
            .body(())
            .unwrap();
        let response = service.oneshot(stateless).await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
