//! OTLP/HTTP export: spans as an `ExportTraceServiceRequest` in protobuf,
//! posted to `{OTEL_EXPORTER_OTLP_ENDPOINT}/v1/traces`.
//!
//! The protobuf is written here, straight from [`SpanRecord`]s, rather than
//! by building `opentelemetry-proto`'s generated structures and encoding
//! them with `prost`: those own every string and id (a `String` per
//! attribute key, a `Vec` per id), which for a batch of spans is hundreds of
//! allocations that the request path's core pays for. The subset written is
//! small and fixed (the messages and field numbers below, from
//! `opentelemetry/proto/trace/v1/trace.proto` and `common/v1/common.proto`),
//! and the tests decode the output with the generated structures.
//!
//! ```text
//! ExportTraceServiceRequest { 1: ResourceSpans }
//! ResourceSpans { 1: Resource { 1: KeyValue* }, 2: ScopeSpans }
//! ScopeSpans    { 1: InstrumentationScope { 1: name, 2: version }, 2: Span* }
//! Span          { 1: trace_id, 2: span_id, 4: parent_span_id, 5: name, 6: kind,
//!                 7: start (fixed64), 8: end (fixed64), 9: KeyValue*, 15: Status, 16: flags (fixed32) }
//! KeyValue      { 1: key, 2: AnyValue { 1: string | 2: bool | 3: int | 4: double } }
//! Status        { 2: message, 3: code }
//! ```

use http::{HeaderMap, HeaderName, HeaderValue};

use super::{
    spans::{AttrValue, SpanKind, SpanRecord},
    trace::{EXPORT_TIMEOUT, TraceSetupError},
};
use crate::config::{ServeConfig, TracesExporter, env};

// Wire types.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

fn varint_len(mut n: u64) -> usize {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    if n < 0x80 {
        out.push(n as u8);
        return;
    }
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_key(out: &mut Vec<u8>, field: u32, wire: u8) {
    put_varint(out, u64::from(field << 3 | u32::from(wire)));
}

fn key_len(field: u32) -> usize {
    varint_len(u64::from(field << 3))
}

/// Length of a length-delimited field holding `len` bytes.
fn field_len(field: u32, len: usize) -> usize {
    key_len(field) + varint_len(len as u64) + len
}

fn put_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_key(out, field, LEN);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn put_header(out: &mut Vec<u8>, field: u32, len: usize) {
    put_key(out, field, LEN);
    put_varint(out, len as u64);
}

fn any_value_len(value: &AttrValue) -> usize {
    match value {
        AttrValue::Str(_) | AttrValue::Header(_) | AttrValue::Shared(_) => {
            field_len(1, value.text_bytes().map_or(0, <[u8]>::len))
        }
        AttrValue::Bool(_) => 2,
        AttrValue::I64(n) => 1 + varint_len(*n as u64),
        AttrValue::F64(_) => 9,
    }
}

fn put_any_value(out: &mut Vec<u8>, value: &AttrValue) {
    match value {
        AttrValue::Str(_) | AttrValue::Header(_) | AttrValue::Shared(_) => {
            put_bytes(out, 1, value.text_bytes().unwrap_or_default());
        }
        AttrValue::Bool(b) => {
            put_key(out, 2, VARINT);
            out.push(u8::from(*b));
        }
        AttrValue::I64(n) => {
            put_key(out, 3, VARINT);
            // int64: two's complement, as a 10-byte varint when negative.
            put_varint(out, *n as u64);
        }
        AttrValue::F64(f) => {
            put_key(out, 4, FIXED64);
            out.extend_from_slice(&f.to_le_bytes());
        }
    }
}

fn key_value_len(key: &str, value_len: usize) -> usize {
    field_len(1, key.len()) + field_len(2, value_len)
}

fn put_key_value(out: &mut Vec<u8>, field: u32, key: &str, value: &AttrValue) {
    let value_len = any_value_len(value);
    put_header(out, field, key_value_len(key, value_len));
    put_bytes(out, 1, key.as_bytes());
    put_header(out, 2, value_len);
    put_any_value(out, value);
}

fn kind_number(kind: SpanKind) -> u64 {
    match kind {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    }
}

fn status_len(span: &SpanRecord) -> usize {
    span.status_message
        .as_ref()
        .map_or(0, |m| field_len(2, m.len()))
        + 2
}

/// W3C trace flags (sampled) plus whether the parent is remote (bits 8, 9).
fn span_flags(span: &SpanRecord) -> u32 {
    const SAMPLED: u32 = 0x01;
    const HAS_IS_REMOTE: u32 = 0x100;
    const IS_REMOTE: u32 = 0x200;
    SAMPLED | HAS_IS_REMOTE | if span.parent_is_remote { IS_REMOTE } else { 0 }
}

fn span_len(span: &SpanRecord) -> usize {
    let mut len = field_len(1, 16) + field_len(2, 8);
    if span.parent_span_id != 0 {
        len += field_len(4, 8);
    }
    len += field_len(5, span.name_prefix.len() + span.name.as_str().len());
    len += 1 + varint_len(kind_number(span.kind));
    len += 2 * (1 + 8);
    for (key, value) in &span.attributes {
        len += field_len(9, key_value_len(key, any_value_len(value)));
    }
    if span.error {
        len += field_len(15, status_len(span));
    }
    len + 2 + 4
}

fn put_span(out: &mut Vec<u8>, span: &SpanRecord, len: usize) {
    put_header(out, 2, len);
    put_bytes(out, 1, &span.trace_id.to_be_bytes());
    put_bytes(out, 2, &span.span_id.to_be_bytes());
    if span.parent_span_id != 0 {
        put_bytes(out, 4, &span.parent_span_id.to_be_bytes());
    }
    put_header(out, 5, span.name_prefix.len() + span.name.as_str().len());
    out.extend_from_slice(span.name_prefix.as_bytes());
    out.extend_from_slice(span.name.as_str().as_bytes());
    put_key(out, 6, VARINT);
    put_varint(out, kind_number(span.kind));
    put_key(out, 7, FIXED64);
    out.extend_from_slice(&span.start.to_le_bytes());
    put_key(out, 8, FIXED64);
    out.extend_from_slice(&span.end.to_le_bytes());
    for (key, value) in &span.attributes {
        put_key_value(out, 9, key, value);
    }
    if span.error {
        put_header(out, 15, status_len(span));
        if let Some(message) = &span.status_message {
            put_bytes(out, 2, message.as_bytes());
        }
        put_key(out, 3, VARINT);
        put_varint(out, 2); // STATUS_CODE_ERROR
    }
    put_key(out, 16, FIXED32);
    out.extend_from_slice(&span_flags(span).to_le_bytes());
}

/// The parts of a request that are the same for every batch, encoded once.
#[derive(Debug, Clone)]
pub struct Preamble {
    /// `Resource` message body.
    resource: Vec<u8>,
    /// `InstrumentationScope` message body.
    scope: Vec<u8>,
}

impl Preamble {
    /// Resource attributes (`service.name`, …) and the instrumentation scope.
    pub fn new(resource: &[(&'static str, AttrValue)], scope: &str, version: &str) -> Self {
        let mut r = Vec::new();
        for (key, value) in resource {
            put_key_value(&mut r, 1, key, value);
        }
        let mut s = Vec::new();
        put_bytes(&mut s, 1, scope.as_bytes());
        put_bytes(&mut s, 2, version.as_bytes());
        Self {
            resource: r,
            scope: s,
        }
    }
}

/// Encodes `spans` as one `ExportTraceServiceRequest` into `out`.
pub fn encode(preamble: &Preamble, spans: &[SpanRecord], out: &mut Vec<u8>) {
    // Each span's length is needed twice (for the total, then before the
    // span itself); computed once.
    let lengths: Vec<usize> = spans.iter().map(span_len).collect();
    let spans_len: usize = lengths.iter().map(|&len| field_len(2, len)).sum();
    let scope_spans = field_len(1, preamble.scope.len()) + spans_len;
    let resource_spans = field_len(1, preamble.resource.len()) + field_len(2, scope_spans);
    out.reserve(field_len(1, resource_spans));
    put_header(out, 1, resource_spans);
    put_bytes(out, 1, &preamble.resource);
    put_header(out, 2, scope_spans);
    put_bytes(out, 1, &preamble.scope);
    for (span, &len) in spans.iter().zip(&lengths) {
        put_span(out, span, len);
    }
}

// ---------------------------------------------------------------------------
// The exporter

/// Posts batches to the collector with the runtime's reqwest client.
#[derive(Debug)]
pub struct OtlpExporter {
    client: reqwest::Client,
    url: String,
    headers: HeaderMap,
    preamble: Preamble,
}

/// `key=value` pairs, comma-separated, values percent-encoded: the format of
/// `OTEL_EXPORTER_OTLP_HEADERS` in the OpenTelemetry specification.
pub fn parse_headers(text: &str) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').ok_or_else(|| {
            format!(
                "`{}…` is not key=value",
                pair.chars().take(20).collect::<String>()
            )
        })?;
        let name = HeaderName::try_from(key.trim())
            .map_err(|_| format!("`{}` is not a header name", key.trim()))?;
        let value = percent_encoding::percent_decode_str(value.trim())
            .decode_utf8()
            .map_err(|_| format!("the value of `{name}` is not UTF-8 once decoded"))?;
        // The value is a secret more often than not: never echo it.
        let mut value = HeaderValue::try_from(value.as_ref())
            .map_err(|_| format!("the value of `{name}` is not a valid header value"))?;
        value.set_sensitive(true);
        headers.append(name, value);
    }
    Ok(headers)
}

/// The OpenTelemetry resource: `service.name` and, for OTLP, the version,
/// the SDK's name, and whatever `OTEL_RESOURCE_ATTRIBUTES` adds.
fn resource(config: &ServeConfig) -> Vec<(&'static str, AttrValue)> {
    let mut attributes: Vec<(&'static str, AttrValue)> = vec![
        ("service.name", AttrValue::from(config.service_name.clone())),
        (
            "service.version",
            AttrValue::from(env!("CARGO_PKG_VERSION")),
        ),
        ("telemetry.sdk.name", AttrValue::from("mcpship")),
        ("telemetry.sdk.language", AttrValue::from("rust")),
        (
            "telemetry.sdk.version",
            AttrValue::from(env!("CARGO_PKG_VERSION")),
        ),
    ];
    if let Ok(extra) = std::env::var("OTEL_RESOURCE_ATTRIBUTES") {
        for pair in extra.split(',') {
            let Some((key, value)) = pair.split_once('=') else {
                continue;
            };
            let key = key.trim();
            // The configured service name wins, as in the OpenTelemetry SDKs.
            if key.is_empty() || attributes.iter().any(|(k, _)| *k == key) {
                continue;
            }
            let value = percent_encoding::percent_decode_str(value.trim())
                .decode_utf8_lossy()
                .into_owned();
            // Keys live as long as the process: leaked once, at start.
            let key: &'static str = Box::leak(key.to_owned().into_boxed_str());
            attributes.push((key, AttrValue::from(value)));
        }
    }
    attributes
}

impl OtlpExporter {
    /// The exporter for `config` (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, if
    /// set, is used as is; otherwise `/v1/traces` is added to the endpoint).
    pub fn new(config: &ServeConfig) -> Result<Self, TraceSetupError> {
        debug_assert_eq!(config.traces_exporter, TracesExporter::Otlp);
        let url = std::env::var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .ok()
            .filter(|u| !u.trim().is_empty())
            .unwrap_or_else(|| format!("{}/v1/traces", config.otlp_endpoint.trim_end_matches('/')));
        let mut headers = HeaderMap::new();
        for variable in [
            "OTEL_EXPORTER_OTLP_HEADERS",
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
        ] {
            if let Ok(text) = std::env::var(variable) {
                // The signal-specific variable wins, key by key.
                for (name, value) in
                    parse_headers(&text).map_err(|why| TraceSetupError { variable, why })?
                {
                    if let Some(name) = name {
                        headers.insert(name, value);
                    }
                }
            }
        }
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-protobuf"),
        );
        let client = reqwest::Client::builder()
            .timeout(EXPORT_TIMEOUT)
            .user_agent(concat!("mcpship/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| TraceSetupError {
                variable: env::OTLP_ENDPOINT,
                why: format!("cannot build the HTTP client: {e}"),
            })?;
        Ok(Self {
            client,
            url,
            headers,
            preamble: Preamble::new(&resource(config), "mcpship", env!("CARGO_PKG_VERSION")),
        })
    }

    /// Posts one batch.
    pub async fn export(&self, spans: &[SpanRecord]) -> Result<(), String> {
        let mut body = Vec::new();
        encode(&self.preamble, spans, &mut body);
        let response = self
            .client
            .post(&self.url)
            .headers(self.headers.clone())
            .body(body)
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        let status = response.status();
        // Read the (small) answer so the connection can be reused.
        let _ = response.bytes().await;
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("the collector answered {status}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use opentelemetry_proto::tonic::{
        collector::trace::v1::ExportTraceServiceRequest,
        common::v1::{AnyValue, any_value::Value},
        trace::v1::status::StatusCode,
    };
    use prost::Message as _;

    use super::*;

    fn span(parent: u64, error: bool) -> SpanRecord {
        SpanRecord {
            trace_id: 0x5759e988bd862e3fe1be46a994272793,
            span_id: 0xb7ad6b7169203331,
            parent_span_id: parent,
            parent_is_remote: parent == 1,
            name_prefix: "tool.",
            name: "search_documents".into(),
            kind: SpanKind::Client,
            start: 1_764_000_000_123_456_789,
            end: 1_764_000_000_223_456_789,
            attributes: vec![
                ("mcp.tool", AttrValue::from("search_documents")),
                (
                    "request_id",
                    AttrValue::Header(HeaderValue::from_static("req-1")),
                ),
                ("http.response.status_code", AttrValue::I64(200)),
                ("negative", AttrValue::I64(-5)),
                ("ratio", AttrValue::F64(0.25)),
                ("error", AttrValue::Bool(error)),
                ("long", AttrValue::from("x".repeat(300))),
            ],
            error,
            status_message: error.then_some(Cow::Borrowed("boom")),
        }
    }

    fn text(v: &Option<AnyValue>) -> Option<Value> {
        v.as_ref().and_then(|v| v.value.clone())
    }

    #[test]
    fn prost_decodes_what_is_written() {
        let preamble = Preamble::new(
            &[("service.name", AttrValue::from("docs"))],
            "mcpship",
            "0.1.0",
        );
        let spans: Vec<SpanRecord> = vec![span(0, false), span(1, true), span(0xabc, false)];
        let mut out = Vec::new();
        encode(&preamble, &spans, &mut out);
        let request = ExportTraceServiceRequest::decode(out.as_slice()).expect("valid protobuf");
        assert_eq!(request.resource_spans.len(), 1);
        let rs = &request.resource_spans[0];
        let resource = rs.resource.as_ref().unwrap();
        assert_eq!(resource.attributes[0].key, "service.name");
        assert_eq!(
            text(&resource.attributes[0].value),
            Some(Value::StringValue("docs".into()))
        );
        let ss = &rs.scope_spans[0];
        assert_eq!(ss.scope.as_ref().unwrap().name, "mcpship");
        assert_eq!(ss.scope.as_ref().unwrap().version, "0.1.0");
        assert_eq!(ss.spans.len(), 3);

        let root = &ss.spans[0];
        assert_eq!(
            root.trace_id,
            0x5759e988bd862e3fe1be46a994272793u128.to_be_bytes()
        );
        assert_eq!(root.span_id, 0xb7ad6b7169203331u64.to_be_bytes());
        assert!(root.parent_span_id.is_empty());
        assert_eq!(root.name, "tool.search_documents");
        assert_eq!(root.kind, 3);
        assert_eq!(root.start_time_unix_nano, 1_764_000_000_123_456_789);
        assert_eq!(root.end_time_unix_nano, 1_764_000_000_223_456_789);
        assert_eq!(root.flags, 0x101);
        assert!(root.status.is_none());
        let attr = |s: &opentelemetry_proto::tonic::trace::v1::Span, k: &str| {
            s.attributes
                .iter()
                .find(|a| a.key == k)
                .and_then(|a| text(&a.value))
        };
        assert_eq!(
            attr(root, "mcp.tool"),
            Some(Value::StringValue("search_documents".into()))
        );
        assert_eq!(
            attr(root, "request_id"),
            Some(Value::StringValue("req-1".into()))
        );
        assert_eq!(
            attr(root, "http.response.status_code"),
            Some(Value::IntValue(200))
        );
        assert_eq!(attr(root, "negative"), Some(Value::IntValue(-5)));
        assert_eq!(attr(root, "ratio"), Some(Value::DoubleValue(0.25)));
        assert_eq!(attr(root, "error"), Some(Value::BoolValue(false)));
        assert_eq!(
            attr(root, "long"),
            Some(Value::StringValue("x".repeat(300)))
        );

        let failed = &ss.spans[1];
        assert_eq!(failed.parent_span_id, 1u64.to_be_bytes());
        assert_eq!(failed.flags, 0x301, "remote parent");
        let status = failed.status.as_ref().unwrap();
        assert_eq!(status.code, StatusCode::Error as i32);
        assert_eq!(status.message, "boom");
        assert_eq!(ss.spans[2].parent_span_id, 0xabcu64.to_be_bytes());
    }

    #[test]
    fn an_empty_batch_is_a_valid_request() {
        let preamble = Preamble::new(&[], "mcpship", "0.1.0");
        let mut out = Vec::new();
        encode(&preamble, &[], &mut out);
        let request = ExportTraceServiceRequest::decode(out.as_slice()).unwrap();
        assert!(request.resource_spans[0].scope_spans[0].spans.is_empty());
    }

    #[test]
    fn header_variables_are_parsed_and_decoded() {
        let h = parse_headers("api-key=s%3Dcret , x-team = search,").unwrap();
        assert_eq!(h["api-key"], "s=cret");
        assert!(h["api-key"].is_sensitive());
        assert_eq!(h["x-team"], "search");
        assert!(parse_headers("novalue").is_err());
        assert!(parse_headers("bad name=1").is_err());
        assert!(parse_headers("").unwrap().is_empty());
    }
}
