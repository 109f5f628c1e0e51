//! Log output: JSON lines in production, readable text on a terminal.
//!
//! Logs go to stderr always: stdout belongs to the MCP stream in stdio mode,
//! and container log drivers (awslogs) collect both.

use std::io::IsTerminal;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::config::LogFormat;

/// Installs the global subscriber. `filter` is a level or an `EnvFilter`
/// directive (validated by [`crate::ServeConfig::validate`]). Calling it
/// again is harmless: the first subscriber stays.
pub fn init(filter: &str, format: LogFormat) {
    let filter = env_filter(filter);
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let registry = tracing_subscriber::registry().with(filter);
    let result = if json {
        registry
            .with(
                fmt::layer()
                    .json()
                    // Event fields at the top level, so Logs Insights queries read
                    // `tool` and `duration_ms` rather than `fields.tool`.
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_span_list(false)
                    .with_target(true)
                    .with_writer(std::io::stderr),
            )
            .try_init()
    } else {
        registry
            .with(fmt::layer().with_target(false).with_writer(std::io::stderr))
            .try_init()
    };
    // Already initialised (tests, or a host application): keep the first.
    let _ = result;
}

/// rmcp logs every stateless request's service start and stop at `info`
/// (three lines per call): noise that would triple log volume and cost. It is
/// held at `warn` unless the filter names `rmcp` itself.
fn env_filter(directives: &str) -> EnvFilter {
    let filter = EnvFilter::try_new(directives).unwrap_or_else(|_| EnvFilter::new("info"));
    let verbose = filter
        .max_level_hint()
        .is_none_or(|level| level > LevelFilter::WARN);
    if directives.contains("rmcp") || !verbose {
        return filter;
    }
    filter.add_directive("rmcp=warn".parse().expect("a valid directive"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rmcp_is_quiet_unless_asked_for() {
        assert_eq!(env_filter("info").to_string(), "rmcp=warn,info");
        assert_eq!(
            env_filter("debug,rmcp=debug").to_string(),
            "rmcp=debug,debug"
        );
        assert_eq!(env_filter("error").to_string(), "error");
    }
}
