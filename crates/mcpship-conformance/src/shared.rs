//! Process-wide fixture state.
//!
//! The HTTP service builds a fresh [`ConformanceServer`](crate::ConformanceServer)
//! for every stateless request, so anything that must outlive one request lives
//! here and every handler instance holds an `Arc` to the same value:
//!
//! - the MRTR `requestState` codec: round two of a flow is served by a
//!   different handler instance than round one (and, behind a load balancer,
//!   maybe by another process: the host builds the codec from its configured
//!   key ring, e.g. `mcpship::state::request_state_codec`);
//! - the open `subscriptions/listen` streams: `test_trigger_tool_change` runs
//!   on one request and must notify streams opened by other requests;
//! - the SEP-2663 task registry: `tasks/get` polls tasks spawned earlier.

use std::{
    collections::HashMap,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use rmcp::{model::RequestStateCodec, service::SubscriptionSink, task_manager::TaskManager};

/// State shared by every handler instance of one server.
pub(crate) struct Shared {
    /// Seals and opens MRTR `requestState` (HMAC-SHA256, see
    /// [`RequestStateCodec`]); the host's, so replicas with the same keys
    /// open each other's state.
    pub(crate) request_state: RequestStateCodec,
    /// Open `subscriptions/listen` streams, keyed by a process-unique number.
    listeners: Mutex<HashMap<u64, SubscriptionSink>>,
    next_listener: AtomicU64,
    /// SEP-2663 tasks created by the task fixture tools.
    pub(crate) tasks: TaskManager,
}

impl Shared {
    pub(crate) fn new(request_state: RequestStateCodec) -> Self {
        Self {
            request_state,
            listeners: Mutex::new(HashMap::new()),
            next_listener: AtomicU64::new(0),
            tasks: TaskManager::new(),
        }
    }

    /// Registers an open listen stream; returns the key for [`Self::remove_listener`].
    pub(crate) fn add_listener(&self, sink: SubscriptionSink) -> u64 {
        let key = self.next_listener.fetch_add(1, Ordering::Relaxed);
        self.lock_listeners().insert(key, sink);
        key
    }

    pub(crate) fn remove_listener(&self, key: u64) {
        self.lock_listeners().remove(&key);
    }

    /// A snapshot of the open listen streams (the lock is not held across sends).
    pub(crate) fn listeners(&self) -> Vec<SubscriptionSink> {
        self.lock_listeners().values().cloned().collect()
    }

    fn lock_listeners(&self) -> std::sync::MutexGuard<'_, HashMap<u64, SubscriptionSink>> {
        // A panic while holding this lock cannot leave the map inconsistent
        // (every critical section is a single insert/remove/clone).
        self.listeners
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
