//! `/health` (the process is alive) and `/ready` (send it traffic).

use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::json;

use super::ReadinessCheck;
use crate::lifecycle::{Lifecycle, Phase};

/// The exact body of a healthy `/health`: existing pipelines assert on it.
pub const HEALTHY_BODY: &str = r#"{"status":"healthy"}"#;

#[derive(Clone)]
pub(super) struct HealthState {
    pub(super) lifecycle: Lifecycle,
    pub(super) readiness: Option<ReadinessCheck>,
}

/// Liveness: 200 for as long as the process can answer, draining included,
/// so an orchestrator does not kill a task that is finishing its work.
pub(super) async fn health() -> Response {
    (
        [(http::header::CONTENT_TYPE, "application/json")],
        HEALTHY_BODY,
    )
        .into_response()
}

/// Readiness: 200 only when serving and dependencies answer. Fails at once on
/// SIGTERM so the load balancer stops sending new work.
pub(super) async fn ready(State(state): State<HealthState>) -> Response {
    let phase = state.lifecycle.phase();
    if phase != Phase::Ready {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": phase.as_str() })),
        )
            .into_response();
    }
    if let Some(check) = &state.readiness
        && let Err(why) = check().await
    {
        tracing::warn!(reason = %why, "readiness check failed");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "reason": why })),
        )
            .into_response();
    }
    (StatusCode::OK, Json(json!({ "status": "ready" }))).into_response()
}
