//! Closed-loop HTTP/1.1 load generator for `bench/run` and the cluster
//! harness (`e2e/cluster`).
//!
//! N keep-alive connections, each with exactly one request in flight, on a
//! single-threaded tokio runtime (pin the process to one core with taskset).
//! Every response is validated, not just counted: status 200, a JSON-RPC
//! `"result"`, no `"isError":true`, and a scenario-specific marker (the
//! requested document id, or `"hits"`). Legacy scenarios do the 2025-11-25
//! handshake (initialize, notifications/initialized) and then call tools in
//! that session, reading the SSE stream to its response.
//!
//! Two ways to run:
//!
//! - Benchmark (default; `bench/run`): warm-up, then a measured window. A call
//!   counts when it both starts and completes inside the measured window.
//!   Server and own CPU time are sampled from /proc at the window's edges.
//!   Output: one tab-separated line on stdout (fields named in `FIELDS`).
//!   Legacy clients open a session per connection.
//! - Accounting (`--json`; the cluster harness): no warm-up, every call that
//!   starts is counted as succeeded or failed, failures by HTTP status or by
//!   kind (`connection`, `timeout`, `invalid`), so a test can say no call was
//!   lost. The run ends after `--duration` seconds, after `--max-calls` calls,
//!   or on SIGTERM/SIGINT (calls in flight finish first). Output: one JSON
//!   object on stdout.
//!
//! Options for runs through a load balancer:
//!
//! - `--legacy-sessions N`: N virtual legacy clients, each initializing once
//!   and keeping its session for the whole run, across reconnects and whichever
//!   replica answers. A call answered 404 (session unknown) fails, and that
//!   client initializes again, as the specification tells clients to
//!   (`reinitialized` counts it).
//! - `--retry-503`: a call answered `503` with `Retry-After` was refused before
//!   any processing (a draining or saturated replica says so), so it is sent
//!   again after the advertised wait (capped by `--retry-wait-ms`), at most
//!   `--max-retries` times. Retries are reported separately (`retries`,
//!   `retried_ok`); nothing else is ever retried.
//!
//! A request that never left the client (the kept-alive connection was
//! already closed, and hyper hands the request back) is resent on a new
//! connection and is not a failure. Anything the client did send and got no
//! valid answer for is a failure.
//!
//! Error samples and progress go to stderr. Only ever connects to the address
//! given in `--addr`, which must be a loopback address.
//!
//! `--sink 127.0.0.1:0 --sink-seconds N` runs instead a sink for the telemetry
//! benchmark: an HTTP/1.1 server on loopback that answers every request (an
//! OTLP export, say) with an empty 200 after reading its body, prints its
//! address on stdout, and exits after N seconds. `--udp-sink` is the same for
//! UDP (the X-Ray daemon's protocol): it reads and discards datagrams.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Empty, Full, combinators::BoxBody};
use hyper::{
    HeaderMap, Method, Request, StatusCode,
    client::conn::http1::SendRequest,
    header::{ACCEPT, CONNECTION, CONTENT_TYPE, HOST, HeaderValue, RETRY_AFTER},
};
use hyper_util::rt::TokioIo;
use memchr::memmem;

const FIELDS: &str = "scenario\tcalls\tcalls_per_s\tp50_ms\tp90_ms\tp99_ms\tmax_ms\terrors\twarmup_errors\tserver_cpu_pct\tloadgen_cpu_pct\tother_cpu_pct\tserver_rss_kib\tserver_hwm_kib";
const MODERN: &str = "2026-07-28";
const LEGACY: &str = "2025-11-25";
/// The exact body of a healthy `GET /health`.
const HEALTHY: &[u8] = br#"{"status":"healthy"}"#;
/// Failure and retry events kept with their time, for the JSON report.
const MAX_EVENTS: usize = 500;

type Body = BoxBody<Bytes, std::convert::Infallible>;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Wire {
    Health,
    Modern,
    Legacy,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Tool {
    Get,
    Search,
    /// `get_document` over every id, then one `search_documents`, in turn.
    Mix,
    /// No tool: every call is a legacy `initialize`, a new session each time,
    /// never used or closed (a client flood, for memory bounds).
    Initialize,
}

struct Config {
    addr: SocketAddr,
    host: HeaderValue,
    scenario: String,
    wire: Wire,
    tool: Tool,
    connections: usize,
    start: Instant,
    warm_end: Instant,
    end: Instant,
    measure: Duration,
    query: String,
    limit: u32,
    ids: Vec<String>,
    server_pid: Option<u32>,
    clk_tck: f64,
    /// `start` as seconds since the Unix epoch: event times are relative to it.
    started_unix: f64,
    /// Accounting mode: JSON output, every call counted.
    json: bool,
    /// Legacy clients keep one session for the run (else one per connection).
    keep_sessions: bool,
    retry_503: bool,
    max_retries: u32,
    retry_wait_cap: Duration,
    call_timeout: Duration,
    max_calls: u64,
    calls_started: AtomicU64,
    /// Set by SIGTERM/SIGINT: start no new call, finish the ones in flight.
    stop: AtomicBool,
}

impl Config {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || Instant::now() >= self.end
    }

    /// Claims one call of the `--max-calls` budget.
    fn claim_call(&self) -> bool {
        self.calls_started.fetch_add(1, Ordering::Relaxed) < self.max_calls
    }
}

fn usage() -> ! {
    eprintln!(
        "usage: mcpship-loadgen --addr 127.0.0.1:PORT --scenario SCENARIO\n\
         \x20      [--connections 64] [--warmup 5] [--duration 15] [--query 'idle timeout'] [--limit 10]\n\
         \x20      [--server-pid PID] [--clk-tck 100] [--header]\n\
         \x20      [--json] [--legacy-sessions N] [--retry-503] [--max-retries 3] [--retry-wait-ms 1000]\n\
         \x20      [--max-calls N] [--call-timeout 30]\n\
         \x20      mcpship-loadgen --sink 127.0.0.1:0 [--sink-seconds 600]\n\
         \x20      mcpship-loadgen --udp-sink 127.0.0.1:0 [--sink-seconds 600]\n\
         scenarios: health, modern-get, modern-search, modern-mix, legacy-get, legacy-search, legacy-mix,\n\
         \x20          legacy-initialize (each call a new session's initialize, nothing else)"
    );
    std::process::exit(2)
}

fn main() {
    let mut addr: Option<SocketAddr> = None;
    let mut scenario = String::new();
    let mut connections = 64usize;
    let mut warmup: Option<f64> = None;
    let mut duration = 15.0f64;
    let mut query = "idle timeout".to_owned();
    let mut limit = 10u32;
    let mut server_pid = None;
    let mut clk_tck = 100.0f64;
    let mut json = false;
    let mut legacy_sessions: Option<usize> = None;
    let mut retry_503 = false;
    let mut max_retries = 3u32;
    let mut retry_wait_ms = 1000u64;
    let mut max_calls = u64::MAX;
    let mut call_timeout = 30.0f64;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--header" => {
                println!("{FIELDS}");
                return;
            }
            "--sink" | "--udp-sink" => {
                let addr: SocketAddr = args
                    .next()
                    .and_then(|a| a.parse().ok())
                    .unwrap_or_else(|| usage());
                let seconds = match (args.next().as_deref(), args.next()) {
                    (Some("--sink-seconds"), Some(v)) => v.parse().unwrap_or_else(|_| usage()),
                    (None, _) => 600.0,
                    _ => usage(),
                };
                if flag == "--sink" {
                    sink(addr, seconds);
                } else {
                    udp_sink(addr, seconds);
                }
                return;
            }
            "--calibrate" => {
                println!("{:.0}", calibrate());
                return;
            }
            "--json" => {
                json = true;
                continue;
            }
            "--retry-503" => {
                retry_503 = true;
                continue;
            }
            _ => {}
        }
        let value = args.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--addr" => addr = Some(value.parse().unwrap_or_else(|_| usage())),
            "--scenario" => scenario = value,
            "--connections" => connections = value.parse().unwrap_or_else(|_| usage()),
            "--warmup" => warmup = Some(value.parse().unwrap_or_else(|_| usage())),
            "--duration" => duration = value.parse().unwrap_or_else(|_| usage()),
            "--query" => query = value,
            "--limit" => limit = value.parse().unwrap_or_else(|_| usage()),
            "--server-pid" => server_pid = Some(value.parse().unwrap_or_else(|_| usage())),
            "--clk-tck" => clk_tck = value.parse().unwrap_or_else(|_| usage()),
            "--legacy-sessions" => {
                legacy_sessions = Some(value.parse().unwrap_or_else(|_| usage()))
            }
            "--max-retries" => max_retries = value.parse().unwrap_or_else(|_| usage()),
            "--retry-wait-ms" => retry_wait_ms = value.parse().unwrap_or_else(|_| usage()),
            "--max-calls" => max_calls = value.parse().unwrap_or_else(|_| usage()),
            "--call-timeout" => call_timeout = value.parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    let addr = addr.unwrap_or_else(|| usage());
    if !addr.ip().is_loopback() {
        eprintln!("refusing {addr}: this load generator only targets loopback addresses");
        std::process::exit(2);
    }
    let (wire, tool) = match scenario.as_str() {
        "health" => (Wire::Health, Tool::Get),
        "modern-get" => (Wire::Modern, Tool::Get),
        "modern-search" => (Wire::Modern, Tool::Search),
        "modern-mix" => (Wire::Modern, Tool::Mix),
        "legacy-get" => (Wire::Legacy, Tool::Get),
        "legacy-search" => (Wire::Legacy, Tool::Search),
        "legacy-mix" => (Wire::Legacy, Tool::Mix),
        "legacy-initialize" => (Wire::Legacy, Tool::Initialize),
        _ => usage(),
    };
    if let Some(n) = legacy_sessions {
        if wire != Wire::Legacy || tool == Tool::Initialize {
            fail("--legacy-sessions needs a legacy-get, legacy-search or legacy-mix scenario");
        }
        connections = n;
    }
    if connections == 0 || call_timeout <= 0.0 {
        usage();
    }
    // Accounting runs count every call: there is no warm-up to leave out.
    let warmup = if json { 0.0 } else { warmup.unwrap_or(5.0) };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let host = HeaderValue::from_str(&addr.to_string()).expect("host header");
        let ids = if matches!(tool, Tool::Get | Tool::Mix) && wire != Wire::Health {
            match discover_ids(addr, &host, &query).await {
                Ok(ids) if !ids.is_empty() => ids,
                Ok(_) => fail(&format!(
                    "search_documents({query:?}) found no documents to get"
                )),
                Err(e) => fail(&format!("could not find document ids: {e}")),
            }
        } else {
            Vec::new()
        };
        let start = Instant::now();
        let warm_end = start + Duration::from_secs_f64(warmup);
        let measure = Duration::from_secs_f64(duration);
        let config = Arc::new(Config {
            addr,
            host,
            scenario,
            wire,
            tool,
            connections,
            start,
            warm_end,
            end: warm_end + measure,
            measure,
            query,
            limit,
            ids,
            server_pid,
            clk_tck,
            started_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
            json,
            keep_sessions: legacy_sessions.is_some(),
            retry_503,
            max_retries,
            retry_wait_cap: Duration::from_millis(retry_wait_ms),
            call_timeout: Duration::from_secs_f64(call_timeout),
            max_calls,
            calls_started: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        tokio::spawn(stop_on_signal(config.clone()));
        run(config).await;
    });
}

/// SIGTERM or SIGINT ends the run gracefully: no new calls, results printed.
async fn stop_on_signal(config: Arc<Config>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    eprintln!("loadgen {}: stopping (signal)", config.scenario);
    config.stop.store(true, Ordering::Relaxed);
}

/// An HTTP/1.1 sink on loopback: 200 with an empty body for every request,
/// for `seconds` at most.
fn sink(addr: SocketAddr, seconds: f64) {
    if !addr.ip().is_loopback() {
        eprintln!("refusing {addr}: the sink only listens on loopback addresses");
        std::process::exit(2);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("bind sink");
        println!("{}", listener.local_addr().expect("sink address"));
        let deadline = tokio::time::sleep(Duration::from_secs_f64(seconds));
        tokio::pin!(deadline);
        loop {
            let stream = tokio::select! {
                () = &mut deadline => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(_) => continue,
                },
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    |request: Request<hyper::body::Incoming>| async move {
                        let _ = request.into_body().collect().await;
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(
                            Empty::<Bytes>::new(),
                        ))
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

/// A UDP sink on loopback, standing in for the X-Ray daemon: reads and
/// discards datagrams for `seconds` at most, then prints how many it got.
fn udp_sink(addr: SocketAddr, seconds: f64) {
    if !addr.ip().is_loopback() {
        eprintln!("refusing {addr}: the sink only listens on loopback addresses");
        std::process::exit(2);
    }
    let socket = std::net::UdpSocket::bind(addr).expect("bind UDP sink");
    println!("{}", socket.local_addr().expect("sink address"));
    let _ = socket.set_read_timeout(Some(Duration::from_millis(200)));
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let mut buffer = vec![0u8; 65_536];
    let mut datagrams = 0u64;
    while Instant::now() < deadline {
        if socket.recv(&mut buffer).is_ok() {
            datagrams += 1;
        }
    }
    eprintln!("udp sink: {datagrams} datagrams");
}

/// Milliseconds a fixed single-threaded workload takes on this core: on a
/// shared virtual machine the speed of a core drifts, and this shows by how much.
fn calibrate() -> f64 {
    let started = Instant::now();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut table = vec![0u64; 1 << 16];
    for i in 0..200_000_000u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let slot = (x as usize) & (table.len() - 1);
        table[slot] = table[slot].wrapping_add(i);
    }
    std::hint::black_box(&table);
    started.elapsed().as_secs_f64() * 1000.0
}

fn fail(message: &str) -> ! {
    eprintln!("loadgen: {message}");
    std::process::exit(1)
}

/// Finds document ids with one modern `search_documents` call.
async fn discover_ids(
    addr: SocketAddr,
    host: &HeaderValue,
    query: &str,
) -> Result<Vec<String>, String> {
    let mut sender = connect(addr).await?;
    let arguments = serde_json::json!({ "query": query, "limit": 10 });
    let body = call_body(Wire::Modern, "search_documents", &arguments.to_string(), 1);
    let request = mcp_request(host, Wire::Modern, "search_documents", None, body);
    let reply = send(&mut sender, request)
        .await
        .map_err(|e| e.message().to_owned())?;
    if reply.status != StatusCode::OK {
        return Err(format!(
            "status {}: {}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        ));
    }
    let value: serde_json::Value =
        serde_json::from_slice(&reply.body).map_err(|e| format!("{e}"))?;
    let result = &value["result"];
    let hits = if result["structuredContent"]["hits"].is_array() {
        result["structuredContent"]["hits"].clone()
    } else {
        let text = result["content"][0]["text"].as_str().unwrap_or("{}");
        serde_json::from_str::<serde_json::Value>(text).map_err(|e| format!("{e}"))?["hits"].clone()
    };
    Ok(hits
        .as_array()
        .map(|hits| {
            hits.iter()
                .filter_map(|h| h["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default())
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Body>, String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    stream
        .set_nodelay(true)
        .map_err(|e| format!("nodelay: {e}"))?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

fn call_body(wire: Wire, tool: &str, arguments: &str, id: u64) -> Bytes {
    let mut body = BytesMut::with_capacity(320);
    body.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
    body.extend_from_slice(id.to_string().as_bytes());
    body.extend_from_slice(br#","method":"tools/call","params":{"name":""#);
    body.extend_from_slice(tool.as_bytes());
    body.extend_from_slice(br#"","arguments":"#);
    body.extend_from_slice(arguments.as_bytes());
    if wire == Wire::Modern {
        body.extend_from_slice(
            br#","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#,
        );
    }
    body.extend_from_slice(b"}}");
    body.freeze()
}

fn mcp_request(
    host: &HeaderValue,
    wire: Wire,
    tool: &'static str,
    session: Option<&HeaderValue>,
    body: Bytes,
) -> Request<Body> {
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri("/mcp")
        .header(HOST, host.clone())
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
        .header(
            ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
    match wire {
        Wire::Modern => {
            builder = builder
                .header("mcp-protocol-version", HeaderValue::from_static(MODERN))
                .header("mcp-method", HeaderValue::from_static("tools/call"))
                .header("mcp-name", HeaderValue::from_static(tool));
        }
        Wire::Legacy => {
            builder = builder.header("mcp-protocol-version", HeaderValue::from_static(LEGACY));
        }
        Wire::Health => {}
    }
    if let Some(session) = session {
        builder = builder.header("mcp-session-id", session.clone());
    }
    builder.body(Full::new(body).boxed()).expect("request")
}

/// A legacy `initialize` (no protocol version header: it is negotiated here).
fn initialize_request(config: &Config) -> Request<Body> {
    const INIT: &[u8] = br#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"mcpship-loadgen","version":"0.0.0"}}}"#;
    let mut request = mcp_request(
        &config.host,
        Wire::Legacy,
        "",
        None,
        Bytes::from_static(INIT),
    );
    request.headers_mut().remove("mcp-protocol-version");
    request
}

/// A whole response.
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    /// Seconds of a numeric `Retry-After` (an HTTP date counts as 1 s).
    fn retry_after(&self) -> Option<Duration> {
        let value = self.headers.get(RETRY_AFTER)?;
        let secs = value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(1);
        Some(Duration::from_secs(secs))
    }

    /// Whether the server closes the connection after this response.
    fn closes(&self) -> bool {
        self.headers
            .get(CONNECTION)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"))
    }
}

/// Why no response came back.
enum SendError {
    /// The connection was closed before the request was written: hyper gives
    /// the request back, the server never saw it.
    NotSent(String),
    /// The request went out and the exchange broke (reset, closed mid-body).
    Broken(String),
}

impl SendError {
    fn message(&self) -> &str {
        match self {
            Self::NotSent(m) | Self::Broken(m) => m,
        }
    }
}

/// Sends one request and reads its whole body.
async fn send(sender: &mut SendRequest<Body>, request: Request<Body>) -> Result<Reply, SendError> {
    if let Err(e) = sender.ready().await {
        return Err(SendError::NotSent(format!("connection: {e}")));
    }
    let response = match sender.try_send_request(request).await {
        Ok(response) => response,
        Err(mut e) => {
            let unsent = e.take_message().is_some();
            let message = format!("request: {}", e.into_error());
            return Err(if unsent {
                SendError::NotSent(message)
            } else {
                SendError::Broken(message)
            });
        }
    };
    let status = response.status();
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| SendError::Broken(format!("body: {e}")))?
        .to_bytes();
    Ok(Reply {
        status,
        headers: parts.headers,
        body,
    })
}

/// Counters of one client task, merged at the end.
#[derive(Default)]
struct Stats {
    /// Latencies of the calls that count (all successful calls in accounting mode).
    latencies_us: Vec<u32>,
    /// Benchmark mode: failed calls in the measured window / the warm-up.
    errors: u64,
    warmup_errors: u64,
    samples: Vec<String>,
    /// Accounting mode.
    attempted: u64,
    succeeded: u64,
    /// Failed tool calls by HTTP status or kind.
    failures: BTreeMap<String, u64>,
    /// Failed handshakes and connects (no tool call was lost, but a client
    /// could not get going) by HTTP status or kind.
    setup_failures: BTreeMap<String, u64>,
    handshakes: u64,
    reinitialized: u64,
    retries: u64,
    retried_ok: u64,
    /// (seconds since start, what) of failures and retries.
    events: Vec<(f64, String)>,
    /// How long failed calls took to fail: a failure that takes long is a hang.
    failed_us: Vec<u32>,
}

impl Stats {
    fn sample(&mut self, sample: String) {
        if self.samples.len() < 3 {
            self.samples.push(sample);
        }
    }

    fn event(&mut self, config: &Config, what: String) {
        if self.events.len() < MAX_EVENTS {
            self.events
                .push((config.start.elapsed().as_secs_f64(), what));
        }
    }

    /// A tool call that got no valid answer.
    fn call_failed(&mut self, config: &Config, in_warmup: bool, kind: String, sample: String) {
        if in_warmup {
            self.warmup_errors += 1;
        } else {
            self.errors += 1;
        }
        *self.failures.entry(kind.clone()).or_default() += 1;
        self.event(config, format!("call failed: {kind}"));
        self.sample(sample);
    }

    /// A connect or a handshake that failed.
    fn setup_failed(&mut self, config: &Config, kind: String, sample: String) {
        if Instant::now() < config.warm_end {
            self.warmup_errors += 1;
        } else {
            self.errors += 1;
        }
        *self.setup_failures.entry(kind.clone()).or_default() += 1;
        self.event(config, format!("setup failed: {kind}"));
        self.sample(sample);
    }

    fn merge(&mut self, other: Stats) {
        self.latencies_us.extend_from_slice(&other.latencies_us);
        self.errors += other.errors;
        self.warmup_errors += other.warmup_errors;
        for s in other.samples {
            if self.samples.len() < 5 {
                self.samples.push(s);
            }
        }
        self.attempted += other.attempted;
        self.succeeded += other.succeeded;
        for (k, v) in other.failures {
            *self.failures.entry(k).or_default() += v;
        }
        for (k, v) in other.setup_failures {
            *self.setup_failures.entry(k).or_default() += v;
        }
        self.handshakes += other.handshakes;
        self.reinitialized += other.reinitialized;
        self.retries += other.retries;
        self.retried_ok += other.retried_ok;
        self.events.extend(other.events);
        self.failed_us.extend_from_slice(&other.failed_us);
    }
}

/// Checks a tool-call response; the message says what was wrong.
fn validate(status: StatusCode, body: &[u8], marker: &[u8]) -> Result<(), String> {
    let text = || String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
    if status != StatusCode::OK {
        return Err(format!("status {status}: {}", text()));
    }
    if marker == HEALTHY {
        return if body == HEALTHY {
            Ok(())
        } else {
            Err(format!("unhealthy: {}", text()))
        };
    }
    if memmem::find(body, b"\"result\"").is_none() {
        return Err(format!("no JSON-RPC result: {}", text()));
    }
    if memmem::find(body, b"\"isError\":true").is_some() {
        return Err(format!("tool error: {}", text()));
    }
    if memmem::find(body, marker).is_none() {
        return Err(format!(
            "marker {:?} missing: {}",
            String::from_utf8_lossy(marker),
            text()
        ));
    }
    Ok(())
}

/// One virtual client's connection: opened on demand, dropped when broken
/// or when the server said it closes it.
struct Conn {
    sender: Option<SendRequest<Body>>,
}

/// How an exchange (with its retries) ended without a response.
enum Failed {
    Connect(String),
    Timeout,
    Broken(String),
}

impl Conn {
    /// Sends the request `make` builds, resending it when it never left, and
    /// after a `503` + `Retry-After` when `--retry-503` is on. Returns the
    /// final response and how many retries it took.
    async fn exchange(
        &mut self,
        config: &Config,
        stats: &mut Stats,
        what: &str,
        make: impl Fn() -> Request<Body>,
    ) -> Result<(Reply, u32), Failed> {
        let mut retries = 0u32;
        let mut unsent = 0u32;
        loop {
            if self.sender.is_none() {
                self.sender = Some(connect(config.addr).await.map_err(Failed::Connect)?);
            }
            let sender = self.sender.as_mut().expect("connected above");
            let result = tokio::time::timeout(config.call_timeout, send(sender, make())).await;
            let reply = match result {
                Err(_) => {
                    self.sender = None;
                    return Err(Failed::Timeout);
                }
                Ok(Err(SendError::NotSent(e))) => {
                    // The server never saw it: a closed keep-alive connection.
                    self.sender = None;
                    unsent += 1;
                    if unsent > 3 {
                        return Err(Failed::Broken(e));
                    }
                    continue;
                }
                Ok(Err(SendError::Broken(e))) => {
                    self.sender = None;
                    return Err(Failed::Broken(e));
                }
                Ok(Ok(reply)) => reply,
            };
            if reply.closes() {
                self.sender = None;
            }
            if reply.status == StatusCode::SERVICE_UNAVAILABLE
                && config.retry_503
                && retries < config.max_retries
                && !config.stop.load(Ordering::Relaxed)
                && let Some(wait) = reply.retry_after()
            {
                retries += 1;
                stats.retries += 1;
                stats.event(config, format!("retry after 503: {what}"));
                tokio::time::sleep(wait.min(config.retry_wait_cap)).await;
                continue;
            }
            return Ok((reply, retries));
        }
    }
}

fn failure_kind(failed: &Failed) -> (String, String) {
    match failed {
        Failed::Connect(e) => ("connect".into(), e.clone()),
        Failed::Timeout => ("timeout".into(), "no answer within the call timeout".into()),
        Failed::Broken(e) => ("connection".into(), e.clone()),
    }
}

/// The legacy handshake: initialize, then notifications/initialized.
async fn handshake(
    config: &Config,
    conn: &mut Conn,
    stats: &mut Stats,
) -> Result<HeaderValue, (String, String)> {
    stats.handshakes += 1;
    let make_init = || initialize_request(config);
    let (reply, _) = conn
        .exchange(config, stats, "initialize", make_init)
        .await
        .map_err(|f| {
            let (kind, e) = failure_kind(&f);
            (format!("initialize {kind}"), e)
        })?;
    if reply.status != StatusCode::OK || memmem::find(&reply.body, b"\"result\"").is_none() {
        return Err((
            format!("initialize {}", reply.status.as_u16()),
            format!(
                "initialize: status {}: {}",
                reply.status,
                String::from_utf8_lossy(&reply.body[..reply.body.len().min(300)])
            ),
        ));
    }
    let session = reply
        .headers
        .get("mcp-session-id")
        .cloned()
        .ok_or_else(|| {
            (
                "initialize no-session".to_owned(),
                "initialize: no mcp-session-id header".to_owned(),
            )
        })?;
    let note = Bytes::from_static(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
    let make_note = || mcp_request(&config.host, Wire::Legacy, "", Some(&session), note.clone());
    let (reply, _) = conn
        .exchange(config, stats, "notifications/initialized", make_note)
        .await
        .map_err(|f| {
            let (kind, e) = failure_kind(&f);
            (format!("initialized {kind}"), e)
        })?;
    if reply.status != StatusCode::ACCEPTED {
        return Err((
            format!("initialized {}", reply.status.as_u16()),
            format!(
                "notifications/initialized: status {}: {}",
                reply.status,
                String::from_utf8_lossy(&reply.body[..reply.body.len().min(300)])
            ),
        ));
    }
    Ok(session)
}

/// What one call sends and what its answer must contain.
struct Call {
    tool: &'static str,
    arguments: String,
    marker: Vec<u8>,
}

fn calls_for(config: &Config) -> Vec<Call> {
    let get = |id: &String| Call {
        tool: "get_document",
        arguments: serde_json::json!({ "id": id }).to_string(),
        marker: format!("\"id\":{}", serde_json::Value::String(id.clone())).into_bytes(),
    };
    let search = || Call {
        tool: "search_documents",
        arguments: serde_json::json!({ "query": config.query, "limit": config.limit }).to_string(),
        marker: b"\"hits\"".to_vec(),
    };
    match (config.wire, config.tool) {
        (Wire::Health, _) => vec![Call {
            tool: "",
            arguments: String::new(),
            marker: HEALTHY.to_vec(),
        }],
        (_, Tool::Get) => config.ids.iter().map(get).collect(),
        (_, Tool::Search) => vec![search()],
        (_, Tool::Mix) => config.ids.iter().map(get).chain([search()]).collect(),
        (_, Tool::Initialize) => vec![Call {
            tool: "initialize",
            arguments: String::new(),
            marker: b"\"protocolVersion\"".to_vec(),
        }],
    }
}

fn micros(d: Duration) -> u32 {
    d.as_micros().min(u32::MAX as u128) as u32
}

async fn client_task(config: Arc<Config>, index: usize) -> Stats {
    let mut stats = Stats {
        latencies_us: Vec::with_capacity(if config.json { 1 << 12 } else { 1 << 16 }),
        ..Stats::default()
    };
    let calls = calls_for(&config);
    let flood = config.tool == Tool::Initialize;
    let mut call_id: u64 = 1;
    let mut conn = Conn { sender: None };
    let mut session: Option<HeaderValue> = None;
    while !config.stopping() {
        // Benchmark legacy clients open a session per connection.
        if !config.keep_sessions && conn.sender.is_none() {
            session = None;
        }
        if config.wire == Wire::Legacy && session.is_none() && !flood {
            match handshake(&config, &mut conn, &mut stats).await {
                Ok(s) => session = Some(s),
                Err((kind, e)) => {
                    stats.setup_failed(&config, kind, format!("open: {e}"));
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            }
        }
        if !config.claim_call() {
            break;
        }
        let call = &calls[(index + call_id as usize) % calls.len()];
        let started = Instant::now();
        let this_id = call_id;
        call_id += 1;
        let make = || {
            if flood {
                initialize_request(&config)
            } else if config.wire == Wire::Health {
                Request::builder()
                    .method(Method::GET)
                    .uri("/health")
                    .header(HOST, config.host.clone())
                    .body(Empty::new().boxed())
                    .expect("request")
            } else {
                let body = call_body(config.wire, call.tool, &call.arguments, this_id);
                mcp_request(&config.host, config.wire, call.tool, session.as_ref(), body)
            }
        };
        stats.attempted += 1;
        let result = conn.exchange(&config, &mut stats, call.tool, make).await;
        let done = Instant::now();
        let in_warmup = started < config.warm_end;
        let counted = config.json || (!in_warmup && done <= config.end);
        match result {
            Ok((reply, retries)) => match validate(reply.status, &reply.body, &call.marker)
                .and_then(|()| {
                    if flood && !reply.headers.contains_key("mcp-session-id") {
                        Err("initialize: no mcp-session-id header".to_owned())
                    } else {
                        Ok(())
                    }
                }) {
                Ok(()) => {
                    stats.succeeded += 1;
                    if retries > 0 {
                        stats.retried_ok += 1;
                    }
                    if counted {
                        stats
                            .latencies_us
                            .push(micros(done.duration_since(started)));
                    }
                }
                Err(e) => {
                    let kind = if reply.status == StatusCode::OK {
                        "invalid".to_owned()
                    } else {
                        reply.status.as_u16().to_string()
                    };
                    stats.call_failed(&config, in_warmup, kind, e);
                    stats.failed_us.push(micros(done.duration_since(started)));
                    if config.keep_sessions && reply.status == StatusCode::NOT_FOUND {
                        // The session is gone: a real client initializes again.
                        session = None;
                        stats.reinitialized += 1;
                    }
                }
            },
            Err(failed) => {
                let (kind, e) = failure_kind(&failed);
                stats.call_failed(&config, in_warmup, kind, e);
                stats.failed_us.push(micros(done.duration_since(started)));
            }
        }
    }
    stats
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the command: state is field 3; utime and stime are fields 14, 15.
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// Busy ticks of all cores (everything but idle and iowait), from /proc/stat.
fn machine_busy_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is in user).
    Some(v.get(..8)?.iter().sum::<u64>() - v[3] - v[4])
}

fn status_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The `p` quantile of sorted microseconds, in milliseconds.
fn quantile_ms(sorted_us: &[u32], p: f64) -> Option<f64> {
    if sorted_us.is_empty() {
        return None;
    }
    let rank = ((p * sorted_us.len() as f64).ceil() as usize).clamp(1, sorted_us.len());
    Some(sorted_us[rank - 1] as f64 / 1000.0)
}

async fn run(config: Arc<Config>) {
    let sampler = (!config.json).then(|| {
        let config = config.clone();
        tokio::spawn(async move {
            let server = config.server_pid.map(|p| p.to_string());
            let sample = || {
                (
                    Instant::now(),
                    server.as_deref().and_then(cpu_ticks),
                    cpu_ticks("self"),
                    machine_busy_ticks(),
                )
            };
            tokio::time::sleep_until(config.warm_end.into()).await;
            let a = sample();
            tokio::time::sleep_until(config.end.into()).await;
            let b = sample();
            let wall = b.0.duration_since(a.0).as_secs_f64();
            let pct = |x: Option<u64>, y: Option<u64>| match (x, y) {
                (Some(x), Some(y)) if wall > 0.0 => {
                    format!("{:.0}", (y - x) as f64 / config.clk_tck / wall * 100.0)
                }
                _ => "-".to_owned(),
            };
            // Everything else the machine ran meanwhile (other processes, the
            // kernel's softirq work not charged to either process): it shares
            // the two cores and so skews the result when it is not near 0.
            let other = match (a.1, b.1, a.2, b.2, a.3, b.3) {
                (Some(s0), Some(s1), Some(l0), Some(l1), Some(m0), Some(m1)) if wall > 0.0 => {
                    let rest = (m1 - m0) as f64 - (s1 - s0) as f64 - (l1 - l0) as f64;
                    format!("{:.0}", (rest / config.clk_tck / wall * 100.0).max(0.0))
                }
                _ => "-".to_owned(),
            };
            let rss = config.server_pid.and_then(|p| status_kib(p, "VmRSS:"));
            let hwm = config.server_pid.and_then(|p| status_kib(p, "VmHWM:"));
            (pct(a.1, b.1), pct(a.2, b.2), other, rss, hwm)
        })
    });
    let tasks: Vec<_> = (0..config.connections)
        .map(|i| tokio::spawn(client_task(config.clone(), i)))
        .collect();
    let mut all = Stats::default();
    for task in tasks {
        all.merge(task.await.expect("client task"));
    }
    let wall = config.start.elapsed().as_secs_f64();
    for s in &all.samples {
        eprintln!("loadgen {}: error sample: {s}", config.scenario);
    }
    let mut lat = std::mem::take(&mut all.latencies_us);
    lat.sort_unstable();
    if config.json {
        all.events
            .sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
        all.events.truncate(MAX_EVENTS);
        all.failed_us.sort_unstable();
        let failed: u64 = all.failures.values().sum();
        let report = serde_json::json!({
            "scenario": config.scenario,
            "clients": config.connections,
            "legacy_sessions": config.keep_sessions,
            "retry_503": config.retry_503,
            "attempted": all.attempted,
            "succeeded": all.succeeded,
            "failed": failed,
            "failures": all.failures,
            "setup_failures": all.setup_failures,
            "handshakes": all.handshakes,
            "reinitialized": all.reinitialized,
            "retries": all.retries,
            "retried_ok": all.retried_ok,
            "started_unix": config.started_unix,
            "wall_s": (wall * 1000.0).round() / 1000.0,
            "calls_per_s": if wall > 0.0 { (all.succeeded as f64 / wall).round() } else { 0.0 },
            "p50_ms": quantile_ms(&lat, 0.50),
            "p90_ms": quantile_ms(&lat, 0.90),
            "p99_ms": quantile_ms(&lat, 0.99),
            "max_ms": quantile_ms(&lat, 1.0),
            "failed_p50_ms": quantile_ms(&all.failed_us, 0.50),
            "failed_max_ms": quantile_ms(&all.failed_us, 1.0),
            "samples": all.samples,
            "events": all
                .events
                .iter()
                .map(|(t, what)| serde_json::json!({ "t": (t * 1000.0).round() / 1000.0, "what": what }))
                .collect::<Vec<_>>(),
        });
        println!("{report}");
        return;
    }
    let (server_cpu, own_cpu, other_cpu, rss, hwm) = match sampler {
        Some(sampler) => sampler.await.expect("sampler"),
        None => unreachable!("the sampler runs in benchmark mode"),
    };
    let ms = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.2}"));
    let calls = lat.len();
    let rate = calls as f64 / config.measure.as_secs_f64();
    let kib = |v: Option<u64>| v.map_or("-".to_owned(), |v| v.to_string());
    println!(
        "{}\t{}\t{:.0}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
        config.scenario,
        calls,
        rate,
        ms(quantile_ms(&lat, 0.50)),
        ms(quantile_ms(&lat, 0.90)),
        ms(quantile_ms(&lat, 0.99)),
        ms(quantile_ms(&lat, 1.0)),
        all.errors,
        all.warmup_errors,
        server_cpu,
        own_cpu,
        other_cpu,
        kib(rss),
        kib(hwm),
    );
}
