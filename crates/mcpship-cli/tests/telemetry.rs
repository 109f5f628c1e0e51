//! What the real binary emits: access log and tool events, `/metrics`, EMF
//! lines, OTLP spans and X-Ray segments, captured by local receivers (an OTLP
//! HTTP endpoint and a UDP socket on 127.0.0.1), and that no secret reaches
//! any of it.

mod common;

use std::{
    collections::{BTreeMap, HashMap},
    net::UdpSocket,
    process::Command,
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use common::*;
use mcpship::telemetry::names;
use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    common::v1::{AnyValue, KeyValue, any_value},
};
use prost::Message as _;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------
// Helpers

/// Stops the server with SIGTERM and returns every line it wrote to stderr,
/// from the first.
fn stop_and_collect(mut server: Running) -> Vec<String> {
    let pid = server.child.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let deadline = Instant::now() + Duration::from_secs(15);
    while server.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "server did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The reader thread ends at EOF, closing the channel.
    let mut lines = std::mem::take(&mut server.startup);
    while let Ok(line) = server.logs.recv_timeout(Duration::from_secs(5)) {
        lines.push(line);
    }
    lines
}

fn json_lines(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect()
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A random-enough id for test traces (hex digits).
fn hex_id(len: usize, salt: u64) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let mut x = nanos ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(std::process::id());
    let mut out = String::new();
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push_str(&format!("{x:016x}"));
    }
    out.truncate(len);
    out
}

/// A modern tools/call with extra headers and `_meta` entries.
async fn call_with(
    server: &Running,
    tool: &str,
    arguments: Value,
    headers: &[(&str, &str)],
    extra_meta: Value,
) -> (u16, Value) {
    let mut meta = modern_meta();
    if let Value::Object(extra) = extra_meta {
        for (k, v) in extra {
            meta[k] = v;
        }
    }
    let mut request = modern_request(server, "tools/call", Some(tool));
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": tool, "arguments": arguments, "_meta": meta}});
    let response = request.body(body.to_string()).send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Starts a legacy (2025-06-18) session; returns its id.
async fn legacy_session(server: &Running, headers: &[(&str, &str)]) -> String {
    let mut init = legacy_request(server, None);
    for (k, v) in headers {
        init = init.header(*k, *v);
    }
    let init = init
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#)
        .send()
        .await
        .unwrap();
    let session = init.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let _ = init.text().await;
    legacy_request(server, Some(&session))
        .body(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
        .send()
        .await
        .unwrap();
    session
}

/// A UDP socket standing in for the X-Ray daemon; collects datagrams.
struct XrayDaemon {
    port: u16,
    datagrams: Arc<Mutex<Vec<String>>>,
}

impl XrayDaemon {
    fn start() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let port = socket.local_addr().unwrap().port();
        let datagrams = Arc::new(Mutex::new(Vec::new()));
        let sink = datagrams.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            let mut buf = vec![0u8; 70_000];
            // Bounded: the test is over long before.
            while started.elapsed() < Duration::from_secs(120) {
                if let Ok(n) = socket.recv(&mut buf) {
                    sink.lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&buf[..n]).into_owned());
                }
                if Arc::strong_count(&sink) == 1 {
                    break;
                }
            }
        });
        Self { port, datagrams }
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Waits until `done` holds for the segment documents received so far.
    fn wait_for(&self, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let docs: Vec<Value> = self
                .datagrams
                .lock()
                .unwrap()
                .iter()
                .map(|d| {
                    let body = d
                        .strip_prefix("{\"format\": \"json\", \"version\": 1}\n")
                        .unwrap_or_else(|| panic!("datagram without the daemon header: {d}"));
                    serde_json::from_str(body)
                        .unwrap_or_else(|e| panic!("segment is not JSON ({e}): {body}"))
                })
                .collect();
            if done(&docs) || Instant::now() > deadline {
                return docs;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// An OTLP/HTTP receiver on 127.0.0.1: decodes every `POST /v1/traces`.
struct OtlpReceiver {
    url: String,
    spans: Arc<Mutex<Vec<Span>>>,
}

/// A received span, flattened.
#[derive(Debug, Clone)]
struct Span {
    service: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    name: String,
    kind: i32,
    attributes: HashMap<String, String>,
    status_code: i32,
}

fn any_value(v: &Option<AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

fn attributes(kvs: &[KeyValue]) -> HashMap<String, String> {
    kvs.iter()
        .map(|kv| (kv.key.clone(), any_value(&kv.value)))
        .collect()
}

impl OtlpReceiver {
    async fn start() -> Self {
        let spans: Arc<Mutex<Vec<Span>>> = Arc::default();
        let sink = spans.clone();
        let app = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |body: axum::body::Bytes| {
                let sink = sink.clone();
                async move {
                    let request = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
                    let mut sink = sink.lock().unwrap();
                    for rs in request.resource_spans {
                        let resource = rs
                            .resource
                            .map(|r| attributes(&r.attributes))
                            .unwrap_or_default();
                        let service = resource.get("service.name").cloned().unwrap_or_default();
                        for ss in rs.scope_spans {
                            for s in ss.spans {
                                sink.push(Span {
                                    service: service.clone(),
                                    trace_id: hex(&s.trace_id),
                                    span_id: hex(&s.span_id),
                                    parent_span_id: hex(&s.parent_span_id),
                                    name: s.name,
                                    kind: s.kind,
                                    attributes: attributes(&s.attributes),
                                    status_code: s.status.map_or(0, |st| st.code),
                                });
                            }
                        }
                    }
                    (
                        [(axum::http::header::CONTENT_TYPE, "application/x-protobuf")],
                        Vec::<u8>::new(),
                    )
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, spans }
    }

    async fn wait_for(&self, done: impl Fn(&[Span]) -> bool) -> Vec<Span> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let spans = self.spans.lock().unwrap().clone();
            if done(&spans) || Instant::now() > deadline {
                return spans;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------
// Logs

#[tokio::test]
async fn access_log_and_tool_events_use_the_documented_fields() {
    let server = serve(&[], &[]);
    let trace = hex_id(32, 1);
    let (status, _) = call_with(
        &server,
        "search_documents",
        json!({"query": "idle timeout"}),
        &[
            ("traceparent", &format!("00-{trace}-{}-01", hex_id(16, 2))),
            ("x-request-id", "req-logs-1"),
        ],
        json!({}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call_with(&server, "no_such_tool", json!({}), &[], json!({})).await;
    assert_eq!(status, 200);
    let lines = stop_and_collect(server);
    let events = json_lines(&lines);
    let ours: Vec<&Value> = events
        .iter()
        .filter(|e| names::LOG_EVENTS.contains(&e["message"].as_str().unwrap_or("")))
        .collect();
    assert!(ours.len() >= 6, "{lines:#?}");
    for event in &ours {
        // The formatter writes the event name as `message`, and the fields
        // at the top level; every key is a documented one.
        assert_eq!(event["message"], event["event"], "{event}");
        for key in event.as_object().unwrap().keys() {
            assert!(
                names::LOG_FIELDS.contains(&key.as_str()),
                "undocumented log field {key:?} in {event}"
            );
        }
    }
    let access: Vec<&&Value> = ours
        .iter()
        .filter(|e| e["message"] == names::HTTP_REQUEST)
        .collect();
    let first = access
        .iter()
        .find(|e| e["request_id"] == "req-logs-1")
        .expect("access log line of the first call");
    assert_eq!(first["http.method"], "POST");
    assert_eq!(first["http.path"], "/mcp");
    assert_eq!(first["http.status"], 200);
    assert!(first["duration_ms"].is_f64());
    assert!(first["bytes"].as_u64().unwrap() > 100);
    assert_eq!(first["mcp.method"], "tools/call");
    assert_eq!(first["mcp.name"], "search_documents");
    assert_eq!(first["mcp.protocol_version"], "2026-07-28");
    assert_eq!(first["trace_id"], trace.as_str());
    assert_eq!(first["target"], "mcpship::access");

    // `fields tool, duration_ms | filter ispresent(tool)
    //  | stats avg(duration_ms), pct(duration_ms, 99) by tool`, done by hand.
    let mut by_tool: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for event in events.iter().filter(|e| e.get("tool").is_some()) {
        if let Some(ms) = event.get("duration_ms") {
            let ms = ms.as_f64().expect("duration_ms is a number");
            by_tool
                .entry(event["tool"].as_str().unwrap().to_owned())
                .or_default()
                .push(ms);
        }
    }
    assert_eq!(by_tool["search_documents"].len(), 1, "{by_tool:?}");
    assert_eq!(by_tool["no_such_tool"].len(), 1, "{by_tool:?}");
    let succeeded = ours
        .iter()
        .find(|e| e["message"] == names::TOOL_SUCCEEDED)
        .unwrap();
    assert_eq!(succeeded["trace_id"], trace.as_str());
    assert_eq!(succeeded["request_id"], "req-logs-1");
    // Arguments only with MCPSHIP_LOG_TOOL_ARGUMENTS=true.
    assert!(
        ours.iter().all(|e| e.get("arguments").is_none()),
        "{ours:#?}"
    );
    let failed = ours
        .iter()
        .find(|e| e["message"] == names::TOOL_FAILED)
        .unwrap();
    assert_eq!(failed["error_class"], "protocol_error");
}

#[tokio::test]
async fn no_secret_reaches_any_log_line_or_trace() {
    const DB_SECRET: &str = "Db-Pa55word-7f3a";
    const BEARER: &str = "eyJhbGciOiJIUzI1NiJ9.secret-bearer-token";
    const COOKIE: &str = "session-cookie-9c2e41";
    const ARG_SECRET: &str = "hunter2-arg-secret";
    const NESTED_SECRET: &str = "sk-live-nested-5b7d";
    let secrets = [DB_SECRET, BEARER, COOKIE, ARG_SECRET, NESTED_SECRET];
    let daemon = XrayDaemon::start();
    let address = daemon.address();
    let mut env = vec![
        ("LOG_LEVEL", "debug"),
        ("MCPSHIP_LOG_TOOL_ARGUMENTS", "true"),
        ("MCPSHIP_EMF", "true"),
        ("MCPSHIP_TRACES_EXPORTER", "xray"),
        ("MCPSHIP_TRACES_SAMPLER_RATIO", "1.0"),
        ("MCPSHIP_XRAY_DAEMON_ADDRESS", address.as_str()),
    ];
    // With PostgreSQL reachable, serve from it with a password in the URL
    // (the local server trusts loopback, so any password connects).
    let pg = postgres_database().await;
    let url = pg
        .as_ref()
        .map(|(admin, name)| with_password(admin, name, DB_SECRET));
    if let Some(url) = &url {
        env.push(("DATABASE_URL", url));
    }
    let server = serve(&[], &env);
    let auth = format!("Bearer {BEARER}");
    let cookie = format!("sid={COOKIE}");
    let headers = [
        ("authorization", auth.as_str()),
        ("cookie", cookie.as_str()),
    ];
    let (status, body) = call_with(
        &server,
        "search_documents",
        json!({"query": "idle timeout", "password": ARG_SECRET,
               "nested": {"api_key": NESTED_SECRET, "list": [{"token": ARG_SECRET}]}}),
        &headers,
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    call_with(
        &server,
        "no_such_tool",
        json!({"password": ARG_SECRET}),
        &headers,
        json!({}),
    )
    .await;
    let session = legacy_session(&server, &headers).await;
    let response = legacy_request(&server, Some(&session))
        .header("authorization", &auth)
        .body(
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "get_document", "arguments": {"id": "x", "secret": NESTED_SECRET}}})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    let _ = response.text().await;
    let segments = daemon.wait_for(|docs| docs.len() >= 8);
    let lines = stop_and_collect(server);
    assert!(
        lines.iter().any(|l| l.contains("[REDACTED]")),
        "arguments were not logged at all: {lines:#?}"
    );
    if pg.is_some() {
        assert!(
            lines
                .iter()
                .any(|l| l.contains("document store ready") && l.contains("postgres")),
            "{lines:#?}"
        );
    }
    let datagrams = daemon.datagrams.lock().unwrap().clone();
    for secret in secrets {
        for line in &lines {
            assert!(!line.contains(secret), "{secret} in a log line: {line}");
        }
        for d in &datagrams {
            assert!(!d.contains(secret), "{secret} in a trace segment: {d}");
        }
    }
    assert!(!segments.is_empty());
    if let Some((admin, name)) = pg {
        drop_database(&admin, &name).await;
    }

    // A start-up failure names the database without its password.
    let out = Command::new(BIN)
        .args(["serve", "--port", "0"])
        .env(
            "DATABASE_URL",
            format!("postgres://app:{DB_SECRET}@127.0.0.1:1/docs"),
        )
        .env("LOG_FORMAT", "json")
        .env("LOG_LEVEL", "debug")
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success());
    assert!(all.contains("app:***@127.0.0.1:1"), "{all}");
    assert!(!all.contains(DB_SECRET), "{all}");
}

/// The PostgreSQL server of the store tests, with a fresh database for this
/// test; `None` (and a note) when none answers outside CI.
async fn postgres_database() -> Option<(String, String)> {
    use sqlx::Connection as _;
    let admin = std::env::var("MCPSHIP_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let mut conn = match sqlx::PgConnection::connect(&admin).await {
        Ok(c) => c,
        Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!(
                "note: PostgreSQL not reachable ({e}); checking DATABASE_URL redaction on the error path only"
            );
            return None;
        }
        Err(e) => panic!("PostgreSQL is required in CI: {e}"),
    };
    let name = format!("mcpship_secrets_{}", hex_id(12, 7));
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    Some((admin, name))
}

fn with_password(admin: &str, database: &str, password: &str) -> String {
    // postgres://user[:pw]@host:port/db?query → postgres://user:PASSWORD@host:port/DATABASE
    let rest = admin.split_once("://").unwrap().1;
    let (userinfo, host) = rest.split_once('@').unwrap();
    let user = userinfo.split(':').next().unwrap();
    let host = host.split(['/', '?']).next().unwrap();
    format!("postgres://{user}:{password}@{host}/{database}")
}

async fn drop_database(admin: &str, name: &str) {
    use sqlx::Connection as _;
    if let Ok(mut conn) = sqlx::PgConnection::connect(admin).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut conn)
            .await;
    }
}

// ---------------------------------------------------------------------------
// Metrics

/// One sample of the text exposition format.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the Prometheus text format (0.0.4): `# HELP`/`# TYPE` comments and
/// `name{label="value",...} number` samples with escaped label values.
fn parse_exposition(text: &str) -> (Vec<Sample>, HashMap<String, String>) {
    let mut samples = Vec::new();
    let mut types = HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE line");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            types.insert(name.to_owned(), kind.to_owned());
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (name, mut rest) = match line.find(['{', ' ']) {
            Some(i) => (&line[..i], &line[i..]),
            None => panic!("bad sample line {line:?}"),
        };
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "{line}"
        );
        let mut labels = BTreeMap::new();
        if let Some(inner) = rest.strip_prefix('{') {
            let mut chars = inner.char_indices().peekable();
            let end;
            loop {
                let (start, c) = chars.next().expect("unterminated labels");
                if c == '}' {
                    end = start + 1;
                    break;
                }
                if c == ',' {
                    continue;
                }
                let eq = inner[start..].find('=').expect("label =") + start;
                let key = inner[start..eq].to_owned();
                while chars.peek().is_some_and(|(i, _)| *i <= eq) {
                    chars.next();
                }
                assert_eq!(chars.next().map(|(_, c)| c), Some('"'), "{line}");
                let mut value = String::new();
                loop {
                    let (_, c) = chars.next().expect("unterminated value");
                    match c {
                        '\\' => match chars.next().unwrap().1 {
                            'n' => value.push('\n'),
                            other => value.push(other),
                        },
                        '"' => break,
                        other => value.push(other),
                    }
                }
                labels.insert(key, value);
            }
            rest = &inner[end..];
        }
        let value = rest.trim().parse::<f64>().expect("sample value");
        samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    (samples, types)
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

#[tokio::test]
async fn metrics_count_real_calls() {
    let server = serve(&[], &[]);
    for _ in 0..3 {
        let (status, _) = call_with(
            &server,
            "search_documents",
            json!({"query": "idle timeout"}),
            &[],
            json!({}),
        )
        .await;
        assert_eq!(status, 200);
    }
    // A tool error, and a name the server does not have.
    call_with(
        &server,
        "search_documents",
        json!({"query": " "}),
        &[],
        json!({}),
    )
    .await;
    call_with(&server, "made_up_tool", json!({}), &[], json!({})).await;
    let _session = legacy_session(&server, &[]).await;
    // Scrapers address the task by IP: no Host check.
    let response = reqwest::Client::new()
        .get(server.url("/metrics"))
        .header("host", "10.0.3.17:8080")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(content_type(&response).starts_with("text/plain; version=0.0.4"));
    let text = response.text().await.unwrap();
    let (samples, types) = parse_exposition(&text);
    for family in names::PROMETHEUS_METRICS {
        assert!(types.contains_key(*family), "{family} not exposed:\n{text}");
    }
    for s in &samples {
        assert!(
            names::prometheus_series().contains(&s.name),
            "undocumented series {}",
            s.name
        );
        for label in s.labels.keys() {
            assert!(
                names::PROMETHEUS_LABELS.contains(&label.as_str()),
                "{label}"
            );
        }
    }
    let get = |name, labels: &[(&str, &str)]| value(&samples, name, labels).unwrap_or(0.0);
    assert_eq!(
        get(
            "mcpship_http_requests_total",
            &[("method", "POST"), ("status", "200")]
        ),
        6.0,
        "{text}"
    );
    // notifications/initialized
    assert_eq!(
        get(
            "mcpship_http_requests_total",
            &[("method", "POST"), ("status", "202")]
        ),
        1.0
    );
    assert_eq!(
        get(
            "mcpship_tool_calls_total",
            &[("tool", "search_documents"), ("outcome", "ok")]
        ),
        3.0
    );
    assert_eq!(
        get(
            "mcpship_tool_calls_total",
            &[("tool", "search_documents"), ("outcome", "tool_error")]
        ),
        1.0
    );
    assert_eq!(
        get(
            "mcpship_tool_calls_total",
            &[("tool", "other"), ("outcome", "protocol_error")]
        ),
        1.0
    );
    assert!(!text.contains("made_up_tool"));
    assert_eq!(
        get(
            "mcpship_tool_duration_seconds_count",
            &[("tool", "search_documents")]
        ),
        4.0
    );
    assert_eq!(
        get(
            "mcpship_tool_duration_seconds_bucket",
            &[("tool", "search_documents"), ("le", "+Inf")]
        ),
        4.0
    );
    assert_eq!(
        get(
            "mcpship_mcp_requests_total",
            &[("mcp_method", "tools/call"), ("outcome", "ok")]
        ),
        4.0
    );
    assert_eq!(
        get(
            "mcpship_mcp_requests_total",
            &[("mcp_method", "initialize"), ("outcome", "ok")]
        ),
        1.0
    );
    assert_eq!(
        get(
            "mcpship_mcp_request_duration_seconds_count",
            &[("mcp_method", "tools/call")]
        ),
        5.0
    );
    assert_eq!(get("mcpship_http_request_duration_seconds_count", &[]), 7.0);
    assert_eq!(get("mcpship_legacy_sessions", &[]), 1.0);
    assert_eq!(get("mcpship_drain_state", &[]), 1.0);
    assert_eq!(get("mcpship_in_flight_requests", &[]), 0.0);
    assert_eq!(get("mcpship_open_streams", &[]), 0.0);
    assert_eq!(
        get(
            "mcpship_build_info",
            &[("rmcp_version", mcpship::telemetry::RMCP_VERSION)]
        ),
        1.0
    );
    drop(server);

    let off = serve(&[], &[("MCPSHIP_METRICS", "false")]);
    let response = reqwest::get(off.url("/metrics")).await.unwrap();
    assert_eq!(response.status(), 404);
}

// ---------------------------------------------------------------------------
// EMF

const EMF_UNITS: &[&str] = &[
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// Checks a document against the CloudWatch Embedded Metric Format
/// specification: the `_aws` metadata object, an integer millisecond
/// Timestamp, CloudWatchMetrics directives with a Namespace, Dimensions as
/// arrays of at most 30 names of top-level string members, and Metrics whose
/// Name is a top-level number (or array of at most 100 numbers) and whose
/// Unit, if any, is one of the enumerated units.
fn check_emf(doc: &Value) -> Result<(), String> {
    let root = doc.as_object().ok_or("the document is not an object")?;
    let aws = root
        .get("_aws")
        .and_then(Value::as_object)
        .ok_or("no _aws object")?;
    let ts = aws.get("Timestamp").ok_or("no _aws.Timestamp")?;
    if !(ts.is_u64() && ts.as_u64().unwrap() > 1_000_000_000_000) {
        return Err(format!("Timestamp {ts} is not epoch milliseconds"));
    }
    let directives = aws
        .get("CloudWatchMetrics")
        .and_then(Value::as_array)
        .ok_or("CloudWatchMetrics is not an array")?;
    if directives.is_empty() {
        return Err("no metric directive".into());
    }
    for d in directives {
        let ns = d
            .get("Namespace")
            .and_then(Value::as_str)
            .ok_or("Namespace missing or not a string")?;
        if ns.is_empty() || ns.len() > 255 {
            return Err(format!("bad Namespace {ns:?}"));
        }
        let sets = d
            .get("Dimensions")
            .and_then(Value::as_array)
            .ok_or("Dimensions is not an array")?;
        for set in sets {
            let set = set.as_array().ok_or("a DimensionSet is not an array")?;
            if set.len() > 30 {
                return Err("a DimensionSet has more than 30 dimensions".into());
            }
            for name in set {
                let name = name.as_str().ok_or("a dimension name is not a string")?;
                let v = root
                    .get(name)
                    .ok_or(format!("dimension {name} has no top-level member"))?;
                let v = v
                    .as_str()
                    .ok_or(format!("dimension {name} is not a string"))?;
                if v.is_empty() || v.len() > 1024 {
                    return Err(format!("dimension {name} value length"));
                }
            }
        }
        let metrics = d
            .get("Metrics")
            .and_then(Value::as_array)
            .ok_or("Metrics is not an array")?;
        if metrics.len() > 100 {
            return Err("more than 100 metrics".into());
        }
        for m in metrics {
            let name = m
                .get("Name")
                .and_then(Value::as_str)
                .ok_or("a metric without Name")?;
            if name.is_empty() || name.len() > 255 {
                return Err(format!("bad metric name {name:?}"));
            }
            match root.get(name) {
                Some(v) if v.is_number() => {}
                Some(Value::Array(a)) if a.len() <= 100 && a.iter().all(Value::is_number) => {}
                other => return Err(format!("metric {name} value {other:?} is not numeric")),
            }
            if let Some(unit) = m.get("Unit") {
                let unit = unit.as_str().ok_or("Unit is not a string")?;
                if !EMF_UNITS.contains(&unit) {
                    return Err(format!("Unit {unit} is not a CloudWatch unit"));
                }
            }
            if let Some(r) = m.get("StorageResolution")
                && !(r == 1 || r == 60)
            {
                return Err("StorageResolution must be 1 or 60".into());
            }
        }
    }
    Ok(())
}

#[test]
fn the_emf_checker_rejects_what_the_spec_rejects() {
    let good = json!({"_aws": {"Timestamp": 1_764_000_000_000u64, "CloudWatchMetrics": [
        {"Namespace": "N", "Dimensions": [["A"]], "Metrics": [{"Name": "M", "Unit": "Count"}]}]},
        "A": "x", "M": 1});
    check_emf(&good).unwrap();
    for (path, bad) in [
        ("/_aws/Timestamp", json!("now")),
        ("/_aws/CloudWatchMetrics/0/Metrics/0/Unit", json!("Things")),
        ("/A", json!(3)),
        ("/M", json!("1")),
        ("/_aws/CloudWatchMetrics/0/Namespace", json!(7)),
    ] {
        let mut doc = good.clone();
        *doc.pointer_mut(path).unwrap() = bad;
        assert!(check_emf(&doc).is_err(), "{path}");
    }
}

#[tokio::test]
async fn emf_lines_follow_the_specification() {
    let server = serve(
        &[],
        &[
            ("MCPSHIP_EMF", "true"),
            ("MCPSHIP_SERVICE_NAME", "docs-api"),
            ("MCPSHIP_EMF_DIMENSIONS", "Environment=test"),
        ],
    );
    call_with(
        &server,
        "search_documents",
        json!({"query": "draining"}),
        &[],
        json!({}),
    )
    .await;
    call_with(
        &server,
        "search_documents",
        json!({"query": ""}),
        &[],
        json!({}),
    )
    .await;
    call_with(&server, "unknown_tool", json!({}), &[], json!({})).await;
    let lines = stop_and_collect(server);
    let docs: Vec<Value> = json_lines(&lines)
        .into_iter()
        .filter(|v| v.get("_aws").is_some())
        .collect();
    // Calls are gathered per tool, a line at most a second: two lines here,
    // more if the second's timer fell between the calls.
    assert!((2..=3).contains(&docs.len()), "{lines:#?}");
    for doc in &docs {
        check_emf(doc).unwrap_or_else(|e| panic!("{e}: {doc}"));
        let d = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(d["Namespace"], names::emf::NAMESPACE);
        assert_eq!(
            d["Dimensions"],
            json!([["Service", "Tool"], ["Service", "Tool", "Environment"]])
        );
        let metric_names: Vec<&str> = d["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        assert_eq!(metric_names, names::EMF_METRICS);
        assert_eq!(doc["Service"], "docs-api");
        assert_eq!(doc["Environment"], "test");
        let durations = doc["ToolDuration"].as_array().unwrap();
        assert_eq!(doc["ToolCalls"], durations.len(), "{doc}");
        assert!(durations.iter().all(|d| d.as_f64().unwrap() > 0.0), "{doc}");
    }
    let totals = |tool: &str| {
        docs.iter()
            .filter(|d| d["Tool"] == tool)
            .fold((0, 0), |(calls, errors), d| {
                (
                    calls + d["ToolCalls"].as_u64().unwrap(),
                    errors + d["ToolErrors"].as_u64().unwrap(),
                )
            })
    };
    assert_eq!(totals("search_documents"), (2, 1), "{docs:#?}");
    assert_eq!(totals("other"), (1, 1), "an unknown tool counts as other");
}

// ---------------------------------------------------------------------------
// Traces

fn child_of<'a>(spans: &'a [Span], parent: &Span, name: &str) -> &'a Span {
    spans
        .iter()
        .find(|s| s.parent_span_id == parent.span_id && s.name == name)
        .unwrap_or_else(|| panic!("no {name} under {} in {spans:#?}", parent.name))
}

/// The http → mcp → tool → db.query chain of one trace.
fn chain<'a>(spans: &'a [Span], trace_id: &str) -> [&'a Span; 4] {
    let trace: Vec<Span> = spans
        .iter()
        .filter(|s| s.trace_id == trace_id)
        .cloned()
        .collect();
    let http = spans
        .iter()
        .find(|s| s.trace_id == trace_id && s.name == "POST /mcp")
        .unwrap_or_else(|| panic!("no HTTP span in trace {trace_id}: {trace:#?}"));
    let mcp = child_of(spans, http, "mcp.tools/call");
    let tool = child_of(spans, mcp, "tool.search_documents");
    let db = child_of(spans, tool, "db.query");
    [http, mcp, tool, db]
}

#[tokio::test]
async fn otlp_spans_nest_and_follow_every_parent_form() {
    let receiver = OtlpReceiver::start().await;
    let server = serve(
        &[],
        &[
            ("MCPSHIP_TRACES_EXPORTER", "otlp"),
            ("MCPSHIP_TRACES_SAMPLER_RATIO", "1.0"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url.as_str()),
            ("MCPSHIP_SERVICE_NAME", "docs-traced"),
        ],
    );
    let search = |q: &str| json!({"query": q});
    // 1. W3C traceparent header.
    let (t1, p1) = (hex_id(32, 11), hex_id(16, 12));
    call_with(
        &server,
        "search_documents",
        search("idle timeout"),
        &[("traceparent", &format!("00-{t1}-{p1}-01"))],
        json!({}),
    )
    .await;
    // 2. X-Amzn-Trace-Id with a parent.
    let epoch = format!("{:08x}", now_secs());
    let (t2, p2) = (format!("{epoch}{}", hex_id(24, 13)), hex_id(16, 14));
    call_with(
        &server,
        "search_documents",
        search("draining"),
        &[(
            "x-amzn-trace-id",
            &format!("Root=1-{}-{};Parent={p2};Sampled=1", &t2[..8], &t2[8..]),
        )],
        json!({}),
    )
    .await;
    // 3. What an ALB sends: a root only.
    let t3 = format!("{epoch}{}", hex_id(24, 15));
    call_with(
        &server,
        "search_documents",
        search("health check"),
        &[(
            "x-amzn-trace-id",
            &format!(
                "Self=1-{epoch}-{};Root=1-{}-{}",
                hex_id(24, 16),
                &t3[..8],
                &t3[8..]
            ),
        )],
        json!({}),
    )
    .await;
    // 4. `_meta.traceparent` wins over the headers.
    let (t4, p4) = (hex_id(32, 17), hex_id(16, 18));
    call_with(
        &server,
        "search_documents",
        search("keep-alive"),
        &[
            (
                "traceparent",
                &format!("00-{}-{}-01", hex_id(32, 19), hex_id(16, 20)),
            ),
            (
                "x-amzn-trace-id",
                &format!("Root=1-{epoch}-{}", hex_id(24, 21)),
            ),
        ],
        json!({"traceparent": format!("00-{t4}-{p4}-01")}),
    )
    .await;
    // 5. Nothing: a new X-Ray-compatible trace id.
    call_with(
        &server,
        "search_documents",
        search("metrics"),
        &[("x-request-id", "fresh-trace")],
        json!({}),
    )
    .await;
    // 6. A tool error.
    call_with(
        &server,
        "search_documents",
        search(" "),
        &[("x-request-id", "failing")],
        json!({}),
    )
    .await;

    let spans = receiver
        .wait_for(|spans| {
            spans.iter().filter(|s| s.name == "POST /mcp").count() >= 6
                && spans.iter().filter(|s| s.name == "db.query").count() >= 5
        })
        .await;
    let [http, mcp, tool, db] = chain(&spans, &t1);
    assert_eq!(http.parent_span_id, p1);
    assert_eq!(http.kind, 2, "server"); // SPAN_KIND_SERVER
    assert_eq!(http.service, "docs-traced");
    assert_eq!(http.attributes["http.request.method"], "POST");
    assert_eq!(http.attributes["http.response.status_code"], "200");
    assert_eq!(http.attributes["mcp.method"], "tools/call");
    assert_eq!(mcp.attributes["mcp.method"], "tools/call");
    assert_eq!(mcp.attributes["mcp.protocol_version"], "2026-07-28");
    assert!(mcp.attributes.contains_key("request_id"));
    assert_eq!(tool.attributes["mcp.tool"], "search_documents");
    assert_eq!(db.attributes["db.system"], "sqlite");
    assert_eq!(db.kind, 3, "client"); // SPAN_KIND_CLIENT
    assert_eq!(tool.status_code, 0, "unset");

    let [http, ..] = chain(&spans, &t2);
    assert_eq!(http.parent_span_id, p2);

    let [http, ..] = chain(&spans, &t3);
    assert_eq!(http.parent_span_id, "", "an ALB root has no parent span");

    let [http, ..] = chain(&spans, &t4);
    assert_eq!(http.parent_span_id, p4, "_meta.traceparent comes first");

    // The request id is on the MCP method's span; the HTTP span is its parent.
    let http_of = |request_id: &str| -> &Span {
        let mcp = spans
            .iter()
            .find(|s| {
                s.name == "mcp.tools/call"
                    && s.attributes.get("request_id").map(String::as_str) == Some(request_id)
            })
            .unwrap_or_else(|| panic!("no span of request {request_id}: {spans:#?}"));
        spans
            .iter()
            .find(|s| s.span_id == mcp.parent_span_id && s.name == "POST /mcp")
            .expect("the HTTP span above it")
    };
    let fresh = http_of("fresh-trace");
    assert_eq!(fresh.parent_span_id, "");
    let secs = u64::from_str_radix(&fresh.trace_id[..8], 16).unwrap();
    assert!(
        now_secs().abs_diff(secs) < 120,
        "X-Ray ids start with the epoch seconds: {}",
        fresh.trace_id
    );
    chain(&spans, &fresh.trace_id);

    let failing = http_of("failing");
    let mcp = child_of(&spans, failing, "mcp.tools/call");
    let tool = child_of(&spans, mcp, "tool.search_documents");
    assert_eq!(tool.status_code, 2, "error"); // STATUS_CODE_ERROR
    assert_eq!(tool.attributes["error"], "true");

    // The exporter's own counter.
    let metrics = reqwest::get(server.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (samples, _) = parse_exposition(&metrics);
    assert!(value(&samples, "mcpship_trace_spans_exported_total", &[]).unwrap() >= 20.0);
}

#[tokio::test]
async fn xray_segments_reach_the_daemon() {
    let daemon = XrayDaemon::start();
    let address = daemon.address();
    let server = serve(
        &[],
        &[
            ("MCPSHIP_TRACES_EXPORTER", "xray"),
            ("MCPSHIP_TRACES_SAMPLER_RATIO", "1.0"),
            ("MCPSHIP_XRAY_DAEMON_ADDRESS", address.as_str()),
        ],
    );
    let epoch = format!("{:08x}", now_secs());
    let root = format!("1-{epoch}-{}", hex_id(24, 31));
    call_with(
        &server,
        "search_documents",
        json!({"query": "idle timeout"}),
        &[("x-amzn-trace-id", &format!("Root={root}"))],
        json!({}),
    )
    .await;
    call_with(
        &server,
        "search_documents",
        json!({"query": " "}),
        &[(
            "x-amzn-trace-id",
            &format!("Root=1-{epoch}-{}", hex_id(24, 32)),
        )],
        json!({}),
    )
    .await;
    // Two requests of four spans each, in as few as two datagrams.
    let count = |docs: &[Value]| docs.iter().map(|d| flatten(d).len()).sum::<usize>();
    let docs = daemon.wait_for(|docs| count(docs) >= 8);
    let id_ok = |v: &Value| {
        v.as_str()
            .is_some_and(|s| s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    for doc in &docs {
        // What the daemon requires of a document sent on its own.
        let trace = doc["trace_id"].as_str().unwrap();
        let parts: Vec<&str> = trace.split('-').collect();
        assert_eq!(parts.len(), 3, "{trace}");
        assert_eq!(parts[0], "1");
        assert_eq!(parts[1].len(), 8);
        assert_eq!(parts[2].len(), 24);
        if doc.get("type").is_some() {
            assert_eq!(doc["type"], "subsegment");
            assert!(id_ok(&doc["parent_id"]), "{doc}");
        }
        for span in flatten(doc) {
            assert!(span["name"].is_string(), "{span}");
            assert!(id_ok(&span["id"]), "{span}");
            let (start, end) = (
                span["start_time"].as_f64().unwrap(),
                span["end_time"].as_f64().unwrap(),
            );
            assert!(start > 1.7e9 && end >= start, "{span}");
        }
    }
    let spans: Vec<Value> = docs.iter().flat_map(flatten).collect();
    let in_trace: Vec<&Value> = spans
        .iter()
        .filter(|d| d["trace_id"] == root.as_str())
        .collect();
    let segment = in_trace
        .iter()
        .find(|d| d.get("parent_id").is_none())
        .expect("a segment for the HTTP request");
    assert_eq!(segment["name"], "mcpship");
    assert_eq!(segment["http"]["request"]["method"], "POST");
    assert_eq!(segment["http"]["response"]["status"], 200);
    assert!(segment.get("fault").is_none(), "{segment}");
    let find = |name: &str, parent: &Value| {
        *in_trace
            .iter()
            .find(|d| d["name"] == name && d["parent_id"] == *parent)
            .unwrap_or_else(|| panic!("no {name} under {parent}: {in_trace:#?}"))
    };
    let mcp = find("mcp.tools/call", &segment["id"]);
    let tool = find("tool.search_documents", &mcp["id"]);
    let db = find("db.query", &tool["id"]);
    assert_eq!(db["sql"]["database_type"], "sqlite");
    assert_eq!(db["namespace"], "remote");
    assert_eq!(tool["annotations"]["mcp_tool"], "search_documents");
    assert_eq!(mcp["annotations"]["mcp_method"], "tools/call");
    let failed = spans
        .iter()
        .find(|d| d["name"] == "tool.search_documents" && d["trace_id"] != root.as_str())
        .expect("the failing call's tool subsegment");
    assert!(
        failed["fault"] == true || failed["error"] == true,
        "a failed tool call is flagged: {failed}"
    );
    // A request's spans end within a millisecond or two, so they almost
    // always share a batch and go out as one segment with its subsegments
    // nested; a batch boundary between them sends them apart, joined by
    // `parent_id`. Of two requests, at least one is one datagram.
    let whole = docs
        .iter()
        .filter(|d| d.get("parent_id").is_none() && flatten(d).len() == 4)
        .count();
    assert!(whole >= 1, "{docs:#?}");
}

#[tokio::test]
async fn default_sampling_traces_a_few_new_requests_and_every_sampled_caller() {
    let receiver = OtlpReceiver::start().await;
    let server = serve(
        &[],
        &[
            ("MCPSHIP_TRACES_EXPORTER", "otlp"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url.as_str()),
        ],
    );
    // A burst of new traces: the first of the second, and 5 % of the rest.
    for i in 0..40 {
        call_with(
            &server,
            "get_document",
            json!({"id": "no-such-document"}),
            &[("x-request-id", &format!("burst-{i}"))],
            json!({}),
        )
        .await;
    }
    // A caller that sampled its trace keeps it traced.
    let (trace, parent) = (hex_id(32, 41), hex_id(16, 42));
    call_with(
        &server,
        "get_document",
        json!({"id": "no-such-document"}),
        &[("traceparent", &format!("00-{trace}-{parent}-01"))],
        json!({}),
    )
    .await;
    let spans = receiver
        .wait_for(|spans| spans.iter().any(|s| s.trace_id == trace))
        .await;
    let caller = spans
        .iter()
        .find(|s| s.trace_id == trace && s.name == "POST /mcp")
        .expect("the caller's sampled trace");
    assert_eq!(caller.parent_span_id, parent);
    // Give a late batch its second, then count the burst's traces.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let spans = receiver.wait_for(|_| true).await;
    let burst = spans
        .iter()
        .filter(|s| s.name == "POST /mcp" && s.trace_id != trace)
        .count();
    // At least the reservoir's one; with 5 % of 39 more, rarely above a few
    // (the burst may straddle a second: then two from the reservoir).
    assert!((1..=12).contains(&burst), "{burst} of 40 traced");
}

/// A document's spans, nested subsegments included, each with the
/// `trace_id` and `parent_id` that nesting implies.
fn flatten(doc: &Value) -> Vec<Value> {
    fn walk(span: &Value, trace_id: &Value, parent_id: Option<&Value>, out: &mut Vec<Value>) {
        let mut flat = span.clone();
        flat.as_object_mut().unwrap().remove("subsegments");
        flat["trace_id"] = trace_id.clone();
        if let Some(parent) = parent_id {
            flat["parent_id"] = parent.clone();
        }
        out.push(flat);
        for child in span["subsegments"].as_array().into_iter().flatten() {
            walk(child, trace_id, Some(&span["id"]), out);
        }
    }
    let mut out = Vec::new();
    walk(doc, &doc["trace_id"], doc.get("parent_id"), &mut out);
    out
}

// ---------------------------------------------------------------------------
// Configuration

#[test]
fn config_shows_telemetry_settings_and_refuses_bad_ones() {
    let out = Command::new(BIN)
        .arg("config")
        .env_remove("DATABASE_URL")
        .env("MCPSHIP_TRACES_EXPORTER", "otlp")
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "https://tenant:otlp-pa55@collector.example:4318",
        )
        .env("MCPSHIP_EMF", "true")
        .env("MCPSHIP_EMF_DIMENSIONS", "Environment=prod")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("otlp-pa55"), "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["traces_exporter"], "otlp");
    assert_eq!(
        v["otlp_endpoint"],
        "https://tenant:***@collector.example:4318"
    );
    assert_eq!(v["emf"], true);
    assert_eq!(v["emf_namespace"], "MCPShip");
    assert_eq!(v["emf_dimensions"], json!(["Environment=prod"]));
    assert_eq!(v["metrics"], true);
    assert_eq!(v["traces_sampler_ratio"], 0.05);
    assert_eq!(v["traces_per_second"], 1);

    let out = Command::new(BIN)
        .arg("serve")
        .env_remove("DATABASE_URL")
        .env("MCPSHIP_TRACES_SAMPLER_RATIO", "2")
        .env("MCPSHIP_EMF_DIMENSIONS", "Tool=x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("MCPSHIP_TRACES_SAMPLER_RATIO=\"2\" is not valid"),
        "{err}"
    );
    assert!(err.contains("MCPSHIP_EMF_DIMENSIONS="), "{err}");
}

#[tokio::test]
async fn an_unreachable_collector_never_fails_or_slows_a_request() {
    // Nothing listens on these loopback ports.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        port
    };
    for env in [
        vec![
            ("MCPSHIP_TRACES_EXPORTER", "otlp".to_owned()),
            ("MCPSHIP_TRACES_SAMPLER_RATIO", "1.0".to_owned()),
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("http://127.0.0.1:{closed}"),
            ),
        ],
        vec![
            ("MCPSHIP_TRACES_EXPORTER", "xray".to_owned()),
            ("MCPSHIP_TRACES_SAMPLER_RATIO", "1.0".to_owned()),
            ("MCPSHIP_XRAY_DAEMON_ADDRESS", format!("127.0.0.1:{closed}")),
        ],
    ] {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let server = serve(&[], &env);
        let started = Instant::now();
        for i in 0..20 {
            let (status, body) = call_with(
                &server,
                "search_documents",
                json!({"query": "idle timeout"}),
                &[],
                json!({}),
            )
            .await;
            assert_eq!(status, 200, "call {i}: {body}");
            assert_eq!(body["result"]["isError"], false);
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "20 calls took {:?}",
            started.elapsed()
        );
        // The losses are counted once the exporter has tried.
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let text = reqwest::get(server.url("/metrics"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let (samples, _) = parse_exposition(&text);
            let dropped = value(&samples, "mcpship_trace_spans_dropped_total", &[]).unwrap();
            if dropped > 0.0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no dropped spans counted:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let lines = stop_and_collect(server);
        let warnings = lines
            .iter()
            .filter(|l| l.contains("trace export failed"))
            .count();
        assert!(
            warnings <= 1,
            "export failures are warned about at most once a minute"
        );
    }
}

#[tokio::test]
async fn stdio_keeps_stdout_for_mcp_and_writes_emf_to_stderr() {
    use rmcp::{ServiceExt, model::CallToolRequestParams, transport::TokioChildProcess};
    use tokio::io::AsyncReadExt;
    let dir = tempfile::tempdir().unwrap();
    let mut command = tokio::process::Command::new(BIN);
    command
        .args(["serve", "--stdio"])
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.path().join("s.db").display()),
        )
        .env("LOG_FORMAT", "json")
        .env("MCPSHIP_EMF", "true");
    let (transport, stderr) = TokioChildProcess::builder(command)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = stderr.unwrap();
    let collected = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    // An EMF line on stdout would break the client's JSON-RPC stream.
    let client = ().serve(transport).await.unwrap();
    let mut params = CallToolRequestParams::new("search_documents");
    params.arguments = json!({"query": "draining"}).as_object().cloned();
    let result = client.call_tool(params).await.unwrap();
    assert_eq!(result.is_error, Some(false));
    client.cancel().await.unwrap();
    let stderr = tokio::time::timeout(Duration::from_secs(15), collected)
        .await
        .expect("the server exits when the client leaves")
        .unwrap();
    let emf: Vec<Value> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("_aws").is_some())
        .collect();
    assert_eq!(emf.len(), 1, "{stderr}");
    check_emf(&emf[0]).unwrap();
    assert_eq!(emf[0]["Tool"], "search_documents");
}
