//! Timestamps as stored and shown: RFC 3339, UTC, whole seconds.

/// The current time, e.g. `2026-11-24T23:31:26Z`.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}
