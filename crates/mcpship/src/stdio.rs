//! MCP over stdin/stdout, for desktop clients that launch the server.

use rmcp::{ServerHandler, ServiceExt};

use crate::{instrument::Instrumented, telemetry::Telemetry};

/// Serves `handler` on stdin/stdout until the client closes the stream or a
/// shutdown signal arrives. Logs must go to stderr meanwhile.
pub async fn serve_stdio<H: ServerHandler>(handler: H) -> anyhow::Result<()> {
    serve_stdio_with(handler, Telemetry::disabled()).await
}

/// [`serve_stdio`] with metrics (for EMF; there is no `/metrics` on stdio)
/// and spans as `telemetry` says. EMF lines go to stderr, never stdout.
pub async fn serve_stdio_with<H: ServerHandler>(
    handler: H,
    telemetry: Telemetry,
) -> anyhow::Result<()> {
    let running = Instrumented::new(handler, telemetry.clone())
        .serve(rmcp::transport::stdio())
        .await?;
    tracing::info!("serving MCP on stdio");
    let cancel = running.cancellation_token();
    tokio::select! {
        result = running.waiting() => { result?; }
        () = crate::lifecycle::shutdown_signal() => cancel.cancel(),
    }
    telemetry.flush();
    Ok(())
}
