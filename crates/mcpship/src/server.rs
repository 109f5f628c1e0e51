//! The server: accept loop, connection settings, and the drain.
//!
//! Connections are accepted by hand rather than through `axum::serve` so each
//! socket gets TCP_NODELAY (without it a small response waits ~40 ms for
//! Nagle and delayed ACK), new connections get a bounded time to send their
//! first request, and idle keep-alive connections live longer than the load
//! balancer's idle timeout.
//!
//! Shutdown, on SIGTERM/SIGINT or the given future:
//! 1. the lifecycle turns `draining`: `/ready` fails, new MCP requests get a
//!    retryable 503, and the listener is closed;
//! 2. open connections are told to close after their current response;
//! 3. `subscriptions/listen` streams are told to end: each sends its final
//!    result (the spec's graceful "complete") and closes, so its client
//!    listens again on a replica that is staying;
//! 4. calls in flight finish (bounded by the drain deadline) while the listen
//!    streams close (bounded by [`LISTEN_COMPLETE_WAIT`]); neither is waited
//!    for when there is none;
//! 5. other long-lived streams (legacy `GET`, and any listen stream still
//!    open) end with a reconnect hint, then rmcp's sessions are cancelled;
//! 6. remaining connections get until the deadline, then the process exits.

use std::{
    future::Future,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto, graceful::GracefulShutdown},
};
use rmcp::{
    ServerHandler,
    transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService},
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::Service;

use crate::{
    config::ServeConfig,
    http::{
        InFlight, LegacyState, ReadinessCheck, SessionCap,
        metrics::Scrape,
        stream_limit::{StreamLimits, all_closed},
    },
    instrument::{Instrumented, ListenRuntime},
    lifecycle::{Lifecycle, Phase},
    state::{SessionLimits, SharedState},
    telemetry::Telemetry,
};

/// Most time streams get to send their farewell before sessions are cancelled.
const STREAM_FAREWELL: Duration = Duration::from_millis(200);
/// Most time listen streams get to send their final result once told to end.
const LISTEN_COMPLETE_WAIT: Duration = Duration::from_secs(1);

/// Time reserved at the end of the drain deadline for closing streams and
/// connections after in-flight calls had their chance.
const STREAM_CLOSE_RESERVE: Duration = Duration::from_secs(2);

/// An MCP server: a handler factory plus the production runtime around it.
pub struct Server<F> {
    config: ServeConfig,
    factory: F,
    lifecycle: Lifecycle,
    readiness: Option<ReadinessCheck>,
    state: Option<SharedState>,
}

impl<F, H> Server<F>
where
    F: Fn() -> H + Send + Sync + 'static,
    H: ServerHandler + Clone,
{
    /// A server for handlers made by `factory`. rmcp calls it for every
    /// stateless request, so it should be a cheap clone of prepared state.
    pub fn new(config: ServeConfig, factory: F) -> Self {
        Self {
            config,
            factory,
            lifecycle: Lifecycle::new(),
            readiness: None,
            state: None,
        }
    }

    /// Uses these stores for legacy sessions, and this change feed, instead
    /// of the ones the configuration names (`MCPSHIP_STATE`). Build them with
    /// [`SharedState::from_config`] to hand the feed to handlers first.
    pub fn with_state(mut self, state: SharedState) -> Self {
        self.state = Some(state);
        self
    }

    /// Shares a lifecycle the caller also drives or observes.
    pub fn with_lifecycle(mut self, lifecycle: Lifecycle) -> Self {
        self.lifecycle = lifecycle;
        self
    }

    /// Adds a dependency check to `/ready` (e.g. a database ping).
    pub fn with_readiness_check(mut self, check: ReadinessCheck) -> Self {
        self.readiness = Some(check);
        self
    }

    /// The lifecycle this server drives.
    pub fn lifecycle(&self) -> &Lifecycle {
        &self.lifecycle
    }

    /// Binds the configured address and serves until SIGTERM/SIGINT.
    pub async fn run_until_signal(self) -> anyhow::Result<()> {
        let addr = SocketAddr::new(self.config.bind_host(), self.config.port);
        let listener = TcpListener::bind(addr).await.map_err(|e| {
            anyhow::anyhow!("cannot listen on {addr}: {e}; set PORT or HOST to a free address")
        })?;
        self.serve(listener, crate::lifecycle::shutdown_signal())
            .await
    }

    /// The rmcp settings this server's configuration implies.
    pub fn rmcp_config(
        config: &ServeConfig,
        cancel: CancellationToken,
    ) -> StreamableHttpServerConfig {
        let mut rmcp = StreamableHttpServerConfig::default()
            .with_sse_keep_alive(
                (!config.sse_keep_alive.is_zero()).then_some(config.sse_keep_alive),
            )
            .with_json_response(config.json_response)
            .with_legacy_session_mode(config.legacy_sessions)
            .with_max_request_body_bytes(config.max_body_bytes)
            .with_cancellation_token(cancel);
        rmcp = if config.any_host() {
            rmcp.disable_allowed_hosts()
        } else {
            rmcp.with_allowed_hosts(config.allowed_hosts.clone())
        };
        // The spec makes Origin validation a MUST; rmcp leaves it off unless
        // told, so an empty list here still validates (and rejects any Origin).
        rmcp = if config.any_origin() {
            rmcp.disable_allowed_origins()
        } else {
            rmcp.with_allowed_origins(config.allowed_origins.clone())
                .enforce_origin_validation()
        };
        rmcp
    }

    /// Serves on `listener` until `shutdown` resolves, then drains.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let Self {
            config,
            factory,
            lifecycle,
            readiness,
            state,
        } = self;
        let limits = SessionLimits::from_config(&config);
        let state = match state {
            Some(state) => state,
            None => SharedState::from_config(&config).await?,
        };
        // The Redis probe runs while this function does: dropping the guard
        // on any return stops it.
        let probe_stop = CancellationToken::new();
        let _probe_guard = probe_stop.clone().drop_guard();
        if let Some(redis) = state.redis.clone() {
            tokio::spawn(async move { redis.probe(probe_stop).await });
        }
        let streams = CancellationToken::new();
        let factory = Arc::new(factory);
        let telemetry = Telemetry::from_config(&config);
        let sessions = Arc::new(state.session_manager(&limits));
        let mut rmcp_config = Self::rmcp_config(&config, streams.clone());
        rmcp_config.session_store = state.sessions.clone();
        let handler_telemetry = telemetry.clone();
        let max_stream_age = (!config.max_stream_age.is_zero()).then_some(config.max_stream_age);
        let listens = Arc::new(ListenRuntime {
            changes: state.changes.clone(),
            closing: CancellationToken::new(),
            max_age: max_stream_age,
        });
        let listens_closing = listens.closing.clone();
        let mcp = StreamableHttpService::new(
            move || {
                Ok(Instrumented::new(factory(), handler_telemetry.clone())
                    .with_listen(listens.clone()))
            },
            sessions.clone(),
            rmcp_config,
        );
        let in_flight = InFlight::new();
        let stream_limits = StreamLimits::new(max_stream_age);
        // Only legacy sessions need shared state; with them off, legacy
        // clients are served statelessly and nothing is refused for Redis.
        let legacy_state = match (&state.redis, config.legacy_sessions) {
            (Some(redis), true) => Some(LegacyState {
                redis: redis.clone(),
                sessions: sessions.clone(),
            }),
            _ => None,
        };
        let app = crate::http::router(
            mcp,
            lifecycle.clone(),
            in_flight.clone(),
            config.max_concurrent_requests,
            config.legacy_sessions.then(|| SessionCap {
                manager: sessions.clone(),
                max: config.max_sessions,
            }),
            stream_limits.clone(),
            readiness,
            Scrape {
                telemetry: telemetry.clone(),
                lifecycle: lifecycle.clone(),
                sessions: Some(sessions),
                state: state.redis.as_ref().map(|redis| redis.health().clone()),
            },
            legacy_state,
            state.sealed.clone(),
        );

        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            // hyper times the wait for every request head, including the idle
            // wait between requests on a kept-alive connection, so this is the
            // keep-alive idle timeout. The first request's bound is below.
            .header_read_timeout(config.keep_alive_timeout)
            .keep_alive(true);
        builder.http2().timer(TokioTimer::new());

        let local = listener.local_addr()?;
        tracing::info!(addr = %local, url = %format!("http://{local}/mcp"), "listening");
        lifecycle.advance(Phase::Ready);

        let graceful = GracefulShutdown::new();
        let first_request_timeout = config.header_read_timeout;
        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                biased;
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Out of file descriptors and the like: back off
                        // instead of spinning; the listener stays open.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!(error = %e, %peer, "cannot set TCP_NODELAY");
            }
            let seen_request = Arc::new(AtomicBool::new(false));
            let app = app.clone();
            let seen = seen_request.clone();
            let service =
                hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
                    seen.store(true, Ordering::Relaxed);
                    let mut app = app.clone();
                    async move { app.call(request.map(axum::body::Body::new)).await }
                });
            let connection = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .into_owned();
            let connection = graceful.watch(connection);
            tokio::spawn(async move {
                let first_request_deadline = async {
                    tokio::time::sleep(first_request_timeout).await;
                    if seen_request.load(Ordering::Relaxed) {
                        std::future::pending::<()>().await;
                    }
                };
                tokio::select! {
                    result = connection => {
                        if let Err(e) = result {
                            tracing::debug!(error = %e, %peer, "connection ended with an error");
                        }
                    }
                    () = first_request_deadline => {
                        tracing::debug!(%peer, "closing connection: no request within the header read timeout");
                    }
                }
            });
        }

        // Drain.
        lifecycle.advance(Phase::Draining);
        drop(listener);
        let deadline = tokio::time::Instant::now() + config.drain_timeout;
        let connections_closed = graceful.shutdown();
        tokio::pin!(connections_closed);
        let calls_deadline = deadline
            .checked_sub(STREAM_CLOSE_RESERVE)
            .unwrap_or(deadline);
        let calls = in_flight.len();
        tracing::info!(
            calls_in_flight = calls,
            listen_streams = stream_limits.open_listens.len(),
            other_streams = stream_limits.open_others.len(),
            deadline_s = config.drain_timeout.as_secs_f64(),
            "draining"
        );
        // Listen streams first: each ends with its final result while rmcp
        // can still send it, and its client moves to a replica that stays.
        listens_closing.cancel();
        let listen_deadline = (tokio::time::Instant::now() + LISTEN_COMPLETE_WAIT).min(deadline);
        let (calls_done, listens_done) = tokio::join!(
            tokio::time::timeout_at(calls_deadline, in_flight.finished()),
            all_closed(
                &stream_limits.open_listens,
                listen_deadline.saturating_duration_since(tokio::time::Instant::now()),
            ),
        );
        if calls_done.is_err() {
            tracing::warn!(
                calls_in_flight = in_flight.len(),
                "drain deadline reached with calls still running"
            );
        }
        if !listens_done {
            tracing::warn!(
                listen_streams = stream_limits.open_listens.len(),
                "listen streams still open after their final result was due; closing them"
            );
        }
        // Other streams never end by themselves: end them now that calls are
        // done, each with a last event telling its client to reconnect
        // elsewhere, then stop rmcp's sessions.
        stream_limits.closing.cancel();
        all_closed(&stream_limits.open_others, STREAM_FAREWELL).await;
        all_closed(&stream_limits.open_listens, STREAM_FAREWELL).await;
        streams.cancel();
        if tokio::time::timeout_at(deadline, &mut connections_closed)
            .await
            .is_err()
        {
            tracing::warn!("drain deadline reached with connections still open; closing them");
        }
        lifecycle.advance(Phase::Stopped);
        telemetry.flush();
        tracing::info!("stopped");
        Ok(())
    }
}
