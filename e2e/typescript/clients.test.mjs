// The official MCP TypeScript SDK client (@modelcontextprotocol/client 2.x)
// driving a real `mcpship`.
//
// Environment:
//   MCPSHIP_URL  the running server's MCP endpoint, e.g. http://127.0.0.1:8123/mcp
//   MCPSHIP_BIN  the mcpship binary (stdio tests launch `MCPSHIP_BIN serve --stdio`)
//
// Every HTTP check runs in each of the SDK's version-negotiation modes:
//   legacy              the SDK default: 2025-11-25 `initialize`, Mcp-Session-Id session
//   auto                `server/discover` probe; must settle on 2026-07-28
//   { pin: 2026-07-28 } modern era only, no fallback
// and records the wire through the transport's `fetch` option, so the era is
// checked on the wire too, not only by what the SDK reports.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, test } from 'node:test';

import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';

const MODERN = '2026-07-28';
const LEGACY = '2025-11-25';
const MODES = [
  { name: 'legacy', mode: 'legacy' },
  { name: 'auto', mode: 'auto' },
  { name: `pin ${MODERN}`, mode: { pin: MODERN } },
];
// Per-test deadline: a hung call fails the test instead of stalling the run.
const TIMEOUT_MS = 60_000;

function env(name) {
  const value = process.env[name];
  assert.ok(value, `${name} is not set; run scripts/e2e-clients`);
  return value;
}

// ----------------------------------------------------------------- wire log

function recordingFetch(wire) {
  return async (url, init = {}) => {
    const headers = new Headers(init.headers);
    let body = null;
    if (typeof init.body === 'string') {
      try {
        body = JSON.parse(init.body);
      } catch {
        body = null;
      }
    }
    const entry = { method: init.method ?? 'GET', headers, body, status: null, responseHeaders: null };
    wire.push(entry);
    const response = await fetch(url, init);
    entry.status = response.status;
    entry.responseHeaders = response.headers;
    return response;
  };
}

function dump(wire) {
  return wire
    .map((e) => `  ${e.method} rpc=${e.body?.method ?? ''} -> ${e.status} ${e.responseHeaders?.get('content-type') ?? ''}`)
    .join('\n');
}

async function connectHttp(mode) {
  const wire = [];
  const transport = new StreamableHTTPClientTransport(new URL(env('MCPSHIP_URL')), { fetch: recordingFetch(wire) });
  const client = new Client({ name: 'mcpship-e2e', version: '0.0.0' }, { versionNegotiation: { mode } });
  await client.connect(transport);
  return { client, transport, wire };
}

async function closeHttp({ client, transport }) {
  // A legacy session is ended explicitly, as a well-behaved client does.
  if (transport.sessionId) await transport.terminateSession();
  await client.close();
}

function checkEra({ client, transport, wire }, name) {
  const posts = wire.filter((e) => e.method === 'POST');
  assert.ok(posts.length > 0, 'no POST was sent');
  const methods = posts.map((p) => p.body?.method);
  if (name === 'legacy') {
    assert.equal(client.getProtocolEra(), 'legacy');
    assert.equal(client.getNegotiatedProtocolVersion(), LEGACY);
    assert.equal(methods[0], 'initialize', dump(wire));
    const session = posts[0].responseHeaders.get('mcp-session-id');
    assert.ok(session, `initialize answered without Mcp-Session-Id:\n${dump(wire)}`);
    assert.equal(transport.sessionId, session);
    for (const e of wire.slice(1)) {
      assert.equal(e.headers.get('mcp-session-id'), session, `${e.method} ${e.body?.method} lacks the session id`);
      assert.equal(e.headers.get('mcp-protocol-version'), LEGACY);
    }
  } else {
    assert.equal(client.getProtocolEra(), 'modern');
    assert.equal(client.getNegotiatedProtocolVersion(), MODERN);
    assert.ok(!methods.includes('initialize'), `modern connect fell back to initialize:\n${dump(wire)}`);
    assert.equal(methods[0], 'server/discover', dump(wire));
    assert.equal(transport.sessionId, undefined);
    for (const e of wire) {
      assert.equal(e.headers.get('mcp-session-id'), null, `${e.body?.method} sent a session id`);
      assert.equal(e.responseHeaders.get('mcp-session-id'), null, `${e.body?.method} was issued a session id`);
      assert.equal(e.headers.get('mcp-protocol-version'), MODERN);
      assert.equal(e.body?.params?._meta?.['io.modelcontextprotocol/protocolVersion'], MODERN, 'no _meta envelope');
    }
  }
  for (const e of wire) assert.ok(e.status < 400, `HTTP error on the wire:\n${dump(wire)}`);
}

// ----------------------------------------------------------------- shared checks

async function checkListTools(client) {
  const { tools } = await client.listTools();
  const byName = Object.fromEntries(tools.map((t) => [t.name, t]));
  for (const name of ['search_documents', 'get_document']) {
    assert.ok(byName[name], `${name} missing from tools/list: ${Object.keys(byName)}`);
    assert.equal(byName[name].annotations?.readOnlyHint, true, `${name} is not readOnlyHint`);
    assert.ok(byName[name].outputSchema, `${name} declares no outputSchema`);
  }
  assert.ok(byName.search_documents.inputSchema.required.includes('query'));
  assert.ok(byName.get_document.inputSchema.required.includes('id'));
}

async function checkSearchThenGet(client) {
  const found = await client.callTool({ name: 'search_documents', arguments: { query: 'idle timeout' } });
  assert.notEqual(found.isError, true, `search_documents failed: ${JSON.stringify(found.content)}`);
  const out = found.structuredContent;
  assert.ok(out, `no structuredContent: ${JSON.stringify(found)}`);
  for (const key of ['hits', 'total', 'offset', 'has_more']) assert.ok(key in out, `structuredContent lacks ${key}`);
  assert.ok(out.hits.length >= 1, `no hits for "idle timeout": ${JSON.stringify(out)}`);
  assert.equal(out.offset, 0);
  assert.ok(out.total >= out.hits.length);
  const [first] = out.hits;
  for (const key of ['id', 'title', 'snippet', 'score']) assert.ok(key in first, `hit lacks ${key}`);
  assert.match(first.snippet, /\*\*/, `snippet has no **highlight**: ${first.snippet}`);
  assert.equal(found.content[0]?.type, 'text');

  const got = await client.callTool({ name: 'get_document', arguments: { id: first.id } });
  assert.notEqual(got.isError, true, `get_document(${first.id}) failed: ${JSON.stringify(got.content)}`);
  const doc = got.structuredContent;
  assert.ok(doc, `no structuredContent: ${JSON.stringify(got)}`);
  assert.equal(doc.id, first.id);
  assert.equal(doc.title, first.title);
  assert.ok(doc.body.trim().length > 0, 'empty body');
  for (const key of ['source', 'content_type', 'content_hash', 'updated_at']) assert.ok(key in doc, `document lacks ${key}`);
}

async function checkBadCall(client) {
  const bad = await client.callTool({ name: 'get_document', arguments: { id: 'nope' } });
  assert.equal(bad.isError, true, `get_document("nope") did not fail: ${JSON.stringify(bad)}`);
  const text = bad.content.filter((c) => c.type === 'text').map((c) => c.text).join(' ');
  assert.match(text, /nope/, `unclear error message: ${text}`);
  assert.match(text, /search_documents/, `unclear error message: ${text}`);
  assert.equal(bad.structuredContent, undefined);
}

async function checkReadResource(client) {
  const { resourceTemplates } = await client.listResourceTemplates();
  assert.ok(resourceTemplates.some((t) => t.uriTemplate === 'docs://{id}'), JSON.stringify(resourceTemplates));
  const found = await client.callTool({ name: 'search_documents', arguments: { query: 'idle timeout', limit: 1 } });
  const id = found.structuredContent.hits[0].id;
  const read = await client.readResource({ uri: `docs://${id}` });
  assert.equal(read.contents.length, 1);
  assert.equal(read.contents[0].uri, `docs://${id}`);
  assert.ok(read.contents[0].text?.trim(), 'empty resource text');
}

// ----------------------------------------------------------------- HTTP

for (const { name, mode } of MODES) {
  describe(`Streamable HTTP, ${name}`, { timeout: TIMEOUT_MS }, () => {
    const cases = {
      'lists tools (readOnlyHint)': async ({ client }) => checkListTools(client),
      'search_documents then get_document': async ({ client }) => checkSearchThenGet(client),
      'get_document("nope") is a tool error': async ({ client }) => checkBadCall(client),
      'reads docs://{id}': async ({ client }) => checkReadResource(client),
    };
    for (const [title, body] of Object.entries(cases)) {
      test(title, async () => {
        const conn = await connectHttp(mode);
        try {
          // Every mode sends initialize or server/discover, and both carry serverInfo.
          assert.equal(conn.client.getServerVersion()?.name, 'mcpship');
          await body(conn);
          checkEra(conn, name);
        } finally {
          await closeHttp(conn);
        }
      });
    }
  });
}

test('Streamable HTTP, legacy: a terminated session is gone (404)', { timeout: TIMEOUT_MS }, async () => {
  const conn = await connectHttp('legacy');
  const session = conn.transport.sessionId;
  assert.ok(session);
  await closeHttp(conn);
  const del = conn.wire.find((e) => e.method === 'DELETE');
  assert.ok(del, `SDK sent no DELETE:\n${dump(conn.wire)}`);
  assert.ok(del.status < 300, `DELETE answered ${del.status}`);
  const reply = await fetch(env('MCPSHIP_URL'), {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-session-id': session,
      'mcp-protocol-version': LEGACY,
    },
    body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/list' }),
  });
  assert.equal(reply.status, 404, `terminated session still answered ${reply.status}: ${await reply.text()}`);
});

// ----------------------------------------------------------------- stdio

describe('stdio', { timeout: TIMEOUT_MS }, () => {
  const dirs = [];
  after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  for (const { name, mode } of MODES) {
    test(`${name}: lists tools, searches, gets, fails cleanly`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'mcpship-e2e-ts-'));
      dirs.push(dir);
      const transport = new StdioClientTransport({
        command: resolve(env('MCPSHIP_BIN')),
        args: ['serve', '--stdio'],
        env: { DATABASE_URL: `sqlite://${dir}/docs.db`, LOG_LEVEL: 'warn' },
        cwd: dir,
        stderr: 'inherit',
      });
      const client = new Client({ name: 'mcpship-e2e', version: '0.0.0' }, { versionNegotiation: { mode } });
      await client.connect(transport);
      try {
        assert.equal(client.getNegotiatedProtocolVersion(), name === 'legacy' ? LEGACY : MODERN);
        await checkListTools(client);
        await checkSearchThenGet(client);
        await checkBadCall(client);
      } finally {
        await client.close();
      }
    });
  }
});
