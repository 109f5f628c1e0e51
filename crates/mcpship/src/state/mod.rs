//! Shared state for many replicas: where legacy sessions and their SSE event
//! logs live, and the keys replicas share.
//!
//! `memory` (the default) keeps them in the process, which is right for one
//! replica. `redis` keeps them in Redis, so a 2025-xx client's next request
//! may land on any replica behind a load balancer with no stickiness: the
//! replica restores the session from its stored `initialize` parameters
//! (rmcp's [`SessionStore`]) and resumes an SSE stream from its event log
//! after `Last-Event-ID` (rmcp's [`EventStore`]). Both are rmcp's own seams;
//! this module supplies the backends. `sealed` needs no store: the session's
//! parameters travel encrypted in its id ([`SealedSessions`]), so sessions
//! move between replicas but SSE streams resume only on the replica that
//! opened them.
//!
//! # MRTR `requestState`
//!
//! A 2026-07-28 multi round-trip request (SEP-2322) hands the client an
//! opaque `requestState` that comes back on the next round, which may land on
//! another replica. Seal it with the codec [`request_state_codec`] builds from
//! `MCPSHIP_REQUEST_STATE_KEYS`, so every replica with the same keys opens
//! what any of them sealed. Build it once at start and hand it to the handler
//! factory:
//!
//! ```no_run
//! # use rmcp::ServerHandler;
//! # #[derive(Clone)] struct MyServer { codec: rmcp::model::RequestStateCodec }
//! # impl ServerHandler for MyServer {}
//! # async fn run() -> anyhow::Result<()> {
//! let config = mcpship::ServeConfig::default();
//! let codec = mcpship::state::request_state_codec(&config)?;
//! let handler = MyServer { codec };
//! mcpship::Server::new(config, move || handler.clone()).run_until_signal().await?;
//! # Ok(()) }
//! ```
//!
//! In the handler, `codec.seal_json_with(&state, &SealOptions::new()
//! .associated_data(tool.as_bytes()).ttl(..))` and `open_json_with` (rmcp's
//! [`RequestStateCodec`]).
//!
//! # Change feed
//!
//! This module also holds the [`ChangeFeed`] (module [`changes`]) that carries "list
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
//!
//! # Outages
//!
//! While Redis is unreachable, [`StateHealth`] says so: legacy requests are
//! refused with a retryable `503` by the HTTP layer, and stateless requests,
//! which need no shared state, are served as ever.

pub mod changes;
mod health;
pub mod keys;
mod redis;
mod sealed;

use std::{
    sync::{Arc, Once, OnceLock},
    time::Duration,
};

use rmcp::{
    model::RequestStateCodec,
    transport::streamable_http_server::session::{
        local::{LocalSessionManager, SessionConfig},
        store::{EventStore, SessionStore},
    },
};

pub use self::keys::{KeyRing, KeyRingError, KeyRingSetting};
pub(crate) use self::sealed::{Carried, carry};
pub use self::sealed::{
    MAX_ENDED_SESSIONS, MAX_SEALED_ID_LEN, OpenError, OpenedId, SESSION_KEY_LEN, SealError,
    SealedSessions,
};
pub use self::{
    changes::{Change, ChangeFeed, ChangeReceiver, PublishError},
    health::StateHealth,
    redis::{RedisState, StateError},
};
use crate::config::{ServeConfig, env, redact_url};

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
    /// In the session id, sealed with `MCPSHIP_SESSION_KEYS`: sessions move
    /// between replicas with no store; streams resume only where they began.
    Sealed,
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
    /// The Redis backend behind both, when it is Redis: the server probes
    /// it, refuses legacy requests while it is down, and gives standalone
    /// streams a resumable first event id.
    pub redis: Option<Arc<RedisState>>,
    /// Seals session state into session ids; set with [`Self::sealed`].
    pub sealed: Option<Arc<SealedSessions>>,
    /// Where changes are published for `subscriptions/listen` streams.
    pub changes: ChangeFeed,
}

impl std::fmt::Debug for SharedState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedState")
            .field("sessions", &self.sessions.is_some())
            .field("events", &self.events.is_some())
            .field("redis", &self.redis)
            .field("sealed", &self.sealed.is_some())
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
            events: Some(redis.clone()),
            redis: Some(redis),
            sealed: None,
        }
    }

    /// State sealed into session ids: no store, no event log.
    pub fn sealed(sealed: Arc<SealedSessions>) -> Self {
        Self {
            sessions: Some(sealed.clone()),
            events: None,
            redis: None,
            sealed: Some(sealed),
            changes: ChangeFeed::default(),
        }
    }

    /// The state `config` names (`MCPSHIP_STATE`). With Redis this connects,
    /// waiting a bounded time for Redis to answer and for the change feed to
    /// subscribe.
    pub async fn from_config(config: &ServeConfig) -> anyhow::Result<Self> {
        if config.session_keys.is_some() && config.state != StateBackend::Sealed {
            tracing::warn!(
                "{} is set but {} is not sealed; the keys are not used",
                env::SESSION_KEYS,
                env::STATE
            );
        }
        match config.state {
            StateBackend::Memory => Ok(Self::memory()),
            StateBackend::Sealed => {
                let keys = config.session_keys.as_ref().ok_or_else(|| {
                    anyhow::anyhow!(
                        "MCPSHIP_STATE=sealed needs {}; {}",
                        env::SESSION_KEYS,
                        keys::GENERATE_HINT
                    )
                })?;
                let invalid = |e: KeyRingError| {
                    anyhow::anyhow!(
                        "{}={:?} is not valid: {e}",
                        env::SESSION_KEYS,
                        keys.redacted()
                    )
                };
                let ring = keys
                    .parse(SESSION_KEY_LEN..=SESSION_KEY_LEN)
                    .map_err(invalid)?;
                let sealed =
                    SealedSessions::new(&ring, config.session_max_lifetime).map_err(invalid)?;
                tracing::info!(
                    sealing_key = ring.sealing_id(),
                    keys = ring.len(),
                    max_lifetime_s = config.session_max_lifetime.as_secs(),
                    "legacy sessions sealed in their ids"
                );
                Ok(Self::sealed(Arc::new(sealed)))
            }
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

/// Bytes of a `requestState` key: at least rmcp's minimum.
pub const REQUEST_STATE_KEY_LEN: std::ops::RangeInclusive<usize> =
    RequestStateCodec::MIN_KEY_LENGTH..=256;

/// The MRTR `requestState` codec the configuration names: sealing with the
/// first key of `MCPSHIP_REQUEST_STATE_KEYS` and opening with any (rmcp's
/// `rs2` format, which carries the key id). Without keys, one random key per
/// process: every codec this process builds shares it, and no other process
/// opens what it sealed (a warning says so when the state backend implies
/// several replicas).
pub fn request_state_codec(config: &ServeConfig) -> Result<RequestStateCodec, KeyRingError> {
    let Some(setting) = &config.request_state_keys else {
        if config.state != StateBackend::Memory {
            static WARNED: Once = Once::new();
            WARNED.call_once(|| {
                tracing::warn!(
                    state = ?config.state,
                    "MCPSHIP_REQUEST_STATE_KEYS is not set: MRTR requestState is sealed with a \
                     random key of this process, so a retry that lands on another replica is \
                     rejected; set the same keys on every replica"
                );
            });
        }
        return RequestStateCodec::try_new(process_key().to_vec())
            .map_err(|e| KeyRingError::Refused(e.to_string()));
    };
    let ring = setting.parse(REQUEST_STATE_KEY_LEN)?;
    RequestStateCodec::new_with_keyring(
        ring.sealing_id(),
        ring.keys().map(|(id, key)| (id.to_owned(), key.to_vec())),
    )
    .map_err(|e| KeyRingError::Refused(e.to_string()))
}

/// This process's own `requestState` key, made on first use.
fn process_key() -> &'static [u8; 32] {
    use chacha20poly1305::aead::Generate;
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    KEY.get_or_init(<[u8; 32]>::generate)
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
