//! The server's subscriber layer with JSON logs: log lines for the events
//! `LOG_LEVEL` enables, span records for the spans traces want, one layer.
//!
//! One layer rather than a log layer and a span layer, each behind a filter
//! of its own: `tracing-subscriber` caches whether a callsite is wanted only
//! when every per-layer filter gives the same answer, and a log layer that
//! wants an event while the span layer does not (it never wants events) made
//! every enabled event and every `tracing::enabled!` check run the filters
//! again, about 250 instructions each, several times per request. Here each
//! callsite gets one definite answer (`LOG_LEVEL`'s for events, the span
//! rule of [`span_layer::wanted`] for spans), which `tracing` caches, so an
//! event's check on the request path is one load. (`tracing::enabled!`
//! still asks the subscriber once per check, after the cached answer.)
//!
//! Spans never reach the log filter, as before: `LOG_LEVEL` directives that
//! name spans (`target[span]=level`) have no effect on these JSON logs.

use tracing::{
    Event, Metadata, Subscriber,
    metadata::LevelFilter,
    span::{Attributes, Id, Record},
    subscriber::Interest,
};
use tracing_subscriber::{
    EnvFilter, Layer,
    layer::{Context, Filter},
    registry::LookupSpan,
};

use super::{
    json_log::{JsonLogLayer, LineOutput},
    span_layer::{self, SpanLayer},
};

/// See the module docs.
#[derive(Debug)]
pub struct RuntimeLayer {
    filter: EnvFilter,
    logs: JsonLogLayer,
    /// Present when traces are exported.
    spans: Option<SpanLayer>,
}

impl RuntimeLayer {
    /// Logs what `filter` enables to `output`; records spans when `spans`.
    pub fn new(filter: EnvFilter, output: LineOutput, spans: bool) -> Self {
        Self {
            filter,
            logs: JsonLogLayer::new(output),
            spans: spans.then_some(SpanLayer),
        }
    }

    fn wants_span(&self, meta: &Metadata<'_>) -> bool {
        self.spans.is_some() && span_layer::wanted(meta)
    }
}

impl<S> Layer<S> for RuntimeLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if meta.is_span() {
            if self.wants_span(meta) {
                Interest::always()
            } else {
                Interest::never()
            }
        } else {
            Filter::<S>::callsite_enabled(&self.filter, meta)
        }
    }

    fn enabled(&self, meta: &Metadata<'_>, ctx: Context<'_, S>) -> bool {
        if meta.is_span() {
            self.wants_span(meta)
        } else {
            Filter::<S>::enabled(&self.filter, meta, &ctx)
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        let logs = Filter::<S>::max_level_hint(&self.filter);
        match (&self.spans, logs) {
            (None, logs) => logs,
            (Some(_), Some(logs)) => Some(logs.max(LevelFilter::INFO)),
            (Some(_), None) => None,
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        self.logs.on_event(event, ctx);
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if let Some(spans) = &self.spans {
            spans.on_new_span(attrs, id, ctx);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(spans) = &self.spans {
            spans.on_record(id, values, ctx);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if let Some(spans) = &self.spans {
            spans.on_close(id, ctx);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[test]
    fn callsites_get_a_definite_answer() {
        let memory: Arc<Mutex<Vec<u8>>> = Arc::default();
        let layer = RuntimeLayer::new(
            EnvFilter::new("info,rmcp=warn"),
            LineOutput::Memory(memory.clone()),
            true,
        );
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            assert!(tracing::enabled!(target: "mcpship::tool", tracing::Level::INFO));
            assert!(!tracing::enabled!(target: "mcpship::tool", tracing::Level::DEBUG));
            assert!(!tracing::enabled!(target: "rmcp::service", tracing::Level::INFO));
            tracing::info!(target: "mcpship::tool", "kept");
            tracing::info!(target: "rmcp::service", "dropped");
            // Spans: recorded for traces, never logged.
            assert!(!tracing::info_span!(target: "mcpship_docs::store", "db.query").is_disabled());
            assert!(tracing::info_span!(target: "rmcp::service", "serve").is_disabled());
            assert!(tracing::debug_span!(target: "mcpship_docs::store", "detail").is_disabled());
        });
        let text = String::from_utf8(memory.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains("\"message\":\"kept\""));
    }

    #[test]
    fn without_traces_no_span_is_made() {
        let layer = RuntimeLayer::new(EnvFilter::new("trace"), LineOutput::Stderr, false);
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            assert!(tracing::info_span!("db.query").is_disabled());
            assert!(tracing::enabled!(target: "mcpship::access", tracing::Level::INFO));
        });
    }
}
