/**
 * The fast path of the 2026-07-28 front (src/mcp/modern-fast.ts) against the
 * SDK's own: the same request to a front that may take it and to one that
 * serves everything through the SDK's entry gets the same status, type and
 * bytes. The hot methods take it (no SDK `Server` is connected for them);
 * whatever is odd in a request or in the server's answer goes to the SDK.
 * Real servers (server-everything, a modern stdio server made with the SDK
 * v2) behind real Bridges, and a scripted host for the shapes no real
 * server here sends.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Server } from '@modelcontextprotocol/server';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { Aggregate } from '../src/mcp/aggregate.js';
import { Bridge, type Deliver } from '../src/mcp/bridge.js';
import { errorResponse, isRequest, type JsonRpcMessage, type JsonRpcRequest } from '../src/mcp/jsonrpc.js';
import { ModernFront, modernRoute, type SessionHost } from '../src/mcp/modern.js';
import { systemClock } from '../src/util/clock.js';
import { waitFor } from './helpers/wait.js';

const require_ = createRequire(import.meta.url);
const EVERYTHING = require_.resolve('@modelcontextprotocol/server-everything/dist/index.js');
const MODERN_SERVER = fileURLToPath(new URL('./fixtures/servers/modern-server.mjs', import.meta.url));
const ENVELOPE = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} };
/** The body field each method's Mcp-Name repeats. */
const NAMED: Record<string, string> = { 'tools/call': 'name', 'prompts/get': 'name', 'resources/read': 'uri' };

interface Answer {
  status: number;
  type: string | null;
  body: string;
}

interface Case {
  method: string;
  params?: Record<string, unknown>;
  /** Headers instead of (or over) the standard ones the request would carry. */
  headers?: Record<string, string>;
  /**
   * How the fast front answers it: on its own ('fast'), through an SDK
   * Server ('server'), or refused by the SDK's entry before any Server is
   * made ('refused': header and envelope checks, the media type).
   */
  by: 'fast' | 'server' | 'refused';
}

/** A front behind a bare node:http server: the endpoint's checks in front are not what is compared here. */
async function serveFront(front: ModernFront): Promise<{ url: string; server: HttpServer }> {
  const server = createServer((req, res) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (text += chunk));
    req.on('end', () => {
      const body = JSON.parse(text) as unknown;
      const route = modernRoute(req, body);
      if (route === undefined) res.writeHead(400).end('not modern');
      else void front.serve(req, res, body, route);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`, server };
}

/** Both fronts over one host. */
async function pair(host: SessionHost): Promise<{ fast: string; sdk: string }> {
  const fast = new ModernFront(host, { tokenRequired: true });
  const sdk = new ModernFront(host, { tokenRequired: true, sdkOnly: true });
  const [a, b] = await Promise.all([serveFront(fast), serveFront(sdk)]);
  cleanups.push(async () => {
    await Promise.all([fast.close(), sdk.close()]);
    for (const s of [a.server, b.server]) {
      s.closeAllConnections();
      await new Promise((resolve) => s.close(resolve));
    }
  });
  return { fast: a.url, sdk: b.url };
}

let nextId = 1;

async function send(url: string, c: Case, id: number): Promise<Answer> {
  const params = c.params ?? {};
  const named = NAMED[c.method];
  const name = named === undefined ? undefined : params[named];
  const headers: Record<string, string> = {
    'Content-Type': 'application/json',
    Accept: 'application/json, text/event-stream',
    'MCP-Protocol-Version': '2026-07-28',
    'Mcp-Method': c.method,
    ...(typeof name === 'string' ? { 'Mcp-Name': name } : {}),
    ...c.headers,
  };
  const meta = { ...ENVELOPE, ...(params['_meta'] as object | undefined) };
  const res = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id, method: c.method, params: { ...params, _meta: meta } }) });
  return { status: res.status, type: res.headers.get('content-type'), body: await res.text() };
}

/** Sends the case to both fronts: the answers must be the same bytes, and an SDK Server used only where the case says. */
async function compare(urls: { fast: string; sdk: string }, c: Case): Promise<Answer> {
  const id = nextId++;
  const expected = await send(urls.sdk, c, id);
  connects.mockClear();
  const got = await send(urls.fast, c, id);
  const label = `${c.method} ${JSON.stringify(c.params ?? {})} ${JSON.stringify(c.headers ?? {})}`;
  expect(got, label).toEqual(expected);
  expect(connects.mock.calls.length > 0, `${label}: through an SDK Server`).toBe(c.by === 'server');
  return got;
}

const connects = vi.spyOn(Server.prototype, 'connect');
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const clean of cleanups.splice(0)) await clean();
});
afterAll(() => connects.mockRestore());

/** A real stdio server behind a Bridge. */
async function bridged(command: string[]): Promise<{ bridge: Bridge; child: ChildProcess }> {
  const child = spawn(process.execPath, command, { stdio: ['pipe', 'pipe', 'ignore'] });
  const bridge = new Bridge({ name: 'fast', clock: systemClock });
  bridge.attach(child.stdin!, child.stdout!, child.pid!);
  await waitFor('the server ready', () => bridge.isReady(), 30_000, { observe: () => bridge.status() });
  return { bridge, child };
}

describe('the fast path at a 2025 server (server-everything)', () => {
  let everything: { bridge: Bridge; child: ChildProcess };
  beforeAll(async () => {
    everything = await bridged([EVERYTHING, 'stdio']);
  }, 40_000);
  afterAll(() => {
    everything.bridge.close();
    everything.child.kill();
  });

  it('answers tools, prompts and resources with the SDK path bytes, without a Server for each', async () => {
    const urls = await pair(everything.bridge);
    await compare(urls, { method: 'tools/list', by: 'fast' });
    await compare(urls, { method: 'tools/call', params: { name: 'echo', arguments: { message: 'fast' } }, by: 'fast' });
    await compare(urls, { method: 'tools/call', params: { name: 'get-sum', arguments: { a: 2, b: 3 }, _meta: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', progressToken: 7 } }, by: 'fast' });
    await compare(urls, { method: 'tools/call', params: { name: 'get-structured-content', arguments: { location: 'New York' } }, by: 'fast' });
    // Its unknown tool is a result with isError, not a JSON-RPC error.
    await compare(urls, { method: 'tools/call', params: { name: 'no-such-tool', arguments: {} }, by: 'fast' });
    const prompts = JSON.parse((await compare(urls, { method: 'prompts/list', by: 'fast' })).body) as { result: { prompts: { name: string; arguments?: { required?: boolean }[] }[] } };
    const simple = prompts.result.prompts.find((p) => !(p.arguments ?? []).some((a) => a.required))!;
    await compare(urls, { method: 'prompts/get', params: { name: simple.name }, by: 'fast' });
    const resources = JSON.parse((await compare(urls, { method: 'resources/list', by: 'fast' })).body) as { result: { resources: { uri: string }[] } };
    await compare(urls, { method: 'resources/read', params: { uri: resources.result.resources[0]!.uri }, by: 'fast' });
    await compare(urls, { method: 'resources/templates/list', by: 'fast' });
  }, 60_000);

  it('leaves to the SDK what it cannot judge as the SDK does: richer content, bad params, header mismatches, other methods', async () => {
    const urls = await pair(everything.bridge);
    await compare(urls, { method: 'tools/call', params: { name: 'get-tiny-image', arguments: {} }, by: 'server' });
    await compare(urls, { method: 'tools/call', params: { name: 'get-annotated-message', arguments: { messageType: 'error' } }, by: 'server' });
    // Progress before the answer: the SDK opens the SSE response stream, the progress heard so far handed to it.
    const streamed = await compare(urls, { method: 'tools/call', params: { name: 'trigger-long-running-operation', arguments: { duration: 0.2, steps: 2 }, _meta: { progressToken: 'p' } }, by: 'server' });
    expect(streamed.type).toContain('text/event-stream');
    expect(streamed.body.match(/notifications\/progress/g)).toHaveLength(2);
    await compare(urls, { method: 'tools/call', params: { name: 'echo', arguments: [1] }, by: 'server' });
    await compare(urls, { method: 'tools/call', params: { name: 'echo', arguments: { message: 'x' }, _meta: { progressToken: 1.5 } }, by: 'refused' });
    await compare(urls, { method: 'tools/call', params: { name: 'echo', arguments: { message: 'x' }, _meta: { traceparent: 5 } }, by: 'server' });
    await compare(urls, { method: 'tools/call', params: { name: 'echo', arguments: { message: 'x' }, task: { ttl: 1 } }, by: 'server' });
    await compare(urls, { method: 'tools/call', params: { name: 'echo', arguments: { message: 'x' } }, headers: { 'Mcp-Name': 'get-sum' }, by: 'refused' });
    await compare(urls, { method: 'tools/call', params: { name: 'echo', arguments: { message: 'x' } }, headers: { 'Mcp-Name': '' }, by: 'refused' });
    await compare(urls, { method: 'tools/call', params: { name: 'echo', arguments: { message: 'x' } }, headers: { 'Mcp-Name': '=?base64?ZWNobw==?=' }, by: 'server' });
    await compare(urls, { method: 'tools/call', params: { name: 'echo', arguments: { message: 'x' } }, headers: { 'Content-Type': 'text/plain' }, by: 'refused' });
    await compare(urls, { method: 'server/discover', by: 'server' });
    await compare(urls, { method: 'ping', by: 'server' });
  }, 60_000);

  it('answers through the aggregate with the SDK path bytes too: qualified names and URIs, its own listing, its errors left to the SDK', async () => {
    const aggregate = new Aggregate({ readyMembers: () => new Map([['everything', everything.bridge]]) }, 'test');
    cleanups.push(() => Promise.resolve(aggregate.close()));
    const urls = await pair(aggregate);
    await compare(urls, { method: 'tools/list', by: 'fast' });
    await compare(urls, { method: 'tools/call', params: { name: 'everything__echo', arguments: { message: 'through' } }, by: 'fast' });
    await compare(urls, { method: 'prompts/list', by: 'fast' });
    const resources = JSON.parse((await compare(urls, { method: 'resources/list', by: 'fast' })).body) as { result: { resources: { uri: string }[] } };
    await compare(urls, { method: 'resources/read', params: { uri: resources.result.resources[0]!.uri }, by: 'fast' });
    await compare(urls, { method: 'tools/call', params: { name: 'nowhere__echo', arguments: {} }, by: 'server' });
  }, 60_000);
});

describe('the fast path at a 2026-07-28 server', () => {
  it("passes its results (resultType already on them) as the SDK path does, and leaves its input_required to the SDK", async () => {
    const modern = await bridged([MODERN_SERVER]);
    try {
      const urls = await pair(modern.bridge);
      await compare(urls, { method: 'tools/list', by: 'fast' });
      await compare(urls, { method: 'tools/call', params: { name: 'echo', arguments: { text: 'hi' } }, by: 'fast' });
      await compare(urls, { method: 'tools/call', params: { name: 'ask', arguments: {} }, by: 'server' });
      // A method the server does not offer is the SDK's -32601.
      await compare(urls, { method: 'prompts/list', by: 'server' });
    } finally {
      modern.bridge.close();
      modern.child.kill();
    }
  }, 60_000);
});

/** Answers initialize as a server offering everything; every other request with what `answer` gives. */
class ScriptedHost implements SessionHost {
  readonly #sessions = new Map<string, Deliver>();
  answer: (request: JsonRpcRequest) => JsonRpcMessage = (r) => ({ jsonrpc: '2.0', id: r.id, result: {} });

  openSession(deliver: Deliver): string {
    const id = randomUUID();
    this.#sessions.set(id, deliver);
    return id;
  }
  hasSession(id: string): boolean {
    return this.#sessions.has(id);
  }
  closeSession(id: string): void {
    this.#sessions.delete(id);
  }
  fromClient(id: string, message: JsonRpcMessage): Promise<void> {
    const deliver = this.#sessions.get(id);
    if (!isRequest(message) || deliver === undefined) return Promise.resolve();
    if (message.method === 'initialize') {
      const capabilities = { tools: {}, prompts: {}, resources: {}, completions: {} };
      deliver({ jsonrpc: '2.0', id: message.id, result: { protocolVersion: '2025-11-25', capabilities, serverInfo: { name: 'scripted', version: '3', title: 'Scripted' } } }, message.id);
    } else {
      deliver(this.answer(message), message.id);
    }
    return Promise.resolve();
  }
}

describe('the fast path with answers no real server here gives', () => {
  const text = [{ type: 'text', text: 'a' }];
  const results: [method: string, result: unknown, by: Case['by']][] = [
    ['tools/call', { content: text }, 'fast'],
    ['tools/call', { isError: true, structuredContent: { b: 1, a: [2, { d: null, c: 'x' }] }, content: [{ text: 'a', type: 'text' }] }, 'fast'],
    ['tools/call', {}, 'fast'],
    ['tools/call', { structuredContent: { x: 1 } }, 'fast'],
    ['tools/call', { resultType: 'complete', isError: false, content: text }, 'fast'],
    ['tools/call', { content: [{ type: 'text', text: 'a', extra: 1 }] }, 'server'],
    ['tools/call', { content: [{ type: 'text', text: 'a', annotations: { priority: 1 } }] }, 'server'],
    ['tools/call', { content: 'not a list' }, 'server'],
    ['tools/call', { content: text, _meta: { note: 1 } }, 'fast'],
    ['tools/call', { content: text, resultType: 'complete', _meta: { 'io.modelcontextprotocol/serverInfo': { version: '2', name: 'up' }, note: 1 } }, 'fast'],
    ['tools/call', { content: text, _meta: { 'io.modelcontextprotocol/serverInfo': { name: 'up', version: '2', title: 'Up' } } }, 'server'],
    ['tools/call', { content: text, _meta: { 'io.modelcontextprotocol/serverInfo': 5, note: 1 } }, 'server'],
    ['tools/call', { content: text, _meta: { 'io.modelcontextprotocol/related-task': { taskId: 't' } } }, 'server'],
    ['tools/call', { content: text, _meta: 'odd' }, 'server'],
    ['tools/call', { content: text, unknown: 1 }, 'server'],
    ['tools/call', { content: text, isError: 'yes' }, 'server'],
    ['tools/call', { content: text, structuredContent: [1] }, 'server'],
    ['tools/call', { resultType: 'input_required', inputRequests: { name: { method: 'elicitation/create', params: { mode: 'form', message: 'name?', requestedSchema: { type: 'object', properties: {} } } } } }, 'server'],
    ['tools/call', { resultType: 'input_required', requestState: 'opaque' }, 'server'],
    ['tools/call', { resultType: 'later', content: text }, 'server'],
    ['tools/call', 'not an object', 'server'],
    ['tools/list', { tools: [{ name: 'b', execution: { taskSupport: 'optional' }, inputSchema: { type: 'object' } }, { name: 'a', inputSchema: { type: 'object' } }] }, 'fast'],
    ['tools/list', { tools: [], _meta: { 'apiary.dev/missing': ['web'] } }, 'fast'],
    ['tools/list', { tools: [], _meta: { 'io.modelcontextprotocol/serverInfo': { name: 'own', version: '9' } } }, 'fast'],
    ['tools/list', { tools: [], ttlMs: 5, cacheScope: 'public' }, 'fast'],
    ['tools/list', { tools: [], ttlMs: -1, cacheScope: 'everyone' }, 'fast'],
    ['tools/list', { nextCursor: 'c2', tools: [] }, 'fast'],
    ['tools/list', { tools: [], capabilities: { tasks: {} } }, 'server'],
    ['tools/list', { tools: [], supportedVersions: ['x'] }, 'server'],
    ['tools/list', { tools: [], resultType: 'input_required', requestState: 's' }, 'server'],
    ['prompts/list', { prompts: [{ name: 'p' }] }, 'fast'],
    ['prompts/get', { messages: [{ role: 'user', content: { type: 'text', text: 'hi' } }] }, 'fast'],
    ['resources/list', { resources: [{ uri: 'file:///a', name: 'a' }] }, 'fast'],
    ['resources/templates/list', { resourceTemplates: [] }, 'fast'],
    ['resources/read', { contents: [{ uri: 'file:///a', text: 'a' }] }, 'fast'],
    ['resources/read', { contents: [], ttlMs: 60_000 }, 'fast'],
    ['completion/complete', { completion: { values: ['x'], total: 1 } }, 'fast'],
  ];
  const params: Record<string, Record<string, unknown>> = { 'tools/call': { name: 't', arguments: {} }, 'prompts/get': { name: 'p' }, 'resources/read': { uri: 'file:///a' }, 'completion/complete': { ref: { type: 'ref/prompt', name: 'p' }, argument: { name: 'a', value: '' } } };

  it('writes the same bytes as the SDK path, for every shape it takes and every one it leaves', async () => {
    const host = new ScriptedHost();
    const urls = await pair(host);
    for (const [method, result, by] of results) {
      host.answer = (r) => ({ jsonrpc: '2.0', id: r.id, result } as JsonRpcMessage);
      await compare(urls, { method, ...(params[method] ? { params: params[method] } : {}), by });
    }
  }, 60_000);

  it("answers a list whose _meta is no object with the server's own (the SDK's transport drops that answer and leaves the client waiting)", async () => {
    const host = new ScriptedHost();
    const urls = await pair(host);
    host.answer = (r) => ({ jsonrpc: '2.0', id: r.id, result: { tools: [], _meta: 'odd' } as unknown }) as JsonRpcMessage;
    const answer = await send(urls.fast, { method: 'tools/list', by: 'fast' }, nextId++);
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toEqual({ jsonrpc: '2.0', id: nextId - 1, result: { tools: [], _meta: 'odd', resultType: 'complete', ttlMs: 1000, cacheScope: 'private' } });
  });

  it("leaves a server's error to the SDK, with apiary's codes made modern as before", async () => {
    const host = new ScriptedHost();
    const urls = await pair(host);
    host.answer = (r) => errorResponse(r.id, -32001, 'MCP server "x" is not ready');
    const answer = await compare(urls, { method: 'tools/call', params: { name: 't' }, by: 'server' });
    expect(JSON.parse(answer.body)).toMatchObject({ error: { code: -31001 } });
    host.answer = (r) => errorResponse(r.id, -32002, 'gone');
    await compare(urls, { method: 'resources/read', params: { uri: 'file:///a' }, by: 'server' });
  }, 60_000);
});
