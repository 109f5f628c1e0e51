//! MCP over stdin/stdout, for desktop clients that launch the server.

use rmcp::{ServerHandler, ServiceExt};

use crate::instrument::Instrumented;

/// Serves `handler` on stdin/stdout until the client closes the stream or a
/// shutdown signal arrives. Logs must go to stderr meanwhile.
pub async fn serve_stdio<H: ServerHandler>(handler: H) -> anyhow::Result<()> {
    let running = Instrumented(handler)
        .serve(rmcp::transport::stdio())
        .await?;
    tracing::info!("serving MCP on stdio");
    let cancel = running.cancellation_token();
    tokio::select! {
        result = running.waiting() => { result?; }
        () = crate::lifecycle::shutdown_signal() => cancel.cancel(),
    }
    Ok(())
}
