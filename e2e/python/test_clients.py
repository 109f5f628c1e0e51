"""The official MCP Python SDK (PyPI `mcp` 2.x) driving a real `mcpship`.

Environment:
  MCPSHIP_URL  the running server's MCP endpoint, e.g. http://127.0.0.1:8123/mcp
               (HTTP tests; scripts/e2e-clients starts the server and sets it)
  MCPSHIP_BIN  the mcpship binary (stdio tests launch `MCPSHIP_BIN serve --stdio`)

Every HTTP test runs in each connect mode of the SDK's `Client`:
  "2026-07-28"  pinned modern era: stateless, per-request `_meta` envelope, no probe
  "auto"        the SDK default: `server/discover` probe, must settle on 2026-07-28
  "legacy"      2025-11-25 `initialize` handshake with an `Mcp-Session-Id` session

Besides the SDK's own view, each HTTP test records the wire (httpx2 event hooks)
and checks the era really is what it claims: no session header and no
`initialize` on the modern wire; a session id issued by `initialize` and sent
on every later request on the legacy one.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

MODERN = "2026-07-28"
LEGACY = "2025-11-25"
HTTP_MODES = [MODERN, "auto", "legacy"]
STDIO_MODES = [MODERN, "auto", "legacy"]
# Per-test deadline: a hung call fails the test instead of stalling the run.
DEADLINE_S = 60

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def mcpship_url() -> str:
    url = os.environ.get("MCPSHIP_URL")
    if not url:
        pytest.fail("MCPSHIP_URL is not set (e.g. http://127.0.0.1:8123/mcp); run scripts/e2e-clients")
    return url


@pytest.fixture(scope="session")
def mcpship_bin() -> str:
    path = os.environ.get("MCPSHIP_BIN", "")
    if not path or not os.access(path, os.X_OK):
        pytest.fail(f"MCPSHIP_BIN is not an executable mcpship binary: {path!r}")
    return os.path.abspath(path)


# --------------------------------------------------------------------------- wire log


@dataclass
class Exchange:
    method: str
    request_headers: dict[str, str]
    body: dict[str, Any] | None
    status: int | None = None
    response_headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        rpc = self.body.get("method") if self.body else None
        return f"{self.method} rpc={rpc} -> {self.status} {self.response_headers.get('content-type', '')}"


@dataclass
class Wire:
    exchanges: list[Exchange] = field(default_factory=list)

    async def on_request(self, request: httpx2.Request) -> None:
        body = None
        if request.method == "POST":
            try:
                body = json.loads(request.content)
            except ValueError:
                body = None
        request.extensions["e2e_exchange"] = ex = Exchange(request.method, dict(request.headers), body)
        self.exchanges.append(ex)

    async def on_response(self, response: httpx2.Response) -> None:
        ex = response.request.extensions.get("e2e_exchange")
        if ex is not None:
            ex.status = response.status_code
            ex.response_headers = dict(response.headers)

    def posts(self) -> list[Exchange]:
        return [e for e in self.exchanges if e.method == "POST"]

    def dump(self) -> str:
        return "\n".join(f"  {e}" for e in self.exchanges)


@asynccontextmanager
async def http_client(url: str, mode: str) -> AsyncIterator[tuple[Client, Wire]]:
    wire = Wire()
    # trust_env=False: never route the loopback server through a proxy from the environment.
    http = httpx2.AsyncClient(
        trust_env=False,
        timeout=httpx2.Timeout(30.0, read=300.0),
        event_hooks={"request": [wire.on_request], "response": [wire.on_response]},
    )
    async with http:
        async with Client(streamable_http_client(url, http_client=http), mode=mode) as client:
            yield client, wire


def check_era(client: Client, wire: Wire, mode: str) -> None:
    """The negotiated era matches the mode, in the SDK and on the wire."""
    posts = wire.posts()
    assert posts, "no POST was sent"
    methods = [p.body.get("method") for p in posts if p.body]
    if mode == "legacy":
        assert client.protocol_version == LEGACY
        first = posts[0]
        assert first.body and first.body["method"] == "initialize", wire.dump()
        session = first.response_headers.get("mcp-session-id")
        assert session, f"initialize answered without Mcp-Session-Id:\n{wire.dump()}"
        for p in posts[1:]:
            assert p.request_headers.get("mcp-session-id") == session, f"{p} lacks the session id"
            assert p.request_headers.get("mcp-protocol-version") == LEGACY, f"{p}"
    else:
        assert client.protocol_version == MODERN, f"mode {mode!r} negotiated {client.protocol_version}"
        assert "initialize" not in methods, f"modern connect fell back to initialize:\n{wire.dump()}"
        if mode == "auto":
            assert methods[0] == "server/discover", wire.dump()
        for e in wire.exchanges:
            assert "mcp-session-id" not in e.request_headers, f"{e} sent a session id"
            assert "mcp-session-id" not in e.response_headers, f"{e} was issued a session id"
            assert e.request_headers.get("mcp-protocol-version") == MODERN, f"{e}"
        for p in posts:
            meta = (p.body or {}).get("params", {}).get("_meta", {})
            assert meta.get("io.modelcontextprotocol/protocolVersion") == MODERN, f"{p} lacks the _meta envelope"
    for e in wire.exchanges:
        assert e.status is not None and e.status < 400, f"HTTP error on the wire:\n{wire.dump()}"


# --------------------------------------------------------------------------- shared checks


async def check_list_tools(client: Client) -> None:
    listed = await client.list_tools()
    tools = {t.name: t for t in listed.tools}
    for name in ("search_documents", "get_document"):
        assert name in tools, f"{name} missing from tools/list: {sorted(tools)}"
        tool = tools[name]
        assert tool.annotations is not None, f"{name} has no annotations"
        assert tool.annotations.read_only_hint is True, f"{name}: readOnlyHint={tool.annotations.read_only_hint}"
        assert tool.output_schema, f"{name} declares no outputSchema"
    assert "query" in tools["search_documents"].input_schema.get("required", [])
    assert "id" in tools["get_document"].input_schema.get("required", [])


async def check_search_then_get(client: Client) -> None:
    found = await client.call_tool("search_documents", {"query": "idle timeout"})
    assert not found.is_error, f"search_documents failed: {found.content}"
    out = found.structured_content
    assert isinstance(out, dict), f"no structuredContent: {found}"
    assert set(out) >= {"hits", "total", "offset", "has_more"}, out.keys()
    hits = out["hits"]
    assert len(hits) >= 1, f"no hits for 'idle timeout': {out}"
    assert out["total"] >= len(hits)
    assert out["offset"] == 0
    first = hits[0]
    assert set(first) >= {"id", "title", "snippet", "score"}, first.keys()
    assert "**" in first["snippet"], f"snippet has no **highlight**: {first['snippet']!r}"
    # The unstructured text mirrors the structured result (spec SHOULD for structured output).
    assert found.content and found.content[0].type == "text"

    got = await client.call_tool("get_document", {"id": first["id"]})
    assert not got.is_error, f"get_document({first['id']!r}) failed: {got.content}"
    doc = got.structured_content
    assert isinstance(doc, dict), f"no structuredContent: {got}"
    assert doc["id"] == first["id"]
    assert doc["body"].strip(), "empty body"
    assert doc["title"] == first["title"]
    assert set(doc) >= {"id", "title", "body", "source", "content_type", "content_hash", "updated_at"}, doc.keys()


async def check_bad_call(client: Client) -> None:
    bad = await client.call_tool("get_document", {"id": "nope"})
    assert bad.is_error is True, f"get_document('nope') did not fail: {bad}"
    text = " ".join(c.text for c in bad.content if c.type == "text")
    assert "nope" in text and "search_documents" in text, f"unclear error message: {text!r}"
    assert bad.structured_content is None


async def check_read_resource(client: Client) -> None:
    templates = await client.list_resource_templates()
    assert "docs://{id}" in [t.uri_template for t in templates.resource_templates], templates
    found = await client.call_tool("search_documents", {"query": "idle timeout", "limit": 1})
    doc_id = found.structured_content["hits"][0]["id"]
    read = await client.read_resource(f"docs://{doc_id}")
    assert len(read.contents) == 1
    assert read.contents[0].uri == f"docs://{doc_id}"
    assert getattr(read.contents[0], "text", "").strip(), "empty resource text"


# --------------------------------------------------------------------------- HTTP


@pytest.mark.parametrize("mode", HTTP_MODES)
async def test_http_list_tools(mcpship_url: str, mode: str) -> None:
    with anyio.fail_after(DEADLINE_S):
        async with http_client(mcpship_url, mode) as (client, wire):
            if mode != MODERN:  # a pinned connect skips discover, which is what carries serverInfo
                assert client.server_info is not None and client.server_info.name == "mcpship", client.server_info
            await check_list_tools(client)
            check_era(client, wire, mode)


@pytest.mark.parametrize("mode", HTTP_MODES)
async def test_http_search_then_get_document(mcpship_url: str, mode: str) -> None:
    with anyio.fail_after(DEADLINE_S):
        async with http_client(mcpship_url, mode) as (client, wire):
            await check_search_then_get(client)
            check_era(client, wire, mode)


@pytest.mark.parametrize("mode", HTTP_MODES)
async def test_http_get_document_unknown_id_is_tool_error(mcpship_url: str, mode: str) -> None:
    with anyio.fail_after(DEADLINE_S):
        async with http_client(mcpship_url, mode) as (client, wire):
            await check_bad_call(client)
            check_era(client, wire, mode)


@pytest.mark.parametrize("mode", HTTP_MODES)
async def test_http_read_document_resource(mcpship_url: str, mode: str) -> None:
    with anyio.fail_after(DEADLINE_S):
        async with http_client(mcpship_url, mode) as (client, wire):
            await check_read_resource(client)
            check_era(client, wire, mode)


async def test_http_legacy_session_is_terminated_on_close(mcpship_url: str) -> None:
    """The SDK DELETEs its session on exit; the server must then 404 that id."""
    with anyio.fail_after(DEADLINE_S):
        async with http_client(mcpship_url, "legacy") as (client, wire):
            await client.list_tools()
            session = wire.posts()[0].response_headers["mcp-session-id"]
        deletes = [e for e in wire.exchanges if e.method == "DELETE"]
        assert len(deletes) == 1, f"SDK sent no DELETE:\n{wire.dump()}"
        assert deletes[0].status is not None and deletes[0].status < 300, wire.dump()
        async with httpx2.AsyncClient(trust_env=False, timeout=10.0) as http:
            reply = await http.post(
                mcpship_url,
                headers={
                    "content-type": "application/json",
                    "accept": "application/json, text/event-stream",
                    "mcp-session-id": session,
                    "mcp-protocol-version": LEGACY,
                },
                json={"jsonrpc": "2.0", "id": 9, "method": "tools/list"},
            )
        assert reply.status_code == 404, f"terminated session still answered {reply.status_code}: {reply.text}"


# --------------------------------------------------------------------------- stdio


@asynccontextmanager
async def stdio(mcpship_bin: str, tmp_path: Path, mode: str) -> AsyncIterator[Client]:
    params = StdioServerParameters(
        command=mcpship_bin,
        args=["serve", "--stdio"],
        env={"DATABASE_URL": f"sqlite://{tmp_path}/docs.db", "LOG_LEVEL": "warn"},
        cwd=str(tmp_path),
    )
    log_path = tmp_path / "server-stderr.log"
    with log_path.open("w") as errlog:
        try:
            async with Client(stdio_client(params, errlog=errlog), mode=mode) as client:
                yield client
        except BaseException:
            errlog.flush()
            sys.stderr.write(f"--- mcpship stderr ({log_path}) ---\n{log_path.read_text()}\n")
            raise


@pytest.mark.parametrize("mode", STDIO_MODES)
async def test_stdio_list_tools_and_search(mcpship_bin: str, tmp_path: Path, mode: str) -> None:
    with anyio.fail_after(DEADLINE_S):
        async with stdio(mcpship_bin, tmp_path, mode) as client:
            assert client.protocol_version == (LEGACY if mode == "legacy" else MODERN)
            await check_list_tools(client)
            await check_search_then_get(client)
            await check_bad_call(client)
