//! The runtime's own lines (access log, tool events) are wanted or not as
//! `LOG_LEVEL` says, decided once when the subscriber is installed. Its own
//! test binary: the subscriber is global.

use mcpship::{LogFormat, telemetry::json_log};

#[test]
fn the_levels_of_the_runtimes_lines_follow_the_filter() {
    mcpship::logging::init("warn,mcpship::tool=info", LogFormat::Json);
    let direct = json_log::direct().expect("the JSON layer is the subscriber");
    assert!(direct.tool_info);
    assert!(direct.tool_warn);
    assert!(!direct.access_info);
    // The same answers `tracing` gives when asked.
    assert!(tracing::enabled!(target: "mcpship::tool", tracing::Level::INFO));
    assert!(!tracing::enabled!(target: "mcpship::access", tracing::Level::INFO));
    assert!(!tracing::enabled!(target: "mcpship::tool", tracing::Level::DEBUG));
}
