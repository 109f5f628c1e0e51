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

use crate::state::StateBackend;

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
    pub const MAX_SESSIONS: &str = "MCPSHIP_MAX_SESSIONS";
    pub const SESSION_IDLE_TIMEOUT: &str = "MCPSHIP_SESSION_IDLE_TIMEOUT";
    pub const EVENT_LOG_LEN: &str = "MCPSHIP_EVENT_LOG_LEN";
    pub const EVENT_LOG_TTL: &str = "MCPSHIP_EVENT_LOG_TTL";
    pub const MAX_STREAM_AGE: &str = "MCPSHIP_MAX_STREAM_AGE";
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
pub const DEFAULT_MAX_SESSIONS: usize = 10_000;
/// A legacy session unused this long is closed (rmcp's own default).
pub const DEFAULT_SESSION_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// SSE events kept per stream for `Last-Event-ID` resumption.
pub const DEFAULT_EVENT_LOG_LEN: usize = 1000;
/// How long a stream's event log outlives its last event.
pub const DEFAULT_EVENT_LOG_TTL: Duration = Duration::from_secs(3600);
/// Streams older than this are closed (clients reconnect, possibly to
/// another replica), so no stream pins a replica that is being replaced.
pub const DEFAULT_MAX_STREAM_AGE: Duration = Duration::from_secs(300);
/// Fargate's largest stopTimeout: a drain longer than this is always SIGKILLed.
pub const MAX_DRAIN_TIMEOUT: Duration = Duration::from_secs(120);

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

    /// Where legacy sessions and SSE event logs live: `memory` (this process)
    /// or `redis` (shared by all replicas; needs MCPSHIP_REDIS_URL).
    #[arg(long, env = env::STATE, value_enum, default_value_t = StateBackend::Memory)]
    pub state: StateBackend,

    /// Redis URL for MCPSHIP_STATE=redis (`redis://[:password@]host:6379/0`,
    /// `rediss://` for TLS).
    #[arg(long, env = env::REDIS_URL)]
    #[serde(serialize_with = "redacted_url")]
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

    /// Streams (GET streams, SSE replies) older than this are closed with a
    /// reconnect hint, so a replica being replaced is not pinned by them
    /// (0 disables).
    #[arg(long, env = env::MAX_STREAM_AGE, value_parser = parse_duration, default_value = "300s")]
    #[serde(with = "humantime_serde_compat")]
    pub max_stream_age: Duration,

    /// Log level or filter (`info`, `debug`, `mcpship=debug,info`).
    #[arg(long, env = env::LOG_LEVEL, default_value = "info")]
    pub log_level: String,

    /// Log format.
    #[arg(long, env = env::LOG_FORMAT, value_enum, default_value_t = LogFormat::Auto)]
    pub log_format: LogFormat,
}

/// A URL with its password replaced, for `mcpship config` and errors.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}")
        }
        None => url.to_owned(),
    }
}

fn redacted_url<S: serde::Serializer>(url: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
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
            max_sessions: DEFAULT_MAX_SESSIONS,
            session_idle_timeout: DEFAULT_SESSION_IDLE_TIMEOUT,
            event_log_len: DEFAULT_EVENT_LOG_LEN,
            event_log_ttl: DEFAULT_EVENT_LOG_TTL,
            max_stream_age: DEFAULT_MAX_STREAM_AGE,
            log_level: "info".into(),
            log_format: LogFormat::Auto,
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
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
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
    fn durations_accept_seconds_and_units() {
        assert_eq!(parse_duration("30").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("soon").unwrap_err().contains("30s"));
    }
}
