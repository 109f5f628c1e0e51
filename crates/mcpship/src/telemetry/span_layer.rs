//! Spans that code inside a call writes with `tracing` (the document store's
//! `db.query`, a tool's own spans), recorded like the runtime's.
//!
//! A span's parent, in order: its `tracing` parent if this layer records it
//! and it belongs to the same trace as the runtime span being polled; else
//! that runtime span ([`super::spans::current`]: the tool call or MCP
//! method); else its `tracing` parent. A span with none of these is outside
//! any request (start-up work such as seeding the store, a background task)
//! and is not recorded: a trace here is the story of one request. The
//! `tracing` parent wins only within the request, so a span a tool opens
//! under the server's long-lived spans still joins the request's trace.
//!
//! Fields become attributes, except the OpenTelemetry conventions that
//! `tracing-opentelemetry` also reads: `otel.name` (the span's name),
//! `otel.kind` (`client`, `server`, …), `otel.status_code` (`error` marks
//! the span failed) and `otel.status_description`.

use std::{borrow::Cow, fmt};

use tracing::{
    Subscriber,
    field::{Field, Visit},
    span::{Attributes, Id, Record},
};
use tracing_subscriber::{Layer, layer::Context, registry::LookupSpan};

use super::spans::{self, AttrValue, SpanContext, SpanKind, SpanName, SpanRecord};

/// Libraries whose spans are internal plumbing, not part of a request's story
/// (and the exporter's own HTTP client, which must never trace itself).
const NOISY_TARGETS: &[&str] = &[
    "rmcp",
    "hyper",
    "h2",
    "tower",
    "reqwest",
    "sqlx",
    "opentelemetry",
    "tokio",
];

/// Whether a span is recorded: info level or above, from the application
/// rather than the libraries under it.
pub fn wanted(meta: &tracing::Metadata<'_>) -> bool {
    meta.is_span()
        && *meta.level() <= tracing::Level::INFO
        && !NOISY_TARGETS.iter().any(|t| meta.target().starts_with(t))
}

/// The layer; see the module docs.
#[derive(Debug, Clone, Copy, Default)]
pub struct SpanLayer;

/// What the layer keeps in a `tracing` span's extensions.
struct Recorded {
    cx: SpanContext,
    /// Present when sampled.
    record: Option<Box<SpanRecord>>,
}

impl<S> Layer<S> for SpanLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let traced_parent = span
            .parent()
            .and_then(|p| p.extensions().get::<Recorded>().map(|r| r.cx));
        let parent = match (traced_parent, spans::current()) {
            (Some(t), Some(c)) if t.trace_id != c.trace_id => Some(c),
            (Some(t), _) => Some(t),
            (None, c) => c,
        };
        let Some(parent) = parent else {
            return;
        };
        let cx = SpanContext {
            trace_id: parent.trace_id,
            span_id: super::trace::new_span_id(),
            sampled: parent.sampled,
        };
        let record = cx.sampled.then(|| {
            let mut record = Box::new(SpanRecord::new(
                cx,
                Some((parent.span_id, false)),
                attrs.metadata().name(),
                SpanKind::Internal,
            ));
            attrs.record(&mut Fields(&mut record));
            record
        });
        span.extensions_mut().insert(Recorded { cx, record });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        if let Some(Recorded {
            record: Some(record),
            ..
        }) = span.extensions_mut().get_mut::<Recorded>()
        {
            values.record(&mut Fields(record));
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else {
            return;
        };
        if let Some(Recorded {
            record: Some(mut record),
            ..
        }) = span.extensions_mut().remove::<Recorded>()
        {
            record.end = spans::unix_nanos();
            spans::export(*record);
        }
    }
}

/// Records field values into a span record.
struct Fields<'a>(&'a mut SpanRecord);

impl Fields<'_> {
    fn text(&mut self, field: &Field, value: Cow<'_, str>) {
        match field.name() {
            "otel.name" => self.0.name = SpanName::Owned(value.into_owned()),
            "otel.kind" => {
                if let Some(kind) = SpanKind::from_name(&value) {
                    self.0.kind = kind;
                }
            }
            "otel.status_code" => self.0.error = value.eq_ignore_ascii_case("error"),
            "otel.status_description" | "otel.status_message" => {
                self.0.status_message = Some(Cow::Owned(value.into_owned()));
            }
            name => self.0.set(name, value.into_owned()),
        }
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.text(field, Cow::Borrowed(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.set(field.name(), value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.set(field.name(), value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        // OTLP integers are signed; larger values become text.
        match i64::try_from(value) {
            Ok(n) => self.0.set(field.name(), n),
            Err(_) => self.0.set(field.name(), value.to_string()),
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.set(field.name(), AttrValue::F64(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.text(field, Cow::Owned(value.to_string()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.text(field, Cow::Owned(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;
    use crate::telemetry::{
        spans::{InSpan, Span, pipeline},
        trace::Sampler,
    };

    /// The spans of `trace_id` queued so far (other tests share the queue).
    fn exported(trace_id: u128) -> Vec<SpanRecord> {
        let mut taken = Vec::new();
        pipeline().unwrap().take(&mut taken);
        let (mine, others): (Vec<_>, Vec<_>) =
            taken.into_iter().partition(|s| s.trace_id == trace_id);
        for span in others {
            pipeline().unwrap().push(span);
        }
        mine
    }

    #[test]
    fn tracing_spans_hang_from_the_runtime_span_being_polled() {
        spans::install(Sampler::new(1.0));
        let subscriber = tracing_subscriber::registry().with(SpanLayer);
        let _default = tracing::subscriber::set_default(subscriber);
        let outside = tracing::info_span!("server.lifetime");
        let _outside = outside.enter();

        let sampler = Sampler::new(1.0);
        let tool = Span::root(None, &sampler, "tool.x", SpanKind::Internal);
        let tool_cx = tool.context();
        let work = async {
            let span = tracing::info_span!(
                "db.query",
                otel.kind = "client",
                db.system = "sqlite",
                rows = 3u64,
                error = tracing::field::Empty,
                otel.status_code = tracing::field::Empty,
            );
            let _entered = span.enter();
            let inner = tracing::info_span!("decode", otel.name = "db.decode");
            drop(inner);
            span.record("error", true);
            span.record("otel.status_code", "error");
        };
        futures::executor::block_on(InSpan::new(work, tool_cx));
        tool.end();
        drop(_outside);
        drop(outside);

        let spans = exported(tool_cx.trace_id);
        let db = spans
            .iter()
            .find(|s| s.name == "db.query")
            .expect("db.query");
        assert_eq!(
            db.parent_span_id, tool_cx.span_id,
            "under the tool, not the server span"
        );
        assert_eq!(db.kind, SpanKind::Client);
        assert_eq!(db.get("db.system"), Some(&AttrValue::from("sqlite")));
        assert_eq!(db.get("rows"), Some(&AttrValue::I64(3)));
        assert_eq!(db.get("error"), Some(&AttrValue::Bool(true)));
        assert!(db.error && db.end >= db.start);
        assert!(db.get("otel.kind").is_none());
        let decode = spans
            .iter()
            .find(|s| s.name == "db.decode")
            .expect("renamed");
        assert_eq!(decode.parent_span_id, db.span_id, "its tracing parent");
        assert!(!decode.error);
    }

    #[test]
    fn spans_outside_a_request_or_unsampled_are_not_recorded() {
        spans::install(Sampler::new(1.0));
        let subscriber = tracing_subscriber::registry().with(SpanLayer);
        let _default = tracing::subscriber::set_default(subscriber);
        let lonely = tracing::info_span!("startup.seed");
        lonely.in_scope(|| drop(tracing::info_span!("startup.child")));
        drop(lonely);
        let mut taken = Vec::new();
        pipeline().unwrap().take(&mut taken);
        assert!(
            !taken
                .iter()
                .any(|s| s.name.as_str().starts_with("startup."))
        );
        for span in taken {
            pipeline().unwrap().push(span);
        }

        let unsampled = Span::root(None, &Sampler::new(0.0), "tool.y", SpanKind::Internal);
        let cx = unsampled.context();
        futures::executor::block_on(InSpan::new(
            async {
                drop(tracing::info_span!("db.query"));
            },
            cx,
        ));
        unsampled.end();
        assert!(exported(cx.trace_id).is_empty());
    }
}
