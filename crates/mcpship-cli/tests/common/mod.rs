//! Drives the real `mcpship` binary over real HTTP.
#![allow(dead_code, unreachable_pub)]

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use serde_json::{Value, json};

pub const BIN: &str = env!("CARGO_BIN_EXE_mcpship");

/// A running server on a free loopback port, killed on drop.
pub struct Running {
    pub child: Child,
    pub port: u16,
    pub logs: mpsc::Receiver<String>,
    /// Lines written before the server listened.
    pub startup: Vec<String>,
    pub _dir: tempfile::TempDir,
}

impl Running {
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Collects log lines seen so far.
    pub fn drain_logs(&self) -> Vec<String> {
        self.logs.try_iter().collect()
    }

    /// Waits for a log line containing `needle`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = std::time::Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match self.logs.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return Some(line),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
        None
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `mcpship serve` with `args` and `env` on 127.0.0.1:0, an SQLite
/// database in a temp dir, and JSON logs; returns once it listens.
// The child is waited for by `Running`'s Drop; a start-up failure panics the test.
#[allow(clippy::zombie_processes)]
pub fn serve(args: &[&str], env: &[(&str, &str)]) -> Running {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}", dir.path().join("docs.db").display());
    let mut command = Command::new(BIN);
    command
        .args(["serve", "--host", "127.0.0.1", "--port", "0"])
        .args(args)
        .env_remove("DATABASE_URL")
        .env("DATABASE_URL", db)
        .env("LOG_FORMAT", "json")
        .env("LOG_LEVEL", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("spawn mcpship");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut startup = Vec::new();
    loop {
        let left = deadline
            .checked_duration_since(std::time::Instant::now())
            .expect("server did not start in 30 s");
        let line = rx
            .recv_timeout(left)
            .expect("server exited before listening");
        startup.push(line.clone());
        if line.contains("\"listening\"") {
            let v: Value = serde_json::from_str(&line).expect("json log");
            let addr = v["addr"].as_str().expect("addr");
            let port = addr.rsplit(':').next().unwrap().parse().unwrap();
            return Running {
                child,
                port,
                logs: rx,
                startup,
                _dir: dir,
            };
        }
    }
}

/// Runs the binary with `args` and `env` (and no `DATABASE_URL` or `PORT`
/// from the test's environment) to completion.
pub fn run(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("PORT");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("run mcpship")
}

pub fn modern_meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"}
    })
}

/// A modern (2026-07-28) POST of `method` (and `name`, for `mcp-name`)
/// with the protocol headers; the caller adds the body.
pub fn modern_request(
    server: &Running,
    method: &str,
    name: Option<&str>,
) -> reqwest::RequestBuilder {
    let request = reqwest::Client::new()
        .post(server.url("/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", method);
    match name {
        Some(name) => request.header("mcp-name", name),
        None => request,
    }
}

/// A legacy (2025-06-18) POST, on `session` if given; the caller adds the body.
pub fn legacy_request(server: &Running, session: Option<&str>) -> reqwest::RequestBuilder {
    let request = reqwest::Client::new()
        .post(server.url("/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    match session {
        Some(session) => request
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", "2025-06-18"),
        None => request,
    }
}

/// The response's `content-type`.
pub fn content_type(response: &reqwest::Response) -> &str {
    response.headers()["content-type"].to_str().unwrap()
}

/// A modern (2026-07-28) request; returns status and the JSON body.
pub async fn modern(
    server: &Running,
    method: &str,
    name: Option<&str>,
    mut params: Value,
) -> (u16, Value) {
    params["_meta"] = modern_meta();
    let response = modern_request(server, method, name)
        .body(json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string())
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Calls a tool the modern way; returns the `result` object.
pub async fn call_tool(server: &Running, tool: &str, arguments: Value) -> Value {
    let (status, body) = modern(
        server,
        "tools/call",
        Some(tool),
        json!({"name": tool, "arguments": arguments}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["result"].clone()
}

/// Text of the first content block.
pub fn text(result: &Value) -> String {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}
