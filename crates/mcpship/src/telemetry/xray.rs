//! X-Ray export: segment documents over UDP to the X-Ray daemon (or the
//! CloudWatch agent / ADOT collector's X-Ray receiver, which speak the same
//! protocol).
//!
//! One datagram per request where it fits: the request's server span is the
//! segment (named after the service), and the spans under it that ended in
//! the same batch (the MCP method, the tool, its database queries) are nested
//! in it as `subsegments`, as the X-Ray SDKs send them. A span whose parent
//! went out in an earlier batch, or a segment too large for one datagram, is
//! sent as a subsegment document of its own (`"type": "subsegment"` with
//! `trace_id` and `parent_id`), which the daemon joins to its segment. Each
//! datagram is
//!
//! ```text
//! {"format": "json", "version": 1}\n{segment document}
//! ```
//!
//! written on a connected, non-blocking socket: a send that would block, a
//! document over the 64 KiB datagram limit, or a daemon that is not
//! listening (the kernel reports the refused port on a later send) loses
//! that document, counted. Nothing waits.
//!
//! What goes where in a document (the X-Ray segment document schema):
//! `http.request` / `http.response` from the server span's HTTP attributes
//! (status 5xx sets `fault`, 4xx `error`, 429 also `throttle`); a failed span
//! sets `fault`; client spans are `"namespace": "remote"`, with `sql` when
//! they carry `db.system`; the attributes X-Ray should index
//! ([`ANNOTATED`]) become `annotations` (dots turned into underscores, as
//! annotation keys allow only letters, digits and `_`), the others
//! `metadata.default`.

use std::{
    borrow::Cow,
    io,
    net::{SocketAddr, ToSocketAddrs, UdpSocket},
};

use super::{
    json_log::{write_str, write_text},
    spans::{AttrValue, SpanKind, SpanRecord},
    trace::xray_trace_id,
};

/// The daemon protocol's header line.
pub const HEADER: &[u8] = b"{\"format\": \"json\", \"version\": 1}\n";
/// Largest UDP payload.
const MAX_DATAGRAM: usize = 65_507;
/// Attributes sent as annotations, which X-Ray indexes for filtering
/// (`annotation.mcp_tool = "search_documents"`).
pub const ANNOTATED: &[&str] = &[
    "mcp.method",
    "mcp.tool",
    "mcp.protocol_version",
    "request_id",
];
/// Attributes that become the `http` and `sql` objects instead of metadata.
const STRUCTURED: &[&str] = &[
    "http.request.method",
    "url.scheme",
    "server.address",
    "url.path",
    "user_agent.original",
    "http.response.status_code",
    "http.response.body.size",
    "db.system",
    "error",
];

/// Sends segment documents to the daemon; see the module docs.
#[derive(Debug)]
pub struct XrayExporter {
    socket: UdpSocket,
    /// Segment name: the service name, in the characters X-Ray accepts.
    service: String,
    /// `AWS::ECS::Container` when running on ECS.
    origin: Option<&'static str>,
    buffer: Vec<u8>,
    /// Per batch: each span's first child and next sibling (positions).
    first_child: Vec<usize>,
    next_sibling: Vec<usize>,
    /// Per batch: the span's parent is in the batch, so it is sent inside it.
    nested: Vec<bool>,
}

const NONE: usize = usize::MAX;

fn name_char_ok(c: char) -> bool {
    c.is_alphanumeric() || c.is_whitespace() || "_.:/%&#=+\\-@".contains(c)
}

/// X-Ray names allow letters, digits, whitespace and `_.:/%&#=+\-@`; other
/// characters become `_`, and names stop at 200 characters.
fn xray_name(name: &str) -> Cow<'_, str> {
    if name.len() <= 200 && name.chars().all(name_char_ok) {
        return Cow::Borrowed(name);
    }
    Cow::Owned(
        name.chars()
            .take(200)
            .map(|c| if name_char_ok(c) { c } else { '_' })
            .collect(),
    )
}

impl XrayExporter {
    /// Resolves `address` (`host:port`, once) and connects a socket to it.
    pub fn connect(address: &str, service: &str) -> io::Result<Self> {
        let target: SocketAddr = address.to_socket_addrs()?.next().ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, "the name resolves to no address")
        })?;
        let local: SocketAddr = if target.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(local)?;
        socket.set_nonblocking(true)?;
        socket.connect(target)?;
        let on_ecs = std::env::var_os("ECS_CONTAINER_METADATA_URI_V4").is_some()
            || std::env::var_os("ECS_CONTAINER_METADATA_URI").is_some();
        Ok(Self {
            socket,
            service: xray_name(service).into_owned(),
            origin: on_ecs.then_some("AWS::ECS::Container"),
            buffer: Vec::with_capacity(8 * 1024),
            first_child: Vec::new(),
            next_sibling: Vec::new(),
            nested: Vec::new(),
        })
    }

    /// Sends a batch; on losses, how many spans and why.
    pub fn export(&mut self, spans: &[SpanRecord]) -> Result<(), (u64, String)> {
        self.link(spans);
        let mut lost = 0;
        let mut last_error = None;
        for i in 0..spans.len() {
            if self.nested[i] {
                continue;
            }
            if let Err((n, e)) = self.send_tree(spans, i) {
                lost += n;
                last_error = Some(e);
            }
        }
        match last_error {
            None => Ok(()),
            Some(e) => Err((lost, e)),
        }
    }

    /// Links each span to its parent when the parent is in the batch.
    fn link(&mut self, spans: &[SpanRecord]) {
        let positions: std::collections::HashMap<(u128, u64), usize> = spans
            .iter()
            .enumerate()
            .map(|(i, s)| ((s.trace_id, s.span_id), i))
            .collect();
        self.first_child.clear();
        self.first_child.resize(spans.len(), NONE);
        self.next_sibling.clear();
        self.next_sibling.resize(spans.len(), NONE);
        self.nested.clear();
        self.nested.resize(spans.len(), false);
        // Backwards, so children keep their order.
        for (i, span) in spans.iter().enumerate().rev() {
            if span.parent_is_remote || span.parent_span_id == 0 {
                continue;
            }
            if let Some(&p) = positions.get(&(span.trace_id, span.parent_span_id)) {
                self.next_sibling[i] = self.first_child[p];
                self.first_child[p] = i;
                self.nested[i] = true;
            }
        }
    }

    /// Sends span `i` with its descendants, splitting when too large.
    fn send_tree(&mut self, spans: &[SpanRecord], i: usize) -> Result<(), (u64, String)> {
        self.buffer.truncate(0);
        self.buffer.extend_from_slice(HEADER);
        let mut buffer = std::mem::take(&mut self.buffer);
        self.write_span(&mut buffer, spans, i, true, true);
        let result = if buffer.len() <= MAX_DATAGRAM {
            self.send(
                &buffer,
                count_tree(&self.first_child, &self.next_sibling, i),
            )
        } else {
            // Too large as one document: this span alone, then each child's
            // tree as documents of their own.
            buffer.truncate(HEADER.len());
            self.write_span(&mut buffer, spans, i, true, false);
            let mut result = if buffer.len() <= MAX_DATAGRAM {
                self.send(&buffer, 1)
            } else {
                Err((1, "a span too large for one datagram".into()))
            };
            let mut child = self.first_child[i];
            while child != NONE {
                if let Err(e) = self.send_tree(spans, child) {
                    result = Err(match result {
                        Ok(()) => e,
                        Err((n, _)) => (n + e.0, e.1),
                    });
                }
                child = self.next_sibling[child];
            }
            result
        };
        self.buffer = buffer;
        result
    }

    fn send(&self, datagram: &[u8], spans: u64) -> Result<(), (u64, String)> {
        match self.socket.send(datagram) {
            Ok(_) => Ok(()),
            Err(e) => Err((spans, e.to_string())),
        }
    }

    /// Writes span `i` as a document (`top`) or a nested subsegment, with its
    /// children nested when `nest`.
    fn write_span(&self, out: &mut Vec<u8>, spans: &[SpanRecord], i: usize, top: bool, nest: bool) {
        let span = &spans[i];
        let segment = top && (span.parent_is_remote || span.parent_span_id == 0);
        out.extend_from_slice(b"{\"name\":");
        if segment {
            write_str(out, &self.service);
        } else {
            write_str(out, &xray_name(&span.full_name()));
        }
        out.extend_from_slice(b",\"id\":");
        write_hex_id(out, span.span_id);
        if top {
            out.extend_from_slice(b",\"trace_id\":\"");
            out.extend_from_slice(xray_trace_id(span.trace_id).as_bytes());
            out.push(b'"');
            if span.parent_span_id != 0 {
                out.extend_from_slice(b",\"parent_id\":");
                write_hex_id(out, span.parent_span_id);
            }
            if !segment {
                out.extend_from_slice(b",\"type\":\"subsegment\"");
            }
        }
        out.extend_from_slice(b",\"start_time\":");
        write_seconds(out, span.start);
        out.extend_from_slice(b",\"end_time\":");
        write_seconds(out, span.end);
        if segment && let Some(origin) = self.origin {
            out.extend_from_slice(b",\"origin\":");
            write_str(out, origin);
        }
        if matches!(span.kind, SpanKind::Client | SpanKind::Producer) {
            out.extend_from_slice(b",\"namespace\":\"remote\"");
        }
        let status = match span.get("http.response.status_code") {
            Some(AttrValue::I64(n)) => Some(*n),
            _ => None,
        };
        write_http(out, span, status);
        if let Some(system) = span.get("db.system").and_then(AttrValue::as_str) {
            out.extend_from_slice(b",\"sql\":{\"database_type\":");
            write_str(out, system);
            out.push(b'}');
        }
        match status {
            Some(500..) => out.extend_from_slice(b",\"fault\":true"),
            Some(429) => out.extend_from_slice(b",\"error\":true,\"throttle\":true"),
            Some(400..=499) => out.extend_from_slice(b",\"error\":true"),
            _ if span.error => out.extend_from_slice(b",\"fault\":true"),
            _ => {}
        }
        write_attributes(out, span);
        if nest && self.first_child[i] != NONE {
            out.extend_from_slice(b",\"subsegments\":[");
            let mut child = self.first_child[i];
            let mut first = true;
            while child != NONE {
                if !first {
                    out.push(b',');
                }
                first = false;
                self.write_span(out, spans, child, false, true);
                child = self.next_sibling[child];
            }
            out.push(b']');
        }
        out.push(b'}');
    }
}

/// How many spans the tree under `i` holds.
fn count_tree(first_child: &[usize], next_sibling: &[usize], i: usize) -> u64 {
    let mut n = 1;
    let mut child = first_child[i];
    while child != NONE {
        n += count_tree(first_child, next_sibling, child);
        child = next_sibling[child];
    }
    n
}

fn write_hex_id(out: &mut Vec<u8>, id: u64) {
    let mut quoted = [b'"'; 18];
    super::trace::write_hex(&mut quoted[1..17], &id.to_be_bytes());
    out.extend_from_slice(&quoted);
}

/// Seconds since the epoch with microseconds, as X-Ray takes times.
fn write_seconds(out: &mut Vec<u8>, unix_nanos: u64) {
    use std::io::Write as _;
    let _ = write!(
        out,
        "{}.{:06}",
        unix_nanos / 1_000_000_000,
        (unix_nanos % 1_000_000_000) / 1_000
    );
}

fn write_value(out: &mut Vec<u8>, value: &AttrValue) {
    match value {
        AttrValue::Str(_) | AttrValue::Header(_) | AttrValue::Shared(_) => {
            write_text(out, value.text_bytes().unwrap_or_default());
        }
        AttrValue::I64(n) => {
            let _ = serde_json::to_writer(&mut *out, n);
        }
        AttrValue::F64(f) => {
            let _ = serde_json::to_writer(&mut *out, f);
        }
        AttrValue::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
    }
}

fn write_http(out: &mut Vec<u8>, span: &SpanRecord, status: Option<i64>) {
    let method = span.get("http.request.method");
    if method.is_none() && status.is_none() {
        return;
    }
    out.extend_from_slice(b",\"http\":{\"request\":{");
    let text = |key| span.get(key).and_then(AttrValue::as_str);
    let mut first = true;
    let mut field = |out: &mut Vec<u8>, name: &str| {
        if !first {
            out.push(b',');
        }
        first = false;
        write_str(out, name);
        out.push(b':');
    };
    if let Some(method) = text("http.request.method") {
        field(out, "method");
        write_str(out, method);
    }
    if let (Some(host), Some(path)) = (text("server.address"), text("url.path")) {
        field(out, "url");
        let url = format!("{}://{host}{path}", text("url.scheme").unwrap_or("http"));
        write_str(out, &url);
    }
    if let Some(agent) = text("user_agent.original") {
        field(out, "user_agent");
        write_str(out, agent);
    }
    out.extend_from_slice(b"}");
    if let Some(status) = status {
        out.extend_from_slice(b",\"response\":{\"status\":");
        let _ = serde_json::to_writer(&mut *out, &status);
        if let Some(AttrValue::I64(size)) = span.get("http.response.body.size") {
            out.extend_from_slice(b",\"content_length\":");
            let _ = serde_json::to_writer(&mut *out, size);
        }
        out.push(b'}');
    }
    out.push(b'}');
}

/// `annotations` for the indexed attributes, `metadata.default` for the rest.
fn write_attributes(out: &mut Vec<u8>, span: &SpanRecord) {
    // X-Ray annotation keys take letters, digits and underscores only.
    let annotations = span
        .attributes
        .iter()
        .filter(|(k, _)| ANNOTATED.contains(k))
        .map(|(k, v)| {
            let key: String = k
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            (std::borrow::Cow::Owned(key), v)
        });
    write_members(out, ",\"annotations\":{", "}", annotations);
    let metadata = span
        .attributes
        .iter()
        .filter(|(k, _)| !ANNOTATED.contains(k) && !STRUCTURED.contains(k))
        .map(|(k, v)| (std::borrow::Cow::Borrowed(*k), v));
    write_members(out, ",\"metadata\":{\"default\":{", "}}", metadata);
}

/// `open`, the members `"key":value` separated by commas, `close`; nothing
/// at all when there are no members.
fn write_members<'a>(
    out: &mut Vec<u8>,
    open: &str,
    close: &str,
    members: impl Iterator<Item = (std::borrow::Cow<'a, str>, &'a AttrValue)>,
) {
    let mut members = members.peekable();
    if members.peek().is_none() {
        return;
    }
    out.extend_from_slice(open.as_bytes());
    for (n, (key, value)) in members.enumerate() {
        if n > 0 {
            out.push(b',');
        }
        write_str(out, &key);
        out.push(b':');
        write_value(out, value);
    }
    out.extend_from_slice(close.as_bytes());
}
