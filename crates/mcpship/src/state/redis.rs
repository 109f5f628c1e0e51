//! Redis backend: legacy sessions and SSE event logs shared by all replicas.
//!
//! Keys (all under the configured prefix):
//! - `{prefix}:session:{id}`: the session's `initialize` parameters (JSON),
//!   expiring after the session idle timeout and refreshed on restore;
//! - `{prefix}:events:{stream}`: a Redis stream per SSE stream, capped at the
//!   configured length (`XADD MAXLEN ~`) and expiring after its last event.
//!
//! - `{prefix}:changes`: the pub/sub channel of the change feed (see
//!   [`super::changes`]).
//!
//! An event id is `{stream}/{entry}`: the stream's key and Redis's own entry
//! id, so a `Last-Event-ID` arriving at any replica finds its log, and replay
//! returns exactly the entries after it, in order, once.
//!
//! Every command has a short timeout. A command that fails because Redis is
//! unreachable marks the backend down ([`StateHealth`]): from then on every
//! call fails at once without touching Redis, the HTTP layer refuses legacy
//! requests with a retryable `503`, and a background probe ([`RedisState::probe`])
//! PINGs until Redis answers and marks it up again. The connection manager
//! reconnects on its own meanwhile.
//!
//! Replay follows the log: after the events already logged, the stream stays
//! open and delivers events appended later by any replica (polled with
//! `XRANGE`, never a blocking read on the shared connection), until a request
//! stream's reply has been delivered, nothing new came for the session idle
//! timeout, Redis fails, or the client goes away.

use std::time::Duration;

use redis::{AsyncCommands, aio::ConnectionManager, streams::StreamRangeReply};
use rmcp::{
    model::ServerJsonRpcMessage,
    transport::{
        common::server_side_http::ServerSseMessage,
        streamable_http_server::session::store::{
            EventId, EventStore, EventStoreError, EventStream, SessionState, SessionStore,
            SessionStoreError,
        },
    },
};
use tokio_util::sync::CancellationToken;

use super::{SessionLimits, StateHealth};

/// How long any one Redis command may take before it counts as failed.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(1);
/// How often the probe PINGs while Redis answers: an outage nobody's request
/// ran into is noticed within this.
const PROBE_EVERY_UP: Duration = Duration::from_secs(1);
/// How often the probe PINGs while Redis is down: the delay between Redis
/// coming back and legacy requests being served again.
const PROBE_EVERY_DOWN: Duration = Duration::from_millis(250);
/// How long a probe PING may take.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
/// How often a replay that follows its log asks for new entries.
const FOLLOW_POLL: Duration = Duration::from_millis(200);
/// Entries read per poll while following.
const FOLLOW_BATCH: usize = 100;
/// rmcp names a session's standalone (GET) stream `{session id}:common`
/// (`LocalSessionManager`, rmcp `session/local.rs`, `CachedTx::new_common`);
/// every other stream carries one request's reply.
const STANDALONE_SUFFIX: &str = ":common";

/// A connection to Redis and the key layout; clones share the connection
/// and the health flag.
#[derive(Clone)]
pub struct RedisState {
    client: redis::Client,
    connection: ConnectionManager,
    prefix: String,
    limits: SessionLimits,
    health: StateHealth,
}

impl std::fmt::Debug for RedisState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisState")
            .field("prefix", &self.prefix)
            .field("up", &self.health.is_up())
            .finish_non_exhaustive()
    }
}

/// Why Redis could not be used at start.
#[derive(Debug, thiserror::Error)]
#[error("cannot use Redis at {url}: {source}")]
pub struct ConnectError {
    url: String,
    source: redis::RedisError,
}

/// Why a shared state operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Redis is unreachable (now, or known to be since an earlier command).
    #[error("shared state (Redis) is unavailable")]
    Unavailable,
    /// Redis answered with an error.
    #[error("shared state (Redis) failed: {0}")]
    Redis(redis::RedisError),
    /// What was stored cannot be read back.
    #[error("shared state holds an unreadable entry: {0}")]
    Corrupt(#[from] serde_json::Error),
    /// An event id that names no log of this server.
    #[error("{0:?} is not an event id of this server")]
    UnknownEventId(String),
}

/// Whether an error means Redis cannot be reached (rather than that it
/// refused one command).
fn is_outage(e: &redis::RedisError) -> bool {
    use redis::ErrorKind;
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || matches!(
            e.kind(),
            ErrorKind::BusyLoadingError
                | ErrorKind::TryAgain
                | ErrorKind::ClusterDown
                | ErrorKind::MasterDown
                | ErrorKind::ReadOnly
        )
}

impl RedisState {
    /// Connects, retrying for up to `wait` so a replica that starts a moment
    /// before Redis does not fail. `redacted_url` is what errors show.
    pub async fn connect(
        url: &str,
        redacted_url: &str,
        prefix: &str,
        limits: SessionLimits,
        wait: Duration,
    ) -> Result<Self, ConnectError> {
        let fail = |source| ConnectError {
            url: redacted_url.to_owned(),
            source,
        };
        let client = redis::Client::open(url).map_err(fail)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(COMMAND_TIMEOUT)
            .set_response_timeout(COMMAND_TIMEOUT)
            .set_number_of_retries(1);
        let deadline = tokio::time::Instant::now() + wait;
        let connection = loop {
            let attempt = async {
                let mut connection =
                    ConnectionManager::new_with_config(client.clone(), config.clone()).await?;
                redis::cmd("PING")
                    .query_async::<String>(&mut connection)
                    .await?;
                Ok::<_, redis::RedisError>(connection)
            };
            match attempt.await {
                Ok(connection) => break connection,
                Err(e) if tokio::time::Instant::now() < deadline => {
                    tracing::warn!(error = %e, url = redacted_url, "Redis not reachable yet; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => return Err(fail(e)),
            }
        };
        Ok(Self {
            client,
            connection,
            prefix: prefix.to_owned(),
            limits,
            health: StateHealth::new(),
        })
    }

    fn session_key(&self, id: &str) -> String {
        format!("{}:session:{id}", self.prefix)
    }

    fn events_key(&self, stream: &str) -> String {
        format!("{}:events:{stream}", self.prefix)
    }

    /// Whether Redis answers, as the last command or probe found.
    pub fn health(&self) -> &StateHealth {
        &self.health
    }

    /// The client, for connections of their own (the change feed's subscriber).
    pub(crate) fn client(&self) -> &redis::Client {
        &self.client
    }

    /// The shared, multiplexed connection.
    pub(crate) fn connection(&self) -> &ConnectionManager {
        &self.connection
    }

    /// The pub/sub channel of the change feed.
    pub fn changes_channel(&self) -> String {
        format!("{}:changes", self.prefix)
    }

    /// Whether Redis answers now.
    pub async fn ping(&self) -> Result<(), redis::RedisError> {
        let mut connection = self.connection.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
            .map(drop)
    }

    /// PINGs Redis until `stop` is cancelled: every second while it answers
    /// (so an outage no request ran into is noticed), every 250 ms while it
    /// does not (so service resumes soon after Redis does).
    pub async fn probe(&self, stop: CancellationToken) {
        loop {
            let every = if self.health.is_up() {
                PROBE_EVERY_UP
            } else {
                PROBE_EVERY_DOWN
            };
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
            match tokio::time::timeout(PROBE_TIMEOUT, self.ping()).await {
                Ok(Ok(())) => self.health.mark_up(),
                Ok(Err(e)) if is_outage(&e) => self.health.mark_down(&e),
                // Redis answered, if with an error: it is reachable.
                Ok(Err(_)) => self.health.mark_up(),
                Err(_) => self.health.mark_down(&"no answer to PING within 500 ms"),
            }
        }
    }

    /// Fails at once while Redis is known to be down: a request then does not
    /// wait for a reconnect attempt to learn what the flag already says.
    fn available(&self) -> Result<(), StateError> {
        if self.health.is_up() {
            Ok(())
        } else {
            Err(StateError::Unavailable)
        }
    }

    /// Turns a failed command into an error, marking Redis down when it is
    /// unreachable. An outage is logged once (by [`StateHealth`]), not per
    /// command; any other failure is logged here.
    fn failed(&self, doing: &'static str) -> impl Fn(redis::RedisError) -> StateError + '_ {
        move |e| {
            if is_outage(&e) {
                self.health.mark_down(&e);
                tracing::debug!(error = %e, "shared state (Redis) unreachable while {doing}");
                StateError::Unavailable
            } else {
                tracing::error!(error = %e, "shared state (Redis) failed while {doing}");
                StateError::Redis(e)
            }
        }
    }

    /// The event id that stands for "everything after now" in a session's
    /// standalone (GET) stream log: its newest entry, or the start of the log.
    ///
    /// rmcp sends a standalone stream's first (priming) event without an id
    /// when an event store is set, and its later events only when something
    /// is published, so a client that loses the stream before then has no
    /// `Last-Event-ID` to resume with. Read before the stream is opened, this
    /// id lets it resume without missing an event logged in between.
    pub async fn standalone_stream_position(&self, session_id: &str) -> Result<String, StateError> {
        self.available()?;
        let stream_id = format!("{session_id}{STANDALONE_SUFFIX}");
        let mut connection = self.connection.clone();
        let reply: StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(self.events_key(&stream_id))
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut connection)
            .await
            .map_err(self.failed("reading a stream's position"))?;
        let entry = reply.ids.first().map_or("0-0", |item| item.id.as_str());
        Ok(format!("{stream_id}/{entry}"))
    }

    /// Entries of a stream's log after `entry`, at most `count`.
    async fn events_after(
        &self,
        stream_id: &str,
        entry: &str,
        count: Option<usize>,
    ) -> Result<Vec<(String, ServerSseMessage)>, StateError> {
        self.available()?;
        let mut connection = self.connection.clone();
        let mut command = redis::cmd("XRANGE");
        command
            .arg(self.events_key(stream_id))
            .arg(format!("({entry}"))
            .arg("+");
        if let Some(count) = count {
            command.arg("COUNT").arg(count);
        }
        let reply: StreamRangeReply = command
            .query_async(&mut connection)
            .await
            .map_err(self.failed("replaying SSE events"))?;
        let mut events = Vec::with_capacity(reply.ids.len());
        for item in reply.ids {
            let Some(redis::Value::BulkString(bytes)) = item.map.get("e") else {
                continue;
            };
            let logged_event: LoggedEvent = serde_json::from_slice(bytes)?;
            let mut event = ServerSseMessage::default();
            event.event_id = Some(format!("{stream_id}/{}", item.id));
            event.message = logged_event.message.map(std::sync::Arc::new);
            event.retry = logged_event.retry_ms.map(Duration::from_millis);
            events.push((item.id, event));
        }
        Ok(events)
    }
}

#[async_trait::async_trait]
impl SessionStore for RedisState {
    async fn load(&self, session_id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        self.available()?;
        let mut connection = self.connection.clone();
        let key = self.session_key(session_id);
        // Reading a session keeps it alive for another idle period.
        let (json, _): (Option<String>, bool) = redis::pipe()
            .get(&key)
            .expire(&key, self.limits.idle_timeout.as_secs() as i64)
            .query_async(&mut connection)
            .await
            .map_err(self.failed("loading a session"))?;
        match json {
            None => Ok(None),
            Some(json) => Ok(Some(serde_json::from_str(&json)?)),
        }
    }

    async fn store(&self, session_id: &str, state: &SessionState) -> Result<(), SessionStoreError> {
        self.available()?;
        let mut connection = self.connection.clone();
        let json = serde_json::to_string(state)?;
        connection
            .set_ex::<_, _, ()>(
                self.session_key(session_id),
                json,
                self.limits.idle_timeout.as_secs(),
            )
            .await
            .map_err(self.failed("storing a session"))?;
        Ok(())
    }

    async fn delete(&self, session_id: &str) -> Result<(), SessionStoreError> {
        self.available()?;
        let mut connection = self.connection.clone();
        connection
            .del::<_, ()>(self.session_key(session_id))
            .await
            .map_err(self.failed("deleting a session"))?;
        Ok(())
    }
}

/// An SSE event as logged: the JSON-RPC message (none for a priming event)
/// and the retry hint.
#[derive(serde::Serialize, serde::Deserialize)]
struct LoggedEvent {
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<ServerJsonRpcMessage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_ms: Option<u64>,
}

/// Whether an event is the reply that ends a request stream.
fn is_reply(event: &ServerSseMessage) -> bool {
    matches!(
        event.message.as_deref(),
        Some(ServerJsonRpcMessage::Response(_) | ServerJsonRpcMessage::Error(_))
    )
}

#[async_trait::async_trait]
impl EventStore for RedisState {
    async fn store_event(
        &self,
        stream_id: &str,
        event: &ServerSseMessage,
    ) -> Result<EventId, EventStoreError> {
        self.available()?;
        let logged_event = LoggedEvent {
            message: event.message.as_deref().cloned(),
            retry_ms: event.retry.map(|r| r.as_millis() as u64),
        };
        let json = serde_json::to_string(&logged_event)?;
        let key = self.events_key(stream_id);
        let mut connection = self.connection.clone();
        let (entry, _): (String, bool) = redis::pipe()
            .cmd("XADD")
            .arg(&key)
            .arg("MAXLEN")
            .arg("~")
            .arg(self.limits.event_log_len)
            .arg("*")
            .arg("e")
            .arg(json)
            .expire(&key, self.limits.event_log_ttl.as_secs() as i64)
            .query_async(&mut connection)
            .await
            .map_err(self.failed("logging an SSE event"))?;
        Ok(format!("{stream_id}/{entry}"))
    }

    /// The events after `last_event_id`, then, unless the reply of a request
    /// stream is among them, the events appended later by any replica.
    ///
    /// The follow polls with `XRANGE` every 200 ms on the shared connection
    /// (a blocking `XREAD` there would stall every other command of this
    /// replica) and ends, closing the SSE stream cleanly:
    /// - on a request stream, once its reply (response or error) is sent;
    /// - when nothing new arrived for the session idle timeout: by then the
    ///   session that would write to the log has idled out;
    /// - when Redis fails, or the client goes away.
    ///
    /// The HTTP layer also ends every stream at `MCPSHIP_MAX_STREAM_AGE` with
    /// a reconnect hint; the client then resumes after its last event.
    async fn replay_events_after(
        &self,
        last_event_id: &str,
    ) -> Result<EventStream, EventStoreError> {
        let Some((stream_id, entry)) = last_event_id.rsplit_once('/') else {
            return Err(StateError::UnknownEventId(last_event_id.to_owned()).into());
        };
        let logged = self.events_after(stream_id, entry, None).await?;
        let standalone = stream_id.ends_with(STANDALONE_SUFFIX);
        if !standalone && let Some(end) = logged.iter().position(|(_, e)| is_reply(e)) {
            let events = logged.into_iter().take(end + 1).map(|(_, e)| e);
            return Ok(Box::pin(futures::stream::iter(events.collect::<Vec<_>>())));
        }
        let (sender, mut receiver) = tokio::sync::mpsc::channel(FOLLOW_BATCH);
        let follow = Follow {
            store: self.clone(),
            stream_id: stream_id.to_owned(),
            last: entry.to_owned(),
            standalone,
        };
        tokio::spawn(follow.run(logged, sender));
        Ok(Box::pin(futures::stream::poll_fn(move |cx| {
            receiver.poll_recv(cx)
        })))
    }
}

/// A replay that keeps delivering a log's new entries.
struct Follow {
    store: RedisState,
    stream_id: String,
    last: String,
    standalone: bool,
}

impl Follow {
    async fn run(
        mut self,
        logged: Vec<(String, ServerSseMessage)>,
        sender: tokio::sync::mpsc::Sender<ServerSseMessage>,
    ) {
        let mut quiet_since = tokio::time::Instant::now();
        let mut batch = logged;
        loop {
            let full = batch.len() >= FOLLOW_BATCH;
            for (entry, event) in batch.drain(..) {
                let reply = !self.standalone && is_reply(&event);
                if sender.send(event).await.is_err() {
                    return;
                }
                self.last = entry;
                quiet_since = tokio::time::Instant::now();
                if reply {
                    return;
                }
            }
            if quiet_since.elapsed() >= self.store.limits.idle_timeout {
                tracing::debug!(stream = %self.stream_id, "replay ends: nothing new for the session idle timeout");
                return;
            }
            if !full {
                tokio::select! {
                    () = sender.closed() => return,
                    () = tokio::time::sleep(FOLLOW_POLL) => {}
                }
            }
            batch = match self
                .store
                .events_after(&self.stream_id, &self.last, Some(FOLLOW_BATCH))
                .await
            {
                Ok(batch) => batch,
                Err(e) => {
                    tracing::debug!(error = %e, stream = %self.stream_id, "replay ends: the log cannot be read");
                    return;
                }
            };
        }
    }
}
