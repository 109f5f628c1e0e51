//! Serves [`ConformanceServer`] over Streamable HTTP on `127.0.0.1:PORT/mcp`,
//! with the rmcp settings the conformance suite needs. For testing the fixture
//! on its own; `mcpship serve --fixtures conformance` is the real host.
//!
//! ```sh
//! cargo run -p mcpship-conformance --example host -- 8123
//! scripts/conformance http://localhost:8123/mcp
//! ```

use std::{net::Ipv4Addr, sync::Arc};

use axum::{Router, routing::get};
use mcpship_conformance::ConformanceServer;
use rmcp::{
    model::RequestStateCodec,
    transport::{
        StreamableHttpServerConfig, StreamableHttpService,
        streamable_http_server::session::local::LocalSessionManager,
    },
};
use tokio_util::sync::CancellationToken;

/// The rmcp settings the fixture is tested with.
fn config(shutdown: CancellationToken) -> StreamableHttpServerConfig {
    StreamableHttpServerConfig::default()
        // 2025-11-25 clients get sessions (initialize, Mcp-Session-Id, the
        // GET stream, DELETE); 2026-07-28 requests are stateless regardless.
        .with_legacy_session_mode(true)
        // Stateless replies are plain JSON unless the handler sends a
        // notification first (progress, logs), which switches to SSE.
        .with_json_response(true)
        // Host is checked against the loopback default (localhost,
        // 127.0.0.1, ::1); Origin, when present, must be a loopback origin.
        .with_allowed_origins(["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"])
        .with_cancellation_token(shutdown)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = match std::env::args().nth(1) {
        Some(port) => port.parse()?,
        None => return Err("usage: host PORT".into()),
    };
    let shutdown = CancellationToken::new();
    // MRTR requestState is sealed with this key; a fixture host has one
    // process, so a key of its own (two v4 UUIDs: 244 random bits) will do.
    let mut key = uuid::Uuid::new_v4().as_bytes().to_vec();
    key.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    let fixtures = ConformanceServer::new(RequestStateCodec::try_new(key)?);
    let service = StreamableHttpService::new(
        move || Ok(fixtures.handler()),
        Arc::new(LocalSessionManager::default()),
        config(shutdown.child_token()),
    );
    let router = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .nest_service("/mcp", service);
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
    eprintln!("conformance fixtures on http://localhost:{port}/mcp");
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            let _ = tokio::signal::ctrl_c().await;
            shutdown.cancel();
        })
        .await?;
    Ok(())
}
