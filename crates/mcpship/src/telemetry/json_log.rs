//! The JSON log lines: one object per event, fields at the top level.
//!
//! ```json
//! {"timestamp":"2026-12-04T23:39:19.123456Z","level":"INFO","message":"tool.succeeded",
//!  "event":"tool.succeeded","tool":"get_document","duration_ms":0.41,"target":"mcpship::tool"}
//! ```
//!
//! The keys and their order are those of `tracing-subscriber`'s JSON format
//! with `flatten_event(true)` (timestamp, level, the event's fields, target),
//! so queries written against either read both. It is a layer of its own
//! rather than that formatter because of what a line cost under load: about
//! 1 µs there (a fresh `String` for the timestamp, every value through a
//! `serde` serializer and a `dyn fmt::Write` per piece), a fifth of that
//! here, where a line is built in one reused byte buffer and handed to the
//! output in one piece. Numbers stay numbers; `Debug` and `Display` values
//! (`%x`, `?x`, a formatted message) become JSON strings, escaped as they are
//! written.
//!
//! The runtime's per-request lines (the access log, the `tool.*` events) are
//! written straight into a line with [`Line`] when this layer is the process's
//! subscriber ([`direct`]), after the usual `tracing::enabled!` check of their
//! target and level: the same bytes, without dispatching a `tracing` event
//! through the subscriber and visiting its fields (about half of a line's
//! cost). Under any other subscriber they are ordinary `tracing` events.

use std::{
    cell::{Cell, RefCell},
    fmt,
    io::Write as _,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use tracing::{
    Event, Subscriber,
    field::{Field, Visit},
};
use tracing_subscriber::{Layer, layer::Context};

use super::log_sink::LogSink;

/// Where finished lines go.
#[derive(Debug, Clone)]
pub enum LineOutput {
    /// The buffered sink (the server).
    Sink(LogSink),
    /// Straight to stderr, one `write_all` a line (commands, tests).
    Stderr,
    /// Into memory, for tests.
    #[cfg(test)]
    Memory(std::sync::Arc<std::sync::Mutex<Vec<u8>>>),
}

impl LineOutput {
    fn write(&self, line: &[u8]) {
        match self {
            Self::Sink(sink) => sink.append(line),
            Self::Stderr => {
                // Nothing useful can be done about a failed log write.
                let _ = std::io::stderr().write_all(line);
            }
            #[cfg(test)]
            Self::Memory(memory) => memory.lock().unwrap().extend_from_slice(line),
        }
    }
}

/// The layer writing JSON lines; see the module docs.
#[derive(Debug, Clone)]
pub struct JsonLogLayer {
    output: LineOutput,
}

impl JsonLogLayer {
    /// A layer writing to `output`.
    pub fn new(output: LineOutput) -> Self {
        Self { output }
    }
}

thread_local! {
    static LINE: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(512));
}

static DIRECT: std::sync::OnceLock<Direct> = std::sync::OnceLock::new();

/// Where the runtime's own lines go when this layer is the process's log
/// layer, and which of them `LOG_LEVEL` wants.
///
/// The answers are taken from the subscriber once, when it is installed:
/// its filter is fixed for the life of the process, and an event's answer
/// depends on its target and level only (spans never reach the log filter,
/// see [`super::layer`]). Asked on every request instead, `tracing::enabled!`
/// dispatches into the subscriber each time (the cached callsite interest
/// does not spare that call): about 125 instructions per check, four checks
/// per tool call, and the subscriber's filter code in the instruction cache.
#[derive(Debug)]
pub struct Direct {
    /// Where the lines go.
    pub output: LineOutput,
    /// `mcpship::tool` at INFO: `tool.invoked`, `tool.succeeded`.
    pub tool_info: bool,
    /// `mcpship::tool` at WARN: `tool.failed`.
    pub tool_warn: bool,
    /// `mcpship::access` at INFO: the access log.
    pub access_info: bool,
}

/// Records that this layer, writing to `output`, is the global subscriber's
/// JSON log layer; `dispatch` is that subscriber, asked here which of the
/// runtime's lines it wants.
pub(crate) fn set_direct(output: LineOutput, dispatch: &tracing::Dispatch) {
    let direct = tracing::dispatcher::with_default(dispatch, || Direct {
        output,
        tool_info: tracing::enabled!(target: "mcpship::tool", tracing::Level::INFO),
        tool_warn: tracing::enabled!(target: "mcpship::tool", tracing::Level::WARN),
        access_info: tracing::enabled!(target: "mcpship::access", tracing::Level::INFO),
    });
    let _ = DIRECT.set(direct);
}

/// The hand-written lines' output and levels, when this layer is the
/// process's log layer.
pub fn direct() -> Option<&'static Direct> {
    DIRECT.get()
}

/// A field name for [`Line`] with its punctuation, `,"name":`, made at
/// compile time by [`key!`](crate::telemetry::json_log::key): a field's name
/// is one copy. Names must be plain (letters, digits, `.`, `_`).
#[derive(Debug, Clone, Copy)]
pub struct Key(&'static str);

impl Key {
    /// Use [`key!`](crate::telemetry::json_log::key).
    #[doc(hidden)]
    pub const fn new(punctuated: &'static str) -> Self {
        Self(punctuated)
    }
}

/// The [`Key`] of a field name: `key!("duration_ms")`.
#[macro_export]
#[doc(hidden)]
macro_rules! __json_log_key {
    ($name:literal) => {
        $crate::telemetry::json_log::Key::new(concat!(",\"", $name, "\":"))
    };
}
pub use crate::__json_log_key as key;

/// A line written by hand in the layout of [`format_line`]: timestamp and
/// level, the fields in the order given, then the target. Field names are
/// [`Key`]s; the target is a code constant (plain, as names are).
pub struct Line<'a> {
    out: &'a mut Vec<u8>,
}

impl Line<'_> {
    /// Builds a line at `level` with `fill` and writes it to `output`.
    pub fn write(
        output: &LineOutput,
        level: tracing::Level,
        target: &str,
        fill: impl FnOnce(&mut Line<'_>),
    ) {
        LINE.with(|buffer| {
            let mut owned;
            let mut borrowed;
            let out: &mut Vec<u8> = match buffer.try_borrow_mut() {
                Ok(b) => {
                    borrowed = b;
                    &mut borrowed
                }
                Err(_) => {
                    owned = Vec::with_capacity(512);
                    &mut owned
                }
            };
            out.clear();
            out.extend_from_slice(b"{\"timestamp\":\"");
            write_timestamp(out, SystemTime::now());
            out.extend_from_slice(b"\",\"level\":\"");
            out.extend_from_slice(level.as_str().as_bytes());
            out.push(b'"');
            fill(&mut Line { out: &mut *out });
            debug_assert!(!target.bytes().any(|b| ESCAPE[usize::from(b)] != 0));
            out.extend_from_slice(b",\"target\":\"");
            out.extend_from_slice(target.as_bytes());
            out.extend_from_slice(b"\"}\n");
            output.write(out);
        });
    }

    fn key(&mut self, key: Key) {
        self.out.extend_from_slice(key.0.as_bytes());
    }

    /// A text field.
    pub fn str(&mut self, key: Key, value: &str) {
        self.key(key);
        write_str(self.out, value);
    }

    /// A text field known to need no escaping (names, ids of hex digits):
    /// copied as it is.
    pub fn plain(&mut self, key: Key, value: &str) {
        debug_assert!(
            !value.bytes().any(|b| ESCAPE[usize::from(b)] != 0),
            "{}: {value:?} needs escaping",
            key.0
        );
        self.key(key);
        self.out.push(b'"');
        self.out.extend_from_slice(value.as_bytes());
        self.out.push(b'"');
    }

    /// [`plain`](Self::plain), left out when `None`.
    pub fn opt_plain(&mut self, key: Key, value: Option<&str>) {
        if let Some(value) = value {
            self.plain(key, value);
        }
    }

    /// A text field, left out when `None` (as `tracing` leaves out `None`).
    pub fn opt_str(&mut self, key: Key, value: Option<&str>) {
        if let Some(value) = value {
            self.str(key, value);
        }
    }

    /// A number field.
    pub fn number(&mut self, key: Key, value: impl serde::Serialize) {
        self.key(key);
        let _ = serde_json::to_writer(&mut *self.out, &value);
    }

    /// An integer field.
    pub fn integer(&mut self, key: Key, value: impl itoa::Integer) {
        self.key(key);
        self.out
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    }

    /// A duration in milliseconds to the microsecond: the text `serde_json`
    /// writes for [`crate::events::millis`] of it (`0.188`, `12.5`, `3.0`),
    /// which the `tracing` path writes, made from integers.
    pub fn millis(&mut self, key: Key, duration: Duration) {
        self.key(key);
        write_millis(self.out, duration);
    }
}

/// See [`Line::millis`]. Up to 2^40 µs (about 12 days) an `f64` of whole
/// microseconds over 1000 prints as exactly that decimal (its spacing is far
/// below 0.001); longer durations go through `serde_json`.
pub(crate) fn write_millis(out: &mut Vec<u8>, duration: Duration) {
    let micros = duration.as_micros();
    if micros >= 1 << 40 {
        let _ = serde_json::to_writer(out, &crate::events::millis(duration));
        return;
    }
    let micros = micros as u64;
    let frac = (micros % 1000) as u16;
    out.extend_from_slice(itoa::Buffer::new().format(micros / 1000).as_bytes());
    let digits = [
        b'.',
        b'0' + (frac / 100) as u8,
        b'0' + (frac / 10 % 10) as u8,
        b'0' + (frac % 10) as u8,
    ];
    // Trailing zeros dropped, one digit kept: `.0`, `.5`, `.25`, `.125`.
    let len = match frac {
        _ if frac.is_multiple_of(100) => 2,
        _ if frac.is_multiple_of(10) => 3,
        _ => 4,
    };
    out.extend_from_slice(&digits[..len]);
}

impl<S: Subscriber> Layer<S> for JsonLogLayer {
    // Only events reach this layer (its filter refuses spans).
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        LINE.with(|line| match line.try_borrow_mut() {
            Ok(mut line) => {
                line.clear();
                format_line(&mut line, event);
                self.output.write(&line);
            }
            // A value's `Debug` that logs in turn: give it a buffer of its own.
            Err(_) => {
                let mut line = Vec::with_capacity(512);
                format_line(&mut line, event);
                self.output.write(&line);
            }
        });
    }
}

/// Formats one event as a line, newline included.
pub fn format_line(out: &mut Vec<u8>, event: &Event<'_>) {
    let meta = event.metadata();
    out.extend_from_slice(b"{\"timestamp\":\"");
    write_timestamp(out, SystemTime::now());
    out.extend_from_slice(b"\",\"level\":\"");
    out.extend_from_slice(meta.level().as_str().as_bytes());
    out.push(b'"');
    event.record(&mut Fields { out });
    out.extend_from_slice(b",\"target\":");
    write_str(out, meta.target());
    out.extend_from_slice(b"}\n");
}

thread_local! {
    /// `YYYY-MM-DDTHH:MM:SS` of the last second formatted on this thread.
    static SECOND: Cell<(u64, [u8; 19])> = const { Cell::new((u64::MAX, [0; 19])) };
}

/// RFC 3339 in UTC with microseconds, as `tracing-subscriber` writes it.
/// The date and time of day are formatted once a second per thread.
fn write_timestamp(out: &mut Vec<u8>, now: SystemTime) {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (cached, mut text) = SECOND.get();
    if cached != secs {
        let full =
            humantime::format_rfc3339_seconds(UNIX_EPOCH + std::time::Duration::from_secs(secs))
                .to_string();
        text.copy_from_slice(&full.as_bytes()[..19]);
        SECOND.set((secs, text));
    }
    out.extend_from_slice(&text);
    let micros = since.subsec_micros();
    let mut frac = *b".000000Z";
    let mut n = micros;
    for slot in frac[1..7].iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.extend_from_slice(&frac);
}

/// Writes each field as `,"name":value`.
struct Fields<'a> {
    out: &'a mut Vec<u8>,
}

impl Fields<'_> {
    fn key(&mut self, field: &Field) {
        let name = field.name();
        self.out.push(b',');
        write_str(self.out, name.strip_prefix("r#").unwrap_or(name));
        self.out.push(b':');
    }

    fn number(&mut self, field: &Field, value: impl serde::Serialize) {
        self.key(field);
        // Integers and finite floats as JSON numbers; NaN and infinities
        // (which JSON lacks) as null, as serde_json writes them.
        let _ = serde_json::to_writer(&mut *self.out, &value);
    }

    fn display(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        self.key(field);
        self.out.push(b'"');
        let _ = fmt::Write::write_fmt(&mut Escaping(self.out), value);
        self.out.push(b'"');
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        write_str(self.out, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        self.out
            .extend_from_slice(if value { b"true" } else { b"false" });
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.number(field, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.number(field, value);
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.number(field, value);
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        self.number(field, value);
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.number(field, value);
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.display(field, format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // Fields the `log` bridge adds are metadata, not data.
        if field.name().starts_with("log.") {
            return;
        }
        self.display(field, format_args!("{value:?}"));
    }
}

/// Writes `s` as a JSON string, quotes included.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    write_text(out, s.as_bytes());
}

/// [`write_str`] for bytes that are valid UTF-8 (checked by the caller).
pub fn write_text(out: &mut Vec<u8>, text: &[u8]) {
    out.push(b'"');
    escape_into(out, text);
    out.push(b'"');
}

/// Escapes what is formatted through it for the inside of a JSON string.
struct Escaping<'a>(&'a mut Vec<u8>);

impl fmt::Write for Escaping<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        escape_into(self.0, s.as_bytes());
        Ok(())
    }
}

/// Bytes that need an escape inside a JSON string (RFC 8259 §7): `"`, `\`
/// and the control characters; the value is the letter of a short escape,
/// or `u` for `\u00XX`.
const ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = b'u';
        b += 1;
    }
    table[b'\n' as usize] = b'n';
    table[b'\r' as usize] = b'r';
    table[b'\t' as usize] = b't';
    table[0x08] = b'b';
    table[0x0c] = b'f';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

/// Whether any of the 8 bytes in `word` needs an escape: below 0x20, `"`
/// or `\\` (the bit tricks from "Bit Twiddling Hacks": a byte is zero, or
/// less than n, when its high bit survives the subtraction).
const fn needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word;
    let quote = word ^ (ONES * b'"' as u64);
    let quote = quote.wrapping_sub(ONES) & !quote;
    let backslash = word ^ (ONES * b'\\' as u64);
    let backslash = backslash.wrapping_sub(ONES) & !backslash;
    (below_space | quote | backslash) & HIGH != 0
}

/// Copies `bytes` escaped. Text is checked eight bytes at a time, the last
/// few one by one, so a string with nothing to escape (the usual case) is a
/// check per word and one copy.
fn escape_into(out: &mut Vec<u8>, bytes: &[u8]) {
    let words = bytes.chunks_exact(8);
    let tail = words.remainder();
    let clean = tail.iter().all(|&b| ESCAPE[usize::from(b)] == 0)
        && words
            .map(|w| u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]))
            .all(|w| !needs_escape(w));
    if clean {
        out.extend_from_slice(bytes);
    } else {
        escape_slow(out, bytes);
    }
}

/// Byte by byte, for text that has something to escape.
fn escape_slow(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape = ESCAPE[usize::from(b)];
        if escape == 0 {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        if escape == b'u' {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]);
        } else {
            out.extend_from_slice(&[b'\\', escape]);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

#[cfg(test)]
pub(crate) mod tests {
    use std::{
        io,
        sync::{Arc, Mutex},
        time::Duration,
    };

    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[test]
    fn millis_are_written_as_serde_json_writes_the_float() {
        let check = |micros: u64| {
            let d = Duration::from_micros(micros);
            let mut ours = Vec::new();
            write_millis(&mut ours, d);
            let theirs = serde_json::to_string(&crate::events::millis(d)).unwrap();
            assert_eq!(String::from_utf8(ours).unwrap(), theirs, "{micros} µs");
        };
        (0..200_000).for_each(check);
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..200_000 {
            check(rng.u64(0..1 << 41));
        }
        for micros in [1 << 40, (1 << 40) - 1, u64::MAX / 2, 86_400_000_000] {
            check(micros);
        }
    }

    /// The lines `log` emits through a subscriber with this layer, as written.
    pub(crate) fn raw(log: impl FnOnce()) -> String {
        let lines: Arc<Mutex<Vec<u8>>> = Arc::default();
        struct Collect(Arc<Mutex<Vec<u8>>>);
        impl<S: Subscriber> Layer<S> for Collect {
            fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
                format_line(&mut self.0.lock().unwrap(), event);
            }
        }
        let subscriber = tracing_subscriber::registry().with(Collect(lines.clone()));
        tracing::subscriber::with_default(subscriber, log);
        let text = String::from_utf8(lines.lock().unwrap().clone()).unwrap();
        assert!(text.ends_with('\n'));
        text
    }

    #[test]
    fn every_kind_of_value_is_valid_json() {
        let weird = "quote \" backslash \\ newline \n tab \t bell \u{7} nul \u{0} é 😀";
        let error = io::Error::other("disk \"full\"");
        let text = raw(|| {
            tracing::warn!(
                target: "mcpship::tool",
                event = "tool.failed",
                tool = %weird,
                duration_ms = 1.25,
                bytes = 42u64,
                delta = -3i64,
                big = u128::MAX,
                ok = false,
                nan = f64::NAN,
                r#type = "raw",
                error = &error as &(dyn std::error::Error + 'static),
                debug = ?Some("x"),
                "{} {}", "tool.failed", 7
            );
        });
        // Beyond f64: checked in the text, since `Value` would round it.
        assert!(text.contains(&format!(",\"big\":{},", u128::MAX)), "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["level"], "WARN");
        assert_eq!(v["message"], "tool.failed 7");
        assert_eq!(v["event"], "tool.failed");
        assert_eq!(v["tool"], weird);
        assert_eq!(v["duration_ms"], 1.25);
        assert_eq!(v["bytes"], 42);
        assert_eq!(v["delta"], -3);
        assert_eq!(v["ok"], false);
        assert!(v["nan"].is_null());
        assert_eq!(v["type"], "raw");
        assert_eq!(v["error"], "disk \"full\"");
        assert_eq!(v["debug"], "Some(\"x\")");
        assert_eq!(v["target"], "mcpship::tool");
        let ts = v["timestamp"].as_str().unwrap();
        assert!(humantime::parse_rfc3339(ts).is_ok(), "{ts}");
        assert_eq!(ts.len(), "2026-12-04T23:39:19.123456Z".len(), "{ts}");
    }

    #[test]
    fn timestamps_are_rfc3339_with_microseconds_across_seconds() {
        for (secs, micros, want) in [
            (0, 0, "1970-01-01T00:00:00.000000Z"),
            (1_764_000_000, 7, "2025-11-24T16:00:00.000007Z"),
            (1_764_000_001, 999_999, "2025-11-24T16:00:01.999999Z"),
            (1_764_000_000, 120_000, "2025-11-24T16:00:00.120000Z"),
            (4_107_542_399, 500_000, "2100-02-28T23:59:59.500000Z"),
        ] {
            let mut out = Vec::new();
            let t = UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros);
            write_timestamp(&mut out, t);
            assert_eq!(String::from_utf8(out).unwrap(), want);
        }
    }

    #[test]
    fn escaping_matches_serde_json_for_every_control_and_some_unicode() {
        let mut all: String = (0u8..0x80).map(char::from).collect();
        all.push_str("ü€𝄞\u{2028}");
        let mut ours = Vec::new();
        write_str(&mut ours, &all);
        let ours = String::from_utf8(ours).unwrap();
        assert_eq!(serde_json::from_str::<String>(&ours).unwrap(), all);
        assert_eq!(ours, serde_json::to_string(&all).unwrap());
    }

    #[test]
    fn escapes_are_found_at_every_offset_of_a_word() {
        for special in ['"', '\\', '\n', '\u{1f}', '\u{0}'] {
            for at in 0..20 {
                let mut s: String = "abcdefghijklmnopqrst".into();
                s.insert(at, special);
                s.push('é');
                let mut ours = Vec::new();
                write_str(&mut ours, &s);
                assert_eq!(
                    String::from_utf8(ours).unwrap(),
                    serde_json::to_string(&s).unwrap(),
                    "{special:?} at {at}"
                );
            }
        }
        // Bytes just above the escaped ones stay as they are.
        for c in [' ', '!', '#', '[', ']', '\u{7f}', 'ÿ'] {
            let s: String = std::iter::repeat_n(c, 17).collect();
            let mut ours = Vec::new();
            write_str(&mut ours, &s);
            assert_eq!(String::from_utf8(ours).unwrap(), format!("\"{s}\""));
        }
    }

    #[test]
    fn keys_keep_the_order_of_tracing_subscriber_json() {
        let raw = raw(|| tracing::info!(target: "t", a = 1, "m"));
        let positions: Vec<usize> = [
            "\"timestamp\"",
            "\"level\"",
            "\"message\"",
            "\"a\"",
            "\"target\"",
        ]
        .iter()
        .map(|k| raw.find(k).unwrap_or_else(|| panic!("{k} in {raw}")))
        .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{raw}");
    }
}
