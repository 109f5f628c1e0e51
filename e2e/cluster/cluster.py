#!/usr/bin/env python3
"""mcpship replicas behind a real load balancer (HAProxy), driven through
deploys and failures by modern and legacy MCP clients. Run by scripts/e2e-cluster,
which provides HAProxy, Redis, the load generator and the Python SDK.

Scenarios (each fails on any lost call):

  a  steady load: >= 10,000 tool calls each from modern and from legacy clients
     (legacy clients keep one session while requests round-robin over the
     replicas); every replica serves a share
  b  rolling replacement, the ECS way, of every replica under load:
     deregister (drain), wait, SIGTERM, start a new task, register it;
     legacy sessions, the Python SDK's session and held GET streams carry on
  c  blue/green: a green set comes up, the listener switches to it under load,
     the blue set drains and exits 0
  d  kill -9 of one replica under load: only calls in flight on it may fail
  e  a load balancer idle timeout (2 s) far shorter than a stream's silence:
     SSE keep-alive comments keep a legacy GET stream and a slow call's reply
     stream open; the control run without them shows both are cut, and the
     cut reply is recovered with Last-Event-ID
  f  Redis stopped and restarted under load: clear errors while it is down,
     no crash or hang, full recovery
  m  memory: a flood of legacy initialize calls at one replica levels off at
     the session cap (RSS before, after each half, peak); idle sessions are
     reclaimed and their memory reused

Everything listens on and connects to 127.0.0.1 only. The results table goes to
stdout and, unless --doc '' is given, between the cluster-results markers of
docs/operations.md. Exit status 1 if any scenario failed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit, urlunsplit

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
LEGACY = "2025-11-25"
BEGIN = "<!-- cluster-results:begin -->"
END = "<!-- cluster-results:end -->"

# Timing knobs: short, so the whole run takes a few minutes.
DRAIN_TIMEOUT_S = 10  # MCPSHIP_DRAIN_TIMEOUT of every replica
DEREGISTRATION_DELAY_S = 1.5  # between `state drain` and SIGTERM
LB_IDLE = "10s"  # HAProxy client/server idle timeout, scenarios a-d
E_IDLE = "2s"  # scenario e's idle timeout
E_SILENCE_S = 8.0  # how long scenario e's stream stays silent


def log(message: str) -> None:
    print(f"cluster: {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check: Callable[[], bool], timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(step)
    return check()


def http_get(port: int, path: str, timeout: float = 2.0) -> int | None:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
            first = s.recv(64).split(b"\r\n", 1)[0].split()
            return int(first[1]) if len(first) > 1 else None
    except OSError:
        return None


def rss_kib(pid: int, key: str = "VmRSS") -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


# --------------------------------------------------------------------------- results


@dataclass
class Row:
    scenario: str
    client: str
    calls: int | str = "-"
    errors: int | str = "-"
    retries: int | str = "-"
    p50: float | None = None
    p99: float | None = None
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems

    def check(self, ok: bool, problem: str) -> bool:
        if not ok:
            self.problems.append(problem)
        return ok


# --------------------------------------------------------------------------- processes


class Harness:
    """Shared settings and every process this run started (stopped at exit)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.bin = args.bin
        self.loadgen = args.loadgen
        self.work = Path(tempfile.mkdtemp(prefix="mcpship-cluster."))
        self.procs: list[subprocess.Popen] = []
        self.rows: list[Row] = []
        # Server part only: the database number is the harness's choice.
        u = urlsplit(args.redis_url)
        self.redis_url = urlunsplit((u.scheme, u.netloc, "", "", ""))
        self.redis_db = args.redis_db
        self.prefix = f"mcpship-e2e-{os.getpid()}-{int(time.time())}"
        self.help = subprocess.run([self.bin, "serve", "--help"], capture_output=True, text=True).stdout
        self.counter = 0

    def has_setting(self, env: str) -> bool:
        return f"{env}=" in self.help

    def spawn(self, argv: list[str], log_path: Path, env: dict[str, str] | None = None, **kw) -> subprocess.Popen:
        with open(log_path, "ab") as out:  # the child keeps its own copy
            proc = subprocess.Popen(argv, stdout=kw.pop("stdout", out), stderr=out, env=env, **kw)
        self.procs.append(proc)
        return proc

    def cleanup(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
        for proc in self.procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self.delete_redis_keys()

    def delete_redis_keys(self) -> None:
        """Removes this run's keys from the shared Redis."""
        if not shutil.which("redis-cli"):
            return
        url = f"{self.redis_url}/{self.redis_db}"
        try:
            keys = subprocess.run(
                ["redis-cli", "-u", url, "--scan", "--pattern", self.prefix + "*"],
                capture_output=True, text=True, timeout=30,
            ).stdout.split()
            for i in range(0, len(keys), 500):
                subprocess.run(["redis-cli", "-u", url, "del", *keys[i:i + 500]], capture_output=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            pass


class Replica:
    """One `mcpship serve` task: its own port, SQLite file and log."""

    def __init__(self, h: Harness, name: str, allowed_hosts: str, state: dict[str, str] | None,
                 sse_keep_alive: str = "1s", args: tuple[str, ...] = ()) -> None:
        h.counter += 1
        self.h = h
        self.name = name
        self.dir = h.work / f"{h.counter:02d}-{name}"
        self.dir.mkdir()
        self.port = free_port()
        self.log = self.dir / "server.log"
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith("MCPSHIP_") and k not in ("DATABASE_URL", "LOG_LEVEL", "LOG_FORMAT", "PORT", "HOST")}
        self.env.update({
            "DATABASE_URL": f"sqlite://{self.dir}/docs.db",
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "info",
            "MCPSHIP_ALLOWED_HOSTS": allowed_hosts,
            "MCPSHIP_DRAIN_TIMEOUT": f"{DRAIN_TIMEOUT_S}s",
            "MCPSHIP_SSE_KEEP_ALIVE": sse_keep_alive,
        })
        self.env.update(state or {})
        self.args = list(args)
        self.proc: subprocess.Popen | None = None
        self.term_at: float | None = None

    def start(self) -> "Replica":
        self.proc = self.h.spawn([self.h.bin, "serve", "--host", "127.0.0.1", "--port", str(self.port), *self.args],
                                 self.log, env=self.env, cwd=self.dir)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout: float = 90) -> None:
        if not wait_until(lambda: not self.alive() or http_get(self.port, "/ready") == 200, timeout):
            raise RuntimeError(f"replica {self.name} not ready after {timeout}s; log {self.log}")
        if not self.alive():
            raise RuntimeError(f"replica {self.name} exited at start: {self.tail()}")

    def terminate(self) -> None:
        self.term_at = time.monotonic()
        os.kill(self.pid, signal.SIGTERM)

    def wait_exit(self, timeout: float) -> tuple[int | None, float]:
        assert self.proc is not None and self.term_at is not None
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            code = None
        return code, time.monotonic() - self.term_at

    def kill9(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        assert self.proc is not None
        self.proc.wait(timeout=10)

    def log_lines(self) -> list[str]:
        try:
            return self.log.read_text(errors="replace").splitlines()
        except OSError:
            return []

    def count(self, needle: str) -> int:
        return sum(needle in line for line in self.log_lines())

    def tail(self, n: int = 15) -> str:
        return "\n".join(self.log_lines()[-n:])


def state_env(h: Harness, url: str | None = None) -> dict[str, str]:
    """The shared-state settings of every cluster replica."""
    return {
        "MCPSHIP_STATE": "redis",
        "MCPSHIP_REDIS_URL": url or f"{h.redis_url}/{h.redis_db}",
        "MCPSHIP_REDIS_PREFIX": h.prefix,
    }


class HAProxy:
    """An HAProxy process from haproxy.cfg.in, controlled through its admin socket."""

    def __init__(self, h: Harness, name: str, idle: str, blue: list[tuple[str, Replica]],
                 port: int | None = None) -> None:
        self.h = h
        self.name = name
        self.port = port or free_port()
        self.dir = h.work / f"lb-{name}"
        self.dir.mkdir()
        self.socket = self.dir / "admin.sock"
        self.map = self.dir / "active.map"
        self.map.write_text("active be_blue\n")
        self.log = self.dir / "haproxy.log"
        servers = "\n".join(f"    server {n} 127.0.0.1:{r.port}" for n, r in blue) or "    # none yet"
        config = (HERE / "haproxy.cfg.in").read_text()
        for key, value in {
            "@SOCKET@": str(self.socket), "@MAP@": str(self.map), "@IDLE@": idle,
            "@PORT@": str(self.port), "@BLUE_SERVERS@": servers, "@GREEN_SERVERS@": "    # added at run time",
        }.items():
            config = config.replace(key, value)
        self.config = self.dir / "haproxy.cfg"
        self.config.write_text(config)
        check = subprocess.run(["haproxy", "-c", "-f", str(self.config)], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"haproxy -c refused {self.config}:\n{check.stdout}{check.stderr}")
        self.proc = h.spawn(["haproxy", "-db", "-f", str(self.config)], self.log)
        up = lambda: self.proc.poll() is not None or (self.socket.exists() and http_get(self.port, "/health") is not None)
        if not wait_until(up, 20) or self.proc.poll() is not None:
            raise RuntimeError(f"haproxy did not start: {self.log_text()[-600:]}")
        for n, _ in blue:
            self.wait_status("be_blue", n, "UP")

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def cmd(self, line: str) -> str:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(str(self.socket))
            s.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode(errors="replace")

    def stats(self) -> dict[tuple[str, str], dict[str, str]]:
        text = self.cmd("show stat")
        lines = [l for l in text.splitlines() if l.strip()]
        header = lines[0].lstrip("# ").split(",")
        out = {}
        for line in lines[1:]:
            row = dict(zip(header, line.split(",")))
            out[(row["pxname"], row["svname"])] = row
        return out

    def status(self, backend: str, server: str) -> str:
        return self.stats().get((backend, server), {}).get("status", "absent")

    def wait_status(self, backend: str, server: str, want: str, timeout: float = 20) -> None:
        if not wait_until(lambda: self.status(backend, server).startswith(want), timeout, 0.1):
            raise RuntimeError(f"{backend}/{server} is {self.status(backend, server)}, not {want}, after {timeout}s")

    def responses(self, backend: str) -> dict[str, int]:
        """2xx responses per server of a backend, as HAProxy counted them."""
        return {sv: int(row.get("hrsp_2xx") or 0) for (px, sv), row in self.stats().items()
                if px == backend and sv not in ("FRONTEND", "BACKEND")}

    def retries(self) -> tuple[int, int]:
        """Retries and redispatches HAProxy made, over all backends."""
        wretr = wredis = 0
        for (px, sv), row in self.stats().items():
            if sv == "BACKEND":
                wretr += int(row.get("wretr") or 0)
                wredis += int(row.get("wredis") or 0)
        return wretr, wredis

    def set_state(self, backend: str, server: str, state: str) -> None:
        self.expect_ok(self.cmd(f"set server {backend}/{server} state {state}"), "set state")

    def add_server(self, backend: str, server: str, replica: Replica) -> None:
        """Registers a new task, health-checked like the ones in the file."""
        out = self.cmd(f"add server {backend}/{server} 127.0.0.1:{replica.port} "
                       "check inter 500ms fastinter 250ms downinter 500ms fall 2 rise 1")
        if "New server registered" not in out:
            raise RuntimeError(f"add server {backend}/{server}: {out.strip()}")
        self.expect_ok(self.cmd(f"enable health {backend}/{server}"), "enable health")
        self.expect_ok(self.cmd(f"enable server {backend}/{server}"), "enable server")
        self.wait_status(backend, server, "UP")

    def del_server(self, backend: str, server: str) -> bool:
        """Removes a stopped task (HAProxy refuses while it holds connections)."""
        self.set_state(backend, server, "maint")
        return wait_until(lambda: "Server deleted" in self.cmd(f"del server {backend}/{server}"), 10, 0.25)

    def switch(self, backend: str) -> None:
        self.expect_ok(self.cmd(f"set map {self.map} active {backend}"), "set map")

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    @staticmethod
    def expect_ok(out: str, what: str) -> None:
        if out.strip():
            raise RuntimeError(f"haproxy {what}: {out.strip()}")


class Load:
    """One run of the load generator (accounting mode), in the background."""

    def __init__(self, h: Harness, label: str, host: str, scenario: str, clients: int, *,
                 sessions: bool = False, retry: bool = False, max_calls: int | None = None,
                 duration: float = 600, call_timeout: float = 30) -> None:
        self.label = label
        argv = [h.loadgen, "--addr", host, "--scenario", scenario, "--json",
                "--duration", str(duration), "--call-timeout", str(call_timeout)]
        argv += ["--legacy-sessions", str(clients)] if sessions else ["--connections", str(clients)]
        if retry:
            argv.append("--retry-503")
        if max_calls:
            argv += ["--max-calls", str(max_calls)]
        self.clients = clients
        self.err = h.work / f"loadgen-{label}.log"
        # A file, not a pipe: nobody reads while it runs, and a full pipe would block it.
        self.out = h.work / f"loadgen-{label}.json"
        self.started = time.monotonic()
        with open(self.out, "wb") as out:
            self.proc = h.spawn(argv, self.err, stdout=out)
        self.result: dict | None = None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = 600) -> dict:
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        try:
            self.result = json.loads(self.out.read_text().strip().splitlines()[-1])
        except (OSError, ValueError, IndexError):
            err = self.err.read_text(errors="replace")[-2000:] if self.err.exists() else ""
            raise RuntimeError(f"load generator {self.label} gave no result (exit {self.proc.returncode}):\n{err}")
        return self.result


def load_row(scenario: str, client: str, r: dict, *, min_calls: int = 1, allow_failures: int = 0) -> Row:
    """A row for a load generator result, with the checks every run shares."""
    failed = r["failed"]
    setup = sum(r["setup_failures"].values())
    row = Row(scenario, client, calls=r["attempted"], errors=failed + setup, retries=r["retries"],
              p50=r["p50_ms"], p99=r["p99_ms"])
    if r["failures"]:
        row.notes.append("failures " + ", ".join(f"{k}: {v}" for k, v in r["failures"].items()))
    if r["setup_failures"]:
        row.notes.append("handshake failures " + ", ".join(f"{k}: {v}" for k, v in r["setup_failures"].items()))
    if r["reinitialized"]:
        row.notes.append(f"{r['reinitialized']} sessions lost (404) and re-initialized")
    if r["retries"]:
        row.notes.append(f"{r['retried_ok']} calls succeeded after a 503 + Retry-After retry")
    row.check(r["attempted"] >= min_calls, f"only {r['attempted']} calls (wanted >= {min_calls})")
    row.check(failed + setup <= allow_failures,
              f"{failed} calls failed, {setup} handshakes failed" + (f" (allowed {allow_failures})" if allow_failures else ""))
    if r["samples"]:
        row.notes.append("e.g. " + r["samples"][0][:160].replace("|", "/").replace("\n", " "))
    return row


# --------------------------------------------------------------------------- legacy GET streams


class LegacyStream(threading.Thread):
    """A legacy (2025-11-25) client with its standalone GET SSE stream held open.

    It initializes a session through the load balancer, opens GET /mcp and
    reads it. When the stream ends it reconnects (with Last-Event-ID when it
    saw an event id) unless `reconnect` is off, and checks the session still
    answers a tool call. A stream counts as cut when it ends while the run is
    still on; a reconnect fails when it is not 200 text/event-stream, or when
    the stream it opens ends at once (a resume the server could not serve).
    """

    def __init__(self, port: int, label: str, reconnect: bool = True, probe_tool: str | None = "search_documents") -> None:
        super().__init__(daemon=True, name=f"stream-{label}")
        self.port = port
        self.label = label
        self.reconnect = reconnect
        self.probe_tool = probe_tool
        self.stop_event = threading.Event()
        self.session: str | None = None
        self.last_event_id: str | None = None
        self.connections: list[dict] = []  # one per GET
        self.call_results: list[tuple[bool, str]] = []
        self.error: str | None = None
        self.opened_at = time.monotonic()

    # A tiny HTTP/1.1 client: blocking sockets, chunked decoding, nothing else.
    def _request(self, method: str, headers: dict[str, str], body: bytes = b"") -> tuple[socket.socket, int, dict[str, str], bytes]:
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        head = f"{method} /mcp HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
        for k, v in headers.items():
            head += f"{k}: {v}\r\n"
        if body:
            head += f"Content-Length: {len(body)}\r\n"
        s.sendall(head.encode() + b"\r\n" + body)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                raise ConnectionError("closed before the response head")
            buf += chunk
        head_bytes, rest = buf.split(b"\r\n\r\n", 1)
        lines = head_bytes.decode(errors="replace").split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        return s, status, hdrs, rest

    def post(self, payload: dict, session: str | None) -> tuple[int, dict[str, str], str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
                   "Connection": "close"}
        if session:
            headers["Mcp-Session-Id"] = session
            headers["MCP-Protocol-Version"] = LEGACY
        s, status, hdrs, rest = self._request("POST", headers, json.dumps(payload).encode())
        with s:
            s.settimeout(15)
            data = rest
            while chunk := s.recv(65536):
                data += chunk
        if hdrs.get("transfer-encoding", "").lower() == "chunked":
            data = dechunk_all(data)
        return status, hdrs, data.decode(errors="replace")

    def initialize(self) -> None:
        status, hdrs, body = self.post({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "cluster-stream", "version": "1"}}}, None)
        if status != 200 or "mcp-session-id" not in hdrs:
            raise RuntimeError(f"initialize: {status} {body[:200]}")
        self.session = hdrs["mcp-session-id"]
        status, _, body = self.post({"jsonrpc": "2.0", "method": "notifications/initialized"}, self.session)
        if status != 202:
            raise RuntimeError(f"notifications/initialized: {status} {body[:200]}")

    def call(self) -> tuple[bool, str]:
        """A request in the session (the probe tool, else tools/list): does the session still work?"""
        if self.probe_tool:
            payload = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
                "name": self.probe_tool, "arguments": {"query": "keep-alive", "limit": 1}}}
        else:
            payload = {"jsonrpc": "2.0", "id": 7, "method": "tools/list"}
        try:
            status, _, body = self.post(payload, self.session)
        except OSError as e:
            return False, f"call: {e}"
        ok = status == 200 and '"result"' in body and '"isError":true' not in body
        return ok, f"call: {status} {body[:160]!r}"

    def stop(self) -> None:
        self.stop_event.set()

    def run(self) -> None:
        try:
            self.initialize()
        except (OSError, RuntimeError) as e:
            self.error = f"could not start a session: {e}"
            return
        while not self.stop_event.is_set():
            record = self._hold()
            self.connections.append(record)
            if self.stop_event.is_set() or not self.reconnect:
                break
            self.call_results.append(self.call())
            if record["status"] != 200:
                time.sleep(0.3)

    def _hold(self) -> dict:
        headers = {"Accept": "text/event-stream", "Mcp-Session-Id": self.session or "", "MCP-Protocol-Version": LEGACY}
        if self.last_event_id is not None:
            headers["Last-Event-ID"] = self.last_event_id
        record = {"t": time.monotonic(), "last_event_id": self.last_event_id, "status": None,
                  "comments": 0, "events": 0, "ended": None, "lasted_s": 0.0}
        try:
            s, status, hdrs, rest = self._request("GET", headers)
        except OSError as e:
            record.update(status=0, ended=f"connect: {e}")
            return record
        record["status"] = status
        if status != 200 or not hdrs.get("content-type", "").startswith("text/event-stream"):
            with s:
                record["ended"] = f"status {status} {hdrs.get('content-type', '')}"
            return record
        self._read(s, hdrs, rest, record)
        record["lasted_s"] = round(time.monotonic() - record["t"], 2)
        return record

    def _read(self, s: socket.socket, hdrs: dict[str, str], rest: bytes, record: dict,
              done: Callable[[str], bool] = lambda data: False) -> None:
        """Reads an SSE response into `record` (comments, events, ids, `ended`)
        until it ends, the run stops, or `done(data)` is true for an event's data."""
        decoder = Dechunker() if hdrs.get("transfer-encoding", "").lower() == "chunked" else None
        text = b""
        s.settimeout(0.2)
        with s:
            pending = rest
            while True:
                if pending:
                    text += decoder.feed(pending) if decoder else pending
                    pending = b""
                    while b"\n" in text:
                        line, text = text.split(b"\n", 1)
                        line = line.rstrip(b"\r")
                        if line.startswith(b":"):
                            record["comments"] += 1
                        elif line.startswith(b"id:"):
                            self.last_event_id = line[3:].strip().decode(errors="replace")
                            record["events"] += 1
                        elif line.startswith(b"retry:"):
                            record["retry_ms"] = int(line[6:].strip() or 0)
                        elif line.startswith(b"data:") and done(line[5:].strip().decode(errors="replace")):
                            record["ended"] = "answered"
                            return
                    if decoder and decoder.done:
                        record["ended"] = "end of stream"
                        return
                if self.stop_event.is_set():
                    record["ended"] = "stopped"
                    return
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    continue
                except OSError as e:
                    record["ended"] = f"reset: {e}"
                    return
                if not chunk:
                    record["ended"] = "connection closed"
                    return
                pending = chunk

    def summary(self) -> dict:
        """Counts for a row: (re)connections, failed ones, calls after reconnects."""
        cut = [c for c in self.connections if c["status"] == 200 and c["ended"] != "stopped"]
        bad = [c for c in self.connections if c["status"] != 200]
        # A stream that ends within 0.5 s of opening delivered nothing usable.
        empty = [c for c in self.connections if c["status"] == 200 and c["ended"] != "stopped" and c["lasted_s"] < 0.5]
        return {
            "gets": len(self.connections), "cut": len(cut), "refused": len(bad), "empty": len(empty),
            "calls_ok": sum(ok for ok, _ in self.call_results),
            "calls_failed": [d for ok, d in self.call_results if not ok],
            "comments": sum(c["comments"] for c in self.connections),
            "resumed_with_id": sum(c["last_event_id"] is not None for c in self.connections[1:]),
            "first_problem": next((f"GET -> {c['status']} ({c['ended']})" for c in bad + empty), None),
        }


class Dechunker:
    """Incremental HTTP/1.1 chunked transfer decoding."""

    def __init__(self) -> None:
        self.buf = b""
        self.data_left = 0  # bytes of the current chunk still to come
        self.crlf_left = 0  # bytes of the CRLF after it
        self.done = False

    def feed(self, data: bytes) -> bytes:
        self.buf += data
        out = b""
        while self.buf and not self.done:
            if self.data_left:
                take = self.buf[: self.data_left]
                self.buf = self.buf[len(take):]
                self.data_left -= len(take)
                out += take
            elif self.crlf_left:
                skip = min(self.crlf_left, len(self.buf))
                self.buf = self.buf[skip:]
                self.crlf_left -= skip
            elif b"\r\n" in self.buf:
                size_line, self.buf = self.buf.split(b"\r\n", 1)
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.done = True
                else:
                    self.data_left, self.crlf_left = size, 2
            else:
                break
        return out


def dechunk_all(data: bytes) -> bytes:
    d = Dechunker()
    return d.feed(data)


class SlowCall(LegacyStream):
    """A legacy client's slow tool call answered over SSE (the conformance
    fixtures' `slow_compute`): the reply stream is silent until the tool ends.

    If the stream is cut before the answer, the client resumes it as the
    transport says: GET with `Last-Event-ID` (the id of the last event it saw,
    the reply's priming event at least), again after the `retry` hint while the
    answer is not there yet, until `resume_for` seconds have passed.
    """

    def __init__(self, port: int, label: str, seconds: float, resume_for: float) -> None:
        super().__init__(port, label, reconnect=False, probe_tool=None)
        self.seconds = seconds
        self.resume_for = resume_for
        self.record: dict = {}
        self.resumes: list[dict] = []
        self.answered_by: str | None = None

    def run(self) -> None:
        try:
            self.initialize()
        except (OSError, RuntimeError) as e:
            self.error = f"could not start a session: {e}"
            return
        body = json.dumps({"jsonrpc": "2.0", "id": 42, "method": "tools/call", "params": {
            "name": "slow_compute", "arguments": {"seconds": self.seconds, "label": "cluster"}}}).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
                   "Mcp-Session-Id": self.session or "", "MCP-Protocol-Version": LEGACY}
        record = {"t": time.monotonic(), "status": None, "comments": 0, "events": 0, "ended": None}
        answer = lambda data: '"id":42' in data and '"result"' in data
        try:
            s, status, hdrs, rest = self._request("POST", headers, body)
        except OSError as e:
            self.error = f"POST: {e}"
            return
        record["status"] = status
        if status == 200 and hdrs.get("content-type", "").startswith("text/event-stream"):
            self._read(s, hdrs, rest, record, answer)
        else:
            s.close()
            record["ended"] = f"status {status}"
        record["lasted_s"] = round(time.monotonic() - record["t"], 2)
        self.record = record
        if record["ended"] == "answered":
            self.answered_by = "the POST's own stream"
            return
        deadline = time.monotonic() + self.resume_for
        while time.monotonic() < deadline and not self.stop_event.is_set() and self.last_event_id:
            time.sleep(record.get("retry_ms", 3000) / 1000)
            get = {"t": time.monotonic(), "last_event_id": self.last_event_id, "status": None,
                   "comments": 0, "events": 0, "ended": None}
            try:
                s, status, hdrs, rest = self._request("GET", {
                    "Accept": "text/event-stream", "Mcp-Session-Id": self.session or "",
                    "MCP-Protocol-Version": LEGACY, "Last-Event-ID": self.last_event_id})
            except OSError as e:
                get.update(status=0, ended=f"connect: {e}")
                self.resumes.append(get)
                continue
            get["status"] = status
            if status == 200:
                self._read(s, hdrs, rest, get, answer)
            else:
                s.close()
                get["ended"] = f"status {status}"
            get["lasted_s"] = round(time.monotonic() - get["t"], 2)
            self.resumes.append(get)
            if get["ended"] == "answered":
                self.answered_by = f"GET with Last-Event-ID (attempt {len(self.resumes)})"
                return


def stream_row(scenario: str, streams: list[LegacyStream], *, expect_cut: bool) -> Row:
    """A row for held GET streams: reconnects after each cut must work."""
    row = Row(scenario, "legacy GET streams")
    gets = refused = empty = cut = 0
    for s in streams:
        if s.error:
            row.problems.append(f"{s.label}: {s.error}")
            continue
        sm = s.summary()
        gets += sm["gets"]
        refused += sm["refused"]
        empty += sm["empty"]
        cut += sm["cut"]
        if sm["calls_failed"]:
            row.problems.append(f"{s.label}: session call after a reconnect failed: {sm['calls_failed'][0]}")
        if sm["first_problem"]:
            row.notes.append(f"{s.label}: {sm['first_problem']}")
        row.notes.append(f"{s.label}: {sm['gets']} GETs, {sm['cut']} cut by deploys, "
                         f"{sm['resumed_with_id']} resumed with Last-Event-ID, {sm['comments']} keep-alive comments")
    row.calls = gets
    row.errors = refused + empty
    row.check(refused == 0, f"{refused} stream reconnects refused")
    row.check(empty == 0, f"{empty} reconnects got a stream that ended at once (no resume)")
    if expect_cut:
        row.check(cut > 0, "no stream was cut, so reconnecting was not exercised")
    return row


# --------------------------------------------------------------------------- the Python SDK


class SdkSession:
    """e2e/cluster/sdk_session.py: one legacy session of the official Python SDK."""

    def __init__(self, h: Harness, url: str, label: str) -> None:
        self.stop_file = h.work / f"sdk-{label}.stop"
        self.out = h.work / f"sdk-{label}.json"
        self.err = h.work / f"sdk-{label}.log"
        self.proc = h.spawn([h.args.sdk_python, str(HERE / "sdk_session.py"), "--url", url,
                             "--stop-file", str(self.stop_file), "--out", str(self.out)], self.err)

    def stop(self) -> dict:
        self.stop_file.touch()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        try:
            return json.loads(self.out.read_text())
        except (OSError, ValueError):
            return {"error": "no result; " + self.err.read_text(errors="replace")[-600:].replace("\n", " ")}


def sdk_row(scenario: str, r: dict) -> Row:
    row = Row(scenario, "Python SDK mcp 2.3.0 (legacy session)")
    if "error" in r and "calls_ok" not in r:
        row.problems.append(r["error"])
        return row
    row.calls = r["calls_ok"] + r["calls_failed"]
    row.errors = r["calls_failed"]
    row.p50, row.p99 = r.get("p50_ms"), r.get("p99_ms")
    row.notes.append(f"sessions used: {r['sessions']}; HTTP statuses {r['statuses']}")
    if r.get("errors"):
        row.notes.append("e.g. " + r["errors"][0][:160])
    if r.get("error"):
        row.problems.append(r["error"][:200])
    row.check(r["calls_ok"] > 0, "no call succeeded")
    row.check(r["calls_failed"] == 0, f"{r['calls_failed']} calls failed")
    row.check(r["sessions"] == 1, f"{r['sessions']} session ids used (the session did not survive)")
    return row


# --------------------------------------------------------------------------- scenarios


class Cluster:
    """Three replicas behind one HAProxy, shared by scenarios a-d. A replica's
    name is also its HAProxy server name."""

    def __init__(self, h: Harness) -> None:
        self.h = h
        # Chosen first: every replica accepts only the load balancer's name in
        # Host, so a request that did not come through it would get 403.
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.replicas: dict[str, Replica] = {}
        self.backend = "be_blue"
        self.lb: HAProxy | None = None
        self.seq = 0

    def new_replica(self, tag: str) -> Replica:
        self.seq += 1
        return Replica(self.h, f"{tag}{self.seq}", f"127.0.0.1:{self.port},localhost:{self.port}", state_env(self.h))

    def start(self) -> None:
        first = [self.new_replica("b") for _ in range(3)]
        for r in first:
            r.start()
        for r in first:
            r.wait_ready()
        self.replicas = {r.name: r for r in first}
        self.lb = HAProxy(self.h, "main", LB_IDLE, list(self.replicas.items()), port=self.port)

    def stop(self) -> None:
        """Ends the cluster: its replicas drain, HAProxy stops; nothing is checked."""
        for r in self.replicas.values():
            if r.alive():
                r.terminate()
        for r in self.replicas.values():
            if r.term_at is not None:
                r.wait_exit(DRAIN_TIMEOUT_S + 5)
        if self.lb and self.lb.proc.poll() is None:
            self.lb.proc.terminate()
            self.lb.proc.wait(timeout=10)


def scenario_a(h: Harness, c: Cluster) -> None:
    assert c.lb is not None
    for label, scenario, sessions in (("modern (2026-07-28)", "modern-mix", False),
                                      ("legacy sessions (2025-11-25)", "legacy-mix", True)):
        before = c.lb.responses(c.backend)
        logs_before = {n: r.count('"tool.succeeded"') for n, r in c.replicas.items()}
        log(f"a: {h.args.calls} {label} calls")
        # Bounded in time too: a run whose sessions keep failing would never get there.
        load = Load(h, f"a-{scenario}", c.host, scenario, 24, sessions=sessions, max_calls=h.args.calls,
                    duration=h.args.a_seconds)
        r = load.wait()
        row = load_row("a. steady load, 3 replicas", label, r, min_calls=h.args.calls)
        row.check(r["succeeded"] >= h.args.calls, f"{r['succeeded']} calls succeeded (wanted {h.args.calls})")
        row.check(r["reinitialized"] == 0, f"{r['reinitialized']} sessions were lost")
        after = c.lb.responses(c.backend)
        served = {n: after.get(n, 0) - before.get(n, 0) for n in c.replicas}
        total = sum(served.values()) or 1
        logs = {n: r_.count('"tool.succeeded"') - logs_before[n] for n, r_ in c.replicas.items()}
        row.notes.insert(0, "share per replica (HAProxy 2xx): " + ", ".join(f"{n} {100 * v / total:.0f}%" for n, v in served.items())
                         + "; tool.succeeded in replica logs: " + ", ".join(f"{n} {v}" for n, v in logs.items()))
        for n, v in served.items():
            row.check(v / total >= 0.15, f"replica {n} served only {100 * v / total:.0f}% of requests")
        h.rows.append(row)


def start_clients(h: Harness, c: Cluster, tag: str, streams: int, sdk: bool) -> tuple[list[Load], list[LegacyStream], SdkSession | None]:
    loads = [
        Load(h, f"{tag}-modern", c.host, "modern-mix", 12, retry=True),
        Load(h, f"{tag}-legacy", c.host, "legacy-mix", 12, sessions=True, retry=True),
    ]
    held = [LegacyStream(c.port, f"stream{i + 1}") for i in range(streams)]
    for s in held:
        s.start()
    session = SdkSession(h, f"http://{c.host}/mcp", tag) if sdk else None
    return loads, held, session


def finish_clients(h: Harness, scenario: str, loads: list[Load], held: list[LegacyStream],
                   session: SdkSession | None, *, expect_cut: bool) -> None:
    for load in loads:
        load.stop()
    for s in held:
        s.stop()
    sdk_result = session.stop() if session else None
    for load, label in zip(loads, ("modern (2026-07-28), retry on 503", "legacy sessions, retry on 503")):
        r = load.wait()
        row = load_row(scenario, label, r)
        row.check(r["reinitialized"] == 0, f"{r['reinitialized']} sessions were lost (404)")
        h.rows.append(row)
    if sdk_result is not None:
        h.rows.append(sdk_row(scenario, sdk_result))
    for s in held:
        s.join(timeout=15)
    if held:
        h.rows.append(stream_row(scenario, held, expect_cut=expect_cut))


def exit_row(scenario: str, exits: list[tuple[str, int | None, float]], lb: HAProxy, wretr: tuple[int, int]) -> Row:
    row = Row(scenario, "replicas replaced (SIGTERM)")
    row.calls = len(exits)
    row.notes.append("exit code / seconds after SIGTERM: " + ", ".join(f"{n} {c} / {s:.1f}" for n, c, s in exits))
    row.notes.append(f"HAProxy retries {wretr[0]}, redispatches {wretr[1]}")
    bad = [n for n, code, secs in exits if code != 0 or secs >= DRAIN_TIMEOUT_S]
    row.errors = len(bad)
    row.check(not bad, f"{', '.join(bad)} did not exit 0 within MCPSHIP_DRAIN_TIMEOUT={DRAIN_TIMEOUT_S}s")
    return row


def scenario_b(h: Harness, c: Cluster) -> None:
    assert c.lb is not None
    log("b: rolling replacement of every replica under load")
    loads, held, session = start_clients(h, c, "b", streams=2, sdk=bool(h.args.sdk_python))
    time.sleep(2)
    r0 = c.lb.retries()
    exits = []
    for name in list(c.replicas):
        old = c.replicas[name]
        c.lb.set_state(c.backend, name, "drain")  # deregistration: no new requests
        time.sleep(DEREGISTRATION_DELAY_S)
        old.terminate()
        code, secs = old.wait_exit(DRAIN_TIMEOUT_S + 5)
        exits.append((name, code, secs))
        new = c.new_replica("b")
        new.start()
        deleted = c.lb.del_server(c.backend, name)
        new.wait_ready()
        c.lb.add_server(c.backend, new.name, new)
        del c.replicas[name]
        c.replicas[new.name] = new
        log(f"b: {name} -> {new.name} (old exit {code} after {secs:.1f}s; removed from HAProxy: {deleted})")
        time.sleep(1)
    time.sleep(2)
    r1 = c.lb.retries()
    finish_clients(h, "b. rolling replacement", loads, held, session, expect_cut=True)
    h.rows.append(exit_row("b. rolling replacement", exits, c.lb, (r1[0] - r0[0], r1[1] - r0[1])))


def scenario_c(h: Harness, c: Cluster) -> None:
    assert c.lb is not None
    log("c: blue/green switch under load")
    loads, held, session = start_clients(h, c, "c", streams=1, sdk=False)
    time.sleep(2)
    r0 = c.lb.retries()
    green = [c.new_replica("g") for _ in range(3)]
    for g in green:
        g.start()
    for g in green:
        g.wait_ready()
    for g in green:
        c.lb.add_server("be_green", g.name, g)
    time.sleep(1)
    c.lb.switch("be_green")
    switched = c.lb.responses("be_blue")
    time.sleep(2)  # bake time: the old set is still up, without traffic
    blue_after = sum(c.lb.responses("be_blue").values()) - sum(switched.values())
    for r in c.replicas.values():
        r.terminate()
    exits = [(n, *r.wait_exit(DRAIN_TIMEOUT_S + 5)) for n, r in c.replicas.items()]
    time.sleep(2)
    r1 = c.lb.retries()
    green_served = c.lb.responses("be_green")
    finish_clients(h, "c. blue/green switch", loads, held, session, expect_cut=True)
    row = exit_row("c. blue/green switch", exits, c.lb, (r1[0] - r0[0], r1[1] - r0[1]))
    row.client = "blue set drained (SIGTERM after the switch)"
    row.notes.insert(0, f"blue answered {blue_after} requests after the switch (in flight at the switch); "
                        "green served " + ", ".join(f"{n} {v}" for n, v in green_served.items()))
    row.check(all(v > 0 for v in green_served.values()), "a green replica served nothing")
    # Each client has at most one request in flight: more than that on blue
    # after the switch means the switch did not take.
    in_flight = sum(l.clients for l in loads) + len(held)
    row.check(blue_after <= in_flight, f"blue answered {blue_after} requests after the switch, "
                                       f"more than the {in_flight} that could have been in flight")
    h.rows.append(row)
    c.backend = "be_green"
    c.replicas = {g.name: g for g in green}


def scenario_d(h: Harness, c: Cluster) -> None:
    assert c.lb is not None
    log("d: kill -9 of one replica under load")
    clients = 12
    loads = [Load(h, "d-modern", c.host, "modern-mix", clients),
             Load(h, "d-legacy", c.host, "legacy-mix", clients, sessions=True)]
    r0 = c.lb.retries()
    time.sleep(2)
    name, victim = next(iter(c.replicas.items()))
    killed_at = time.time()
    victim.kill9()
    c.lb.wait_status(c.backend, name, "DOWN", 10)
    detect_s = time.time() - killed_at
    time.sleep(3)
    for l in loads:
        l.stop()
    r1 = c.lb.retries()
    total_failed = 0
    rows = []
    for l, label in zip(loads, ("modern (2026-07-28)", "legacy sessions")):
        r = l.wait()
        total_failed += r["failed"] + sum(r["setup_failures"].values())
        # Each client has one call in flight, so at most `clients` of this
        # generator's calls were on the killed replica.
        row = load_row("d. kill -9 of one replica", label, r, allow_failures=clients)
        # Failures must cluster at the kill: from it until HAProxy marked the replica down.
        t_kill = killed_at - r["started_unix"]
        late = [e for e in r["events"] if "failed" in e["what"] and not (t_kill - 0.5 <= e["t"] <= t_kill + detect_s + 1.0)]
        row.check(not late, f"{len(late)} failures outside the kill window, first at {late[0]['t'] if late else 0:.1f}s")
        row.check(r["reinitialized"] == 0, f"{r['reinitialized']} sessions were lost (404): they did not continue elsewhere")
        rows.append(row)
    note = (f"replica {name} killed; HAProxy marked it DOWN {detect_s:.1f}s later; "
            f"HAProxy retries {r1[0] - r0[0]}, redispatches {r1[1] - r0[1]}; "
            f"calls failed in all: {total_failed}, of at most {2 * clients} in flight")
    for row in rows:
        row.notes.insert(0, note)
    h.rows.extend(rows)
    del c.replicas[name]


def scenario_e(h: Harness) -> None:
    log(f"e: LB idle timeout {E_IDLE} vs {E_SILENCE_S:.0f}s of silence (GET stream, slow call), keep-alive on and off")
    runs = []
    for label, keep_alive in (("SSE keep-alive 1s", "1s"), ("control: keep-alive off", "0")):
        # One replica per load balancer: this is about the idle timeout. The
        # conformance fixtures have a slow tool; shared state lets a cut reply
        # be resumed.
        rep = Replica(h, "e", "127.0.0.1,localhost", state_env(h), sse_keep_alive=keep_alive,
                      args=("--fixtures", "conformance"))
        rep.start()
        runs.append((label, keep_alive, rep))
    lbs = []
    for label, keep_alive, rep in runs:
        rep.wait_ready()
        lbs.append(HAProxy(h, f"e-{keep_alive}", E_IDLE, [("e1", rep)]))
    streams = [LegacyStream(lb.port, f"e-{ka}", reconnect=False, probe_tool=None) for lb, (_, ka, _) in zip(lbs, runs)]
    slow = [SlowCall(lb.port, f"e-slow-{ka}", E_SILENCE_S, resume_for=E_SILENCE_S + 8) for lb, (_, ka, _) in zip(lbs, runs)]
    for t in streams + slow:
        t.start()
    time.sleep(E_SILENCE_S)
    for s in streams:
        s.stop()
    for t in streams + slow:
        t.join(timeout=E_SILENCE_S + 20)
    for (label, keep_alive, rep), lb, s, call in zip(runs, lbs, streams, slow):
        h.rows.append(e_stream_row(label, keep_alive, lb, s))
        h.rows.append(e_slow_row(label, keep_alive, call))
        rep.terminate()
        rep.wait_exit(DRAIN_TIMEOUT_S + 5)


def e_stream_row(label: str, keep_alive: str, lb: HAProxy, s: LegacyStream) -> Row:
    row = Row("e. LB idle timeout 2s", f"legacy GET stream, {label}")
    if s.error or not s.connections:
        row.problems.append(s.error or "no stream")
        return row
    conn = s.connections[0]
    row.calls = 1
    row.notes.append(f"GET -> {conn['status']}, {conn['comments']} keep-alive comments, "
                     f"stream ended: {conn['ended']} after {conn['lasted_s']}s")
    cut_log = [l for l in lb.log_text().splitlines() if "GET /mcp" in l]
    if cut_log:
        row.notes.append("HAProxy log: " + cut_log[-1].split('" ')[0][-150:].strip())
    if keep_alive != "0":
        survived = conn["ended"] == "stopped"
        row.errors = 0 if survived else 1
        row.check(survived, f"the stream was cut ({conn['ended']} after {conn['lasted_s']}s) despite keep-alives")
        row.check(conn["comments"] >= E_SILENCE_S / 2, f"only {conn['comments']} keep-alive comments in {E_SILENCE_S}s")
        ok, detail = s.call()
        row.check(ok, f"the session no longer answers: {detail}")
    else:
        cut = conn["ended"] != "stopped" and conn["lasted_s"] < E_SILENCE_S - 1
        row.notes.append("cut by the load balancer, as expected" if cut else "NOT cut")
        row.check(cut, "without keep-alives the stream was not cut: the idle timeout is not in effect, so the test proves nothing")
    return row


def e_slow_row(label: str, keep_alive: str, call: SlowCall) -> Row:
    row = Row("e. LB idle timeout 2s", f"slow tool call ({E_SILENCE_S:.0f}s) over SSE, {label}")
    if call.error or not call.record:
        row.problems.append(call.error or "no call")
        return row
    r = call.record
    row.calls = 1
    row.notes.append(f"POST -> {r['status']}, {r['comments']} keep-alive comments, reply stream ended: "
                     f"{r['ended']} after {r['lasted_s']}s")
    if call.resumes:
        row.notes.append("resumed: " + ", ".join(f"GET Last-Event-ID -> {g['status']} {g['ended']} after {g['lasted_s']}s"
                                                for g in call.resumes[:4]))
    if call.answered_by:
        row.notes.append(f"answer received on {call.answered_by}")
    if keep_alive != "0":
        row.errors = 0 if r["ended"] == "answered" else 1
        row.check(r["ended"] == "answered", f"the reply stream was cut ({r['ended']} after {r['lasted_s']}s) despite keep-alives")
    else:
        cut = r["ended"] != "answered"
        row.check(cut, "without keep-alives the reply was not cut: the idle timeout is not in effect")
        # The cut reply is not lost: the client resumes it with Last-Event-ID.
        row.errors = 0 if call.answered_by else 1
        row.check(not cut or call.answered_by is not None,
                  "the cut reply was never recovered with Last-Event-ID")
    return row


def redis_server(h: Harness, port: int, tag: str) -> subprocess.Popen:
    d = h.work / f"redis-{tag}"
    d.mkdir(exist_ok=True)
    proc = h.spawn(["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
                    "--dir", str(d)], d / "redis.log")
    if not wait_until(lambda: subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True,
                                             text=True).stdout.strip() == "PONG", 15):
        raise RuntimeError(f"private redis-server on {port} did not answer")
    return proc


def scenario_f(h: Harness) -> None:
    log("f: Redis stopped and restarted under load")
    port = free_port()
    redis = redis_server(h, port, "f1")
    rep = Replica(h, "f", "127.0.0.1,localhost", state_env(h, f"redis://127.0.0.1:{port}/0"))
    rep.start()
    rep.wait_ready()
    host = f"127.0.0.1:{rep.port}"

    def phase(tag: str, seconds: float, timeout: float) -> tuple[dict, dict]:
        loads = [Load(h, f"f-{tag}-legacy", host, "legacy-mix", 8, sessions=True, duration=seconds, call_timeout=timeout),
                 Load(h, f"f-{tag}-modern", host, "modern-mix", 4, duration=seconds, call_timeout=timeout)]
        return loads[0].wait(), loads[1].wait()

    base_legacy, base_modern = phase("before", 2, 10)
    log_mark = len(rep.log_lines())
    redis.send_signal(signal.SIGTERM)
    redis.wait(timeout=10)
    down_legacy, down_modern = phase("down", 4, 5)
    alive_down = rep.alive()
    redis = redis_server(h, port, "f2")
    time.sleep(1)
    up_legacy, up_modern = phase("after", 3, 10)
    alive_after = rep.alive()
    msgs = [l for l in rep.log_lines()[log_mark:] if re.search(r"redis", l, re.I) and re.search(r'"level":"(WARN|ERROR)"', l)]

    row = Row("f. Redis restart", "Redis down 4s (legacy + modern): fast 503 + Retry-After for legacy, modern unaffected")
    calls = down_legacy["attempted"] + down_modern["attempted"]
    failed = {}
    for r in (down_legacy, down_modern):
        for k, v in list(r["failures"].items()) + list(r["setup_failures"].items()):
            failed[k] = failed.get(k, 0) + v
    row.calls, row.errors = calls, sum(failed.values())
    row.p50, row.p99 = down_legacy["p50_ms"], down_legacy["p99_ms"]
    row.notes.append(f"legacy: {down_legacy['failed']} of {down_legacy['attempted']} calls and "
                     f"{sum(down_legacy['setup_failures'].values())} of {down_legacy['handshakes']} handshakes failed; "
                     f"modern: {down_modern['failed']} of {down_modern['attempted']} calls failed; by kind: {failed or 'none'}")
    if down_legacy.get("failed_max_ms") is not None:
        row.notes.append(f"a failed legacy call took {down_legacy['failed_p50_ms']:.0f} ms (p50), "
                         f"{down_legacy['failed_max_ms']:.0f} ms (max)")
    down_lines = [l for l in msgs if "unreachable" in l]
    up_lines = [l for l in msgs if "answers again; legacy requests are served" in l]
    for l in down_lines[:1] + up_lines[:1]:
        row.notes.append("log: " + l[:200])
    for r in (down_legacy, down_modern):
        if r["samples"]:
            row.notes.append("e.g. " + r["samples"][0][:160])
    row.check(alive_down, "the server exited while Redis was down")
    hung = sum(v for k, v in failed.items() if "timeout" in k)
    dropped = sum(v for k, v in failed.items() if "connection" in k or "connect" in k)
    row.check(hung == 0, f"{hung} calls hung (no answer in 5s)")
    row.check(dropped == 0, f"{dropped} calls got no HTTP answer (connection dropped)")
    # Legacy requests are refused with 503 + Retry-After (retryable: nothing
    # ran), never a 500 with internals. Only a call whose reply stream was
    # already open when Redis stopped may fail another way: at most one per
    # legacy client.
    # Failure kinds are a status ("503") or, for a session's handshake, the
    # step and its status ("initialize 503").
    def status_of(kind: str) -> str:
        return kind.rsplit(" ", 1)[-1]
    refused = sum(v for k, v in failed.items() if status_of(k) == "503")
    internal = sum(v for k, v in failed.items() if status_of(k) == "500")
    other = sum(v for k, v in failed.items() if status_of(k) not in ("500", "503"))
    row.check(internal == 0, f"{internal} requests got 500 (expected 503 + Retry-After)")
    row.check(refused > 0, "no legacy request was refused with 503 while Redis was down")
    row.check(other <= 8, f"{other} requests failed other than with 503 (at most one per legacy client may)")
    row.check(down_modern["failed"] == 0, f"{down_modern['failed']} modern (stateless) calls failed; they need no Redis")
    # Fast: the replica knows Redis is down and answers without trying it.
    # Only the first requests after the stop find out the slow way.
    if down_legacy.get("failed_p50_ms") is not None:
        row.check(down_legacy["failed_p50_ms"] < 300,
                  f"a refused legacy call took {down_legacy['failed_p50_ms']:.0f} ms (p50; want < 300 ms)")
        row.check(down_legacy["failed_max_ms"] < 2500,
                  f"a refused legacy call took {down_legacy['failed_max_ms']:.0f} ms (max; want < 2500 ms)")
    row.check(len(down_lines) == 1, f"{len(down_lines)} log lines say Redis is unreachable (want exactly 1 per outage)")
    row.check(len(up_lines) == 1, f"{len(up_lines)} log lines say Redis answers again (want exactly 1, with the outage's length)")
    base_failed = base_legacy["failed"] + base_modern["failed"] + sum(base_legacy["setup_failures"].values())
    row.check(base_failed == 0, f"{base_failed} calls failed before Redis was stopped")
    h.rows.append(row)

    row = Row("f. Redis restart", "after restart (new sessions)")
    row.calls = up_legacy["attempted"] + up_modern["attempted"]
    up_failed = up_legacy["failed"] + up_modern["failed"] + sum(up_legacy["setup_failures"].values())
    row.errors = up_failed
    row.p50, row.p99 = up_legacy["p50_ms"], up_legacy["p99_ms"]
    row.notes.append(f"legacy {up_legacy['succeeded']} ok, modern {up_modern['succeeded']} ok; process alive: {alive_after}")
    if up_legacy["samples"]:
        row.notes.append("e.g. " + up_legacy["samples"][0][:160])
    row.check(alive_after, "the server exited")
    row.check(up_failed == 0, f"{up_failed} calls failed after Redis came back")
    row.check(up_legacy["succeeded"] > 0 and up_modern["succeeded"] > 0, "no successful calls after the restart")
    h.rows.append(row)
    rep.terminate()
    rep.wait_exit(DRAIN_TIMEOUT_S + 5)
    redis.send_signal(signal.SIGTERM)


def flood(h: Harness, rep: Replica, label: str, calls: int) -> tuple[dict, list[int], bool]:
    """`calls` legacy initialize calls at one replica, RSS sampled meanwhile.
    Stops early (third value True) when RSS passes the limit."""
    limit_kib = h.args.flood_rss_limit_mib * 1024
    samples: list[int] = []
    load = Load(h, label, f"127.0.0.1:{rep.port}", "legacy-initialize", 32, max_calls=calls, duration=600)
    aborted = False
    while load.proc.poll() is None:
        v = rss_kib(rep.pid)
        if v is None:
            break
        samples.append(v)
        if v > limit_kib:
            aborted = True  # protect the machine: the growth is already shown
            load.stop()
            break
        time.sleep(0.25)
    return load.wait(), samples, aborted


def refusals(results: list[dict]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in results:
        for k, v in list(r["failures"].items()) + list(r["setup_failures"].items()):
            out[k] = out.get(k, 0) + v
    return out


def mib(kib: float) -> str:
    return f"{kib / 1024:.0f}"


def scenario_m(h: Harness) -> None:
    """The session cap: a flood levels off, whatever a session costs in this build."""
    n = h.args.flood
    log(f"m: {n} legacy initialize calls at one replica (direct), default settings")
    rep = Replica(h, "m", "127.0.0.1,localhost", None)
    rep.start()
    rep.wait_ready()
    time.sleep(1)
    before = rss_kib(rep.pid) or 0
    results, samples, rss_half, aborted = [], [], [], False
    # Two halves: bounded means the second half adds (almost) nothing to what
    # the first added.
    for half in (1, 2):
        r, sampled, aborted = flood(h, rep, f"m-flood{half}", n // 2)
        results.append(r)
        samples += sampled
        rss_half.append(rss_kib(rep.pid) or 0)
        if aborted:
            break
    peak = max(samples + rss_half + [rss_kib(rep.pid, "VmHWM") or 0])
    alive = rep.alive()
    refused = refusals(results)
    accepted = sum(r["succeeded"] for r in results)
    cap = "MCPSHIP_MAX_SESSIONS default" if h.has_setting("MCPSHIP_MAX_SESSIONS") else "no session cap setting"
    row = Row("m. memory: initialize flood", f"{n} legacy initialize, 32 clients, one replica ({cap})")
    hard = sum(v for k, v in refused.items() if k != "503")
    # Refusals at the cap are the point here; errors are anything else.
    row.calls, row.errors = sum(r["attempted"] for r in results), hard
    row.p50, row.p99 = results[0]["p50_ms"], results[0]["p99_ms"]
    row.notes.append(f"RSS MiB: before {mib(before)}, after the first half {mib(rss_half[0])}, "
                     f"after the second {mib(rss_half[-1])}, peak {mib(peak)}")
    row.notes.append(f"{accepted} sessions accepted, refused: {refused or 'none'}; "
                     f"{(rss_half[0] - before) / max(results[0]['succeeded'], 1):.0f} KiB per session held")
    row.check(alive, "the server died during the flood")
    row.check(not aborted, f"RSS passed {h.args.flood_rss_limit_mib} MiB after {row.calls} calls; the flood was "
                           "stopped there to protect the machine")
    if not aborted and len(rss_half) == 2:
        first, second = rss_half[0] - before, rss_half[1] - rss_half[0]
        row.check(second <= max(16 * 1024, first / 10),
                  f"RSS kept growing: +{mib(first)} MiB in the first half, +{mib(second)} MiB in the second")
    row.check(hard == 0, f"{hard} calls failed other than with a 503 refusal")
    h.rows.append(row)
    rep.terminate()
    rep.wait_exit(DRAIN_TIMEOUT_S + 5)


def scenario_m_reclaim(h: Harness) -> None:
    """Idle sessions go away, and what they held is reused: rounds of
    sessions that idle out. An allocator may keep some of a round's memory
    in its own caches and settle only after a round or two, so the check is
    that RSS levels off: the last round must not add to the round before."""
    if not h.has_setting("MCPSHIP_SESSION_IDLE_TIMEOUT"):
        h.rows.append(Row("m. memory: idle sessions reclaimed", "-",
                          problems=["the server has no MCPSHIP_SESSION_IDLE_TIMEOUT setting"]))
        return
    idle, n, rounds = 5, h.args.reclaim_sessions, 3
    log(f"m: {rounds} rounds of {n} idle sessions, MCPSHIP_SESSION_IDLE_TIMEOUT={idle}s")
    # The cap is raised above a round so that only idling decides what stays.
    rep = Replica(h, "m-idle", "127.0.0.1,localhost", {"MCPSHIP_SESSION_IDLE_TIMEOUT": f"{idle}s",
                                                       "MCPSHIP_MAX_SESSIONS": str(n + 100)})
    rep.start()
    rep.wait_ready()
    time.sleep(1)
    before = rss_kib(rep.pid) or 0
    rss_peak, rss_after, results = [], [], []
    for round_ in range(1, rounds + 1):
        r, sampled, aborted = flood(h, rep, f"m-idle{round_}", n)
        results.append(r)
        rss_peak.append(max(sampled + [rss_kib(rep.pid) or 0]))
        if aborted:
            break
        time.sleep(idle + 5)
        rss_after.append(rss_kib(rep.pid) or 0)
    again = Load(h, "m-idle-after", f"127.0.0.1:{rep.port}", "legacy-initialize", 4, max_calls=100, duration=60).wait()
    alive = rep.alive()
    row = Row("m. memory: idle sessions reclaimed", f"{rounds} rounds of {n} sessions left idle, idle timeout {idle}s")
    row.calls = sum(r["attempted"] for r in results) + again["attempted"]
    row.errors = sum(refusals(results + [again]).values())
    row.notes.append(f"RSS MiB: before {mib(before)}; " + "; ".join(
        f"round {i + 1} peak {mib(peak)}, {idle + 5}s later {mib(rss_after[i]) if i < len(rss_after) else '-'}"
        for i, peak in enumerate(rss_peak)))
    row.check(alive, "the server died")
    row.check(len(rss_after) == rounds, "a round passed the RSS limit")
    row.check(row.errors == 0, f"{row.errors} initialize calls refused or failed "
                               "(the sessions of a round should be gone before the next)")
    if len(rss_after) == rounds:
        first = rss_peak[0] - before
        row.check(rss_peak[-1] <= rss_peak[-2] + max(16 * 1024, first / 10),
                  f"round {rounds} took RSS to {mib(rss_peak[-1])} MiB after round {rounds - 1}'s "
                  f"{mib(rss_peak[-2])} MiB: the memory of closed sessions is not reused")
        if rss_after[-1] > before + max(32 * 1024, first / 2):
            row.notes.append("RSS stays high once sessions are gone (memory kept by the process, not returned to the OS)")
    h.rows.append(row)
    rep.terminate()
    rep.wait_exit(DRAIN_TIMEOUT_S + 5)


# --------------------------------------------------------------------------- report


def fmt_ms(v: float | None) -> str:
    return "-" if v is None else (f"{v:.1f}" if v >= 10 else f"{v:.2f}")


def table(h: Harness, started: float, selected: str) -> str:
    binary = "release" if "/release/" in h.bin else "debug" if "/debug/" in h.bin else h.bin
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short=12", "HEAD"],
                            capture_output=True, text=True).stdout.strip() or "none"
    if subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain"], capture_output=True, text=True).stdout.strip():
        commit += " (with uncommitted changes)"
    haproxy = subprocess.run(["haproxy", "-v"], capture_output=True, text=True).stdout.split("\n")[0]
    shared = all(h.has_setting(e) for e in ("MCPSHIP_STATE", "MCPSHIP_REDIS_URL"))
    lines = [
        f"Last run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {time.monotonic() - started:.0f} s, "
        f"scenarios {selected}; {binary} build of commit {commit}; {haproxy}; "
        f"{os.cpu_count()} cores shared by the replicas, HAProxy and the clients.",
        "",
        f"Shared state settings in `mcpship serve --help`: {'present' if shared else 'absent (legacy sessions live in one replica)'}.",
        "",
        "| scenario | client | calls | errors | retries | p50 ms | p99 ms | notes | result |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for r in h.rows:
        notes = "; ".join(r.notes + (["**" + "; ".join(r.problems) + "**"] if r.problems else []))
        notes = notes.replace("|", "/").replace("\n", " ")
        lines.append(f"| {r.scenario} | {r.client} | {r.calls} | {r.errors} | {r.retries} | {fmt_ms(r.p50)} | "
                     f"{fmt_ms(r.p99)} | {notes} | {'pass' if r.passed else '**FAIL**'} |")
    return "\n".join(lines)


def write_doc(path: Path, text: str) -> None:
    doc = path.read_text()
    if BEGIN not in doc or END not in doc:
        raise RuntimeError(f"{path} has no {BEGIN} ... {END} markers")
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", required=True, help="the mcpship binary")
    p.add_argument("--loadgen", required=True, help="the mcpship-loadgen binary")
    p.add_argument("--redis-url", required=True, help="redis://127.0.0.1:PORT of the shared Redis")
    p.add_argument("--redis-db", type=int, default=int(os.environ.get("E2E_CLUSTER_REDIS_DB", "7")))
    p.add_argument("--sdk-python", default="", help="python of a venv with the MCP SDK (mcp==2.3.0)")
    p.add_argument("--scenarios", default="abcdefm")
    p.add_argument("--calls", type=int, default=10000, help="tool calls per client type in scenario a")
    p.add_argument("--a-seconds", type=float, default=150, help="time limit of each scenario a run")
    p.add_argument("--flood", type=int, default=50000, help="initialize calls in scenario m")
    p.add_argument("--reclaim-sessions", type=int, default=5000, help="sessions per round in scenario m's reclaim test")
    p.add_argument("--flood-rss-limit-mib", type=int, default=1536, help="stop the flood when RSS passes this")
    p.add_argument("--doc", default=str(ROOT / "docs" / "operations.md"), help="file to write the table into ('' for none)")
    args = p.parse_args()
    # Absolute (replicas run in their own directories), symlinks kept (a venv's python is one).
    args.bin, args.loadgen = os.path.abspath(args.bin), os.path.abspath(args.loadgen)
    args.sdk_python = os.path.abspath(args.sdk_python) if args.sdk_python else ""
    for name in ("redis-server", "redis-cli", "haproxy"):
        if not shutil.which(name):
            log(f"{name} is not installed")
            return 2
    h = Harness(args)
    started = time.monotonic()

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    crashed = None
    try:
        selected = args.scenarios
        if any(s in selected for s in "abcd"):
            cluster = Cluster(h)
            cluster.start()
            for key, fn in (("a", scenario_a), ("b", scenario_b), ("c", scenario_c), ("d", scenario_d)):
                if key in selected:
                    t = time.monotonic()
                    fn(h, cluster)
                    log(f"{key}: done in {time.monotonic() - t:.0f}s")
            cluster.stop()
        for key, fn in (("e", scenario_e), ("f", scenario_f), ("m", scenario_m), ("m", scenario_m_reclaim)):
            if key in selected:
                t = time.monotonic()
                fn(h)
                log(f"{key}: done in {time.monotonic() - t:.0f}s")
    except (RuntimeError, OSError, KeyboardInterrupt) as e:
        crashed = f"{type(e).__name__}: {e}"
        h.rows.append(Row("harness", "-", problems=[f"stopped early: {crashed}"]))
    finally:
        h.cleanup()
    text = table(h, started, args.scenarios)
    print(text)
    if args.doc:
        write_doc(Path(args.doc), text)
        log(f"wrote the table into {args.doc}")
    failed = [r for r in h.rows if not r.passed]
    if failed:
        log(f"{len(failed)} of {len(h.rows)} rows FAILED; logs kept in {h.work}")
        for r in failed:
            log(f"FAIL {r.scenario} / {r.client}: {'; '.join(r.problems)}")
        return 1
    shutil.rmtree(h.work, ignore_errors=True)
    log(f"all {len(h.rows)} rows passed in {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
