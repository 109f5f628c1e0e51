"""One legacy (2025-11-25) session of the official MCP Python SDK (PyPI `mcp`
2.x), held through the load balancer while replicas are replaced: it calls
`get_document` and `search_documents` until the stop file appears, then writes
a JSON summary. Run by e2e/cluster/cluster.py with the venv of scripts/e2e-clients.

The wire is recorded (httpx2 event hooks): every POST must carry the session
id `initialize` issued, so a session that was silently re-created shows up as
a second id, and every HTTP status is counted.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

CALL_DEADLINE_S = 20


def describe(e: BaseException) -> str:
    """The innermost error of a task group, which is what went wrong."""
    while isinstance(e, BaseExceptionGroup) and e.exceptions:
        e = e.exceptions[0]
    return f"{type(e).__name__}: {e}"[:300]


async def run(url: str, stop_file: Path, interval: float, max_seconds: float) -> dict:
    sessions: list[str] = []
    statuses: Counter[str] = Counter()

    async def on_request(request: httpx2.Request) -> None:
        session = request.headers.get("mcp-session-id")
        if request.method == "POST" and session and session not in sessions:
            sessions.append(session)

    async def on_response(response: httpx2.Response) -> None:
        statuses[f"{response.request.method} {response.status_code}"] += 1

    ok = 0
    errors: list[str] = []
    latencies: list[float] = []
    closing_error = None
    deadline = time.monotonic() + max_seconds
    http = httpx2.AsyncClient(
        trust_env=False,  # loopback only, never through a proxy from the environment
        timeout=httpx2.Timeout(10.0, read=60.0),
        event_hooks={"request": [on_request], "response": [on_response]},
    )
    try:
        async with http:
            async with Client(streamable_http_client(url, http_client=http), mode="legacy") as client:
                if client.protocol_version != "2025-11-25":
                    errors.append(f"negotiated {client.protocol_version}, not the legacy 2025-11-25")
                with anyio.fail_after(CALL_DEADLINE_S):
                    found = await client.call_tool("search_documents", {"query": "idle timeout", "limit": 5})
                ids = [hit["id"] for hit in (found.structured_content or {}).get("hits", [])]
                if not ids:
                    raise RuntimeError(f"search_documents found nothing: {found}")
                i = 0
                while not stop_file.exists() and time.monotonic() < deadline:
                    started = time.monotonic()
                    try:
                        with anyio.fail_after(CALL_DEADLINE_S):
                            if i % 5 == 4:
                                result = await client.call_tool("search_documents", {"query": "drain", "limit": 3})
                                good = not result.is_error and "hits" in (result.structured_content or {})
                            else:
                                doc_id = ids[i % len(ids)]
                                result = await client.call_tool("get_document", {"id": doc_id})
                                good = not result.is_error and (result.structured_content or {}).get("id") == doc_id
                        if good:
                            ok += 1
                            latencies.append((time.monotonic() - started) * 1000)
                        else:
                            errors.append(f"call {i}: unexpected result {str(result)[:200]}")
                    except Exception as e:  # noqa: BLE001 - every failure is counted, none is fatal
                        errors.append(f"call {i}: {describe(e)}")
                    i += 1
                    await anyio.sleep(interval)
    except Exception as e:  # noqa: BLE001 - reported, not raised: the harness reads the summary
        closing_error = describe(e)
    latencies.sort()

    def pct(p: float) -> float | None:
        if not latencies:
            return None
        return round(latencies[min(len(latencies) - 1, max(0, int(p * len(latencies) + 0.999) - 1))], 2)

    summary = {
        "calls_ok": ok,
        "calls_failed": len(errors),
        "errors": errors[:5],
        "sessions": len(sessions),
        "statuses": dict(statuses),
        "p50_ms": pct(0.5),
        "p99_ms": pct(0.99),
    }
    if closing_error:
        summary["error"] = closing_error
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--stop-file", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--interval", type=float, default=0.05, help="pause between calls, seconds")
    parser.add_argument("--max-seconds", type=float, default=300)
    args = parser.parse_args()
    summary = anyio.run(run, args.url, args.stop_file, args.interval, args.max_seconds)
    args.out.write_text(json.dumps(summary))
    print(json.dumps(summary), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
