//! Closed-loop HTTP/1.1 load generator for `bench/run`.
//!
//! N keep-alive connections, each with exactly one request in flight, on a
//! single-threaded tokio runtime (pin the process to one core with taskset).
//! Every response is validated, not just counted: status 200, a JSON-RPC
//! `"result"`, no `"isError":true`, and a scenario-specific marker (the
//! requested document id, or `"hits"`). Legacy scenarios do the 2025-11-25
//! handshake (initialize, notifications/initialized) once per connection and
//! then call tools in that session, reading the SSE stream to its response.
//!
//! Timeline: warm-up, then the measured window. A call counts when it both
//! starts and completes inside the measured window. Server and own CPU time are
//! sampled from /proc at the window's edges.
//!
//! Output: one tab-separated line on stdout (fields named in `FIELDS`); error
//! samples and progress on stderr.
//!
//! Only ever connects to the address given in `--addr`, which must be a
//! loopback address.
//!
//! `--sink 127.0.0.1:0 --sink-seconds N` runs instead a sink for the telemetry
//! benchmark: an HTTP/1.1 server on loopback that answers every request (an
//! OTLP export, say) with an empty 200 after reading its body, prints its
//! address on stdout, and exits after N seconds.

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Empty, Full, combinators::BoxBody};
use hyper::{
    Method, Request, StatusCode,
    client::conn::http1::SendRequest,
    header::{ACCEPT, CONTENT_TYPE, HOST, HeaderValue},
};
use hyper_util::rt::TokioIo;
use memchr::memmem;

const FIELDS: &str = "scenario\tcalls\tcalls_per_s\tp50_ms\tp90_ms\tp99_ms\tmax_ms\terrors\twarmup_errors\tserver_cpu_pct\tloadgen_cpu_pct\tother_cpu_pct\tserver_rss_kib\tserver_hwm_kib";
const MODERN: &str = "2026-07-28";
const LEGACY: &str = "2025-11-25";
/// The exact body of a healthy `GET /health`.
const HEALTHY: &[u8] = br#"{"status":"healthy"}"#;

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
}

struct Config {
    addr: SocketAddr,
    host: HeaderValue,
    scenario: String,
    wire: Wire,
    tool: Tool,
    connections: usize,
    warm_end: Instant,
    end: Instant,
    measure: Duration,
    query: String,
    limit: u32,
    ids: Vec<String>,
    server_pid: Option<u32>,
    clk_tck: f64,
}

fn usage() -> ! {
    eprintln!(
        "usage: mcpship-loadgen --addr 127.0.0.1:PORT --scenario health|modern-get|modern-search|legacy-get|legacy-search\n\
         \x20      [--connections 64] [--warmup 5] [--duration 15] [--query 'idle timeout'] [--limit 10]\n\
         \x20      [--server-pid PID] [--clk-tck 100] [--header]\n\
         \x20      mcpship-loadgen --sink 127.0.0.1:0 [--sink-seconds 600]"
    );
    std::process::exit(2)
}

fn main() {
    let mut addr: Option<SocketAddr> = None;
    let mut scenario = String::new();
    let mut connections = 64usize;
    let mut warmup = 5.0f64;
    let mut duration = 15.0f64;
    let mut query = "idle timeout".to_owned();
    let mut limit = 10u32;
    let mut server_pid = None;
    let mut clk_tck = 100.0f64;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--header" {
            println!("{FIELDS}");
            return;
        }
        if flag == "--sink" {
            let addr: SocketAddr = args
                .next()
                .and_then(|a| a.parse().ok())
                .unwrap_or_else(|| usage());
            let seconds = match (args.next().as_deref(), args.next()) {
                (Some("--sink-seconds"), Some(v)) => v.parse().unwrap_or_else(|_| usage()),
                (None, _) => 600.0,
                _ => usage(),
            };
            sink(addr, seconds);
            return;
        }
        if flag == "--calibrate" {
            println!("{:.0}", calibrate());
            return;
        }
        let value = args.next().unwrap_or_else(|| usage());
        let bad = |_| usage();
        match flag.as_str() {
            "--addr" => addr = Some(value.parse().unwrap_or_else(bad)),
            "--scenario" => scenario = value,
            "--connections" => connections = value.parse().unwrap_or_else(|_| usage()),
            "--warmup" => warmup = value.parse().unwrap_or_else(|_| usage()),
            "--duration" => duration = value.parse().unwrap_or_else(|_| usage()),
            "--query" => query = value,
            "--limit" => limit = value.parse().unwrap_or_else(|_| usage()),
            "--server-pid" => server_pid = Some(value.parse().unwrap_or_else(|_| usage())),
            "--clk-tck" => clk_tck = value.parse().unwrap_or_else(|_| usage()),
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
        "legacy-get" => (Wire::Legacy, Tool::Get),
        "legacy-search" => (Wire::Legacy, Tool::Search),
        _ => usage(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let host = HeaderValue::from_str(&addr.to_string()).expect("host header");
        let ids = if tool == Tool::Get && wire != Wire::Health {
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
            warm_end,
            end: warm_end + measure,
            measure,
            query,
            limit,
            ids,
            server_pid,
            clk_tck,
        });
        run(config).await;
    });
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
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind sink");
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
                let service = hyper::service::service_fn(|request: Request<hyper::body::Incoming>| async move {
                    let _ = request.into_body().collect().await;
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(Empty::<Bytes>::new()))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
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
    let (status, _, bytes) = send(&mut sender, request).await?;
    if status != StatusCode::OK {
        return Err(format!(
            "status {status}: {}",
            String::from_utf8_lossy(&bytes)
        ));
    }
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| format!("{e}"))?;
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

/// Sends one request and reads its whole body. Err means the connection is
/// unusable (reconnect).
async fn send(
    sender: &mut SendRequest<Body>,
    request: Request<Body>,
) -> Result<(StatusCode, Option<HeaderValue>, Bytes), String> {
    sender
        .ready()
        .await
        .map_err(|e| format!("connection: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("request: {e}"))?;
    let status = response.status();
    let session = response.headers().get("mcp-session-id").cloned();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("body: {e}"))?
        .to_bytes();
    Ok((status, session, body))
}

/// A connection ready for calls: for legacy, with its session.
struct Client {
    sender: SendRequest<Body>,
    session: Option<HeaderValue>,
}

async fn open_client(config: &Config) -> Result<Client, String> {
    let mut sender = connect(config.addr).await?;
    let session = if config.wire == Wire::Legacy {
        let init = Bytes::from_static(
            br#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"mcpship-loadgen","version":"0.0.0"}}}"#,
        );
        let mut request = mcp_request(&config.host, Wire::Legacy, "", None, init);
        request.headers_mut().remove("mcp-protocol-version");
        let (status, session, body) = send(&mut sender, request).await?;
        if status != StatusCode::OK || memmem::find(&body, b"\"result\"").is_none() {
            return Err(format!(
                "initialize: status {status}: {}",
                String::from_utf8_lossy(&body)
            ));
        }
        let session = session.ok_or("initialize: no mcp-session-id header")?;
        let note = Bytes::from_static(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        let request = mcp_request(&config.host, Wire::Legacy, "", Some(&session), note);
        let (status, _, body) = send(&mut sender, request).await?;
        if status != StatusCode::ACCEPTED {
            return Err(format!(
                "notifications/initialized: status {status}: {}",
                String::from_utf8_lossy(&body)
            ));
        }
        Some(session)
    } else {
        None
    };
    Ok(Client { sender, session })
}

#[derive(Default)]
struct Stats {
    latencies_us: Vec<u32>,
    errors: u64,
    warmup_errors: u64,
    samples: Vec<String>,
}

impl Stats {
    fn error(&mut self, in_warmup: bool, sample: String) {
        if in_warmup {
            self.warmup_errors += 1;
        } else {
            self.errors += 1;
        }
        if self.samples.len() < 3 {
            self.samples.push(sample);
        }
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

async fn client_task(config: Arc<Config>, index: usize) -> Stats {
    let mut stats = Stats {
        latencies_us: Vec::with_capacity(1 << 16),
        ..Stats::default()
    };
    let mut call_id: u64 = 1;
    let tool = match config.tool {
        Tool::Get => "get_document",
        Tool::Search => "search_documents",
    };
    // Per-request bodies are prebuilt arguments plus a fresh JSON-RPC id.
    let arguments: Vec<(String, Vec<u8>)> = match (config.wire, config.tool) {
        (Wire::Health, _) => vec![(String::new(), HEALTHY.to_vec())],
        (_, Tool::Get) => config
            .ids
            .iter()
            .map(|id| {
                let args = serde_json::json!({ "id": id }).to_string();
                let marker =
                    format!("\"id\":{}", serde_json::Value::String(id.clone())).into_bytes();
                (args, marker)
            })
            .collect(),
        (_, Tool::Search) => {
            let args =
                serde_json::json!({ "query": config.query, "limit": config.limit }).to_string();
            vec![(args, b"\"hits\"".to_vec())]
        }
    };
    'connection: while Instant::now() < config.end {
        let mut client = match open_client(&config).await {
            Ok(c) => c,
            Err(e) => {
                stats.error(Instant::now() < config.warm_end, format!("open: {e}"));
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        loop {
            let started = Instant::now();
            if started >= config.end {
                break 'connection;
            }
            let (args, marker) = &arguments[(index + call_id as usize) % arguments.len()];
            let request = if config.wire == Wire::Health {
                Request::builder()
                    .method(Method::GET)
                    .uri("/health")
                    .header(HOST, config.host.clone())
                    .body(Empty::new().boxed())
                    .expect("request")
            } else {
                let body = call_body(config.wire, tool, args, call_id);
                mcp_request(
                    &config.host,
                    config.wire,
                    tool,
                    client.session.as_ref(),
                    body,
                )
            };
            call_id += 1;
            let result = send(&mut client.sender, request).await;
            let done = Instant::now();
            let in_warmup = started < config.warm_end;
            let counted = !in_warmup && done <= config.end;
            match result {
                Ok((status, _, body)) => match validate(status, &body, marker) {
                    Ok(()) => {
                        if counted {
                            let us = done.duration_since(started).as_micros();
                            stats.latencies_us.push(us.min(u32::MAX as u128) as u32);
                        }
                    }
                    Err(e) => stats.error(in_warmup, e),
                },
                Err(e) => {
                    stats.error(in_warmup, e);
                    continue 'connection;
                }
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

async fn run(config: Arc<Config>) {
    let sampler = {
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
    };
    let tasks: Vec<_> = (0..config.connections)
        .map(|i| tokio::spawn(client_task(config.clone(), i)))
        .collect();
    let mut all = Stats::default();
    for task in tasks {
        let stats = task.await.expect("client task");
        all.latencies_us.extend_from_slice(&stats.latencies_us);
        all.errors += stats.errors;
        all.warmup_errors += stats.warmup_errors;
        for s in stats.samples {
            if all.samples.len() < 5 {
                all.samples.push(s);
            }
        }
    }
    let (server_cpu, own_cpu, other_cpu, rss, hwm) = sampler.await.expect("sampler");
    for s in &all.samples {
        eprintln!("loadgen {}: error sample: {s}", config.scenario);
    }
    let mut lat = all.latencies_us;
    lat.sort_unstable();
    let pct = |p: f64| -> String {
        if lat.is_empty() {
            return "-".into();
        }
        let rank = ((p * lat.len() as f64).ceil() as usize).clamp(1, lat.len());
        format!("{:.2}", lat[rank - 1] as f64 / 1000.0)
    };
    let calls = lat.len();
    let rate = calls as f64 / config.measure.as_secs_f64();
    let kib = |v: Option<u64>| v.map_or("-".to_owned(), |v| v.to_string());
    println!(
        "{}\t{}\t{:.0}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
        config.scenario,
        calls,
        rate,
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(1.0),
        all.errors,
        all.warmup_errors,
        server_cpu,
        own_cpu,
        other_cpu,
        kib(rss),
        kib(hwm),
    );
}
