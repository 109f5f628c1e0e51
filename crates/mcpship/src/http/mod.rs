//! The HTTP surface: routes and the layers around the MCP endpoint.
//!
//! ```text
//! /health, /ready           no Host check, no auth: load balancers send the task IP as Host
//! /metrics                  Prometheus (when MCPSHIP_METRICS is on); no Host check either
//! /mcp  request id          x-request-id in, out and in the handler's extensions
//!       → access log        log line, RED metrics and the HTTP span (tracing on) per request
//!       → admission         refuse when draining (503, retryable), shed over the
//!                           concurrency limit (503), track calls for the drain
//!       → compat            plain-JSON clients: fill in Accept, answer JSON not SSE
//!       → state outage      (legacy sessions in Redis) refuse legacy requests with
//!                           503 while Redis is down; rmcp's 500s from an outage too
//!       → stream ids        (legacy sessions in Redis) a resumable first event id
//!                           on standalone GET streams
//!       → sealed sessions   MCPSHIP_STATE=sealed only: open the session id (404 when it
//!                           fails to verify), seal a new session's id; innermost, so
//!                           rmcp and everything outside see the same request
//!       → rmcp              Host/Origin (403), body limit (413), the protocol
//! ```
//!
//! The state layers sit inside admission (a draining or full server refuses
//! first, and their refusals count as calls for the drain) and inside compat
//! (a plain-JSON client gets their 503 as it is), right in front of rmcp,
//! whose responses they inspect.
//! Layers are listed outermost first; each is one concern in its own file.
//! They are plain tower services with named futures rather than
//! `axum::middleware::from_fn`, which boxes a future per layer per request.

pub mod access_log;
mod admission;
mod compat;
pub(crate) mod header_names;
mod health;
pub mod metrics;
mod request_id;
mod sealed_session;
pub(crate) mod sse;
mod state_outage;
mod stream_ids;
pub(crate) mod stream_limit;

use std::sync::Arc;

use axum::{Router, routing::get};
use futures::future::BoxFuture;

pub use admission::{Admission, InFlight, SessionCap};
pub use health::HEALTHY_BODY;

use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;

use crate::{
    lifecycle::Lifecycle,
    state::{RedisState, SealedSessions},
};

/// Legacy sessions kept in Redis: what the state layers need.
#[derive(Debug, Clone)]
pub(crate) struct LegacyState {
    /// The backend, its health and its logs.
    pub(crate) redis: Arc<RedisState>,
    /// This replica's sessions.
    pub(crate) sessions: Arc<LocalSessionManager>,
}

/// Asks whether dependencies (a database, say) are usable, for `/ready`.
pub type ReadinessCheck = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// Builds the application router around an MCP service.
#[allow(clippy::too_many_arguments)]
pub(crate) fn router<S>(
    mcp: S,
    lifecycle: Lifecycle,
    in_flight: InFlight,
    max_concurrent: usize,
    sessions: Option<SessionCap>,
    streams: stream_limit::StreamLimits,
    readiness: Option<ReadinessCheck>,
    scrape: metrics::Scrape,
    state: Option<LegacyState>,
    sealed: Option<Arc<SealedSessions>>,
) -> Router
where
    S: tower::Service<
            http::Request<axum::body::Body>,
            Response = http::Response<
                http_body_util::combinators::BoxBody<bytes::Bytes, std::convert::Infallible>,
            >,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let admission = Admission::new(
        lifecycle.clone(),
        in_flight,
        max_concurrent,
        sessions,
        streams,
    );
    let mcp = tower::ServiceBuilder::new()
        .layer(request_id::RequestIdLayer)
        .layer(access_log::AccessLogLayer::new(scrape.telemetry.clone()))
        .layer(admission::AdmissionLayer(admission))
        .layer(compat::PlainJsonClientsLayer)
        .option_layer(state.as_ref().map(|state| state_outage::StateOutageLayer {
            health: state.redis.health().clone(),
            sessions: state.sessions.clone(),
        }))
        .option_layer(
            state
                .as_ref()
                .map(|state| stream_ids::StreamIdsLayer(state.redis.clone())),
        )
        .option_layer(sealed.map(sealed_session::SealedSessionsLayer))
        .service(mcp);
    let health_state = health::HealthState {
        lifecycle,
        readiness,
    };
    let mut router = Router::new()
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .with_state(health_state)
        .route_service("/mcp", mcp);
    if scrape.telemetry.prometheus() {
        router = router.route("/metrics", get(metrics::metrics).with_state(scrape));
    }
    router
}
