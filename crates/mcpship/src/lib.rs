//! mcpship: run an rmcp server in production.
//!
//! Hand [`Server`] a [`ServeConfig`] and a factory for your rmcp
//! `ServerHandler`; it serves MCP over Streamable HTTP at `/mcp` (the stateless
//! 2026-07-28 protocol and legacy 2024-11-05 … 2025-11-25 clients on the same
//! endpoint) with what a service behind a load balancer needs around it:
//! `/health` and `/ready` outside the Host allow-list, Host and Origin checks,
//! body and concurrency limits, header-read and keep-alive timeouts, SSE
//! keep-alives, TCP_NODELAY, graceful draining on SIGTERM, JSON logs with an
//! access log and `tool.*` events, Prometheus metrics, CloudWatch EMF, and
//! OpenTelemetry / X-Ray traces (see [`telemetry`]).
//!
//! Legacy sessions live in the process, in Redis, or sealed in their own ids
//! (`MCPSHIP_STATE`, see [`state`]). Handlers that answer `input_required`
//! (MRTR) seal their `requestState` with [`state::request_state_codec`], built
//! once from `MCPSHIP_REQUEST_STATE_KEYS` and handed to the factory, so a
//! retry may reach any replica with the same keys.
//!
//! ```no_run
//! # use rmcp::ServerHandler;
//! # #[derive(Clone)] struct MyServer;
//! # impl ServerHandler for MyServer {}
//! # async fn run() -> anyhow::Result<()> {
//! let config = mcpship::ServeConfig::default();
//! mcpship::Server::new(config, || MyServer).run_until_signal().await?;
//! # Ok(()) }
//! ```

pub mod config;
pub mod events;
pub mod healthcheck;
pub mod http;
pub mod instrument;
pub mod lifecycle;
pub mod logging;
pub mod server;
pub mod smoke;
pub mod state;
pub mod stdio;
pub mod telemetry;

pub use config::{ConfigError, LogFormat, ServeConfig, TracesExporter};
pub use lifecycle::{Lifecycle, Phase};
pub use server::Server;
