//! `GET /metrics`: Prometheus text exposition. Outside the Host allow-list,
//! like `/health`, since scrapers (the CloudWatch agent, an ADOT collector
//! sidecar, Prometheus) address the task by IP.

use std::sync::Arc;

use axum::{
    extract::State,
    response::{IntoResponse, Response},
};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;

use crate::{
    lifecycle::{Lifecycle, Phase},
    state::StateHealth,
    telemetry::{Telemetry, metrics::ScrapeGauges},
};

/// What a scrape reads besides the counters.
#[derive(Clone, Debug)]
pub struct Scrape {
    /// The counters.
    pub telemetry: Telemetry,
    /// For `mcpship_drain_state`.
    pub lifecycle: Lifecycle,
    /// For `mcpship_legacy_sessions`, when sessions live in this process.
    pub sessions: Option<Arc<LocalSessionManager>>,
    /// For `mcpship_state_backend_up`, when state is shared.
    pub state: Option<StateHealth>,
}

/// The Prometheus text format's content type.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub(super) async fn metrics(State(scrape): State<Scrape>) -> Response {
    let Some(metrics) = scrape.telemetry.metrics() else {
        return http::StatusCode::NOT_FOUND.into_response();
    };
    let legacy_sessions = match &scrape.sessions {
        Some(manager) => manager.sessions.read().await.len() as i64,
        None => 0,
    };
    let drain_state = match scrape.lifecycle.phase() {
        Phase::Starting => 0,
        Phase::Ready => 1,
        Phase::Draining => 2,
        Phase::Stopped => 3,
    };
    // In-process state is always there.
    let state_backend_up = scrape.state.as_ref().is_none_or(StateHealth::is_up);
    let text = metrics.render(&ScrapeGauges {
        legacy_sessions,
        drain_state,
        state_backend_up: i64::from(state_backend_up),
    });
    ([(http::header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response()
}
