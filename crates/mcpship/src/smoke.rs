//! `mcpship smoke URL`: an end-to-end check of a running server, as a deploy
//! pipeline runs it before shifting traffic. It speaks the wire protocol
//! directly (no SDK), so it also proves what a plain HTTP client sees:
//!
//! - `/health` answers `{"status":"healthy"}`;
//! - modern (2026-07-28): `server/discover`, `tools/list`, one `tools/call`;
//! - legacy (2025-11-25): `initialize`, `notifications/initialized`, one
//!   `tools/call` in the session, then `DELETE` of the session.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

const MODERN: &str = "2026-07-28";
const LEGACY: &str = "2025-11-25";

/// What to check and how.
#[derive(Debug, Clone)]
pub struct SmokeOptions {
    /// The MCP endpoint, e.g. `https://mcp.example.com/mcp`.
    pub endpoint: String,
    /// The tool to call; by default `search_documents` if listed, else the
    /// first tool with no required arguments.
    pub tool: Option<String>,
    /// Arguments for `tool`.
    pub arguments: Option<Value>,
    /// Time limit of each request.
    pub timeout: Duration,
}

/// One step's outcome.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Step {
    pub name: String,
    pub ok: bool,
    pub detail: String,
    pub millis: u128,
}

/// The whole report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub endpoint: String,
    pub steps: Vec<Step>,
}

impl Report {
    /// Whether every step passed.
    pub fn passed(&self) -> bool {
        !self.steps.is_empty() && self.steps.iter().all(|s| s.ok)
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "smoke test of {}", self.endpoint)?;
        for s in &self.steps {
            writeln!(
                f,
                "  {} {:<34} {:>5} ms  {}",
                if s.ok { "PASS" } else { "FAIL" },
                s.name,
                s.millis,
                s.detail
            )?;
        }
        let failed = self.steps.iter().filter(|s| !s.ok).count();
        write!(
            f,
            "{}: {} passed, {} failed",
            if self.passed() { "PASSED" } else { "FAILED" },
            self.steps.len() - failed,
            failed
        )
    }
}

struct Reply {
    status: reqwest::StatusCode,
    session: Option<String>,
    message: Option<Value>,
    raw: String,
}

struct Client {
    http: reqwest::Client,
    endpoint: String,
    next_id: u64,
}

impl Client {
    async fn post(
        &mut self,
        method: &str,
        params: Value,
        headers: &[(&str, String)],
        notification: bool,
    ) -> Result<Reply, String> {
        let mut body = json!({ "jsonrpc": "2.0", "method": method, "params": params });
        if !notification {
            self.next_id += 1;
            body["id"] = json!(self.next_id);
        }
        let mut request = self
            .http
            .post(&self.endpoint)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body.to_string());
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = request.send().await.map_err(|e| format!("{method}: {e}"))?;
        let status = response.status();
        let session = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let sse = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let raw = response
            .text()
            .await
            .map_err(|e| format!("{method}: reading the body: {e}"))?;
        let message = if sse {
            let mut rest = raw.as_bytes();
            let mut found = None;
            while let Some(end) = crate::http::sse::find_event_end(rest) {
                if let Some(data) = crate::http::sse::response_in_event(&rest[..end]) {
                    found = serde_json::from_slice(&data).ok();
                    break;
                }
                rest = &rest[end..];
            }
            found
        } else {
            serde_json::from_str(&raw).ok()
        };
        Ok(Reply {
            status,
            session,
            message,
            raw,
        })
    }
}

fn result_of(reply: &Reply, method: &str) -> Result<Value, String> {
    if !reply.status.is_success() {
        return Err(format!(
            "{method}: HTTP {}: {}",
            reply.status,
            reply.raw.chars().take(300).collect::<String>()
        ));
    }
    let message = reply.message.as_ref().ok_or_else(|| {
        format!(
            "{method}: no JSON-RPC response in {:?}",
            reply.raw.chars().take(300).collect::<String>()
        )
    })?;
    if let Some(error) = message.get("error") {
        return Err(format!("{method}: JSON-RPC error {error}"));
    }
    message
        .get("result")
        .cloned()
        .ok_or_else(|| format!("{method}: response has no result"))
}

fn modern_meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": { "name": "mcpship-smoke", "version": env!("CARGO_PKG_VERSION") },
    })
}

fn modern_headers(method: &str, name: Option<&str>) -> Vec<(&'static str, String)> {
    let mut h = vec![
        ("mcp-protocol-version", MODERN.to_owned()),
        ("mcp-method", method.to_owned()),
    ];
    if let Some(name) = name {
        h.push(("mcp-name", name.to_owned()));
    }
    h
}

/// Picks the tool to call and its arguments from a `tools/list` result.
fn choose_tool(options: &SmokeOptions, tools: &Value) -> Option<(String, Value)> {
    if let Some(tool) = &options.tool {
        return Some((
            tool.clone(),
            options.arguments.clone().unwrap_or_else(|| json!({})),
        ));
    }
    let list = tools.get("tools")?.as_array()?;
    if list
        .iter()
        .any(|t| t.get("name").and_then(Value::as_str) == Some("search_documents"))
    {
        return Some((
            "search_documents".into(),
            json!({ "query": "mcp", "limit": 3 }),
        ));
    }
    list.iter().find_map(|t| {
        let required = t
            .pointer("/inputSchema/required")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        let name = t.get("name")?.as_str()?;
        (required == 0).then(|| (name.to_owned(), json!({})))
    })
}

fn check_tool_result(result: &Value) -> Result<String, String> {
    if result.get("isError").and_then(Value::as_bool) == Some(true) {
        return Err(format!(
            "tool reported an error: {}",
            result.get("content").cloned().unwrap_or_default()
        ));
    }
    let blocks = result
        .get("content")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    Ok(format!("{blocks} content block(s)"))
}

/// Runs every step and reports; never panics on a bad server.
pub async fn run(options: SmokeOptions) -> Report {
    let mut report = Report {
        endpoint: options.endpoint.trim_end_matches('/').to_owned(),
        steps: Vec::new(),
    };
    run_steps(&options, &mut report).await;
    report
}

/// Like [`run`], but gives up once `limit` has passed, whatever each request's
/// own timeout: the report then holds the steps finished so far and a failed
/// `time limit` step. For callers that must answer before a deadline of their
/// own, such as a deployment hook.
pub async fn run_within(options: SmokeOptions, limit: Duration) -> Report {
    let mut report = Report {
        endpoint: options.endpoint.trim_end_matches('/').to_owned(),
        steps: Vec::new(),
    };
    let started = Instant::now();
    if tokio::time::timeout(limit, run_steps(&options, &mut report))
        .await
        .is_err()
    {
        report.steps.push(Step {
            name: "time limit".into(),
            ok: false,
            detail: format!(
                "gave up after {} ms with the checks unfinished",
                limit.as_millis()
            ),
            millis: started.elapsed().as_millis(),
        });
    }
    report
}

async fn run_steps(options: &SmokeOptions, report: &mut Report) {
    let endpoint = report.endpoint.clone();
    let http = match reqwest::Client::builder()
        .timeout(options.timeout)
        .no_proxy()
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            report.steps.push(Step {
                name: "client".into(),
                ok: false,
                detail: e.to_string(),
                millis: 0,
            });
            return;
        }
    };
    let mut client = Client {
        http: http.clone(),
        endpoint: endpoint.clone(),
        next_id: 0,
    };
    let step =
        |report: &mut Report, name: &str, started: Instant, outcome: Result<String, String>| {
            let (ok, detail) = match outcome {
                Ok(d) => (true, d),
                Err(d) => (false, d),
            };
            report.steps.push(Step {
                name: name.into(),
                ok,
                detail,
                millis: started.elapsed().as_millis(),
            });
        };

    // Health lives next to /mcp.
    let health_url = match endpoint.rsplit_once('/') {
        Some((base, _)) if endpoint.ends_with("/mcp") => format!("{base}/health"),
        _ => format!("{endpoint}/health"),
    };
    let t = Instant::now();
    let outcome = crate::healthcheck::check(&health_url, options.timeout)
        .await
        .map(|()| "healthy".to_owned());
    step(report, "health", t, outcome);

    // Modern, stateless.
    let t = Instant::now();
    let outcome = async {
        let reply = client
            .post(
                "server/discover",
                json!({ "_meta": modern_meta() }),
                &modern_headers("server/discover", None),
                false,
            )
            .await?;
        let result = result_of(&reply, "server/discover")?;
        let versions = result.get("supportedVersions").cloned().unwrap_or_default();
        if !versions
            .as_array()
            .is_some_and(|v| v.iter().any(|x| x == MODERN))
        {
            return Err(format!(
                "server/discover does not list {MODERN}: {versions}"
            ));
        }
        Ok(format!("supported versions {versions}"))
    }
    .await;
    step(report, "modern server/discover", t, outcome);

    let t = Instant::now();
    let tools = async {
        let reply = client
            .post(
                "tools/list",
                json!({ "_meta": modern_meta() }),
                &modern_headers("tools/list", None),
                false,
            )
            .await?;
        result_of(&reply, "tools/list")
    }
    .await;
    let chosen = tools
        .as_ref()
        .ok()
        .and_then(|tools| choose_tool(options, tools));
    step(
        report,
        "modern tools/list",
        t,
        tools
            .as_ref()
            .map(|v| {
                format!(
                    "{} tool(s)",
                    v.get("tools").and_then(Value::as_array).map_or(0, Vec::len)
                )
            })
            .map_err(Clone::clone),
    );
    let Some((tool, arguments)) = chosen else {
        let detail = if tools.is_ok() {
            "no tool to call: pass --tool NAME --arguments JSON"
        } else {
            "skipped: tools/list failed"
        };
        step(
            report,
            "modern tools/call",
            Instant::now(),
            Err(detail.into()),
        );
        return;
    };

    let t = Instant::now();
    let outcome = async {
        let params = json!({ "name": tool, "arguments": arguments, "_meta": modern_meta() });
        let reply = client
            .post(
                "tools/call",
                params,
                &modern_headers("tools/call", Some(&tool)),
                false,
            )
            .await?;
        check_tool_result(&result_of(&reply, "tools/call")?)
    }
    .await;
    step(report, &format!("modern tools/call {tool}"), t, outcome);

    // Legacy, with a session.
    let t = Instant::now();
    let init = async {
        let params = json!({
            "protocolVersion": LEGACY,
            "capabilities": {},
            "clientInfo": { "name": "mcpship-smoke", "version": env!("CARGO_PKG_VERSION") },
        });
        let reply = client.post("initialize", params, &[], false).await?;
        let result = result_of(&reply, "initialize")?;
        let version = result
            .get("protocolVersion")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned();
        Ok::<_, String>((reply.session, version))
    }
    .await;
    let session = match init {
        Ok((session, version)) => {
            let detail = match &session {
                Some(_) => format!("protocol {version}, session issued"),
                None => format!("protocol {version}, stateless"),
            };
            step(report, "legacy initialize", t, Ok(detail));
            session
        }
        Err(e) => {
            step(report, "legacy initialize", t, Err(e));
            return;
        }
    };
    let mut legacy_headers = vec![("mcp-protocol-version", LEGACY.to_owned())];
    if let Some(session) = &session {
        legacy_headers.push(("mcp-session-id", session.clone()));
    }
    let t = Instant::now();
    let outcome = async {
        let reply = client
            .post(
                "notifications/initialized",
                json!({}),
                &legacy_headers,
                true,
            )
            .await?;
        if reply.status != reqwest::StatusCode::ACCEPTED {
            return Err(format!(
                "notifications/initialized: expected 202, got {}",
                reply.status
            ));
        }
        let reply = client
            .post(
                "tools/call",
                json!({ "name": tool, "arguments": arguments }),
                &legacy_headers,
                false,
            )
            .await?;
        check_tool_result(&result_of(&reply, "tools/call")?)
    }
    .await;
    step(report, &format!("legacy tools/call {tool}"), t, outcome);

    if let Some(session) = session {
        let t = Instant::now();
        let outcome = async {
            let response = http
                .delete(&endpoint)
                .header("mcp-session-id", &session)
                .header("mcp-protocol-version", LEGACY)
                .send()
                .await
                .map_err(|e| format!("DELETE: {e}"))?;
            let status = response.status();
            if status.is_success() || status == reqwest::StatusCode::METHOD_NOT_ALLOWED {
                Ok(format!("HTTP {status}"))
            } else {
                Err(format!("DELETE: HTTP {status}"))
            }
        }
        .await;
        step(report, "legacy session end", t, outcome);
    }
}
