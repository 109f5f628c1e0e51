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
//! It also holds the [`ChangeFeed`] (module [`changes`]) that carries "list
//! changed" and "resource updated" to every `subscriptions/listen` stream:
//! within the process with `memory`, to every replica through Redis pub/sub
//! with `redis`.
//!
//! A library user who wants to publish from a handler builds the state first
//! and captures the feed in the factory:
//!
//! ```no_run
//! # use rmcp::ServerHandler;
//! # #[derive(Clone)] struct MyServer { changes: mcpship::state::ChangeFeed }
//! # impl ServerHandler for MyServer {}
//! # async fn run() -> anyhow::Result<()> {
//! let config = mcpship::ServeConfig::default();
//! let state = mcpship::state::SharedState::from_config(&config).await?;
//! let changes = state.changes.clone();
//! mcpship::Server::new(config, move || MyServer { changes: changes.clone() })
//!     .with_state(state)
//!     .run_until_signal()
//!     .await?;
//! // In a handler: self.changes.publish([Change::ToolsListChanged]).await
//! # Ok(()) }
//! ```

pub mod changes;
mod redis;

use std::{sync::Arc, time::Duration};

use rmcp::transport::streamable_http_server::session::{
    local::{LocalSessionManager, SessionConfig},
    store::{EventStore, SessionStore},
};

pub use self::{
    changes::{Change, ChangeFeed, ChangeReceiver, PublishError},
    redis::RedisState,
};
use crate::config::{ServeConfig, redact_url};

/// How long a replica waits at start for Redis to answer.
const REDIS_START_WAIT: Duration = Duration::from_secs(15);
/// How long a replica waits at start for its change-feed subscription; past
/// it the replica starts anyway and the subscriber keeps trying.
const SUBSCRIBE_START_WAIT: Duration = Duration::from_secs(5);

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

/// The stores rmcp uses for legacy sessions, and the change feed.
#[derive(Clone, Default)]
pub struct SharedState {
    /// Where `initialize` parameters are kept so another replica can restore
    /// the session; `None` keeps sessions on the replica that made them.
    pub sessions: Option<Arc<dyn SessionStore>>,
    /// Where SSE events are logged for `Last-Event-ID` resumption.
    pub events: Option<Arc<dyn EventStore>>,
    /// Where changes are published for `subscriptions/listen` streams.
    pub changes: ChangeFeed,
}

impl std::fmt::Debug for SharedState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedState")
            .field("sessions", &self.sessions.is_some())
            .field("events", &self.events.is_some())
            .field("changes", &self.changes)
            .finish()
    }
}

impl SharedState {
    /// State kept in this process.
    pub fn memory() -> Self {
        Self::default()
    }

    /// State kept in Redis, changes shared through it. Starts the change
    /// feed's subscriber, so it must be called within a Tokio runtime.
    pub fn redis(redis: Arc<RedisState>) -> Self {
        Self {
            changes: ChangeFeed::redis(&redis),
            sessions: Some(redis.clone()),
            events: Some(redis),
        }
    }

    /// The state `config` names (`MCPSHIP_STATE`). With Redis this connects,
    /// waiting a bounded time for Redis to answer and for the change feed to
    /// subscribe.
    pub async fn from_config(config: &ServeConfig) -> anyhow::Result<Self> {
        match config.state {
            StateBackend::Memory => Ok(Self::memory()),
            StateBackend::Redis => {
                let redis = connect_redis(config, REDIS_START_WAIT).await?;
                tracing::info!(
                    url = %redact_url(config.redis_url.as_deref().unwrap_or_default()),
                    prefix = %config.redis_prefix,
                    "shared state in Redis"
                );
                let state = Self::redis(Arc::new(redis));
                if !state.changes.wait_subscribed(SUBSCRIBE_START_WAIT).await {
                    tracing::warn!(
                        "change feed not subscribed to Redis yet; starting anyway, \
                         listen streams get changes from other replicas once it is"
                    );
                }
                Ok(state)
            }
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

/// Connects to the Redis `config` names, waiting up to `wait` for it.
pub async fn connect_redis(config: &ServeConfig, wait: Duration) -> anyhow::Result<RedisState> {
    let url = config
        .redis_url
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("MCPSHIP_STATE=redis needs MCPSHIP_REDIS_URL"))?;
    let limits = SessionLimits::from_config(config);
    Ok(RedisState::connect(url, &redact_url(url), &config.redis_prefix, limits, wait).await?)
}

impl SessionLimits {
    /// The limits `config` sets.
    pub fn from_config(config: &ServeConfig) -> Self {
        Self {
            idle_timeout: config.session_idle_timeout,
            event_log_len: config.event_log_len,
            event_log_ttl: config.event_log_ttl,
        }
    }
}
