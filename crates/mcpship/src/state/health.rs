//! Whether the shared state backend answers: one atomic flag the request path
//! reads, set down by a failed command and up again by a background probe.
//!
//! The flag lets the HTTP layer refuse legacy work at once with a retryable
//! `503` while Redis is away, instead of letting each request find out by
//! itself (a reconnect attempt and up to a command timeout each), and it makes
//! the outage one log line when it starts and one when it ends, however many
//! requests it turned away.

use std::{
    fmt::Display,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Instant,
};

/// The health of the shared state backend; clones share the flag.
#[derive(Debug, Clone)]
pub struct StateHealth(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    up: AtomicBool,
    /// Outages so far: a request that saw another count at its end than at
    /// its start lived through a failure, even if the probe has since seen
    /// the backend come back.
    outages: AtomicU64,
    /// When the current outage began; only touched on transitions.
    down_since: Mutex<Option<Instant>>,
}

impl Default for StateHealth {
    fn default() -> Self {
        Self::new()
    }
}

impl StateHealth {
    /// A backend that answers (as it did at start).
    pub fn new() -> Self {
        Self(Arc::new(Inner {
            up: AtomicBool::new(true),
            outages: AtomicU64::new(0),
            down_since: Mutex::new(None),
        }))
    }

    /// Whether the backend answered last time it was asked.
    pub fn is_up(&self) -> bool {
        self.0.up.load(Ordering::Acquire)
    }

    /// Outages so far (see [`StateHealth::failed_since`]).
    pub fn outages(&self) -> u64 {
        self.0.outages.load(Ordering::Acquire)
    }

    /// Whether the backend is down now or went down after `outages` was read.
    pub fn failed_since(&self, outages: u64) -> bool {
        !self.is_up() || self.outages() != outages
    }

    /// A command failed because the backend is unreachable. Logs once per
    /// outage.
    pub(crate) fn mark_down(&self, why: &dyn Display) {
        if self
            .0
            .up
            .compare_exchange(true, false, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.0.outages.fetch_add(1, Ordering::AcqRel);
            *self.0.down_since.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
            tracing::error!(
                error = %why,
                "shared state (Redis) is unreachable; legacy requests get 503 with Retry-After until it answers again"
            );
        }
    }

    /// The probe got an answer. Logs once per outage, with its length.
    pub(crate) fn mark_up(&self) {
        if self
            .0
            .up
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            let since = self
                .0
                .down_since
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            let outage_s = since.map_or(0.0, |t| t.elapsed().as_secs_f64());
            tracing::warn!(
                outage_s,
                "shared state (Redis) answers again; legacy requests are served"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_is_seen_by_requests_that_lived_through_it() {
        let health = StateHealth::new();
        let before = health.outages();
        assert!(!health.failed_since(before));
        health.mark_down(&"refused");
        health.mark_down(&"refused again");
        assert!(!health.is_up());
        assert_eq!(
            health.outages(),
            before + 1,
            "one outage, however many errors"
        );
        health.mark_up();
        assert!(health.is_up());
        assert!(health.failed_since(before), "it failed during the request");
        assert!(!health.failed_since(health.outages()));
    }
}
