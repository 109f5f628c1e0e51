//! In-process replicas and the HTTP helpers the integration tests share.
#![allow(dead_code, unreachable_pub)]

use std::{
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use mcpship::{
    Lifecycle, Phase, ServeConfig, Server,
    state::{ChangeFeed, SharedState, StateBackend},
};
use rmcp::{
    RoleServer, ServerHandler,
    handler::server::{router::tool::ToolRouter, wrapper::Parameters},
    model::{ServerCapabilities, ServerConfig},
    service::RequestContext,
    tool, tool_handler, tool_router,
};
use serde_json::{Value, json};
use tokio::{net::TcpListener, sync::oneshot};

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct EchoArgs {
    text: String,
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct SleepArgs {
    millis: u64,
}

/// A handler with the tools the tests call.
#[derive(Clone)]
pub struct Tools {
    tool_router: Arc<ToolRouter<Self>>,
    /// `echo` adds the client's name from `initialize`.
    name_client: bool,
}

#[tool_router]
impl Tools {
    pub fn new() -> Self {
        Self {
            tool_router: Arc::new(Self::tool_router()),
            name_client: false,
        }
    }

    /// `echo` answers "{text} for {client}", the client's name coming from
    /// `initialize` (which a replica may only know from a sealed id).
    pub fn naming_client() -> Self {
        Self {
            name_client: true,
            ..Self::new()
        }
    }

    /// Answers with its argument (and the client's name, if made so).
    #[tool]
    async fn echo(
        &self,
        Parameters(EchoArgs { text }): Parameters<EchoArgs>,
        peer: rmcp::Peer<RoleServer>,
    ) -> String {
        if !self.name_client {
            return text;
        }
        let client = peer
            .peer_info()
            .map(|info| info.client_info.name.clone())
            .unwrap_or_default();
        format!("{text} for {client}")
    }

    /// Answers after a while.
    #[tool]
    async fn slow(&self, Parameters(args): Parameters<SleepArgs>) -> String {
        sleep_for(args).await
    }

    /// Sleeps, then answers.
    #[tool]
    async fn sleep(&self, Parameters(args): Parameters<SleepArgs>) -> String {
        sleep_for(args).await
    }

    /// Publishes a notification to the session's standalone stream.
    #[tool]
    async fn announce(&self, context: RequestContext<RoleServer>) -> String {
        context.peer.notify_tool_list_changed().await.unwrap();
        "announced".into()
    }
}

async fn sleep_for(SleepArgs { millis }: SleepArgs) -> String {
    tokio::time::sleep(Duration::from_millis(millis)).await;
    format!("slept {millis} ms")
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Tools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

/// A server on a free loopback port, serving until told to drain.
pub struct Replica {
    pub base: String,
    pub lifecycle: Lifecycle,
    /// The change feed its handlers publish to and listen streams follow.
    pub changes: ChangeFeed,
    stop: Option<oneshot::Sender<()>>,
    pub done: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Starts `handler` with `config`; returns once the server is ready.
pub async fn replica<H>(config: ServeConfig, handler: H) -> Replica
where
    H: ServerHandler + Clone,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state = SharedState::from_config(&config).await.unwrap();
    let changes = state.changes.clone();
    let lifecycle = Lifecycle::new();
    let server = Server::new(config, move || handler.clone())
        .with_state(state)
        .with_lifecycle(lifecycle.clone());
    let (stop, stopped) = oneshot::channel::<()>();
    let done = tokio::spawn(server.serve(listener, async move {
        let _ = stopped.await;
    }));
    lifecycle.reached(Phase::Ready).await;
    Replica {
        base,
        lifecycle,
        changes,
        stop: Some(stop),
        done,
    }
}

impl Replica {
    /// Starts the drain; `finished` waits for `serve` to return.
    pub fn drain(&mut self) {
        let _ = self.stop.take().expect("drained once").send(());
    }

    pub async fn finished(self) {
        self.done.await.unwrap().unwrap();
    }

    pub async fn stop(mut self) {
        self.drain();
        self.finished().await;
    }
}

pub fn redis_url() -> String {
    std::env::var("MCPSHIP_TEST_REDIS_URL")
        .expect("MCPSHIP_TEST_REDIS_URL must name a Redis server (scripts/test starts one)")
}

/// A key prefix no other test (or run) uses.
pub fn unique_prefix(test: &str) -> String {
    format!(
        "mcpship-test:{test}:{}:{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

/// Shared state in the test Redis under `prefix`.
pub fn redis_config(prefix: &str) -> ServeConfig {
    ServeConfig {
        state: StateBackend::Redis,
        redis_url: Some(redis_url()),
        redis_prefix: prefix.to_owned(),
        ..ServeConfig::default()
    }
}

/// A `redis-server` of the test's own on a free port, for tests that stop
/// and restart it; the shared one is never touched.
pub struct PrivateRedis {
    port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl PrivateRedis {
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = Self {
            port,
            child: None,
            dir: tempfile::tempdir().unwrap(),
        };
        redis.restart();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    pub fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("this test needs redis-server on PATH (apt-get install redis-server)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A legacy (2025-06-18) `initialize` from client `name`.
pub fn initialize(name: &str) -> Value {
    json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": name, "version": "1"}
        }
    })
}

/// POSTs a legacy JSON-RPC message; returns status, session id and the
/// JSON-RPC message (from JSON or from the first SSE data line).
pub async fn legacy_post(
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

/// Initializes a legacy session on `base` as client `name` and confirms it;
/// returns its id.
pub async fn open_session(client: &reqwest::Client, base: &str, name: &str) -> String {
    let (status, session, message) = legacy_post(client, base, None, initialize(name)).await;
    assert_eq!(status, 200, "{message:?}");
    let session = session.expect("initialize returns a session id");
    let (status, _, _) = legacy_post(
        client,
        base,
        Some(&session),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    assert_eq!(status, 202);
    session
}

/// The `_meta` a 2026-07-28 request carries.
pub fn modern_meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}
    })
}

/// A 2026-07-28 `tools/call` body (id 1).
pub fn modern_tool_call(tool: &str, arguments: Value) -> Value {
    json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": tool, "arguments": arguments, "_meta": modern_meta()}
    })
}

/// A 2026-07-28 POST of `method` (and `name`, for `mcp-name`) with the
/// protocol headers; the caller adds the body.
pub fn modern_request(
    client: &reqwest::Client,
    base: &str,
    method: &str,
    name: Option<&str>,
) -> reqwest::RequestBuilder {
    let request = client
        .post(format!("{base}/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", method);
    match name {
        Some(name) => request.header("mcp-name", name),
        None => request,
    }
}

/// The response's `content-type`.
pub fn content_type(response: &reqwest::Response) -> &str {
    response.headers()["content-type"].to_str().unwrap()
}
