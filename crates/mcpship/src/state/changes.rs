//! The change feed: "a list changed" and "this resource changed", told to
//! every `subscriptions/listen` stream on every replica.
//!
//! A [`ChangeFeed`] is a cheap handle. [`ChangeFeed::publish`] announces
//! changes; [`ChangeFeed::subscribe`] receives them. The runtime subscribes
//! once per open listen stream and forwards what the stream's client opted
//! into (see [`crate::instrument`]); a handler publishes through the handle it
//! captured from [`SharedState::changes`](super::SharedState::changes).
//!
//! Backends, following `MCPSHIP_STATE`:
//! - `memory`: an in-process broadcast channel; nothing leaves the process.
//! - `redis`: the same broadcast, fed also by a Redis pub/sub subscription on
//!   `{prefix}:changes`. A publish is delivered to this process's listeners at
//!   once and sent to Redis for the other replicas; each message names the
//!   handle that sent it, so a replica skips its own on the way back.
//!
//! Wire format on the Redis channel, one JSON object per message:
//! `{"v":1,"origin":"<uuid>","changes":[{"kind":"resource_updated","uri":"docs://a"},…]}`
//! with kinds `tools_list_changed`, `prompts_list_changed`,
//! `resources_list_changed` and `resource_updated`. A publish of many changes
//! is sent as batches of at most [`MAX_BATCH`].
//!
//! Bounds and delivery:
//! - Delivery is at most once. A listener that falls more than
//!   [`LISTENER_BUFFER`] batches behind (a slow client) skips the oldest; the
//!   skip is logged and counted ([`ChangeFeedStats::lagged_batches`]), and
//!   memory stays bounded. Changes published while a replica's subscription
//!   to Redis is down are not seen by that replica's listeners.
//! - The subscriber runs in its own task on its own connection. It answers a
//!   closed or silent connection (no reply to a periodic `PING`) by
//!   reconnecting with exponential backoff, and logs the loss and the
//!   recovery. Nothing on a request path waits for it.
//! - A Redis publish waits at most the command timeout and then fails with a
//!   [`PublishError`] naming the channel; local listeners were told already.
//! - Messages over [`MAX_MESSAGE_BYTES`] or that do not parse are dropped
//!   with a warning: another writer on the channel cannot grow memory here.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use futures::StreamExt as _;
use redis::aio::ConnectionManager;
use rmcp::model::{
    PromptListChangedNotification, ResourceListChangedNotification, ResourceUpdatedNotification,
    ResourceUpdatedNotificationParam, ServerNotification, SubscriptionFilter,
    ToolListChangedNotification,
};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::{CancellationToken, DropGuard};

use super::RedisState;

/// Most changes in one broadcast message or Redis message.
pub const MAX_BATCH: usize = 256;
/// Batches a listener may fall behind before it skips the oldest.
pub const LISTENER_BUFFER: usize = 1024;
/// Largest Redis message the subscriber accepts.
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// Version of the Redis message format.
const WIRE_VERSION: u32 = 1;
/// How often the subscriber checks that its connection still answers.
const HEALTH_CHECK_EVERY: Duration = Duration::from_secs(15);
/// How long a connection attempt or a health check may take.
const REDIS_TIMEOUT: Duration = Duration::from_secs(3);
/// First and longest wait between reconnection attempts.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// One change a listen stream can be told about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Change {
    /// `notifications/tools/list_changed`.
    ToolsListChanged,
    /// `notifications/prompts/list_changed`.
    PromptsListChanged,
    /// `notifications/resources/list_changed`.
    ResourcesListChanged,
    /// `notifications/resources/updated` for one URI.
    ResourceUpdated {
        /// The resource that changed.
        uri: String,
    },
}

impl Change {
    /// A resource changed.
    pub fn resource_updated(uri: impl Into<String>) -> Self {
        Self::ResourceUpdated { uri: uri.into() }
    }

    /// Whether a stream that accepted `filter` wants this change.
    pub fn accepted_by(&self, filter: &SubscriptionFilter) -> bool {
        match self {
            Self::ToolsListChanged => filter.tools_list_changed == Some(true),
            Self::PromptsListChanged => filter.prompts_list_changed == Some(true),
            Self::ResourcesListChanged => filter.resources_list_changed == Some(true),
            Self::ResourceUpdated { uri } => filter
                .resource_subscriptions
                .as_ref()
                .is_some_and(|uris| uris.contains(uri)),
        }
    }

    /// The notification a listen stream sends for this change.
    pub fn notification(&self) -> ServerNotification {
        match self {
            Self::ToolsListChanged => {
                ServerNotification::ToolListChangedNotification(ToolListChangedNotification {
                    method: Default::default(),
                    extensions: Default::default(),
                })
            }
            Self::PromptsListChanged => {
                ServerNotification::PromptListChangedNotification(PromptListChangedNotification {
                    method: Default::default(),
                    extensions: Default::default(),
                })
            }
            Self::ResourcesListChanged => ServerNotification::ResourceListChangedNotification(
                ResourceListChangedNotification {
                    method: Default::default(),
                    extensions: Default::default(),
                },
            ),
            Self::ResourceUpdated { uri } => {
                ServerNotification::ResourceUpdatedNotification(ResourceUpdatedNotification::new(
                    ResourceUpdatedNotificationParam::new(uri.clone()),
                ))
            }
        }
    }
}

/// Changes delivered together.
pub type ChangeBatch = Arc<[Change]>;

/// Why a publish did not reach Redis.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// Redis refused, failed or did not answer in time.
    #[error(
        "cannot publish {count} change(s) to Redis channel {channel:?}: {source}; \
         listeners on other replicas were not told"
    )]
    Redis {
        /// The channel published to.
        channel: String,
        /// How many changes were not sent.
        count: usize,
        /// What Redis said.
        source: redis::RedisError,
    },
    /// A change could not be encoded (not expected for these types).
    #[error("cannot encode changes for Redis: {0}")]
    Encode(#[from] serde_json::Error),
}

/// Counters of a feed, for logs, metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChangeFeedStats {
    /// Batches published through this feed's handles.
    pub published_batches: u64,
    /// Batches received from other processes through Redis.
    pub received_batches: u64,
    /// Batches listeners skipped because they fell behind.
    pub lagged_batches: u64,
    /// Redis messages dropped as too large or malformed.
    pub rejected_messages: u64,
    /// Times the Redis subscription was re-established after a loss.
    pub reconnects: u64,
}

#[derive(Debug, Default)]
struct Counters {
    published_batches: AtomicU64,
    received_batches: AtomicU64,
    lagged_batches: AtomicU64,
    rejected_messages: AtomicU64,
    reconnects: AtomicU64,
}

/// A handle on the change feed. Clones share one feed.
#[derive(Clone)]
pub struct ChangeFeed {
    inner: Arc<Inner>,
}

struct Inner {
    local: broadcast::Sender<ChangeBatch>,
    redis: Option<RedisPublisher>,
    origin: String,
    counters: Arc<Counters>,
    subscribed: watch::Receiver<bool>,
    /// Stops the Redis subscriber when the last handle is dropped.
    _subscriber: Option<DropGuard>,
}

struct RedisPublisher {
    connection: ConnectionManager,
    channel: String,
}

impl std::fmt::Debug for ChangeFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeFeed")
            .field(
                "redis_channel",
                &self.inner.redis.as_ref().map(|r| &r.channel),
            )
            .field("subscribed", &*self.inner.subscribed.borrow())
            .finish_non_exhaustive()
    }
}

impl Default for ChangeFeed {
    fn default() -> Self {
        Self::memory()
    }
}

/// The message on the Redis channel.
#[derive(serde::Serialize, serde::Deserialize)]
struct Envelope<'a> {
    v: u32,
    #[serde(borrow)]
    origin: std::borrow::Cow<'a, str>,
    changes: Vec<Change>,
}

impl ChangeFeed {
    fn build(
        redis: Option<RedisPublisher>,
        subscribed: watch::Receiver<bool>,
        local: broadcast::Sender<ChangeBatch>,
        counters: Arc<Counters>,
        origin: String,
        subscriber: Option<DropGuard>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                local,
                redis,
                origin,
                counters,
                subscribed,
                _subscriber: subscriber,
            }),
        }
    }

    /// A feed within this process only.
    pub fn memory() -> Self {
        let (local, _) = broadcast::channel(LISTENER_BUFFER);
        // A memory feed is always "subscribed": there is nothing to lose.
        let (_, subscribed) = watch::channel(true);
        Self::build(
            None,
            subscribed,
            local,
            Arc::default(),
            uuid::Uuid::new_v4().to_string(),
            None,
        )
    }

    /// A feed shared through Redis: publishes go to `{prefix}:changes`, and a
    /// background task subscribes to it (and keeps resubscribing) for this
    /// process's listeners. Must be called within a Tokio runtime.
    pub fn redis(redis: &RedisState) -> Self {
        let (local, _) = broadcast::channel(LISTENER_BUFFER);
        let (tell, subscribed) = watch::channel(false);
        let counters = Arc::<Counters>::default();
        let origin = uuid::Uuid::new_v4().to_string();
        let stop = CancellationToken::new();
        let channel = redis.changes_channel();
        tokio::spawn(
            Subscriber {
                client: redis.client().clone(),
                channel: channel.clone(),
                origin: origin.clone(),
                local: local.clone(),
                counters: counters.clone(),
                subscribed: tell,
                stop: stop.clone(),
            }
            .run(),
        );
        Self::build(
            Some(RedisPublisher {
                connection: redis.connection().clone(),
                channel,
            }),
            subscribed,
            local,
            counters,
            origin,
            Some(stop.drop_guard()),
        )
    }

    /// A feed that only publishes to Redis, for a process with no listeners
    /// (`mcpship ingest`): no subscription is opened.
    pub fn redis_publisher(redis: &RedisState) -> Self {
        let (local, _) = broadcast::channel(1);
        let (_, subscribed) = watch::channel(false);
        Self::build(
            Some(RedisPublisher {
                connection: redis.connection().clone(),
                channel: redis.changes_channel(),
            }),
            subscribed,
            local,
            Arc::default(),
            uuid::Uuid::new_v4().to_string(),
            None,
        )
    }

    /// Announces `changes`: to this process's listeners at once, and with
    /// Redis to every other replica's. Duplicates in one call are sent once.
    ///
    /// With Redis this waits for Redis (at most its command timeout); a
    /// handler that must not wait can spawn it.
    ///
    /// # Errors
    ///
    /// [`PublishError`] when Redis did not take the changes; this process's
    /// listeners were told regardless.
    pub async fn publish(
        &self,
        changes: impl IntoIterator<Item = Change>,
    ) -> Result<(), PublishError> {
        let mut seen = std::collections::HashSet::new();
        let changes: Vec<Change> = changes
            .into_iter()
            .filter(|c| seen.insert(c.clone()))
            .collect();
        if changes.is_empty() {
            return Ok(());
        }
        let inner = &self.inner;
        let batches: Vec<ChangeBatch> = changes.chunks(MAX_BATCH).map(ChangeBatch::from).collect();
        for batch in &batches {
            // No receiver is not an error: nobody is listening here right now.
            let _ = inner.local.send(batch.clone());
        }
        inner
            .counters
            .published_batches
            .fetch_add(batches.len() as u64, Ordering::Relaxed);
        let Some(redis) = &inner.redis else {
            return Ok(());
        };
        let mut pipe = redis::pipe();
        for batch in &batches {
            let message = serde_json::to_string(&Envelope {
                v: WIRE_VERSION,
                origin: inner.origin.as_str().into(),
                changes: batch.to_vec(),
            })?;
            pipe.publish(&redis.channel, message).ignore();
        }
        let mut connection = redis.connection.clone();
        pipe.query_async::<()>(&mut connection)
            .await
            .map_err(|source| PublishError::Redis {
                channel: redis.channel.clone(),
                count: changes.len(),
                source,
            })
    }

    /// Receives changes published from now on.
    pub fn subscribe(&self) -> ChangeReceiver {
        ChangeReceiver {
            receiver: self.inner.local.subscribe(),
            counters: self.inner.counters.clone(),
        }
    }

    /// Whether changes from other processes arrive now: always for a memory
    /// feed; for Redis, while the subscription is up.
    pub fn is_subscribed(&self) -> bool {
        *self.inner.subscribed.borrow()
    }

    /// Waits until [`Self::is_subscribed`], for at most `wait`; returns whether it is.
    pub async fn wait_subscribed(&self, wait: Duration) -> bool {
        let mut subscribed = self.inner.subscribed.clone();
        tokio::time::timeout(wait, subscribed.wait_for(|s| *s))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// The feed's counters now.
    pub fn stats(&self) -> ChangeFeedStats {
        let c = &self.inner.counters;
        ChangeFeedStats {
            published_batches: c.published_batches.load(Ordering::Relaxed),
            received_batches: c.received_batches.load(Ordering::Relaxed),
            lagged_batches: c.lagged_batches.load(Ordering::Relaxed),
            rejected_messages: c.rejected_messages.load(Ordering::Relaxed),
            reconnects: c.reconnects.load(Ordering::Relaxed),
        }
    }
}

/// One listener's end of the feed, buffering at most [`LISTENER_BUFFER`] batches.
#[derive(Debug)]
pub struct ChangeReceiver {
    receiver: broadcast::Receiver<ChangeBatch>,
    counters: Arc<Counters>,
}

impl ChangeReceiver {
    /// The next batch; `None` once the feed is gone. A listener that fell
    /// behind skips what it missed (logged and counted) and goes on.
    pub async fn recv(&mut self) -> Option<ChangeBatch> {
        loop {
            match self.receiver.recv().await {
                Ok(batch) => return Some(batch),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    self.counters
                        .lagged_batches
                        .fetch_add(missed, Ordering::Relaxed);
                    tracing::warn!(
                        missed_batches = missed,
                        "a subscriptions/listen stream fell behind the change feed; \
                         it skipped the oldest changes"
                    );
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

/// The task that keeps a Redis subscription and feeds the local broadcast.
struct Subscriber {
    client: redis::Client,
    channel: String,
    origin: String,
    local: broadcast::Sender<ChangeBatch>,
    counters: Arc<Counters>,
    subscribed: watch::Sender<bool>,
    stop: CancellationToken,
}

/// Why a subscription ended.
enum Ended {
    Stopped,
    Lost(String),
}

impl Subscriber {
    async fn run(self) {
        let mut backoff = BACKOFF_MIN;
        // When the subscription was lost, and attempts since.
        let mut lost: Option<(tokio::time::Instant, u32)> = None;
        loop {
            let attempt = tokio::select! {
                () = self.stop.cancelled() => return,
                attempt = tokio::time::timeout(REDIS_TIMEOUT, self.connect()) => attempt,
            };
            let failure = match attempt {
                Ok(Ok((sink, stream))) => {
                    match lost.take() {
                        Some((since, attempts)) => {
                            self.counters.reconnects.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(
                                channel = %self.channel,
                                down_ms = since.elapsed().as_millis() as u64,
                                attempts,
                                "change feed: resubscribed to Redis; changes published while \
                                 it was down were not delivered to this replica's listeners"
                            );
                        }
                        None => {
                            tracing::info!(channel = %self.channel, "change feed: subscribed to Redis")
                        }
                    }
                    backoff = BACKOFF_MIN;
                    self.subscribed.send_replace(true);
                    let ended = self.pump(sink, stream).await;
                    self.subscribed.send_replace(false);
                    match ended {
                        Ended::Stopped => return,
                        Ended::Lost(why) => {
                            tracing::warn!(
                                channel = %self.channel,
                                reason = %why,
                                "change feed: lost the Redis subscription; reconnecting"
                            );
                            lost = Some((tokio::time::Instant::now(), 0));
                            // Reconnect almost at once: a restarted Redis is
                            // often back already. The pause keeps a server
                            // that accepts and then drops us from spinning.
                            tokio::select! {
                                () = self.stop.cancelled() => return,
                                () = tokio::time::sleep(BACKOFF_MIN) => continue,
                            }
                        }
                    }
                }
                Ok(Err(e)) => e.to_string(),
                Err(_) => format!("no answer within {REDIS_TIMEOUT:?}"),
            };
            let attempts = match &mut lost {
                Some((_, attempts)) => {
                    *attempts += 1;
                    *attempts
                }
                None => {
                    lost = Some((tokio::time::Instant::now(), 1));
                    1
                }
            };
            tracing::warn!(
                channel = %self.channel,
                error = %failure,
                attempt = attempts,
                retry_in_ms = backoff.as_millis() as u64,
                "change feed: cannot subscribe to Redis; retrying"
            );
            tokio::select! {
                () = self.stop.cancelled() => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    async fn connect(
        &self,
    ) -> redis::RedisResult<(redis::aio::PubSubSink, redis::aio::PubSubStream)> {
        let (mut sink, stream) = self.client.get_async_pubsub().await?.split();
        sink.subscribe(&self.channel).await?;
        Ok((sink, stream))
    }

    async fn pump(
        &self,
        mut sink: redis::aio::PubSubSink,
        mut stream: redis::aio::PubSubStream,
    ) -> Ended {
        let mut health = tokio::time::interval(HEALTH_CHECK_EVERY);
        health.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        health.reset();
        loop {
            tokio::select! {
                () = self.stop.cancelled() => return Ended::Stopped,
                message = stream.next() => match message {
                    Some(message) => self.deliver(message.get_payload_bytes()),
                    None => return Ended::Lost("connection closed".into()),
                },
                _ = health.tick() => {
                    match tokio::time::timeout(REDIS_TIMEOUT, sink.ping::<redis::Value>()).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => return Ended::Lost(format!("PING failed: {e}")),
                        Err(_) => return Ended::Lost(format!("no answer to PING within {REDIS_TIMEOUT:?}")),
                    }
                }
            }
        }
    }

    fn deliver(&self, payload: &[u8]) {
        let reject = |why: &str| {
            self.counters
                .rejected_messages
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(channel = %self.channel, bytes = payload.len(), "change feed: dropped a Redis message: {why}");
        };
        if payload.len() > MAX_MESSAGE_BYTES {
            return reject("too large");
        }
        let envelope: Envelope<'_> = match serde_json::from_slice(payload) {
            Ok(envelope) => envelope,
            Err(e) => return reject(&format!("not a change message ({e})")),
        };
        if envelope.v != WIRE_VERSION {
            return reject(&format!("unknown format version {}", envelope.v));
        }
        if envelope.origin == self.origin || envelope.changes.is_empty() {
            // Our own publish: local listeners had it already.
            return;
        }
        self.counters
            .received_batches
            .fetch_add(1, Ordering::Relaxed);
        for batch in envelope.changes.chunks(MAX_BATCH) {
            let _ = self.local.send(ChangeBatch::from(batch));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format_is_tagged_json() {
        let message = serde_json::to_value(Envelope {
            v: WIRE_VERSION,
            origin: "o".into(),
            changes: vec![
                Change::ResourcesListChanged,
                Change::resource_updated("docs://a"),
            ],
        })
        .unwrap();
        assert_eq!(
            message,
            serde_json::json!({
                "v": 1,
                "origin": "o",
                "changes": [
                    {"kind": "resources_list_changed"},
                    {"kind": "resource_updated", "uri": "docs://a"}
                ]
            })
        );
    }

    #[test]
    fn filters_pick_what_was_accepted() {
        let filter = SubscriptionFilter::builder()
            .resources_list_changed()
            .resource_subscription("docs://a")
            .build();
        assert!(Change::ResourcesListChanged.accepted_by(&filter));
        assert!(Change::resource_updated("docs://a").accepted_by(&filter));
        assert!(!Change::resource_updated("docs://b").accepted_by(&filter));
        assert!(!Change::ToolsListChanged.accepted_by(&filter));
    }

    #[tokio::test]
    async fn memory_feed_reaches_every_receiver_and_deduplicates() {
        let feed = ChangeFeed::memory();
        let mut a = feed.subscribe();
        let mut b = feed.clone().subscribe();
        feed.publish([
            Change::ToolsListChanged,
            Change::ToolsListChanged,
            Change::resource_updated("x://1"),
        ])
        .await
        .unwrap();
        for receiver in [&mut a, &mut b] {
            let batch = receiver.recv().await.unwrap();
            assert_eq!(
                &*batch,
                &[Change::ToolsListChanged, Change::resource_updated("x://1")]
            );
        }
    }

    #[tokio::test]
    async fn a_slow_listener_skips_and_memory_stays_bounded() {
        let feed = ChangeFeed::memory();
        let mut slow = feed.subscribe();
        for i in 0..LISTENER_BUFFER + 10 {
            feed.publish([Change::resource_updated(format!("x://{i}"))])
                .await
                .unwrap();
        }
        let first = slow.recv().await.unwrap();
        assert_eq!(&*first, &[Change::resource_updated("x://10")]);
        assert_eq!(feed.stats().lagged_batches, 10);
    }

    #[tokio::test]
    async fn large_publishes_are_batched() {
        let feed = ChangeFeed::memory();
        let mut receiver = feed.subscribe();
        feed.publish((0..MAX_BATCH + 1).map(|i| Change::resource_updated(format!("x://{i}"))))
            .await
            .unwrap();
        assert_eq!(receiver.recv().await.unwrap().len(), MAX_BATCH);
        assert_eq!(receiver.recv().await.unwrap().len(), 1);
    }
}
