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
//! Every command has a short timeout: while Redis is down, calls that need it
//! fail at once with a logged reason instead of hanging, and the connection
//! manager reconnects on its own when Redis is back.

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

use super::SessionLimits;

/// How long any one Redis command may take before it counts as failed.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(1);

/// A connection to Redis and the key layout.
pub struct RedisState {
    client: redis::Client,
    connection: ConnectionManager,
    prefix: String,
    limits: SessionLimits,
}

impl std::fmt::Debug for RedisState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisState")
            .field("prefix", &self.prefix)
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
        })
    }

    fn session_key(&self, id: &str) -> String {
        format!("{}:session:{id}", self.prefix)
    }

    fn events_key(&self, stream: &str) -> String {
        format!("{}:events:{stream}", self.prefix)
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
}

fn logged<E: std::fmt::Display>(doing: &'static str) -> impl Fn(E) -> E {
    move |e| {
        tracing::error!(error = %e, "shared state (Redis) failed while {doing}");
        e
    }
}

#[async_trait::async_trait]
impl SessionStore for RedisState {
    async fn load(&self, session_id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        let mut connection = self.connection.clone();
        let key = self.session_key(session_id);
        // Reading a session keeps it alive for another idle period.
        let (json, _): (Option<String>, bool) = redis::pipe()
            .get(&key)
            .expire(&key, self.limits.idle_timeout.as_secs() as i64)
            .query_async(&mut connection)
            .await
            .map_err(logged("loading a session"))?;
        match json {
            None => Ok(None),
            Some(json) => Ok(Some(serde_json::from_str(&json)?)),
        }
    }

    async fn store(&self, session_id: &str, state: &SessionState) -> Result<(), SessionStoreError> {
        let mut connection = self.connection.clone();
        let json = serde_json::to_string(state)?;
        connection
            .set_ex::<_, _, ()>(
                self.session_key(session_id),
                json,
                self.limits.idle_timeout.as_secs(),
            )
            .await
            .map_err(logged("storing a session"))?;
        Ok(())
    }

    async fn delete(&self, session_id: &str) -> Result<(), SessionStoreError> {
        let mut connection = self.connection.clone();
        connection
            .del::<_, ()>(self.session_key(session_id))
            .await
            .map_err(logged("deleting a session"))?;
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

#[async_trait::async_trait]
impl EventStore for RedisState {
    async fn store_event(
        &self,
        stream_id: &str,
        event: &ServerSseMessage,
    ) -> Result<EventId, EventStoreError> {
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
            .map_err(logged("logging an SSE event"))?;
        Ok(format!("{stream_id}/{entry}"))
    }

    async fn replay_events_after(
        &self,
        last_event_id: &str,
    ) -> Result<EventStream, EventStoreError> {
        let Some((stream_id, entry)) = last_event_id.rsplit_once('/') else {
            return Err(format!("{last_event_id:?} is not an event id of this server").into());
        };
        let mut connection = self.connection.clone();
        let reply: StreamRangeReply = redis::cmd("XRANGE")
            .arg(self.events_key(stream_id))
            .arg(format!("({entry}"))
            .arg("+")
            .query_async(&mut connection)
            .await
            .map_err(logged("replaying SSE events"))?;
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
            events.push(event);
        }
        Ok(Box::pin(futures::stream::iter(events)))
    }
}
