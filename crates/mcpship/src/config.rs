//! Runtime configuration: one typed struct from flags and environment.
//!
//! Every setting is a flag and an environment variable (`PORT`, `HOST`,
//! `LOG_LEVEL`, `LOG_FORMAT`, the rest `MCPSHIP_*`). [`ServeConfig::validate`]
//! runs before any port is bound and names the variable and the fix in every
//! message. Defaults are the ones a service behind an AWS ALB needs: the
//! keep-alive idle timeout outlives the ALB's 3600 s idle timeout (so the ALB,
//! not us, closes idle connections and no request races a close), SSE streams
//! send a comment every 15 s, and the drain deadline fits inside ECS's default
//! 30 s stopTimeout.

use std::{net::IpAddr, time::Duration};

use crate::state::{
    KeyRingSetting, REQUEST_STATE_KEY_LEN, SESSION_KEY_LEN, StateBackend, keys::GENERATE_HINT,
};

/// Environment variable names, next to their defaults.
pub mod env {
    pub const HOST: &str = "HOST";
    pub const PORT: &str = "PORT";
    pub const LOG_LEVEL: &str = "LOG_LEVEL";
    pub const LOG_FORMAT: &str = "LOG_FORMAT";
    pub const ALLOWED_HOSTS: &str = "MCPSHIP_ALLOWED_HOSTS";
    pub const ALLOWED_ORIGINS: &str = "MCPSHIP_ALLOWED_ORIGINS";
    pub const MAX_BODY_BYTES: &str = "MCPSHIP_MAX_BODY_BYTES";
    pub const MAX_CONCURRENT_REQUESTS: &str = "MCPSHIP_MAX_CONCURRENT_REQUESTS";
    pub const HEADER_READ_TIMEOUT: &str = "MCPSHIP_HEADER_READ_TIMEOUT";
    pub const KEEP_ALIVE_TIMEOUT: &str = "MCPSHIP_KEEP_ALIVE_TIMEOUT";
    pub const SSE_KEEP_ALIVE: &str = "MCPSHIP_SSE_KEEP_ALIVE";
    pub const DRAIN_TIMEOUT: &str = "MCPSHIP_DRAIN_TIMEOUT";
    pub const JSON_RESPONSE: &str = "MCPSHIP_JSON_RESPONSE";
    pub const LEGACY_SESSIONS: &str = "MCPSHIP_LEGACY_SESSIONS";
    pub const STATE: &str = "MCPSHIP_STATE";
    pub const REDIS_URL: &str = "MCPSHIP_REDIS_URL";
    pub const REDIS_PREFIX: &str = "MCPSHIP_REDIS_PREFIX";
    pub const SESSION_KEYS: &str = "MCPSHIP_SESSION_KEYS";
    pub const SESSION_MAX_LIFETIME: &str = "MCPSHIP_SESSION_MAX_LIFETIME";
    pub const REQUEST_STATE_KEYS: &str = "MCPSHIP_REQUEST_STATE_KEYS";
    pub const MAX_SESSIONS: &str = "MCPSHIP_MAX_SESSIONS";
    pub const SESSION_IDLE_TIMEOUT: &str = "MCPSHIP_SESSION_IDLE_TIMEOUT";
    pub const EVENT_LOG_LEN: &str = "MCPSHIP_EVENT_LOG_LEN";
    pub const EVENT_LOG_TTL: &str = "MCPSHIP_EVENT_LOG_TTL";
    pub const MAX_STREAM_AGE: &str = "MCPSHIP_MAX_STREAM_AGE";
    pub const LOG_TOOL_ARGUMENTS: &str = "MCPSHIP_LOG_TOOL_ARGUMENTS";
    pub const SERVICE_NAME: &str = "MCPSHIP_SERVICE_NAME";
    pub const METRICS: &str = "MCPSHIP_METRICS";
    pub const EMF: &str = "MCPSHIP_EMF";
    pub const EMF_NAMESPACE: &str = "MCPSHIP_EMF_NAMESPACE";
    pub const EMF_DIMENSIONS: &str = "MCPSHIP_EMF_DIMENSIONS";
    pub const TRACES_EXPORTER: &str = "MCPSHIP_TRACES_EXPORTER";
    pub const TRACES_SAMPLER_RATIO: &str = "MCPSHIP_TRACES_SAMPLER_RATIO";
    pub const TRACES_PER_SECOND: &str = "MCPSHIP_TRACES_PER_SECOND";
    /// The OpenTelemetry standard variable, read as every OTel SDK reads it.
    pub const OTLP_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
    pub const XRAY_DAEMON_ADDRESS: &str = "MCPSHIP_XRAY_DAEMON_ADDRESS";
    /// The AWS SDKs' variable, honoured when ours is not set.
    pub const AWS_XRAY_DAEMON_ADDRESS: &str = "AWS_XRAY_DAEMON_ADDRESS";
}

pub const DEFAULT_PORT: u16 = 8080;
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 4096;
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Longer than the 3600 s ALB idle timeout the deploy kit sets.
pub const DEFAULT_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(3660);
pub const DEFAULT_SSE_KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Inside ECS's default 30 s stopTimeout, with room for the process to exit.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(25);
/// Legacy sessions one replica holds at once; more `initialize` calls get 503.
/// A session costs about 50 KiB (release build), so the default fits a
/// 512 MiB task with room to spare.
pub const DEFAULT_MAX_SESSIONS: usize = 2_000;
/// A legacy session unused this long is closed (rmcp's own default).
pub const DEFAULT_SESSION_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// A sealed session id (MCPSHIP_STATE=sealed) is valid this long after its
/// `initialize`; then the client gets 404 and initializes again. Absolute,
/// since an id cannot be re-issued: long enough for a working day of one
/// client, short enough that a leaked id and a retired key soon stop working.
pub const DEFAULT_SESSION_MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// SSE events kept per stream for `Last-Event-ID` resumption.
pub const DEFAULT_EVENT_LOG_LEN: usize = 1000;
/// How long a stream's event log outlives its last event.
pub const DEFAULT_EVENT_LOG_TTL: Duration = Duration::from_secs(3600);
/// Streams older than this are closed (clients reconnect, possibly to
/// another replica), so no stream pins a replica that is being replaced.
pub const DEFAULT_MAX_STREAM_AGE: Duration = Duration::from_secs(300);
/// Fargate's largest stopTimeout: a drain longer than this is always SIGKILLed.
pub const MAX_DRAIN_TIMEOUT: Duration = Duration::from_secs(120);

pub const DEFAULT_SERVICE_NAME: &str = "mcpship";
pub const DEFAULT_EMF_NAMESPACE: &str = "MCPShip";
pub const DEFAULT_OTLP_ENDPOINT: &str = "http://localhost:4318";
pub const DEFAULT_XRAY_DAEMON_ADDRESS: &str = "127.0.0.1:2000";
/// Share of new traces recorded beyond the per-second floor: X-Ray's default
/// fixed rate. Every request traced costs CPU and, in X-Ray, money (billed
/// per trace recorded); 1.0 is a setting for debugging or low traffic.
pub const DEFAULT_TRACES_SAMPLER_RATIO: f64 = 0.05;
/// New traces recorded each second before the ratio applies (X-Ray's
/// default reservoir).
pub const DEFAULT_TRACES_PER_SECOND: u32 = 1;
/// Most new traces a second the floor may ask for.
pub const MAX_TRACES_PER_SECOND: u32 = 100_000;
/// CloudWatch allows 30 dimensions per set; `Service` and `Tool` take two.
pub const MAX_EMF_EXTRA_DIMENSIONS: usize = 28;

/// Loopback host names accepted by default in `Host`.
pub const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];
/// Loopback origins accepted by default in `Origin` (any port).
pub const LOOPBACK_ORIGINS: [&str; 3] =
    ["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"];

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// JSON when stderr is not a terminal, text when it is.
    Auto,
    /// One JSON object per line.
    Json,
    /// Human-readable text.
    Text,
}

/// Where finished trace spans go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TracesExporter {
    /// No traces: no span is created on the request path.
    None,
    /// OTLP over HTTP/protobuf to `OTEL_EXPORTER_OTLP_ENDPOINT` (a collector).
    Otlp,
    /// Segment documents over UDP to the AWS X-Ray daemon.
    Xray,
}

fn parse_duration(value: &str) -> Result<Duration, String> {
    // A bare number is seconds, as in most deployment manifests.
    if let Ok(secs) = value.trim().parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(value.trim()).map_err(|e| {
        format!("{e}; write seconds (\"30\") or a duration (\"30s\", \"1h\", \"500ms\")")
    })
}

fn parse_list_item(value: &str) -> Result<String, String> {
    Ok(value.trim().to_owned())
}

fn parse_bool(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        other => Err(format!("{other:?} is not a boolean; use true or false")),
    }
}

/// Settings of the HTTP server and the MCP endpoint.
#[derive(Debug, Clone, clap::Args, serde::Serialize)]
pub struct ServeConfig {
    /// Address to listen on [default: 0.0.0.0 in a container, else 127.0.0.1].
    #[arg(long, env = env::HOST)]
    pub host: Option<IpAddr>,

    /// TCP port to listen on (0 picks a free one).
    #[arg(long, env = env::PORT, default_value_t = DEFAULT_PORT)]
    pub port: u16,

    /// Host names (or host:port) accepted in the Host header of /mcp requests,
    /// comma-separated; `*` accepts any. Health routes are never checked.
    #[arg(long, env = env::ALLOWED_HOSTS, value_delimiter = ',', value_parser = parse_list_item, default_value = "localhost,127.0.0.1,::1")]
    pub allowed_hosts: Vec<String>,

    /// Browser origins accepted in the Origin header, comma-separated, with
    /// scheme (`https://app.example.com`, `http://localhost:*`); `*` accepts
    /// any. Requests without Origin (non-browser clients) always pass.
    #[arg(long, env = env::ALLOWED_ORIGINS, value_delimiter = ',', value_parser = parse_list_item, default_value = "http://localhost:*,http://127.0.0.1:*,http://[::1]:*")]
    pub allowed_origins: Vec<String>,

    /// Largest request body, in bytes; larger ones get 413.
    #[arg(long, env = env::MAX_BODY_BYTES, default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,

    /// Requests handled at once before new ones are shed with 503.
    #[arg(long, env = env::MAX_CONCURRENT_REQUESTS, default_value_t = DEFAULT_MAX_CONCURRENT_REQUESTS)]
    pub max_concurrent_requests: usize,

    /// Time a new connection has to send its first request head.
    #[arg(long, env = env::HEADER_READ_TIMEOUT, value_parser = parse_duration, default_value = "10s")]
    #[serde(with = "humantime_serde_compat")]
    pub header_read_timeout: Duration,

    /// Idle time after which a keep-alive connection is closed. Keep it longer
    /// than the load balancer's idle timeout (ALB: 3600 s in the deploy kit).
    #[arg(long, env = env::KEEP_ALIVE_TIMEOUT, value_parser = parse_duration, default_value = "3660s")]
    #[serde(with = "humantime_serde_compat")]
    pub keep_alive_timeout: Duration,

    /// Interval of SSE keep-alive comments on open streams (0 disables).
    #[arg(long, env = env::SSE_KEEP_ALIVE, value_parser = parse_duration, default_value = "15s")]
    #[serde(with = "humantime_serde_compat")]
    pub sse_keep_alive: Duration,

    /// Deadline for a graceful shutdown after SIGTERM/SIGINT.
    #[arg(long, env = env::DRAIN_TIMEOUT, value_parser = parse_duration, default_value = "25s")]
    #[serde(with = "humantime_serde_compat")]
    pub drain_timeout: Duration,

    /// Answer simple calls with application/json instead of an SSE stream.
    #[arg(long, env = env::JSON_RESPONSE, value_parser = parse_bool, default_value = "true", action = clap::ArgAction::Set)]
    pub json_response: bool,

    /// Keep sessions for legacy (2025-xx) clients; off serves them statelessly.
    #[arg(long, env = env::LEGACY_SESSIONS, value_parser = parse_bool, default_value = "true", action = clap::ArgAction::Set)]
    pub legacy_sessions: bool,

    /// Where legacy sessions and SSE event logs live: `memory` (this process),
    /// `redis` (shared by all replicas; needs MCPSHIP_REDIS_URL) or `sealed`
    /// (encrypted in the session id; needs MCPSHIP_SESSION_KEYS).
    #[arg(long, env = env::STATE, value_enum, default_value_t = StateBackend::Memory)]
    pub state: StateBackend,

    /// Keys sealing legacy session ids for MCPSHIP_STATE=sealed:
    /// `KEY_ID:BASE64KEY` pairs, comma-separated, newest first (32-byte keys,
    /// from `openssl rand -base64 32`). The first seals, all open; the same
    /// on every replica.
    #[arg(long, env = env::SESSION_KEYS, value_parser = crate::state::keys::parse_setting, hide_env_values = true)]
    pub session_keys: Option<KeyRingSetting>,

    /// How long a sealed session id stays valid after `initialize`
    /// (MCPSHIP_STATE=sealed); then the client gets 404 and starts anew.
    #[arg(long, env = env::SESSION_MAX_LIFETIME, value_parser = parse_duration, default_value = "24h")]
    #[serde(with = "humantime_serde_compat")]
    pub session_max_lifetime: Duration,

    /// Keys sealing MRTR `requestState` (2026-07-28 multi round-trip
    /// requests), as for MCPSHIP_SESSION_KEYS (keys of 32 bytes or more).
    /// Unset: a random key per process, so a retry must reach the same one.
    #[arg(long, env = env::REQUEST_STATE_KEYS, value_parser = crate::state::keys::parse_setting, hide_env_values = true)]
    pub request_state_keys: Option<KeyRingSetting>,

    /// Redis URL for MCPSHIP_STATE=redis (`redis://[:password@]host:6379/0`,
    /// `rediss://` for TLS).
    #[arg(long, env = env::REDIS_URL)]
    #[serde(serialize_with = "redacted_optional_url")]
    pub redis_url: Option<String>,

    /// Prefix of every Redis key, so several services can share one Redis.
    #[arg(long, env = env::REDIS_PREFIX, default_value = "mcpship")]
    pub redis_prefix: String,

    /// Legacy sessions this replica holds at once; further `initialize`
    /// calls are refused with 503 until some end or go idle.
    #[arg(long, env = env::MAX_SESSIONS, default_value_t = DEFAULT_MAX_SESSIONS)]
    pub max_sessions: usize,

    /// A legacy session with no request for this long is closed.
    #[arg(long, env = env::SESSION_IDLE_TIMEOUT, value_parser = parse_duration, default_value = "300s")]
    #[serde(with = "humantime_serde_compat")]
    pub session_idle_timeout: Duration,

    /// SSE events kept per stream for resumption with Last-Event-ID (redis).
    #[arg(long, env = env::EVENT_LOG_LEN, default_value_t = DEFAULT_EVENT_LOG_LEN)]
    pub event_log_len: usize,

    /// How long a stream's event log is kept after its last event (redis).
    #[arg(long, env = env::EVENT_LOG_TTL, value_parser = parse_duration, default_value = "1h")]
    #[serde(with = "humantime_serde_compat")]
    pub event_log_ttl: Duration,

    /// Long-lived streams older than this are ended, so a replica being
    /// replaced is not pinned by them: legacy GET streams with a reconnect
    /// hint, `subscriptions/listen` streams with their final result (0 disables).
    #[arg(long, env = env::MAX_STREAM_AGE, value_parser = parse_duration, default_value = "300s")]
    #[serde(with = "humantime_serde_compat")]
    pub max_stream_age: Duration,

    /// Log level or filter (`info`, `debug`, `mcpship=debug,info`).
    #[arg(long, env = env::LOG_LEVEL, default_value = "info")]
    pub log_level: String,

    /// Log format.
    #[arg(long, env = env::LOG_FORMAT, value_enum, default_value_t = LogFormat::Auto)]
    pub log_format: LogFormat,

    /// Add tool arguments to `tool.invoked` log events, with secret-looking
    /// keys (password, token, api_key, ...) redacted at any depth.
    #[arg(long, env = env::LOG_TOOL_ARGUMENTS, value_parser = parse_bool, default_value = "false", action = clap::ArgAction::Set)]
    pub log_tool_arguments: bool,

    /// Service name in traces (`service.name`, the X-Ray segment name) and
    /// the `Service` dimension of EMF metrics.
    #[arg(long, env = env::SERVICE_NAME, default_value = DEFAULT_SERVICE_NAME)]
    pub service_name: String,

    /// Serve Prometheus metrics at `GET /metrics` (counting is a few atomic
    /// additions per request).
    #[arg(long, env = env::METRICS, value_parser = parse_bool, default_value = "true", action = clap::ArgAction::Set)]
    pub metrics: bool,

    /// Write one CloudWatch Embedded Metric Format line per tool call to
    /// stderr (ToolCalls, ToolErrors, ToolDuration by Service and Tool).
    #[arg(long, env = env::EMF, value_parser = parse_bool, default_value = "false", action = clap::ArgAction::Set)]
    pub emf: bool,

    /// CloudWatch namespace of EMF metrics.
    #[arg(long, env = env::EMF_NAMESPACE, default_value = DEFAULT_EMF_NAMESPACE)]
    pub emf_namespace: String,

    /// Extra EMF dimensions, comma-separated `Name=value` pairs (e.g.
    /// `Environment=prod`). They form a second dimension set next to
    /// [Service, Tool], which stays as it is for existing alarms.
    #[arg(long, env = env::EMF_DIMENSIONS, value_delimiter = ',', value_parser = parse_list_item)]
    pub emf_dimensions: Vec<String>,

    /// Trace exporter: none (no spans are made), otlp or xray.
    #[arg(long, env = env::TRACES_EXPORTER, value_enum, default_value_t = TracesExporter::None)]
    pub traces_exporter: TracesExporter,

    /// Share of new traces to record (0.0 to 1.0) beyond the first
    /// `--traces-per-second` of each second. Requests that arrive with a
    /// sampling decision (traceparent, X-Amzn-Trace-Id Sampled=) keep it.
    #[arg(long, env = env::TRACES_SAMPLER_RATIO, default_value_t = DEFAULT_TRACES_SAMPLER_RATIO)]
    pub traces_sampler_ratio: f64,

    /// New traces recorded each second whatever the ratio, so a quiet
    /// service still has traces (X-Ray's default rule: 1 a second, then 5 %).
    #[arg(long, env = env::TRACES_PER_SECOND, default_value_t = DEFAULT_TRACES_PER_SECOND)]
    pub traces_per_second: u32,

    /// OTLP/HTTP collector base URL; spans are posted to `<base>/v1/traces`.
    #[arg(long, env = env::OTLP_ENDPOINT, default_value = DEFAULT_OTLP_ENDPOINT)]
    #[serde(serialize_with = "redacted_url")]
    pub otlp_endpoint: String,

    /// X-Ray daemon address, `host:port` (UDP) [default: AWS_XRAY_DAEMON_ADDRESS, else 127.0.0.1:2000].
    #[arg(long, env = env::XRAY_DAEMON_ADDRESS)]
    pub xray_daemon_address: Option<String>,
}

/// A URL with any password replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}{path}"),
        None => url.to_owned(),
    }
}

fn redacted_url<S: serde::Serializer>(url: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&redact_url(url))
}

fn redacted_optional_url<S: serde::Serializer>(
    url: &Option<String>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match url {
        Some(url) => s.serialize_str(&redact_url(url)),
        None => s.serialize_none(),
    }
}

/// Durations print as "15s", "1h 1m" in `mcpship config`.
mod humantime_serde_compat {
    pub(super) fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            host: None,
            port: DEFAULT_PORT,
            allowed_hosts: LOOPBACK_HOSTS.iter().map(|s| s.to_string()).collect(),
            allowed_origins: LOOPBACK_ORIGINS.iter().map(|s| s.to_string()).collect(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_concurrent_requests: DEFAULT_MAX_CONCURRENT_REQUESTS,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            keep_alive_timeout: DEFAULT_KEEP_ALIVE_TIMEOUT,
            sse_keep_alive: DEFAULT_SSE_KEEP_ALIVE,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            json_response: true,
            legacy_sessions: true,
            state: StateBackend::Memory,
            redis_url: None,
            redis_prefix: "mcpship".into(),
            session_keys: None,
            session_max_lifetime: DEFAULT_SESSION_MAX_LIFETIME,
            request_state_keys: None,
            max_sessions: DEFAULT_MAX_SESSIONS,
            session_idle_timeout: DEFAULT_SESSION_IDLE_TIMEOUT,
            event_log_len: DEFAULT_EVENT_LOG_LEN,
            event_log_ttl: DEFAULT_EVENT_LOG_TTL,
            max_stream_age: DEFAULT_MAX_STREAM_AGE,
            log_level: "info".into(),
            log_format: LogFormat::Auto,
            log_tool_arguments: false,
            service_name: DEFAULT_SERVICE_NAME.into(),
            metrics: true,
            emf: false,
            emf_namespace: DEFAULT_EMF_NAMESPACE.into(),
            emf_dimensions: Vec::new(),
            traces_exporter: TracesExporter::None,
            traces_sampler_ratio: DEFAULT_TRACES_SAMPLER_RATIO,
            traces_per_second: DEFAULT_TRACES_PER_SECOND,
            otlp_endpoint: DEFAULT_OTLP_ENDPOINT.into(),
            xray_daemon_address: None,
        }
    }
}

/// A setting that is not valid, with the variable that set it and the fix.
#[derive(Debug, thiserror::Error)]
#[error("{variable}={value:?} is not valid: {why}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub value: String,
    pub why: String,
}

fn error(variable: &'static str, value: impl ToString, why: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        value: value.to_string(),
        why: why.into(),
    }
}

/// Whether this process runs in a container (Docker, ECS), where listening on
/// loopback would make the server unreachable.
pub fn in_container() -> bool {
    std::env::var_os("ECS_CONTAINER_METADATA_URI_V4").is_some()
        || std::path::Path::new("/.dockerenv").exists()
        || std::env::var_os("container").is_some()
}

impl ServeConfig {
    /// The address to bind.
    pub fn bind_host(&self) -> IpAddr {
        self.host.unwrap_or_else(|| {
            if in_container() {
                IpAddr::from([0, 0, 0, 0])
            } else {
                IpAddr::from([127, 0, 0, 1])
            }
        })
    }

    /// Whether any Host is accepted.
    pub fn any_host(&self) -> bool {
        self.allowed_hosts.iter().any(|h| h == "*")
    }

    /// Whether any Origin is accepted.
    pub fn any_origin(&self) -> bool {
        self.allowed_origins.iter().any(|o| o == "*")
    }

    /// The X-Ray daemon's UDP address: ours, else `AWS_XRAY_DAEMON_ADDRESS`
    /// (whose `udp:host:port tcp:host:port` form is understood), else the
    /// default. Not resolved here: that happens once, when tracing starts.
    pub fn xray_daemon(&self) -> (&'static str, String) {
        let (variable, value) = match &self.xray_daemon_address {
            Some(v) => (env::XRAY_DAEMON_ADDRESS, v.clone()),
            None => match std::env::var(env::AWS_XRAY_DAEMON_ADDRESS) {
                Ok(v) if !v.trim().is_empty() => (env::AWS_XRAY_DAEMON_ADDRESS, v),
                _ => (
                    env::XRAY_DAEMON_ADDRESS,
                    DEFAULT_XRAY_DAEMON_ADDRESS.to_owned(),
                ),
            },
        };
        let udp = value
            .split_whitespace()
            .find_map(|part| part.strip_prefix("udp:"))
            .or_else(|| {
                let first = value.split_whitespace().next()?;
                (!first.starts_with("tcp:")).then_some(first)
            })
            .unwrap_or_default()
            .to_owned();
        (variable, udp)
    }

    /// Extra EMF dimensions as (name, value) pairs; malformed items are
    /// reported by [`Self::validate`].
    pub fn emf_extra_dimensions(&self) -> Vec<(String, String)> {
        self.emf_dimensions
            .iter()
            .filter(|d| !d.is_empty())
            .filter_map(|d| d.split_once('='))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect()
    }

    /// Checks values that are each well-formed but wrong, or wrong together.
    pub fn validate(&self) -> Result<(), Vec<ConfigError>> {
        let mut errors = Vec::new();
        let list = |v: &[String]| v.join(",");
        if self.allowed_hosts.is_empty() {
            errors.push(error(
                env::ALLOWED_HOSTS,
                "",
                "the list is empty; name the public host names (e.g. mcp.example.com), or * to accept any",
            ));
        }
        for host in &self.allowed_hosts {
            if host != "*"
                && (host.contains("://")
                    || host.contains('/')
                    || host.contains(char::is_whitespace))
            {
                errors.push(error(
                    env::ALLOWED_HOSTS,
                    list(&self.allowed_hosts),
                    format!("{host:?} is not a host name; write host or host:port without a scheme or path"),
                ));
            }
        }
        for origin in &self.allowed_origins {
            if origin != "*"
                && origin != "null"
                && !(origin.starts_with("http://") || origin.starts_with("https://"))
            {
                errors.push(error(
                    env::ALLOWED_ORIGINS,
                    list(&self.allowed_origins),
                    format!(
                        "{origin:?} has no scheme; write e.g. https://{origin} or http://{origin}:*"
                    ),
                ));
            }
        }
        if self.max_body_bytes < 1024 {
            errors.push(error(
                env::MAX_BODY_BYTES,
                self.max_body_bytes,
                "must be at least 1024 bytes",
            ));
        }
        if self.max_concurrent_requests == 0 {
            errors.push(error(env::MAX_CONCURRENT_REQUESTS, 0, "must be at least 1"));
        }
        let show = |d: Duration| humantime::format_duration(d).to_string();
        if self.header_read_timeout.is_zero() {
            errors.push(error(
                env::HEADER_READ_TIMEOUT,
                "0s",
                "must be more than zero",
            ));
        }
        if self.keep_alive_timeout <= self.header_read_timeout {
            errors.push(error(
                env::KEEP_ALIVE_TIMEOUT,
                show(self.keep_alive_timeout),
                format!(
                    "must be longer than {} ({}) and than the load balancer's idle timeout (ALB default 60s; the deploy kit sets 3600s)",
                    env::HEADER_READ_TIMEOUT,
                    show(self.header_read_timeout)
                ),
            ));
        }
        if !self.sse_keep_alive.is_zero() && self.sse_keep_alive >= self.keep_alive_timeout {
            errors.push(error(
                env::SSE_KEEP_ALIVE,
                show(self.sse_keep_alive),
                "must be shorter than the keep-alive timeout, and than the load balancer's idle timeout, or streams are cut",
            ));
        }
        if self.drain_timeout.is_zero() || self.drain_timeout > MAX_DRAIN_TIMEOUT {
            errors.push(error(
                env::DRAIN_TIMEOUT,
                show(self.drain_timeout),
                "must be between 1s and 120s (Fargate's largest stopTimeout); keep it below the task's stopTimeout",
            ));
        }
        if self.state == StateBackend::Redis && self.redis_url.is_none() {
            errors.push(error(
                env::REDIS_URL,
                "",
                "MCPSHIP_STATE=redis needs a Redis URL, e.g. redis://127.0.0.1:6379/0",
            ));
        }
        if let Some(url) = &self.redis_url
            && !(url.starts_with("redis://")
                || url.starts_with("rediss://")
                || url.starts_with("unix://"))
        {
            errors.push(error(
                env::REDIS_URL,
                redact_url(url),
                "must start with redis://, rediss:// or unix://",
            ));
        }
        self.validate_keys(&mut errors);
        if self.max_sessions == 0 {
            errors.push(error(env::MAX_SESSIONS, 0, "must be at least 1"));
        }
        if self.session_idle_timeout < Duration::from_secs(1) {
            errors.push(error(
                env::SESSION_IDLE_TIMEOUT,
                show(self.session_idle_timeout),
                "must be at least 1s",
            ));
        }
        if self.event_log_len == 0 {
            errors.push(error(env::EVENT_LOG_LEN, 0, "must be at least 1"));
        }
        if self.event_log_ttl < Duration::from_secs(1) {
            errors.push(error(
                env::EVENT_LOG_TTL,
                show(self.event_log_ttl),
                "must be at least 1s",
            ));
        }
        // A bare word is meant as a level; EnvFilter would read "loud" as a
        // target name and silently log nothing useful.
        let bare = !self.log_level.contains(['=', ',', ':']);
        let known = ["error", "warn", "info", "debug", "trace", "off"]
            .contains(&self.log_level.trim().to_ascii_lowercase().as_str());
        if (bare && !known) || tracing_subscriber::EnvFilter::try_new(&self.log_level).is_err() {
            errors.push(error(
                env::LOG_LEVEL,
                &self.log_level,
                "use error, warn, info, debug or trace, or a filter like mcpship=debug,info",
            ));
        }
        self.validate_telemetry(&mut errors);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    fn validate_keys(&self, errors: &mut Vec<ConfigError>) {
        let show = |d: Duration| humantime::format_duration(d).to_string();
        if self.state == StateBackend::Sealed {
            if self.session_keys.is_none() {
                errors.push(error(
                    env::SESSION_KEYS,
                    "",
                    format!(
                        "MCPSHIP_STATE=sealed needs keys to seal session ids: set {}=k1:BASE64KEY, the same on every replica ({GENERATE_HINT})",
                        env::SESSION_KEYS
                    ),
                ));
            }
            if !self.legacy_sessions {
                errors.push(error(
                    env::STATE,
                    "sealed",
                    "sealed sessions are legacy (2025-xx) sessions, which MCPSHIP_LEGACY_SESSIONS=false turns off; set MCPSHIP_STATE=memory or MCPSHIP_LEGACY_SESSIONS=true",
                ));
            }
        }
        if let Some(keys) = &self.session_keys
            && let Err(e) = keys.parse(SESSION_KEY_LEN..=SESSION_KEY_LEN)
        {
            errors.push(error(env::SESSION_KEYS, keys.redacted(), e.to_string()));
        }
        if self.session_max_lifetime < Duration::from_secs(1) {
            errors.push(error(
                env::SESSION_MAX_LIFETIME,
                show(self.session_max_lifetime),
                "must be at least 1s (e.g. 24h)",
            ));
        }
        if let Some(keys) = &self.request_state_keys
            && let Err(e) = keys.parse(REQUEST_STATE_KEY_LEN)
        {
            errors.push(error(
                env::REQUEST_STATE_KEYS,
                keys.redacted(),
                e.to_string(),
            ));
        }
    }

    fn validate_telemetry(&self, errors: &mut Vec<ConfigError>) {
        let name_ok =
            |s: &str| !s.trim().is_empty() && s.len() <= 255 && !s.chars().any(char::is_control);
        if !name_ok(&self.service_name) {
            errors.push(error(
                env::SERVICE_NAME,
                &self.service_name,
                "must be 1 to 255 printable characters (it names the service in traces and metrics)",
            ));
        }
        if !name_ok(&self.emf_namespace) || self.emf_namespace.starts_with("AWS/") {
            errors.push(error(
                env::EMF_NAMESPACE,
                &self.emf_namespace,
                "must be 1 to 255 printable characters and not start with AWS/ (e.g. MCPShip)",
            ));
        }
        let reserved = crate::telemetry::names::EMF_RESERVED_KEYS;
        let items: Vec<&String> = self
            .emf_dimensions
            .iter()
            .filter(|d| !d.is_empty())
            .collect();
        let shown = self.emf_dimensions.join(",");
        for item in &items {
            match item.split_once('=') {
                Some((k, v)) if name_ok(k) && name_ok(v) && !k.trim().starts_with(':') => {
                    if reserved.contains(&k.trim()) {
                        errors.push(error(
                            env::EMF_DIMENSIONS,
                            &shown,
                            format!("{:?} is a name mcpship already writes; choose another dimension name", k.trim()),
                        ));
                    }
                }
                _ => errors.push(error(
                    env::EMF_DIMENSIONS,
                    &shown,
                    format!("{item:?} is not Name=value; write e.g. Environment=prod,Team=search"),
                )),
            }
        }
        if items.len() > MAX_EMF_EXTRA_DIMENSIONS {
            errors.push(error(
                env::EMF_DIMENSIONS,
                &shown,
                format!("at most {MAX_EMF_EXTRA_DIMENSIONS} extra dimensions (CloudWatch allows 30 per set, Service and Tool take two)"),
            ));
        }
        if self.traces_per_second > MAX_TRACES_PER_SECOND {
            errors.push(error(
                env::TRACES_PER_SECOND,
                self.traces_per_second,
                format!("at most {MAX_TRACES_PER_SECOND}; for every request use MCPSHIP_TRACES_SAMPLER_RATIO=1.0"),
            ));
        }
        if !(0.0..=1.0).contains(&self.traces_sampler_ratio) {
            errors.push(error(
                env::TRACES_SAMPLER_RATIO,
                self.traces_sampler_ratio,
                "must be between 0.0 (no new traces) and 1.0 (every request)",
            ));
        }
        if self.traces_exporter == TracesExporter::Otlp
            && !(self.otlp_endpoint.starts_with("http://")
                || self.otlp_endpoint.starts_with("https://"))
        {
            errors.push(error(
                env::OTLP_ENDPOINT,
                redact_url(&self.otlp_endpoint),
                "must be an http:// or https:// URL of an OTLP/HTTP collector, e.g. http://localhost:4318",
            ));
        }
        if self.traces_exporter == TracesExporter::Xray {
            let (variable, address) = self.xray_daemon();
            let valid = address.rsplit_once(':').is_some_and(|(host, port)| {
                !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
            });
            if !valid {
                errors.push(error(
                    variable,
                    address,
                    "must be host:port of the X-Ray daemon's UDP listener, e.g. 127.0.0.1:2000",
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_outlive_the_alb() {
        let c = ServeConfig::default();
        c.validate().unwrap();
        assert!(c.keep_alive_timeout > Duration::from_secs(3600));
        assert!(c.sse_keep_alive <= Duration::from_secs(15));
        assert!(c.drain_timeout < Duration::from_secs(30));
    }

    #[test]
    fn errors_name_the_variable_and_the_fix() {
        let c = ServeConfig {
            allowed_origins: vec!["example.com".into()],
            keep_alive_timeout: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(600),
            log_level: "loud".into(),
            ..ServeConfig::default()
        };
        let errors = c.validate().unwrap_err();
        let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert!(
            text.iter()
                .any(|e| e.starts_with("MCPSHIP_ALLOWED_ORIGINS=")
                    && e.contains("https://example.com")),
            "{text:?}"
        );
        assert!(text.iter().any(|e| e.starts_with("MCPSHIP_KEEP_ALIVE_TIMEOUT=") && e.contains("idle timeout")), "{text:?}");
        assert!(
            text.iter()
                .any(|e| e.starts_with("MCPSHIP_DRAIN_TIMEOUT=") && e.contains("120s")),
            "{text:?}"
        );
        assert!(text.iter().any(|e| e.starts_with("LOG_LEVEL=")), "{text:?}");
    }

    #[test]
    fn telemetry_settings_are_checked() {
        let c = ServeConfig {
            emf_dimensions: vec![
                "Environment=prod".into(),
                "nonsense".into(),
                "Tool=x".into(),
            ],
            traces_sampler_ratio: 1.5,
            traces_exporter: TracesExporter::Otlp,
            otlp_endpoint: "collector:4318".into(),
            emf_namespace: "AWS/Lambda".into(),
            ..ServeConfig::default()
        };
        let text: Vec<String> = c
            .validate()
            .unwrap_err()
            .iter()
            .map(|e| e.to_string())
            .collect();
        for needle in [
            "MCPSHIP_EMF_DIMENSIONS=\"Environment=prod,nonsense,Tool=x\" is not valid: \"nonsense\"",
            "\"Tool\" is a name",
            "MCPSHIP_TRACES_SAMPLER_RATIO=\"1.5\"",
            "OTEL_EXPORTER_OTLP_ENDPOINT=",
            "MCPSHIP_EMF_NAMESPACE=",
        ] {
            assert!(
                text.iter().any(|e| e.contains(needle)),
                "{needle} not in {text:?}"
            );
        }
        let ok = ServeConfig {
            emf_dimensions: vec!["Environment=prod".into()],
            ..ServeConfig::default()
        };
        ok.validate().unwrap();
        assert_eq!(
            ok.emf_extra_dimensions(),
            vec![("Environment".to_owned(), "prod".to_owned())]
        );
    }

    #[test]
    fn sealed_state_needs_valid_keys() {
        let key = "q83vEi0HWbJ1VdA+Z2fQ6l1lOC6n2b8dNq1uKx0sKjI=";
        let text = |c: ServeConfig| -> Vec<String> {
            c.validate()
                .unwrap_err()
                .iter()
                .map(|e| e.to_string())
                .collect()
        };
        let missing = text(ServeConfig {
            state: StateBackend::Sealed,
            ..ServeConfig::default()
        });
        assert!(
            missing
                .iter()
                .any(|e| e.starts_with("MCPSHIP_SESSION_KEYS=")
                    && e.contains("MCPSHIP_STATE=sealed")
                    && e.contains("openssl rand -base64 32")),
            "{missing:?}"
        );
        let short = text(ServeConfig {
            state: StateBackend::Sealed,
            session_keys: Some(KeyRingSetting::new("k2:c2hvcnQ=")),
            request_state_keys: Some(KeyRingSetting::new(format!("k1:{key},{key}"))),
            legacy_sessions: false,
            session_max_lifetime: Duration::ZERO,
            ..ServeConfig::default()
        });
        for needle in [
            "MCPSHIP_SESSION_KEYS=\"k2:***\" is not valid: key \"k2\" is 5 bytes; it must be 32 bytes",
            "MCPSHIP_REQUEST_STATE_KEYS=\"k1:***,***\" is not valid: item 2",
            "MCPSHIP_STATE=\"sealed\" is not valid",
            "MCPSHIP_SESSION_MAX_LIFETIME=",
        ] {
            assert!(
                short.iter().any(|e| e.contains(needle)),
                "{needle} not in {short:?}"
            );
        }
        assert!(
            !short
                .iter()
                .any(|e| e.contains(key) || e.contains("c2hvcnQ"))
        );
        let ok = ServeConfig {
            state: StateBackend::Sealed,
            session_keys: Some(KeyRingSetting::new(format!("k1:{key}"))),
            request_state_keys: Some(KeyRingSetting::new(format!("r1:{key}"))),
            ..ServeConfig::default()
        };
        ok.validate().unwrap();
        let shown = serde_json::to_value(&ok).unwrap();
        assert_eq!(shown["session_keys"], "k1:***");
        assert_eq!(shown["request_state_keys"], "r1:***");
        assert!(!format!("{ok:?}").contains(key));
    }

    #[test]
    fn xray_daemon_address_forms() {
        let c = ServeConfig {
            xray_daemon_address: Some("tcp:10.0.0.1:2000 udp:10.0.0.1:2001".into()),
            ..ServeConfig::default()
        };
        assert_eq!(c.xray_daemon().1, "10.0.0.1:2001");
        let c = ServeConfig {
            xray_daemon_address: Some("xray:2000".into()),
            ..ServeConfig::default()
        };
        assert_eq!(c.xray_daemon().1, "xray:2000");
    }

    #[test]
    fn urls_lose_their_passwords() {
        assert_eq!(
            redact_url("https://user:pa55@collector:4318/x"),
            "https://user:***@collector:4318/x"
        );
        assert_eq!(redact_url("http://localhost:4318"), "http://localhost:4318");
    }

    #[test]
    fn durations_accept_seconds_and_units() {
        assert_eq!(parse_duration("30").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("soon").unwrap_err().contains("30s"));
    }
}
