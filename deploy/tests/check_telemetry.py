#!/usr/bin/env python3
"""The telemetry names the alarms, dashboard and Logs Insights queries rely
on (deploy/contract.json "telemetry", the same names as the observability
module's locals) against what a real server emits.

Starts `BIN serve` on a loopback port with the task definition's environment
(deploy/ecs/task-definition.json; Host allow-list, state backend and secrets
replaced by local stand-ins), drives tool calls with `BIN smoke`, stops it
with SIGTERM and reads every JSON line it wrote (stdout and stderr).

  - tool events: `message` is tool.invoked / tool.succeeded / tool.failed,
    with tool, duration_ms, session_id or request_id, error_class on
    failures, level and an ISO 8601 timestamp;
  - CloudWatch EMF lines (`_aws`): namespace, dimension set [Service, Tool],
    metric names and units;
  - access log lines: http.method, http.path, http.status, duration_ms,
    mcp.method, mcp.name.

A name the contract lists that the server emits under another name fails.
Names of features the server does not emit at all yet (no EMF line, no
access line, no trace id) are reported as pending; they become checks as
soon as the server emits them, or when the server's configuration shows the
feature (an EMF setting in `mcpship config`).

Usage: check_telemetry.py BIN
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import deploylib as d


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def json_lines(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(obj, dict):
                out.append(obj)
    return out


def run_server(binary: str, c: dict[str, Any]) -> tuple[list[dict[str, Any]], str, int]:
    app = d.container(d.task_definition(), c["container"]["name"])
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    env.update({k: d.substitute(v) for k, v in d.env_map(app).items()})
    port = free_port()
    tmp = tempfile.mkdtemp(prefix="mcpship-telemetry-")
    env.update({
        "HOST": "127.0.0.1",  # loopback only, whatever the task says
        "PORT": str(port),
        "LOG_FORMAT": "json",
        "MCPSHIP_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": f"sqlite://{tmp}/mcpship.db",
        "TMPDIR": tmp,
    })
    env.pop("MCPSHIP_STATE", None)  # memory state: no Redis here
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)  # no collector here
    out_path, err_path = Path(tmp) / "stdout", Path(tmp) / "stderr"
    with open(out_path, "w") as out, open(err_path, "w") as err:
        proc = subprocess.Popen([binary, "serve"], env=env, stdout=out, stderr=err, cwd=tmp)
        try:
            deadline = time.time() + 60
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
                        if resp.status == 200:
                            break
                except OSError:
                    pass
                if proc.poll() is not None or time.time() > deadline:
                    raise SystemExit(f"server did not become healthy; stderr:\n{err_path.read_text()[-2000:]}")
                time.sleep(0.2)
            smoke = subprocess.run([binary, "smoke", f"http://127.0.0.1:{port}{c['routes']['mcp']}"],
                                   env={k: v for k, v in env.items() if k in ("PATH", "HOME", "LANG")},
                                   capture_output=True, text=True, timeout=120)
            # One tool error on purpose (an unclosed quote), for tool.failed.
            body = json.dumps({
                "jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": {"name": "search_documents", "arguments": {"query": '"unclosed'},
                           "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                                     "io.modelcontextprotocol/clientCapabilities": {}}},
            }).encode()
            req = urllib.request.Request(
                f"http://127.0.0.1:{port}{c['routes']['mcp']}", data=body, method="POST",
                headers={"Content-Type": "application/json", "MCP-Protocol-Version": "2026-07-28",
                         "Mcp-Method": "tools/call", "Mcp-Name": "search_documents"})
            try:
                with urllib.request.urlopen(req, timeout=10) as resp:
                    resp.read()
            except OSError as e:
                print(f"  (the failing call itself failed: {e})")
            time.sleep(0.5)  # let the last log lines (and any metric flush) out
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=c["server"]["drain_timeout_seconds"] + 5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    lines = json_lines(out_path.read_text()) + json_lines(err_path.read_text())
    return lines, smoke.stdout + smoke.stderr, smoke.returncode


def main(binary: str) -> int:
    c = d.load_contract()
    tel = c["telemetry"]
    r = d.Report("telemetry")
    lines, smoke_out, smoke_rc = run_server(binary, c)
    print(f"server wrote {len(lines)} JSON lines during `mcpship smoke`")
    r.check(smoke_rc == 0, "`mcpship smoke` passes against the server started with the task's environment", smoke_out[-800:])

    print("tool events")
    events = [l for l in lines if l.get("message") in tel["tool_events"]]
    seen = {l["message"] for l in events}
    r.check({"tool.invoked", "tool.succeeded"} <= seen, "tool.invoked and tool.succeeded are the `message` of tool calls", f"saw {sorted(seen)}")
    stray = sorted({str(l.get("event") or l.get("message")) for l in lines
                    if str(l.get("event") or l.get("message") or "").startswith("tool.") and l.get("message") not in tel["tool_events"]})
    r.check(not stray, "no tool event under another name", str(stray))
    r.check(all(isinstance(l.get("tool"), str) and l["tool"] for l in events), "every tool event names the tool (`tool`)")
    r.check(all(l.get("session_id") or l.get("request_id") for l in events), "every tool event carries session_id or request_id")
    finished = [l for l in events if l["message"] != "tool.invoked"]
    r.check(bool(finished) and all(isinstance(l.get("duration_ms"), (int, float)) for l in finished),
            "tool.succeeded/tool.failed carry a numeric duration_ms")
    failed = [l for l in events if l["message"] == "tool.failed"]
    r.check(bool(failed) and all(l.get("error_class") for l in failed), "tool.failed (a malformed query) carries error_class",
            f"{len(failed)} failures seen")
    r.check(all("level" in l for l in events), "tool events carry level")

    def iso(ts: Any) -> bool:
        try:
            datetime.fromisoformat(str(ts).replace("Z", "+00:00"))
            return True
        except ValueError:
            return False

    r.check(all(iso(l.get("timestamp")) for l in events), "tool events carry an ISO 8601 timestamp")
    trace_keys = sorted({k for l in lines for k in l if "trace" in k.lower()})
    if any("trace_id" in l for l in events):
        r.check(all(l.get("trace_id") for l in events), "every tool event carries trace_id")
    elif trace_keys:
        r.check(False, "trace ids are logged as trace_id", f"found {trace_keys}")
    else:
        r.note("no trace id in the logs yet: the trace_id field of the queries is pending")

    print("CloudWatch EMF")
    emf = [l for l in lines if isinstance(l.get("_aws"), dict)]
    cfg = subprocess.run([binary, "config"], capture_output=True, text=True, env={"PATH": os.environ.get("PATH", "")}).stdout
    emf_configured = re.search(r'"[a-z_]*(emf|metrics?_)[a-z_]*"\s*:', cfg) is not None
    metric_names = {m["name"]: m["unit"] for m in tel["metrics"].values()}
    if emf:
        namespaces, dimsets, units, services = set(), [], {}, set()
        for l in emf:
            for cm in l["_aws"].get("CloudWatchMetrics", []):
                namespaces.add(cm.get("Namespace"))
                dimsets.extend(cm.get("Dimensions", []))
                for m in cm.get("Metrics", []):
                    units[m.get("Name")] = m.get("Unit")
                    r.check(isinstance(l.get(m.get("Name")), (int, float, list)), f"EMF line has a value for {m.get('Name')}")
            services.add(l.get("Service"))
        r.equal(sorted(namespaces), [tel["emf_namespace"]], "EMF namespace (MCPSHIP_EMF_NAMESPACE from the task)")
        r.check(tel["dimensions"] in dimsets, "EMF dimension set [Service, Tool]", str(dimsets))
        r.equal(sorted(services), [tel["service_name"]], "Service dimension value (MCPSHIP_SERVICE_NAME from the task)")
        r.check(set(units) <= set(metric_names), "EMF metric names are the contract's", str(sorted(units)))
        r.check({"ToolCalls", "ToolDuration"} <= set(units), "ToolCalls and ToolDuration emitted for tool calls", str(sorted(units)))
        r.check(all(units[n] == metric_names[n] for n in units if n in metric_names), "EMF units are the contract's", str(units))
    elif emf_configured:
        r.check(False, "the server has EMF settings but wrote no EMF line with the task's environment")
    else:
        r.note("no EMF line and no EMF setting in this server build: per-tool metric alarms are pending")

    print("access log")
    fields = tel["access_log_fields"]
    access = [l for l in lines if any(f in l for f in fields if f != "duration_ms")]
    lookalike = sorted({k for l in lines for k in l if re.search(r"(^|[._])(method|status)$", k) and k not in fields})
    if access:
        core = ["http.method", "http.path", "http.status", "duration_ms"]
        r.check(all(all(f in l for f in core) for l in access), "access lines carry http.method, http.path, http.status, duration_ms")
        mcp_lines = [l for l in access if l.get("http.path") == c["routes"]["mcp"]]
        r.check(any("mcp.method" in l for l in mcp_lines), "MCP requests log mcp.method")
        r.check(any("mcp.name" in l for l in mcp_lines if l.get("mcp.method") == "tools/call"), "tools/call requests log mcp.name")
        r.check(not lookalike, "no access field under another name", str(lookalike))
    elif lookalike:
        r.check(False, "access log fields are named as the contract says", f"found {lookalike}, expected {fields}")
    else:
        r.note("no access log lines in this server build: the slow-requests and http-errors queries are pending")
    return r.finish()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__)
        raise SystemExit(2)
    raise SystemExit(main(str(Path(sys.argv[1]).resolve())))
