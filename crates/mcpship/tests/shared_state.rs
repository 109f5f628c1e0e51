//! Shared state in Redis: a legacy session made on one replica continues on
//! another, SSE event logs replay exactly the events after `Last-Event-ID`,
//! and a session cap refuses new sessions with a retryable status.
//!
//! Needs Redis: `MCPSHIP_TEST_REDIS_URL` (scripts/test sets it). Each test
//! uses its own key prefix.

use std::{sync::Arc, time::Duration};

use mcpship::{
    Lifecycle, Phase, ServeConfig, Server,
    state::{RedisState, SessionLimits, StateBackend},
};
use rmcp::{
    ServerHandler,
    handler::server::{router::tool::ToolRouter, wrapper::Parameters},
    model::{ServerCapabilities, ServerConfig, ServerJsonRpcMessage},
    tool, tool_handler, tool_router,
    transport::{
        common::server_side_http::ServerSseMessage,
        streamable_http_server::session::store::EventStore,
    },
};
use serde_json::{Value, json};
use tokio::net::TcpListener;

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct EchoArgs {
    text: String,
}

#[derive(Clone)]
struct Echo {
    tool_router: Arc<ToolRouter<Self>>,
}

#[tool_router]
impl Echo {
    fn new() -> Self {
        Self {
            tool_router: Arc::new(Self::tool_router()),
        }
    }

    /// Answers with its argument.
    #[tool]
    async fn echo(&self, Parameters(EchoArgs { text }): Parameters<EchoArgs>) -> String {
        text
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Echo {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

fn redis_url() -> String {
    std::env::var("MCPSHIP_TEST_REDIS_URL")
        .expect("MCPSHIP_TEST_REDIS_URL must name a Redis server (scripts/test starts one)")
}

fn unique_prefix(test: &str) -> String {
    format!(
        "mcpship-test:{test}:{}:{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

fn redis_config(prefix: &str) -> ServeConfig {
    ServeConfig {
        state: StateBackend::Redis,
        redis_url: Some(redis_url()),
        redis_prefix: prefix.to_owned(),
        ..ServeConfig::default()
    }
}

struct Replica {
    base: String,
    stop: tokio::sync::oneshot::Sender<()>,
    done: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn replica(config: ServeConfig) -> Replica {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let lifecycle = Lifecycle::new();
    let handler = Echo::new();
    let server = Server::new(config, move || handler.clone()).with_lifecycle(lifecycle.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let done = tokio::spawn(server.serve(listener, async move {
        let _ = stopped.await;
    }));
    lifecycle.reached(Phase::Ready).await;
    Replica { base, stop, done }
}

impl Replica {
    async fn stop(self) {
        let _ = self.stop.send(());
        self.done.await.unwrap().unwrap();
    }
}

/// POSTs a legacy JSON-RPC message; returns status, session id and the
/// JSON-RPC message (from JSON or from the first SSE data line).
async fn legacy_post(
    client: &reqwest::Client,
    base: &str,
    session: Option<&str>,
    body: Value,
) -> (u16, Option<String>, Option<Value>) {
    let mut request = client
        .post(format!("{base}/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    if let Some(session) = session {
        request = request
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", "2025-06-18");
    }
    let response = request.body(body.to_string()).send().await.unwrap();
    let status = response.status().as_u16();
    let session = response
        .headers()
        .get("mcp-session-id")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    let message = serde_json::from_str(&text).ok().or_else(|| {
        text.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .find_map(|d| serde_json::from_str(d).ok())
    });
    (status, session, message)
}

fn initialize() -> Value {
    json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "shared-state-test", "version": "1"}
        }
    })
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

#[tokio::test]
async fn event_logs_replay_exactly_the_events_after_the_last_seen() {
    use futures::StreamExt;
    let prefix = unique_prefix("events");
    let url = redis_url();
    let store = RedisState::connect(&url, &url, &prefix, limits(), Duration::from_secs(5))
        .await
        .unwrap();
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(store.store_event("s1", &notification(n)).await.unwrap());
    }
    // Another stream's events never leak into this one's replay.
    store.store_event("s2", &notification(99)).await.unwrap();
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), 5, "event ids are unique: {ids:?}");

    let replayed: Vec<ServerSseMessage> = store
        .replay_events_after(&ids[1])
        .await
        .unwrap()
        .collect()
        .await;
    let got: Vec<_> = replayed
        .iter()
        .map(|e| {
            let message = serde_json::to_value(e.message.as_deref().unwrap()).unwrap();
            (
                e.event_id.clone().unwrap(),
                message["params"]["progress"].as_f64(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (ids[2].clone(), Some(2.0)),
            (ids[3].clone(), Some(3.0)),
            (ids[4].clone(), Some(4.0)),
        ]
    );
    let none: Vec<_> = store
        .replay_events_after(&ids[4])
        .await
        .unwrap()
        .collect()
        .await;
    assert!(none.is_empty());
    assert!(store.replay_events_after("garbage").await.is_err());
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
