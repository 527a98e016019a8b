/**
 * The 2026-07-28 path of an endpoint over an in-memory SessionHost that
 * records what reaches it: trace context goes upstream and the envelope does
 * not, apiary's legacy-range codes never reach a modern client, each request
 * leaves no session behind, and an endpoint without a token marks its lists
 * public.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { compilePolicies } from '../src/api/access.js';
import { NO_TELEMETRY } from '../src/api/gate.js';
import { defaultAccess, Gatekeeper } from '../src/mcp/gatekeeper.js';
import { HttpEndpoint } from '../src/mcp/http-endpoint.js';
import { ErrorCodes, errorResponse, isRequest, type JsonRpcMessage, type JsonRpcRequest } from '../src/mcp/jsonrpc.js';
import { SessionTable } from './helpers/session-host.js';

/** Answers initialize with a tools server; tools/call as `call` says; remembers every request. */
class RecordingHost extends SessionTable {
  readonly requests: JsonRpcRequest[] = [];
  call: (request: JsonRpcRequest) => JsonRpcMessage = (r) => ({ jsonrpc: '2.0', id: r.id, result: { content: [{ type: 'text', text: 'ok' }] } });

  fromClient(id: string, message: JsonRpcMessage): Promise<void> {
    if (!isRequest(message)) return Promise.resolve();
    this.requests.push(message);
    const deliver = this.sessions.get(id);
    if (message.method === 'initialize') {
      deliver?.({ jsonrpc: '2.0', id: message.id, result: { protocolVersion: '2025-11-25', capabilities: { tools: {} }, serverInfo: { name: 'host', version: '1' } } }, message.id);
    } else if (message.method === 'tools/list') {
      deliver?.({ jsonrpc: '2.0', id: message.id, result: { tools: ['zeta', 'alpha', 'mid'].map((name) => ({ name, inputSchema: { type: 'object' } })) } }, message.id);
    } else {
      deliver?.(this.call(message), message.id);
    }
    return Promise.resolve();
  }
}

const endpoints: HttpEndpoint[] = [];
afterEach(async () => {
  await Promise.all(endpoints.splice(0).map((e) => e.close()));
});

async function open(): Promise<{ endpoint: HttpEndpoint; host: RecordingHost }> {
  const host = new RecordingHost();
  const endpoint = new HttpEndpoint(host, 0);
  await endpoint.listen();
  endpoints.push(endpoint);
  return { endpoint, host };
}

const ENVELOPE = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} };

async function modern(url: string, method: string, params: Record<string, unknown>, name?: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', 'MCP-Protocol-Version': '2026-07-28', 'Mcp-Method': method, ...(name ? { 'Mcp-Name': name } : {}) },
    body: JSON.stringify({ jsonrpc: '2.0', id: 7, method, params: { ...params, _meta: { ...ENVELOPE, ...(params['_meta'] as object) } } }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('the 2026-07-28 path of an endpoint', () => {
  it('passes traceparent and tracestate upstream, not the envelope, and leaves no session behind', async () => {
    const { endpoint, host } = await open();
    const trace = { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', tracestate: 'apiary=1' };
    const answer = await modern(endpoint.url, 'tools/call', { name: 'echo', arguments: {}, _meta: trace }, 'echo');
    expect(answer.status).toBe(200);
    expect(answer.body['result']).toMatchObject({ resultType: 'complete', content: [{ type: 'text', text: 'ok' }] });
    const call = host.requests.find((r) => r.method === 'tools/call')!;
    expect(call.params).toEqual({ name: 'echo', arguments: {}, _meta: trace });
    expect(host.sessions.size).toBe(0);
  });

  it("turns apiary's -32001 and -32002 into codes outside the JSON-RPC range, and keeps a server's own codes", async () => {
    const { endpoint, host } = await open();
    host.call = (r) => errorResponse(r.id, ErrorCodes.ServerUnavailable, 'MCP server "x" is not ready');
    expect((await modern(endpoint.url, 'tools/call', { name: 'a' }, 'a')).body['error']).toMatchObject({ code: -31001, message: 'MCP server "x" is not ready' });
    host.call = (r) => errorResponse(r.id, ErrorCodes.ServerRestarted, 'restarted');
    expect((await modern(endpoint.url, 'tools/call', { name: 'a' }, 'a')).body['error']).toMatchObject({ code: -31002 });
    host.call = (r) => errorResponse(r.id, ErrorCodes.InvalidParams, 'bad arguments');
    expect((await modern(endpoint.url, 'tools/call', { name: 'a' }, 'a')).body['error']).toMatchObject({ code: -32602 });
  });

  it('lists tools sorted by name, public to caches when the endpoint has no token', async () => {
    const { endpoint } = await open();
    const listed = await modern(endpoint.url, 'tools/list', {});
    expect(listed.body['result']).toMatchObject({ tools: [{ name: 'alpha' }, { name: 'mid' }, { name: 'zeta' }], ttlMs: 1000, cacheScope: 'public', resultType: 'complete' });
  });

  it('says private to caches once a Gateway turns authentication on while the endpoint serves (lists may differ per caller from then on)', async () => {
    const host = new RecordingHost();
    const gate = new Gatekeeper(defaultAccess(undefined));
    const endpoint = new HttpEndpoint(host, 0, { gate });
    await endpoint.listen();
    endpoints.push(endpoint);
    expect((await modern(endpoint.url, 'tools/list', {})).body['result']).toMatchObject({ cacheScope: 'public' });
    const token = 'a-token-of-forty-characters-0123456789abcdef';
    gate.configure({ mode: 'token', token, policies: compilePolicies([], 'token'), telemetry: NO_TELEMETRY });
    const res = await fetch(endpoint.url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', 'MCP-Protocol-Version': '2026-07-28', 'Mcp-Method': 'tools/list', Authorization: `Bearer ${token}` },
      body: JSON.stringify({ jsonrpc: '2.0', id: 8, method: 'tools/list', params: { _meta: ENVELOPE } }),
    });
    expect(((await res.json()) as { result: unknown }).result).toMatchObject({ cacheScope: 'private' });
  });

  it('GET and DELETE under the 2026-07-28 version header get 405 (that revision has no sessions and no GET stream)', async () => {
    const { endpoint } = await open();
    for (const method of ['GET', 'DELETE']) {
      const res = await fetch(endpoint.url, { method, headers: { Accept: 'text/event-stream', 'MCP-Protocol-Version': '2026-07-28' } });
      await res.arrayBuffer();
      expect(res.status).toBe(405);
      expect(res.headers.get('allow')).toBe('POST');
    }
  });
});
