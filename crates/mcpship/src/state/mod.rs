//! Shared state for many replicas: where legacy sessions and their SSE event
//! logs live.
//!
//! `memory` (the default) keeps them in the process, which is right for one
//! replica. `redis` keeps them in Redis, so a 2025-xx client's next request
//! may land on any replica behind a load balancer with no stickiness: the
//! replica restores the session from its stored `initialize` parameters
//! (rmcp's [`SessionStore`]) and resumes an SSE stream from its event log
//! after `Last-Event-ID` (rmcp's [`EventStore`]). Both are rmcp's own seams;
//! this module supplies the backends.
//!
//! While Redis is unreachable, [`StateHealth`] says so: legacy requests are
//! refused with a retryable `503` by the HTTP layer, and stateless requests,
//! which need no shared state, are served as ever.

mod health;
mod redis;

use std::{sync::Arc, time::Duration};

use rmcp::transport::streamable_http_server::session::{
    local::{LocalSessionManager, SessionConfig},
    store::{EventStore, SessionStore},
};

pub use self::{
    health::StateHealth,
    redis::{RedisState, StateError},
};

/// Which backend holds shared state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StateBackend {
    /// In this process only: sessions end with it and stay on it.
    Memory,
    /// In Redis (`MCPSHIP_REDIS_URL`): sessions and streams move between replicas.
    Redis,
}

/// Bounds on per-session state, whatever the backend.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    /// A session with no request for this long is closed and forgotten.
    pub idle_timeout: Duration,
    /// Events kept per SSE stream for resumption.
    pub event_log_len: usize,
    /// How long an event log outlives its last event.
    pub event_log_ttl: Duration,
}

/// The stores rmcp uses for legacy sessions.
#[derive(Clone, Default)]
pub struct SharedState {
    /// Where `initialize` parameters are kept so another replica can restore
    /// the session; `None` keeps sessions on the replica that made them.
    pub sessions: Option<Arc<dyn SessionStore>>,
    /// Where SSE events are logged for `Last-Event-ID` resumption.
    pub events: Option<Arc<dyn EventStore>>,
    /// The Redis backend behind both, when it is Redis: the server probes
    /// it, refuses legacy requests while it is down, and gives standalone
    /// streams a resumable first event id.
    pub redis: Option<Arc<RedisState>>,
}

impl std::fmt::Debug for SharedState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedState")
            .field("sessions", &self.sessions.is_some())
            .field("events", &self.events.is_some())
            .field("redis", &self.redis)
            .finish()
    }
}

impl SharedState {
    /// State kept in this process.
    pub fn memory() -> Self {
        Self::default()
    }

    /// State kept in Redis.
    pub fn redis(redis: Arc<RedisState>) -> Self {
        Self {
            sessions: Some(redis.clone()),
            events: Some(redis.clone()),
            redis: Some(redis),
        }
    }

    /// The session manager for these stores and limits.
    pub fn session_manager(&self, limits: &SessionLimits) -> LocalSessionManager {
        let mut manager = LocalSessionManager::default();
        let mut config = SessionConfig::default();
        config.keep_alive = Some(limits.idle_timeout);
        manager.session_config = config;
        match &self.events {
            Some(events) => manager.with_event_store(events.clone()),
            None => manager,
        }
    }
}
