//! Shared state in Redis: a legacy session made on one replica continues on
//! another, SSE event logs replay exactly the events after `Last-Event-ID`
//! and follow the log until the reply, standalone streams carry resumable
//! ids, a session cap refuses new sessions with a retryable status, and a
//! Redis outage is a fast retryable 503 for legacy requests only, with full
//! service when Redis returns.
//!
//! Needs Redis: `MCPSHIP_TEST_REDIS_URL` (scripts/test sets it). Each test
//! uses its own key prefix. The outage test starts a private `redis-server`
//! on a free port (from PATH) and stops it; the shared one is never touched.

mod common;

use std::time::Duration;

use common::{
    PrivateRedis, Replica, Tools, content_type, legacy_post, modern_request, modern_tool_call,
    redis_config, redis_url, unique_prefix,
};
use mcpship::{
    ServeConfig,
    state::{RedisState, SessionLimits},
};
use rmcp::{
    model::ServerJsonRpcMessage,
    transport::{
        common::server_side_http::ServerSseMessage,
        streamable_http_server::session::store::EventStore,
    },
};
use serde_json::{Value, json};

/// The client name this file's sessions initialize with.
const CLIENT: &str = "shared-state-test";

async fn replica(config: ServeConfig) -> Replica {
    common::replica(config, Tools::new()).await
}

fn initialize() -> Value {
    common::initialize(CLIENT)
}

fn echo_call(id: u64, text: &str) -> Value {
    json!({
        "jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": text}}
    })
}

#[tokio::test]
async fn a_legacy_session_continues_on_another_replica() {
    let prefix = unique_prefix("continue");
    let a = replica(redis_config(&prefix)).await;
    let b = replica(redis_config(&prefix)).await;
    let client = reqwest::Client::new();

    let (status, session, _) = legacy_post(&client, &a.base, None, initialize()).await;
    assert_eq!(status, 200);
    let session = session.expect("initialize returns a session id");
    let (status, _, _) = legacy_post(
        &client,
        &a.base,
        Some(&session),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    assert_eq!(status, 202);

    // The next calls land on the other replica, which never saw the session.
    for (id, base) in [(2, &b.base), (3, &a.base), (4, &b.base)] {
        let text = format!("call {id}");
        let (status, _, message) =
            legacy_post(&client, base, Some(&session), echo_call(id, &text)).await;
        assert_eq!(status, 200, "call {id} on {base}");
        let message = message.expect("a JSON-RPC response");
        assert_eq!(message["id"], id, "{message}");
        assert_eq!(message["result"]["content"][0]["text"], text, "{message}");
    }

    // A replica that is gone does not take the session with it.
    a.stop().await;
    let (status, _, message) =
        legacy_post(&client, &b.base, Some(&session), echo_call(5, "after")).await;
    assert_eq!(status, 200);
    assert_eq!(message.unwrap()["result"]["content"][0]["text"], "after");

    // An unknown session is still 404, so clients re-initialize.
    let (status, _, _) =
        legacy_post(&client, &b.base, Some("no-such-session"), echo_call(6, "x")).await;
    assert_eq!(status, 404);
    b.stop().await;
}

#[tokio::test]
async fn in_memory_sessions_stay_on_their_replica() {
    // The control for the test above: without shared state the session is
    // unknown elsewhere, so the test above proves Redis carried it.
    let a = replica(ServeConfig::default()).await;
    let b = replica(ServeConfig::default()).await;
    let client = reqwest::Client::new();
    let (_, session, _) = legacy_post(&client, &a.base, None, initialize()).await;
    let session = session.unwrap();
    let (status, _, _) = legacy_post(&client, &b.base, Some(&session), echo_call(2, "x")).await;
    assert_eq!(status, 404);
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn new_sessions_beyond_the_cap_are_refused_with_a_retryable_status() {
    let a = replica(ServeConfig {
        max_sessions: 2,
        ..ServeConfig::default()
    })
    .await;
    let client = reqwest::Client::new();
    for _ in 0..2 {
        let (status, session, _) = legacy_post(&client, &a.base, None, initialize()).await;
        assert_eq!(status, 200);
        assert!(session.is_some());
    }
    let response = client
        .post(format!("{}/mcp", a.base))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(initialize().to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    a.stop().await;
}

fn limits() -> SessionLimits {
    SessionLimits {
        idle_timeout: Duration::from_secs(60),
        event_log_len: 100,
        event_log_ttl: Duration::from_secs(60),
    }
}

fn notification(n: u64) -> ServerSseMessage {
    let message: ServerJsonRpcMessage = serde_json::from_value(json!({
        "jsonrpc": "2.0",
        "method": "notifications/progress",
        "params": {"progressToken": "t", "progress": n}
    }))
    .unwrap();
    ServerSseMessage::from_message(message)
}

fn reply(id: u64) -> ServerSseMessage {
    let message: ServerJsonRpcMessage = serde_json::from_value(json!({
        "jsonrpc": "2.0", "id": id, "result": {"content": [], "isError": false}
    }))
    .unwrap();
    ServerSseMessage::from_message(message)
}

fn progress_of(event: &ServerSseMessage) -> Option<f64> {
    let message = serde_json::to_value(event.message.as_deref().unwrap()).unwrap();
    message["params"]["progress"].as_f64()
}

async fn connect_store(prefix: &str) -> RedisState {
    let url = redis_url();
    RedisState::connect(&url, &url, prefix, limits(), Duration::from_secs(5))
        .await
        .unwrap()
}

#[tokio::test]
async fn event_logs_replay_exactly_the_events_after_the_last_seen() {
    use futures::StreamExt;
    let store = connect_store(&unique_prefix("events")).await;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(store.store_event("s1", &notification(n)).await.unwrap());
    }
    // Another stream's events never leak into this one's replay.
    store.store_event("s2", &notification(99)).await.unwrap();
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), 5, "event ids are unique: {ids:?}");

    // The stream has no reply yet, so the replay stays open after the
    // logged events: take what is there.
    let mut replay = store.replay_events_after(&ids[1]).await.unwrap();
    let mut got = Vec::new();
    for _ in 0..3 {
        let event = tokio::time::timeout(Duration::from_secs(5), replay.next())
            .await
            .expect("a logged event is replayed at once")
            .expect("the replay is open");
        got.push((event.event_id.clone().unwrap(), progress_of(&event)));
    }
    assert_eq!(
        got,
        vec![
            (ids[2].clone(), Some(2.0)),
            (ids[3].clone(), Some(3.0)),
            (ids[4].clone(), Some(4.0)),
        ]
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(600), replay.next())
            .await
            .is_err(),
        "nothing more is logged yet"
    );
    assert!(store.replay_events_after("garbage").await.is_err());
}

#[tokio::test]
async fn a_replay_follows_its_log_until_the_reply() {
    use futures::StreamExt;
    let store = connect_store(&unique_prefix("follow")).await;
    let first = store.store_event("req", &notification(0)).await.unwrap();
    let mut replay = store.replay_events_after(&first).await.unwrap();

    // Appended after the replay began, as another replica would.
    let later = store.store_event("req", &notification(1)).await.unwrap();
    let answer = store.store_event("req", &reply(7)).await.unwrap();
    store.store_event("req", &notification(2)).await.unwrap();

    let started = std::time::Instant::now();
    let events: Vec<ServerSseMessage> =
        tokio::time::timeout(Duration::from_secs(5), replay.by_ref().collect())
            .await
            .expect("the replay ends after the reply");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let ids: Vec<_> = events.iter().map(|e| e.event_id.clone().unwrap()).collect();
    assert_eq!(
        ids,
        vec![later, answer.clone()],
        "up to the reply and no further"
    );

    // A reply already logged ends the replay at once.
    let events: Vec<ServerSseMessage> = tokio::time::timeout(
        Duration::from_secs(2),
        store.replay_events_after(&first).await.unwrap().collect(),
    )
    .await
    .expect("a replay with its reply logged ends at once");
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].event_id.as_deref(), Some(answer.as_str()));
}

#[tokio::test]
async fn an_unreachable_redis_fails_start_with_a_clear_error() {
    // A port nothing listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("redis://:hunter2@127.0.0.1:{port}/0");
    let started = std::time::Instant::now();
    let error = RedisState::connect(
        &url,
        &mcpship::config::redact_url(&url),
        "x",
        limits(),
        Duration::from_secs(1),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(error.contains("cannot use Redis at"), "{error}");
    assert!(!error.contains("hunter2"), "{error}");
}

/// One SSE event: its id and its data lines joined.
#[derive(Debug)]
struct Event {
    id: Option<String>,
    data: String,
}

/// Reads SSE events off a response as they come.
struct SseReader {
    response: reqwest::Response,
    buffer: String,
}

impl SseReader {
    fn new(response: reqwest::Response) -> Self {
        assert_eq!(response.status(), 200);
        assert!(content_type(&response).starts_with("text/event-stream"));
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next event with an id or data (keep-alive comments are skipped);
    /// `None` when the stream ends or nothing comes `within`.
    async fn next(&mut self, within: Duration) -> Option<Event> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let raw: String = self.buffer.drain(..end + 2).collect();
                let mut event = Event {
                    id: None,
                    data: String::new(),
                };
                let mut seen = false;
                for line in raw.lines() {
                    if let Some(id) = line.strip_prefix("id:") {
                        event.id = Some(id.trim().to_owned());
                        seen = true;
                    } else if let Some(data) = line.strip_prefix("data:") {
                        event.data.push_str(data.trim());
                        seen = true;
                    }
                }
                if seen {
                    return Some(event);
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .ok()?
                .ok()??;
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// Events up to and including the first `until` accepts.
    async fn until(&mut self, within: Duration, until: impl Fn(&Event) -> bool) -> Vec<Event> {
        let mut events = Vec::new();
        loop {
            let Some(event) = self.next(within).await else {
                panic!("the stream ended or went quiet before the event wanted; got {events:?}");
            };
            let done = until(&event);
            events.push(event);
            if done {
                return events;
            }
        }
    }
}

/// Initializes a legacy session on `base`; returns its id.
async fn open_session(client: &reqwest::Client, base: &str) -> String {
    common::open_session(client, base, CLIENT).await
}

/// A legacy request on a session, reading SSE.
fn legacy_request(
    client: &reqwest::Client,
    method: reqwest::Method,
    base: &str,
    session: &str,
) -> reqwest::RequestBuilder {
    client
        .request(method, format!("{base}/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", "2025-06-18")
}

fn is_reply_to(id: u64) -> impl Fn(&Event) -> bool {
    move |event| {
        serde_json::from_str::<Value>(&event.data)
            .is_ok_and(|m| m["id"] == id && (m.get("result").is_some() || m.get("error").is_some()))
    }
}

fn is_list_changed(event: &Event) -> bool {
    event.data.contains("notifications/tools/list_changed")
}

#[tokio::test]
async fn a_resume_before_the_reply_gets_it_when_it_is_written_elsewhere() {
    let prefix = unique_prefix("resume-before-reply");
    let a = replica(redis_config(&prefix)).await;
    let b = replica(redis_config(&prefix)).await;
    let client = reqwest::Client::new();
    let session = open_session(&client, &a.base).await;

    // A slow call on A: its stream breaks after the priming event, long
    // before the reply.
    let response = legacy_request(&client, reqwest::Method::POST, &a.base, &session)
        .header("content-type", "application/json")
        .body(
            json!({
                "jsonrpc": "2.0", "id": 2, "method": "tools/call",
                "params": {"name": "slow", "arguments": {"millis": 1500}}
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    let mut stream = SseReader::new(response);
    let priming = stream.next(Duration::from_secs(5)).await.unwrap();
    let last_event_id = priming
        .id
        .expect("the reply stream's first event has an id");
    drop(stream);

    // The client resumes on B, which never saw the session, while the tool
    // is still running on A.
    let started = std::time::Instant::now();
    let response = legacy_request(&client, reqwest::Method::GET, &b.base, &session)
        .header("last-event-id", &last_event_id)
        .send()
        .await
        .unwrap();
    let mut resumed = SseReader::new(response);
    let events = resumed.until(Duration::from_secs(10), is_reply_to(2)).await;
    let reply: Value = serde_json::from_str(&events.last().unwrap().data).unwrap();
    assert_eq!(
        reply["result"]["content"][0]["text"], "slept 1500 ms",
        "{reply}"
    );
    assert!(
        events.last().unwrap().id.is_some(),
        "the reply keeps its event id"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // The stream ends once the reply is delivered.
    assert!(resumed.next(Duration::from_secs(3)).await.is_none());
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn standalone_streams_carry_resumable_event_ids() {
    let prefix = unique_prefix("standalone-ids");
    let a = replica(redis_config(&prefix)).await;
    let b = replica(redis_config(&prefix)).await;
    let client = reqwest::Client::new();
    let session = open_session(&client, &a.base).await;
    let announce = |id: u64| {
        json!({
            "jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "announce", "arguments": {}}
        })
    };

    // A quiet stream has an id from its first event on.
    let response = legacy_request(&client, reqwest::Method::GET, &a.base, &session)
        .send()
        .await
        .unwrap();
    let mut stream = SseReader::new(response);
    let first = stream.next(Duration::from_secs(5)).await.unwrap();
    let opened_at = first.id.expect("the first event of a GET stream has an id");
    assert!(
        opened_at.starts_with(&format!("{session}:common/")),
        "{opened_at}"
    );

    // What is published while it is open comes with an id.
    let (status, _, _) = legacy_post(&client, &a.base, Some(&session), announce(2)).await;
    assert_eq!(status, 200);
    let events = stream.until(Duration::from_secs(5), is_list_changed).await;
    let seen = events.last().unwrap().id.clone().expect("an event id");
    drop(stream);

    // Published while no stream is open (on the other replica).
    let (status, _, _) = legacy_post(&client, &b.base, Some(&session), announce(3)).await;
    assert_eq!(status, 200);

    // Resuming after the first event replays both, on either replica.
    let response = legacy_request(&client, reqwest::Method::GET, &b.base, &session)
        .header("last-event-id", &opened_at)
        .send()
        .await
        .unwrap();
    let mut resumed = SseReader::new(response);
    let mut ids = Vec::new();
    for _ in 0..2 {
        let events = resumed.until(Duration::from_secs(5), is_list_changed).await;
        ids.push(events.last().unwrap().id.clone().unwrap());
    }
    assert_eq!(ids[0], seen);
    drop(resumed);

    // Resuming after the last event seen gives just the one missed.
    let response = legacy_request(&client, reqwest::Method::GET, &a.base, &session)
        .header("last-event-id", &seen)
        .send()
        .await
        .unwrap();
    let mut resumed = SseReader::new(response);
    let events = resumed.until(Duration::from_secs(5), is_list_changed).await;
    assert_eq!(events.last().unwrap().id.as_ref(), Some(&ids[1]));
    assert_eq!(events.len(), 1, "{events:?}");
    drop(resumed);
    a.stop().await;
    b.stop().await;
}

/// A stateless (2026-07-28) tool call; returns status and body.
async fn stateless_call(client: &reqwest::Client, base: &str, text: &str) -> (u16, Value) {
    let response = modern_request(client, base, "tools/call", Some("echo"))
        .body(modern_tool_call("echo", json!({"text": text})).to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn backend_up_gauge(client: &reqwest::Client, base: &str) -> String {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| l.starts_with("mcpship_state_backend_up "))
        .unwrap_or("missing")
        .to_owned()
}

#[tokio::test]
async fn a_redis_outage_gets_fast_retryable_refusals_then_full_service() {
    let mut redis = PrivateRedis::start();
    let prefix = unique_prefix("outage");
    let config = ServeConfig {
        redis_url: Some(redis.url()),
        ..redis_config(&prefix)
    };
    let a = replica(config.clone()).await;
    let b = replica(config).await;
    let client = reqwest::Client::new();
    let session = open_session(&client, &a.base).await;
    assert_eq!(
        backend_up_gauge(&client, &a.base).await,
        "mcpship_state_backend_up 1"
    );

    redis.stop();
    // The first requests (or the probe, within a second) find Redis gone.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _, _) = legacy_post(&client, &a.base, Some(&session), echo_call(2, "x")).await;
        if status == 503 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "legacy calls still get {status} 10 s into the outage"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // From then on every legacy request is refused at once, retryably.
    let post = |base: &str, session: Option<&str>, body: Value| {
        let mut request = client
            .post(format!("{base}/mcp"))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body.to_string());
        if let Some(session) = session {
            request = request
                .header("mcp-session-id", session)
                .header("mcp-protocol-version", "2025-06-18");
        }
        request
    };
    let cases = [
        ("initialize", post(&a.base, None, initialize())),
        (
            "a call on a session in this replica's memory",
            post(&a.base, Some(&session), echo_call(3, "x")),
        ),
        (
            "a call on a session to restore",
            post(&b.base, Some(&session), echo_call(4, "x")),
        ),
        (
            "a GET stream",
            legacy_request(&client, reqwest::Method::GET, &a.base, &session),
        ),
    ];
    for (what, request) in cases {
        let started = std::time::Instant::now();
        let response = request.send().await.unwrap();
        let took = started.elapsed();
        assert_eq!(response.status(), 503, "{what}");
        assert_eq!(response.headers()["retry-after"], "1", "{what}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], -32000, "{what}: {body}");
        assert_eq!(
            body["error"]["message"], "shared session state is unavailable; retry shortly",
            "{what}: {body}"
        );
        assert!(took < Duration::from_millis(300), "{what} took {took:?}");
    }

    // Stateless requests need no shared state.
    for base in [&a.base, &b.base] {
        let (status, body) = stateless_call(&client, base, "stateless").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["result"]["content"][0]["text"], "stateless", "{body}");
    }
    // Readiness does not follow Redis: failing it would empty the load balancer.
    let ready = client
        .get(format!("{}/ready", a.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(
        backend_up_gauge(&client, &a.base).await,
        "mcpship_state_backend_up 0"
    );

    // Redis returns (empty): service resumes without a restart.
    redis.restart();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let fresh = loop {
        let (status, session, _) = legacy_post(&client, &a.base, None, initialize()).await;
        if status == 200 {
            break session.unwrap();
        }
        assert_eq!(status, 503);
        assert!(
            std::time::Instant::now() < deadline,
            "initialize still refused 10 s after Redis returned"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (status, _, _) = legacy_post(
        &client,
        &a.base,
        Some(&fresh),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    assert_eq!(status, 202);
    // The new session was stored: the other replica restores it.
    for (id, base) in [(5, &b.base), (6, &a.base)] {
        let (status, _, message) =
            legacy_post(&client, base, Some(&fresh), echo_call(id, "back")).await;
        assert_eq!(status, 200, "call {id}");
        assert_eq!(message.unwrap()["result"]["content"][0]["text"], "back");
    }
    // The session this replica held all along works again too.
    let (status, _, _) = legacy_post(&client, &a.base, Some(&session), echo_call(7, "x")).await;
    assert_eq!(status, 200);
    assert_eq!(
        backend_up_gauge(&client, &b.base).await,
        "mcpship_state_backend_up 1"
    );
    a.stop().await;
    b.stop().await;
}
