/**
 * The HTTP endpoint's sibling of the manifest fuzzer: random and malformed
 * JSON-RPC, headers and bodies against a real endpoint in front of a real
 * stdio server. Every request gets an HTTP answer (never a hang, a reset or
 * a 500), and afterwards a well-behaved client still works.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { HttpEndpoint } from '../src/mcp/http-endpoint.js';
import { tinyEndpoint, type TinyEndpoint } from './helpers/tiny-endpoint.js';

let tiny: TinyEndpoint;
let endpoint: HttpEndpoint;

beforeAll(async () => {
  tiny = await tinyEndpoint('fuzzed', { readyWaitMs: 2_000, ready: true });
  endpoint = tiny.endpoint;
});

afterAll(() => tiny.close());

const id = fc.oneof(fc.integer(), fc.string({ maxLength: 8 }), fc.constant(null), fc.double(), fc.boolean(), fc.constant(undefined));
const method = fc.oneof(fc.constantFrom('initialize', 'tools/list', 'tools/call', 'ping', 'notifications/cancelled', 'notifications/initialized', 'resources/read'), fc.string({ maxLength: 12 }), fc.integer(), fc.constant(null));
const message = fc.record(
  {
    jsonrpc: fc.oneof(fc.constant('2.0'), fc.constant('1.0'), fc.integer(), fc.constant(undefined)),
    id,
    method,
    params: fc.oneof(fc.object({ maxDepth: 2 }), fc.array(fc.integer(), { maxLength: 3 }), fc.string({ maxLength: 8 }), fc.constant(undefined)),
    result: fc.oneof(fc.object({ maxDepth: 1 }), fc.constant(undefined)),
  },
  { requiredKeys: [] },
);
const body = fc.oneof(
  message.map((m) => JSON.stringify(m)),
  fc.array(message, { maxLength: 6 }).map((batch) => JSON.stringify(batch)),
  fc.json({ maxDepth: 3 }),
  fc.string({ maxLength: 60 }),
  fc.uint8Array({ maxLength: 60 }).map((bytes) => Buffer.from(bytes).toString('latin1')),
);
const request = fc.record({
  httpMethod: fc.constantFrom('POST', 'POST', 'POST', 'GET', 'DELETE', 'PUT', 'OPTIONS'),
  path: fc.constantFrom('/mcp', '/mcp', '/mcp/', '/sse', '/messages', '/messages?sessionId=x', '/nope', '/mcp?x=1'),
  contentType: fc.constantFrom('application/json', 'text/plain', '', 'application/json; charset=utf-8'),
  accept: fc.constantFrom('application/json, text/event-stream', 'application/json', 'text/event-stream', '*/*', ''),
  session: fc.constantFrom('none', 'random', 'valid'),
  origin: fc.constantFrom(undefined, 'http://127.0.0.1:1', 'https://evil.example', 'null'),
  body,
});

let validSession: string | undefined;

type FuzzRequest = typeof request extends fc.Arbitrary<infer T> ? T : never;

async function fire(r: FuzzRequest): Promise<number> {
  const headers: Record<string, string> = {};
  if (r.contentType) headers['Content-Type'] = r.contentType;
  if (r.accept) headers['Accept'] = r.accept;
  if (r.origin) headers['Origin'] = r.origin;
  if (r.session === 'random') headers['Mcp-Session-Id'] = 'not-a-session';
  if (r.session === 'valid' && validSession) headers['Mcp-Session-Id'] = validSession;
  const aborted = new AbortController();
  const timer = setTimeout(() => aborted.abort(), 5_000);
  try {
    const res = await fetch(`http://127.0.0.1:${endpoint.port}${r.path}`, {
      method: r.httpMethod,
      headers,
      ...(r.httpMethod === 'GET' || r.httpMethod === 'OPTIONS' ? {} : { body: r.body }),
      signal: aborted.signal,
    });
    const sid = res.headers.get('mcp-session-id');
    if (sid) validSession = sid;
    // An event stream may stay open by design: the status line is the answer.
    if (res.headers.get('content-type')?.includes('text/event-stream')) aborted.abort();
    else await res.arrayBuffer();
    return res.status;
  } finally {
    clearTimeout(timer);
  }
}

describe('HTTP endpoint fuzzing', () => {
  it('answers every random request with an HTTP status, never 500, and still serves a real client', async () => {
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const status = await fire(r);
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        expect(status).toBeGreaterThanOrEqual(200);
        expect(status).toBeLessThan(500);
      }),
      {
        numRuns: 400,
        // Always among them: an initialize, then well-formed calls in its session, so the mix reaches the server.
        examples: [
          [{ httpMethod: 'POST', path: '/mcp', contentType: 'application/json', accept: 'application/json, text/event-stream', session: 'none', origin: undefined, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'f', version: '1' } } }) }],
          [{ httpMethod: 'POST', path: '/mcp', contentType: 'application/json', accept: 'application/json, text/event-stream', session: 'valid', origin: undefined, body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'ping' }) }],
          [{ httpMethod: 'POST', path: '/mcp', contentType: 'application/json', accept: 'application/json', session: 'valid', origin: undefined, body: JSON.stringify([{ jsonrpc: '2.0', id: 3, method: 'tools/list' }, { jsonrpc: '2.0', id: 3, method: 'ping' }, { jsonrpc: '2.0', method: 5 }]) }],
        ],
      },
    );
    // The mix reached more than the front door.
    expect([...statuses.keys()].some((s) => s === 200 || s === 202)).toBe(true);
    expect(tiny.bridge.isReady()).toBe(true);

    const client = new Client({ name: 'after-fuzz', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(endpoint.url)));
    expect((await client.listTools()).tools.map((t) => t.name)).toEqual(['noop']);
    await client.close();
  }, 120_000);
});
