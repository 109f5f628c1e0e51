//! With no trace exporter (the default) the request path makes no span: the
//! installed subscriber wants none, so every `tracing` span in the process
//! (the runtime's, rmcp's, a tool's `db.query`) is disabled after one cached
//! interest check, and events still reach the log. Its own test binary: the
//! subscriber is global.

use mcpship::{LogFormat, ServeConfig, telemetry::Telemetry};

#[test]
fn without_an_exporter_spans_are_disabled_and_logs_still_flow() {
    // Even at the most verbose level.
    mcpship::logging::init("trace", LogFormat::Json);
    for _ in 0..2 {
        // The second round hits the cached interest.
        let span = tracing::info_span!("db.query", db.system = "sqlite");
        assert!(span.is_disabled());
        let span = tracing::error_span!(target: "mcpship::http", "http.request");
        assert!(span.is_disabled());
    }
    assert!(tracing::enabled!(target: "mcpship::access", tracing::Level::INFO));
    assert!(tracing::event_enabled!(target: "mcpship::tool", tracing::Level::INFO));
    let telemetry = Telemetry::from_config(&ServeConfig::default());
    assert!(!telemetry.tracing());
    assert!(telemetry.metrics().is_some());
    assert!(telemetry.emf().is_none());
}
