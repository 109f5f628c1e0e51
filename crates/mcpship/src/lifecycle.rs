//! The process lifecycle: starting → ready → draining → stopped.
//!
//! One [`Lifecycle`] is shared by every component. Readiness answers from it;
//! the HTTP layer refuses new MCP work once it is draining; the server loop
//! watches it to stop accepting. Waiting uses a `watch` channel; reading the
//! phase on the request path is one atomic load (the channel's `borrow` takes
//! a read lock).

use std::sync::{
    Arc,
    atomic::{AtomicU8, Ordering},
};

use tokio::sync::watch;

/// Where the process is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[repr(u8)]
pub enum Phase {
    /// Starting up: not yet ready for traffic.
    Starting,
    /// Serving.
    Ready,
    /// Shutting down: readiness fails, new work is refused, in-flight work finishes.
    Draining,
    /// Done.
    Stopped,
}

impl Phase {
    /// Name as shown by `/ready` and in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Ready => "ready",
            Self::Draining => "draining",
            Self::Stopped => "stopped",
        }
    }

    fn from_u8(value: u8) -> Self {
        match value {
            0 => Self::Starting,
            1 => Self::Ready,
            2 => Self::Draining,
            _ => Self::Stopped,
        }
    }
}

/// Shared handle on the lifecycle; clones observe and drive the same state.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    tx: Arc<watch::Sender<Phase>>,
    // A copy of the phase for readers that must not wait; written only under
    // the channel's lock, so it never runs ahead of or behind the channel.
    current: Arc<AtomicU8>,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self::new()
    }
}

impl Lifecycle {
    /// A lifecycle in [`Phase::Starting`].
    pub fn new() -> Self {
        Self {
            tx: Arc::new(watch::channel(Phase::Starting).0),
            current: Arc::new(AtomicU8::new(Phase::Starting as u8)),
        }
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        Phase::from_u8(self.current.load(Ordering::Acquire))
    }

    /// Moves forward to `phase`; the lifecycle never goes back (a late
    /// `ready` after a signal must not undo draining).
    pub fn advance(&self, phase: Phase) {
        self.tx.send_if_modified(|current| {
            if phase > *current {
                tracing::info!(from = current.as_str(), to = phase.as_str(), "lifecycle");
                *current = phase;
                self.current.store(phase as u8, Ordering::Release);
                true
            } else {
                false
            }
        });
    }

    /// Resolves once the phase is at least `phase`.
    pub async fn reached(&self, phase: Phase) {
        let mut rx = self.tx.subscribe();
        // The sender lives as long as `self`, so this cannot fail.
        let _ = rx.wait_for(|p| *p >= phase).await;
    }
}

/// Resolves on SIGTERM (ECS, Kubernetes, `docker stop`) or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM; only Ctrl-C will stop the server");
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => tracing::info!(signal = "SIGTERM", "shutdown requested"),
            _ = tokio::signal::ctrl_c() => tracing::info!(signal = "SIGINT", "shutdown requested"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!(signal = "ctrl-c", "shutdown requested");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn phases_only_move_forward() {
        let l = Lifecycle::new();
        assert_eq!(l.phase(), Phase::Starting);
        l.advance(Phase::Draining);
        l.advance(Phase::Ready);
        assert_eq!(l.phase(), Phase::Draining);
        l.reached(Phase::Ready).await;
    }
}
