//! `subscriptions/listen` with the runtime's change feed: changes reach every
//! listener (in one process, and across replicas through Redis) tagged with
//! their `subscriptionId`, only the types a listener opted into; a drain and
//! the maximum stream age end a listen stream with its final "complete"
//! result; and the Redis subscriber survives a Redis restart.
//!
//! Spoken as a 2026-07-28 client would: a raw POST with the protocol headers
//! and `_meta`, the reply read as SSE.
//!
//! The Redis tests need `MCPSHIP_TEST_REDIS_URL` (scripts/test sets it); the
//! restart test starts its own `redis-server` on a free port and never touches
//! that one.

mod common;

use std::time::{Duration, Instant};

use common::{
    PrivateRedis, Replica, content_type, modern_meta, modern_request, redis_config, unique_prefix,
};
use mcpship::{
    ServeConfig,
    state::{Change, ChangeFeed, RedisState, SessionLimits},
};
use rmcp::{
    ServerHandler,
    model::{ServerCapabilities, ServerConfig, SubscriptionFilter},
};
use serde_json::{Value, json};

const SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";

/// A server whose resources and tools may change, accepting every
/// subscription it advertises.
#[derive(Clone)]
struct Changing;

impl ServerHandler for Changing {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .enable_resources()
                .enable_resources_list_changed()
                .enable_resources_subscribe()
                .build(),
        )
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        Some(requested.clone())
    }
}

async fn replica(config: ServeConfig) -> Replica {
    common::replica(config, Changing).await
}

/// An open `subscriptions/listen` stream.
struct Listen {
    response: reqwest::Response,
    buffer: String,
    /// Everything received, comments included.
    raw: String,
}

impl Listen {
    /// Opens a stream with request id `id` and reads its acknowledgment.
    async fn open(base: &str, id: u64, notifications: Value) -> (Self, Value) {
        let body = json!({
            "jsonrpc": "2.0", "id": id, "method": "subscriptions/listen",
            "params": {"notifications": notifications, "_meta": modern_meta()}
        });
        let response = modern_request(&reqwest::Client::new(), base, "subscriptions/listen", None)
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert!(content_type(&response).starts_with("text/event-stream"));
        let mut listen = Self {
            response,
            buffer: String::new(),
            raw: String::new(),
        };
        let ack = listen.next().await.expect("an acknowledgment");
        assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
        assert_eq!(ack["params"]["_meta"][SUBSCRIPTION_ID], id);
        // The runtime subscribes to the feed as the handler's listen starts,
        // just after the acknowledgment is sent.
        tokio::time::sleep(Duration::from_millis(100)).await;
        (listen, ack)
    }

    /// The next JSON-RPC message; `None` when the stream ends. Panics after
    /// five seconds without one.
    async fn next(&mut self) -> Option<Value> {
        self.next_within(Duration::from_secs(5)).await
    }

    async fn next_within(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let event: String = self.buffer.drain(..end + 2).collect();
                let data: Vec<&str> = event
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim)
                    .collect();
                let data = data.join("\n");
                if data.is_empty() {
                    continue;
                }
                return Some(serde_json::from_str(&data).unwrap());
            }
            match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Ok(Ok(Some(bytes))) => {
                    let text = std::str::from_utf8(&bytes).unwrap().replace("\r\n", "\n");
                    self.raw.push_str(&text);
                    self.buffer.push_str(&text);
                }
                Ok(Ok(None)) | Ok(Err(_)) => return None,
                Err(_) => panic!("no message within {wait:?}; got so far: {:?}", self.raw),
            }
        }
    }

    /// Expects the final "complete" result of listen request `id`, then the end.
    async fn expect_complete(&mut self, id: u64) {
        let last = self.next().await.expect("the final result");
        assert_eq!(last["id"], id, "{last}");
        assert_eq!(last["result"]["resultType"], "complete", "{last}");
        assert_eq!(last["result"]["_meta"][SUBSCRIPTION_ID], id, "{last}");
        assert_eq!(self.next().await, None, "the stream ends after its result");
        assert!(
            !self.raw.contains("stream closed"),
            "ended by the runtime, not cut: {:?}",
            self.raw
        );
    }
}

fn method(message: &Value) -> &str {
    message["method"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn memory_feed_sends_only_what_a_listener_accepted() {
    let r = replica(ServeConfig::default()).await;
    let (mut listen, ack) = Listen::open(
        &r.base,
        7,
        json!({"resourcesListChanged": true, "resourceSubscriptions": ["note://a"]}),
    )
    .await;
    assert_eq!(
        ack["params"]["notifications"],
        json!({"resourcesListChanged": true, "resourceSubscriptions": ["note://a"]})
    );
    r.changes
        .publish([
            Change::ToolsListChanged,
            Change::resource_updated("note://b"),
            Change::resource_updated("note://a"),
            Change::ResourcesListChanged,
        ])
        .await
        .unwrap();
    let updated = listen.next().await.unwrap();
    assert_eq!(method(&updated), "notifications/resources/updated");
    assert_eq!(updated["params"]["uri"], "note://a");
    assert_eq!(updated["params"]["_meta"][SUBSCRIPTION_ID], 7);
    let listed = listen.next().await.unwrap();
    assert_eq!(method(&listed), "notifications/resources/list_changed");
    assert_eq!(listed["params"]["_meta"][SUBSCRIPTION_ID], 7);
    r.stop().await;
    listen.expect_complete(7).await;
}

#[tokio::test]
async fn drain_completes_an_open_listen_stream_and_exits_promptly() {
    let mut r = replica(ServeConfig {
        drain_timeout: Duration::from_secs(20),
        ..ServeConfig::default()
    })
    .await;
    let (mut listen, _) = Listen::open(&r.base, 3, json!({"toolsListChanged": true})).await;
    let started = Instant::now();
    r.drain();
    listen.expect_complete(3).await;
    r.finished().await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "drain took {:?} with a 20 s deadline",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_drain_with_no_stream_open_does_not_wait() {
    let r = replica(ServeConfig::default()).await;
    let started = Instant::now();
    r.stop().await;
    assert!(
        started.elapsed() < Duration::from_millis(150),
        "drain took {:?} with nothing open",
        started.elapsed()
    );
}

#[tokio::test]
async fn max_stream_age_ends_listen_with_complete() {
    let r = replica(ServeConfig {
        max_stream_age: Duration::from_secs(1),
        ..ServeConfig::default()
    })
    .await;
    let started = Instant::now();
    let (mut listen, _) = Listen::open(&r.base, 11, json!({"toolsListChanged": true})).await;
    listen.expect_complete(11).await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "ended after {took:?}, not at the 1 s maximum age"
    );
    r.stop().await;
}

#[tokio::test]
async fn a_change_published_on_one_replica_reaches_listeners_on_both() {
    let prefix = unique_prefix("listen-fanout");
    let a = replica(redis_config(&prefix)).await;
    let b = replica(redis_config(&prefix)).await;
    let filter = json!({"toolsListChanged": true, "resourceSubscriptions": ["note://x"]});
    let (mut on_a, _) = Listen::open(&a.base, 21, filter.clone()).await;
    let (mut on_b, _) = Listen::open(&b.base, 22, filter).await;
    a.changes
        .publish([
            Change::resource_updated("note://x"),
            Change::PromptsListChanged,
        ])
        .await
        .unwrap();
    for (listen, id) in [(&mut on_a, 21), (&mut on_b, 22)] {
        let updated = listen.next().await.unwrap();
        assert_eq!(method(&updated), "notifications/resources/updated");
        assert_eq!(updated["params"]["uri"], "note://x");
        assert_eq!(updated["params"]["_meta"][SUBSCRIPTION_ID], id);
    }
    // Through the other replica too, and once each: a replica does not hear
    // its own publish twice.
    b.changes.publish([Change::ToolsListChanged]).await.unwrap();
    for (listen, id) in [(&mut on_a, 21), (&mut on_b, 22)] {
        let changed = listen.next().await.unwrap();
        assert_eq!(method(&changed), "notifications/tools/list_changed");
        assert_eq!(changed["params"]["_meta"][SUBSCRIPTION_ID], id);
    }
    assert_eq!(a.changes.stats().received_batches, 1);
    assert_eq!(b.changes.stats().received_batches, 1);
    a.stop().await;
    b.stop().await;
    on_a.expect_complete(21).await;
    on_b.expect_complete(22).await;
}

fn limits() -> SessionLimits {
    SessionLimits {
        idle_timeout: Duration::from_secs(60),
        event_log_len: 10,
        event_log_ttl: Duration::from_secs(60),
    }
}

async fn connect(url: &str, prefix: &str) -> RedisState {
    RedisState::connect(url, url, prefix, limits(), Duration::from_secs(5))
        .await
        .unwrap()
}

#[tokio::test]
async fn the_subscriber_comes_back_after_redis_restarts() {
    let mut redis = PrivateRedis::start();
    let prefix = unique_prefix("listen-restart");
    let listening = ChangeFeed::redis(&connect(&redis.url(), &prefix).await);
    assert!(listening.wait_subscribed(Duration::from_secs(5)).await);
    let mut receiver = listening.subscribe();
    let publisher = ChangeFeed::redis_publisher(&connect(&redis.url(), &prefix).await);

    redis.stop();
    let deadline = Instant::now() + Duration::from_secs(5);
    while listening.is_subscribed() {
        assert!(Instant::now() < deadline, "the loss was not noticed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A publish with Redis down fails, and says where and what it means.
    let error = publisher
        .publish([Change::ToolsListChanged])
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains(&format!("{prefix}:changes")), "{error}");
    assert!(error.contains("other replicas were not told"), "{error}");

    redis.restart();
    assert!(
        listening.wait_subscribed(Duration::from_secs(15)).await,
        "not resubscribed after Redis came back"
    );
    assert_eq!(listening.stats().reconnects, 1);
    // The publisher's connection manager reconnects on its own; its first
    // command after the restart may still see the old socket fail.
    let mut published = false;
    for _ in 0..20 {
        if publisher
            .publish([Change::resource_updated("note://after")])
            .await
            .is_ok()
        {
            published = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(published, "could not publish after the restart");
    let batch = tokio::time::timeout(Duration::from_secs(5), receiver.recv())
        .await
        .expect("the change arrives after the restart")
        .unwrap();
    assert_eq!(&*batch, &[Change::resource_updated("note://after")]);
}
