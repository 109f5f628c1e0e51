//! Buffered stderr for the server's log and EMF lines.
//!
//! A line is appended to an in-memory buffer under a short lock; a thread of
//! its own writes the buffer to stderr. Measured on the benchmark machine, a
//! `write(2)` of one line cost about 4 µs, as much as a tenth of a whole
//! `get_document` call, and the server writes four lines per tool call with
//! every signal on. Batched, the same lines cost one write per batch.
//!
//! Written here rather than taken from `tracing-appender`: its non-blocking
//! writer sends each line through a channel whose worker, parked when idle,
//! is woken (a futex call and a context switch) and writes each line with its
//! own `write(2)`, which on a busy core is what this module exists to avoid.
//!
//! How it batches: the writer thread sleeps on a condition variable while the
//! buffer is empty; the first line after a quiet spell wakes it, and it
//! writes what has gathered [`FLUSH_INTERVAL`] later, or as soon as
//! [`BATCH_BYTES`] have. Batches stay small enough to be written while still
//! in the CPU's cache (a batch of several hundred kilobytes measurably
//! evicted the server's own data), and the request path makes a system call
//! (to wake the writer) once per batch at most.
//!
//! The writer thread runs under `SCHED_BATCH` (Linux): when a line wakes it,
//! it waits for its turn instead of preempting the request that woke it.
//! Measured with the server on one core and 16 connections (16 alternated
//! rounds), that halved what the logs added to p99 latency (+11 % to +5 %
//! against no logs) and left throughput as it was; the thread keeps its full
//! share of the core, so it keeps up as before.
//!
//! What can be lost: lines still buffered when the process is killed with
//! SIGKILL (at most [`FLUSH_INTERVAL`] of them); a clean exit and a panic
//! flush first. When stderr does not keep up (a blocked pipe) the buffer
//! stops at [`MAX_BUFFERED`] bytes and further lines are dropped and counted
//! (`mcpship_log_lines_dropped_total`) rather than blocking requests; a line
//! saying how many were lost is written once the writer catches up.

use std::{
    io::{self, Write},
    sync::{
        Arc, Condvar, Mutex, MutexGuard, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

/// Longest a line waits in the buffer.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(20);
/// A batch this large is written at once.
pub const BATCH_BYTES: usize = 64 * 1024;
/// Most bytes held while stderr is slow; beyond this lines are dropped.
pub const MAX_BUFFERED: usize = 16 * 1024 * 1024;
/// Capacity each of the two buffers keeps between batches: above a steady
/// load's batch, so the buffers are not regrown (and their pages faulted in
/// again) every time. A larger buffer after a burst is shrunk back to it.
const KEEP_CAPACITY: usize = 2 * BATCH_BYTES;

/// Where the lines go: stderr in production, anything in tests.
type Output = Box<dyn Write + Send>;

struct State {
    buffer: Vec<u8>,
    /// The writer is asleep on `wake` with nothing to write: the next line
    /// wakes it.
    writer_idle: bool,
    /// The writer is waiting for a batch to fill: a full batch wakes it.
    writer_gathering: bool,
    closed: bool,
    /// Lines dropped since the last report line.
    unreported_drops: u64,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    /// Held while a batch is written, so a flush from another thread (exit,
    /// panic) never writes lines ahead of an earlier batch.
    output: Mutex<Output>,
    dropped: AtomicU64,
}

/// The buffered sink; cheap to clone.
#[derive(Clone)]
pub struct LogSink(Arc<Shared>);

impl std::fmt::Debug for LogSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogSink")
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves bytes, never broken invariants.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

static GLOBAL: OnceLock<LogSink> = OnceLock::new();

/// The process's sink, once [`install`] has run.
pub fn global() -> Option<&'static LogSink> {
    GLOBAL.get()
}

/// Starts the process-wide sink on stderr (once; later calls return the
/// first) and makes a panic flush it before the panic message is printed.
pub fn install() -> &'static LogSink {
    GLOBAL.get_or_init(|| {
        let sink = LogSink::start(Box::new(io::stderr()));
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(sink) = GLOBAL.get() {
                sink.flush_for_panic();
            }
            previous(info);
        }));
        sink
    })
}

/// Writes what the global sink holds, if there is one. Call before exiting.
pub fn flush_global() {
    if let Some(sink) = GLOBAL.get() {
        sink.flush();
    }
}

impl LogSink {
    /// A sink writing to `output` from a thread of its own.
    pub fn start(output: Output) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                buffer: Vec::with_capacity(KEEP_CAPACITY),
                writer_idle: false,
                writer_gathering: false,
                closed: false,
                unreported_drops: 0,
            }),
            wake: Condvar::new(),
            output: Mutex::new(output),
            dropped: AtomicU64::new(0),
        });
        let writer = shared.clone();
        // If the thread cannot start, lines stay buffered until a flush.
        let _ = thread::Builder::new()
            .name("mcpship-log".into())
            .spawn(move || {
                run_as_batch();
                writer_loop(&writer);
            });
        Self(shared)
    }

    /// Appends one or more whole lines (each ending in `\n`).
    pub fn append(&self, lines: &[u8]) {
        let mut state = lock(&self.0.state);
        if state.buffer.len() + lines.len() > MAX_BUFFERED || state.closed {
            // After close nobody is left to read a report line.
            if !state.closed {
                state.unreported_drops += 1;
            }
            drop(state);
            self.0.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let before = state.buffer.len();
        state.buffer.extend_from_slice(lines);
        let wake = state.writer_idle
            || (state.writer_gathering
                && before < BATCH_BYTES
                && state.buffer.len() >= BATCH_BYTES);
        if wake {
            state.writer_idle = false;
            state.writer_gathering = false;
            drop(state);
            self.0.wake.notify_one();
        }
    }

    /// Lines dropped so far because the output did not keep up.
    pub fn dropped(&self) -> u64 {
        self.0.dropped.load(Ordering::Relaxed)
    }

    /// Writes everything appended so far before returning.
    pub fn flush(&self) {
        write_batch(&self.0, &mut Vec::new());
    }

    /// [`flush`](Self::flush) from a panic hook: the panic may have struck
    /// while a batch was being written, so it waits for the output a little
    /// and gives up rather than deadlock.
    fn flush_for_panic(&self) {
        for _ in 0..100 {
            if let Ok(output) = self.0.output.try_lock() {
                drop(output);
                self.flush();
                return;
            }
            thread::sleep(Duration::from_millis(1));
        }
    }

    /// Flushes and stops the writer thread; later lines are dropped.
    pub fn close(&self) {
        self.flush();
        lock(&self.0.state).closed = true;
        self.0.wake.notify_one();
    }
}

/// Takes the buffer and writes it, with a line about drops if any.
/// Returns false when there was nothing to write.
fn write_batch(shared: &Shared, spare: &mut Vec<u8>) -> bool {
    let mut output = lock(&shared.output);
    let drops = {
        let mut state = lock(&shared.state);
        if state.buffer.is_empty() && state.unreported_drops == 0 {
            return false;
        }
        std::mem::swap(&mut state.buffer, spare);
        std::mem::take(&mut state.unreported_drops)
    };
    // A failed write (stderr closed) loses the batch; nothing can be told.
    let _ = output.write_all(spare);
    if drops > 0 {
        let _ = writeln!(
            output,
            "{{\"level\":\"WARN\",\"message\":\"{drops} log lines dropped: stderr did not keep up\",\"target\":\"mcpship::logs\"}}"
        );
    }
    let _ = output.flush();
    drop(output);
    spare.clear();
    if spare.capacity() > 4 * KEEP_CAPACITY {
        spare.shrink_to(KEEP_CAPACITY);
    }
    true
}

/// Puts the calling thread under `SCHED_BATCH` at nice 0 (see the module
/// docs). Where that is refused (a seccomp profile, another OS) the thread
/// stays as it was, which only costs latency.
fn run_as_batch() {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::{
            NormalThreadSchedulePolicy, ThreadPriority, ThreadPriorityOsValue,
            ThreadSchedulePolicy, set_thread_priority_and_policy, thread_native_id,
        };
        let _ = set_thread_priority_and_policy(
            thread_native_id(),
            ThreadPriority::Os(ThreadPriorityOsValue::default()),
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Batch),
        );
    }
}

fn writer_loop(shared: &Shared) {
    let mut spare = Vec::with_capacity(KEEP_CAPACITY);
    loop {
        {
            let mut state = lock(&shared.state);
            while state.buffer.is_empty() && state.unreported_drops == 0 && !state.closed {
                state.writer_idle = true;
                state = shared.wake.wait(state).unwrap_or_else(|e| e.into_inner());
            }
            state.writer_idle = false;
            if state.closed && state.buffer.is_empty() {
                return;
            }
            // Let a batch gather, up to its size or the interval.
            let deadline = Instant::now() + FLUSH_INTERVAL;
            while state.buffer.len() < BATCH_BYTES && !state.closed {
                let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                    break;
                };
                state.writer_gathering = true;
                state = shared
                    .wake
                    .wait_timeout(state, left)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            state.writer_gathering = false;
        }
        write_batch(shared, &mut spare);
    }
}

/// `tracing-subscriber`'s writer: each formatted event is one `write_all`.
impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogSink {
    type Writer = SinkWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        SinkWriter(self)
    }
}

/// One event's writes, appended as they come (the formatter writes a whole
/// line in one call).
#[derive(Debug)]
pub struct SinkWriter<'a>(&'a LogSink);

impl Write for SinkWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.append(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An output that records what reached it, and can be made to stall.
    #[derive(Clone, Default)]
    struct Recorder {
        bytes: Arc<Mutex<Vec<u8>>>,
        writes: Arc<AtomicU64>,
        stall: Arc<Mutex<()>>,
    }

    impl Write for Recorder {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let _stalled = self.stall.lock().unwrap();
            self.bytes.lock().unwrap().extend_from_slice(buf);
            self.writes.fetch_add(1, Ordering::Relaxed);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn text(r: &Recorder) -> String {
        String::from_utf8(r.bytes.lock().unwrap().clone()).unwrap()
    }

    fn wait_until(what: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !what() {
            assert!(Instant::now() < deadline, "timed out");
            thread::sleep(Duration::from_millis(2));
        }
    }

    /// The scheduling policy (`stat` field 41) of this process's threads
    /// named `name`.
    #[cfg(target_os = "linux")]
    fn policies_of_threads_named(name: &str) -> Vec<u32> {
        let mut policies = Vec::new();
        for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if comm.trim_end() != name {
                continue;
            }
            // A thread that ended since the listing has no stat left to read.
            let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
                continue;
            };
            // Fields after the parenthesised command name start at field 3.
            let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
            let policy = after_comm.split(' ').nth(41 - 3).unwrap();
            policies.push(policy.parse().unwrap());
        }
        policies
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_writer_thread_runs_as_batch() {
        const SCHED_BATCH: u32 = 3;
        let _sink = LogSink::start(Box::new(Recorder::default()));
        wait_until(|| {
            let policies = policies_of_threads_named("mcpship-log");
            !policies.is_empty() && policies.iter().all(|p| *p == SCHED_BATCH)
        });
    }

    #[test]
    fn an_idle_sink_writes_the_first_line_at_once() {
        let out = Recorder::default();
        let sink = LogSink::start(Box::new(out.clone()));
        // Let the writer go to sleep first.
        thread::sleep(Duration::from_millis(50));
        let started = Instant::now();
        sink.append(b"one\n");
        wait_until(|| text(&out) == "one\n");
        assert!(started.elapsed() < FLUSH_INTERVAL * 10);
    }

    #[test]
    fn lines_under_load_are_batched_in_order() {
        let out = Recorder::default();
        let sink = LogSink::start(Box::new(out.clone()));
        let writers: Vec<_> = (0..4)
            .map(|t| {
                let sink = sink.clone();
                thread::spawn(move || {
                    for i in 0..5000 {
                        sink.append(format!("{t} {i}\n").as_bytes());
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        sink.flush();
        let all = text(&out);
        assert_eq!(all.lines().count(), 20_000);
        for t in 0..4 {
            let mine: Vec<u32> = all
                .lines()
                .filter_map(|l| l.strip_prefix(&format!("{t} ")))
                .map(|n| n.parse().unwrap())
                .collect();
            assert_eq!(mine, (0..5000).collect::<Vec<_>>(), "thread {t} in order");
        }
        let writes = out.writes.load(Ordering::Relaxed);
        assert!(writes < 2_000, "{writes} writes for 20000 lines");
        assert_eq!(sink.dropped(), 0);
    }

    #[test]
    fn a_stalled_output_drops_and_counts_then_reports() {
        let out = Recorder::default();
        let sink = LogSink::start(Box::new(out.clone()));
        let line = vec![b'x'; 1023];
        let line = [line.as_slice(), b"\n"].concat();
        {
            let _stall = out.stall.lock().unwrap();
            // The writer takes one batch and blocks on it; the rest fills up.
            sink.append(&line);
            thread::sleep(Duration::from_millis(50));
            for _ in 0..(MAX_BUFFERED / line.len() + 100) {
                sink.append(&line);
            }
            assert!(sink.dropped() >= 100, "{}", sink.dropped());
        }
        sink.flush();
        let all = text(&out);
        let report = all.lines().last().unwrap();
        let v: serde_json::Value = serde_json::from_str(report).unwrap();
        assert_eq!(v["level"], "WARN");
        assert!(
            v["message"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{} log lines dropped", sink.dropped())),
            "{report}"
        );
    }

    #[test]
    fn flush_writes_everything_and_close_stops_taking_lines() {
        let out = Recorder::default();
        let sink = LogSink::start(Box::new(out.clone()));
        for i in 0..100 {
            sink.append(format!("{i}\n").as_bytes());
        }
        sink.close();
        assert_eq!(text(&out).lines().count(), 100);
        sink.append(b"late\n");
        sink.flush();
        assert!(!text(&out).contains("late"));
    }
}
