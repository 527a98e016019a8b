/**
 * Both MCP revisions at apiary's front door: the SDK v2 client pinned to
 * 2026-07-28 and the SDK v1 client (2025-11-25) side by side, at a stdio
 * server's endpoint and at the aggregate, against server-everything (a 2025
 * server). The refusals of the modern ladder are sent raw, as a client that
 * gets them wrong would send them.
 */
import { createRequire } from 'node:module';
import { Client as ModernClient, StreamableHTTPClientTransport as ModernTransport } from '@modelcontextprotocol/client';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { describe, expect, it } from 'vitest';
import { findCondition } from '../src/api/status.js';
import { readEndpointToken } from '../src/mcp/endpoint-token.js';
import { StateLayout } from '../src/state/layout.js';
import { harness, type Harness } from './helpers/controller.js';

const EVERYTHING = createRequire(import.meta.url).resolve('@modelcontextprotocol/server-everything/dist/index.js');
const MODERN = '2026-07-28';

function everything(name: string): string {
  return `apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata:\n  name: ${name}\nspec:\n  command: node\n  args: [${JSON.stringify(EVERYTHING)}, stdio]\n`;
}

async function ready(h: Harness, name: string): Promise<string> {
  return h.waitFor(`${name} Ready`, async () => {
    const s = await h.status(name);
    return findCondition(s?.conditions, 'Ready')?.status === 'True' && s?.url ? s.url : undefined;
  }, 20_000);
}

function auth(token: string): Record<string, string> {
  return { Authorization: `Bearer ${token}` };
}

async function modernClient(url: string, token: string, capabilities: Record<string, unknown> = {}): Promise<ModernClient> {
  const client = new ModernClient({ name: 'modern-test', version: '1' }, { capabilities, versionNegotiation: { mode: { pin: MODERN } } });
  await client.connect(new ModernTransport(new URL(url), { requestInit: { headers: auth(token) } }));
  return client;
}

async function legacyClient(url: string, token: string): Promise<Client> {
  const client = new Client({ name: 'legacy-test', version: '1' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: auth(token) } }));
  return client;
}

const ENVELOPE = { 'io.modelcontextprotocol/protocolVersion': MODERN, 'io.modelcontextprotocol/clientCapabilities': {} };

/** One raw POST: its status and its JSON body. */
async function post(url: string, headers: Record<string, string>, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', ...headers }, body: JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
}

function modernHeaders(method: string, token: string, extra: Record<string, string> = {}): Record<string, string> {
  return { 'MCP-Protocol-Version': MODERN, 'Mcp-Method': method, ...auth(token), ...extra };
}

function sorted(names: string[]): string[] {
  return [...names].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

describe('both MCP revisions at the front door', () => {
  it("a 2026-07-28 client and a 2025 client use a stdio server's endpoint side by side; tools come sorted in both", async () => {
    const h = await harness();
    await h.write('e.yaml', everything('everything'));
    await h.start();
    const url = await ready(h, 'everything');
    const token = (await readEndpointToken(new StateLayout(h.stateDir)))!;

    const modern = await modernClient(url, token);
    expect(modern.getNegotiatedProtocolVersion()).toBe(MODERN);
    expect(modern.getDiscoverResult()?.supportedVersions).toEqual([MODERN, '2025-11-25']);
    expect(modern.getServerVersion()?.name).toBe((await h.status('everything'))?.serverInfo?.name);
    const legacy = await legacyClient(url, token);

    const modernNames = (await modern.listTools()).tools.map((t) => t.name);
    const legacyNames = (await legacy.listTools()).tools.map((t) => t.name);
    expect(modernNames).toContain('echo');
    expect(modernNames).toEqual(sorted(modernNames));
    expect(legacyNames).toEqual(modernNames);

    const [a, b] = await Promise.all([
      modern.callTool({ name: 'echo', arguments: { message: 'from 2026' } }),
      legacy.callTool({ name: 'echo', arguments: { message: 'from 2025' } }),
    ]);
    expect(a.content).toEqual([{ type: 'text', text: 'Echo: from 2026' }]);
    expect(b.content).toEqual([{ type: 'text', text: 'Echo: from 2025' }]);
    await modern.close();
    await legacy.close();
  });

  it('the modern ladder: token, version, Mcp-Method, envelope; list results carry resultType, ttlMs and cacheScope; a legacy session with a wrong version gets 400', async () => {
    const h = await harness();
    await h.write('e.yaml', everything('everything'));
    await h.start();
    const url = await ready(h, 'everything');
    const token = (await readEndpointToken(new StateLayout(h.stateDir)))!;
    const list = { jsonrpc: '2.0', id: 1, method: 'tools/list', params: { _meta: ENVELOPE } };

    const anonymous = await post(url, { 'MCP-Protocol-Version': MODERN, 'Mcp-Method': 'tools/list' }, list);
    expect(anonymous.status).toBe(401);

    const listed = await post(url, modernHeaders('tools/list', token), list);
    expect(listed.status).toBe(200);
    expect(listed.body['result']).toMatchObject({ resultType: 'complete', ttlMs: 1000, cacheScope: 'private' });

    const discover = await post(url, modernHeaders('server/discover', token), { jsonrpc: '2.0', id: 2, method: 'server/discover', params: { _meta: ENVELOPE } });
    expect(discover.body['result']).toMatchObject({ supportedVersions: [MODERN, '2025-11-25'], capabilities: { tools: {} }, resultType: 'complete' });

    const old = { 'io.modelcontextprotocol/protocolVersion': '1999-01-01', 'io.modelcontextprotocol/clientCapabilities': {} };
    const wrongVersion = await post(url, modernHeaders('tools/list', token, { 'MCP-Protocol-Version': '1999-01-01' }), { ...list, params: { _meta: old } });
    expect(wrongVersion.status).toBe(400);
    expect(wrongVersion.body['error']).toMatchObject({ code: -32022, data: { supported: [MODERN, '2025-11-25'], requested: '1999-01-01' } });

    const noMethod = await post(url, { 'MCP-Protocol-Version': MODERN, ...auth(token) }, list);
    expect(noMethod.status).toBe(400);
    expect(noMethod.body['error']).toMatchObject({ code: -32020 });

    const noEnvelope = await post(url, modernHeaders('tools/list', token), { ...list, params: {} });
    expect(noEnvelope.status).toBe(400);
    expect(noEnvelope.body['error']).toMatchObject({ code: -32602 });

    // A 2025 session: the version header it sends must be one apiary speaks.
    const init = await fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', ...auth(token) },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }),
    });
    const session = init.headers.get('mcp-session-id')!;
    await init.text();
    const ok = await post(url, { 'Mcp-Session-Id': session, 'MCP-Protocol-Version': '2025-11-25', ...auth(token) }, { jsonrpc: '2.0', id: 2, method: 'tools/list' });
    expect(ok.status).toBe(200);
    const bad = await post(url, { 'Mcp-Session-Id': session, 'MCP-Protocol-Version': '2099-01-01', ...auth(token) }, { jsonrpc: '2.0', id: 3, method: 'tools/list' });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('2099-01-01');
  });

  it("a server asking a modern client for sampling mid-call, under the controller with its token: input_required, answered by the client's handler on the retry, and the call completes", async () => {
    const h = await harness();
    await h.write('e.yaml', everything('everything'));
    await h.start();
    const url = await ready(h, 'everything');
    const token = (await readEndpointToken(new StateLayout(h.stateDir)))!;
    const modern = await modernClient(url, token, { sampling: {} });
    modern.setRequestHandler('sampling/createMessage', () => ({ role: 'assistant', content: { type: 'text', text: 'sampled by the client' }, model: 'test', stopReason: 'endTurn' }));
    const result = await modern.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'hi', maxTokens: 5 } });
    expect(JSON.stringify(result.content)).toContain('sampled by the client');
    await modern.close();
  });

  it('the aggregate answers a 2026-07-28 client beside a 2025 one: <server>__<tool>, sorted', async () => {
    const h = await harness();
    await h.write('e.yaml', everything('everything'));
    const controller = await h.start();
    await ready(h, 'everything');
    const url = controller.aggregateUrl!;
    const token = (await readEndpointToken(new StateLayout(h.stateDir)))!;
    const modern = await modernClient(url, token);
    expect(modern.getServerVersion()?.name).toBe('apiary');
    expect(modern.getDiscoverResult()?.supportedVersions).toEqual([MODERN, '2025-11-25']);
    const legacy = await legacyClient(url, token);
    const names = (await modern.listTools()).tools.map((t) => t.name);
    expect(names).toContain('everything__echo');
    expect(names).toEqual(sorted(names));
    expect((await legacy.listTools()).tools.map((t) => t.name)).toEqual(names);
    const echo = await modern.callTool({ name: 'everything__echo', arguments: { message: 'one url, 2026' } });
    expect(echo.content).toEqual([{ type: 'text', text: 'Echo: one url, 2026' }]);
    await expect(modern.callTool({ name: 'nowhere__x', arguments: {} })).rejects.toThrow(/server "nowhere" is not Ready/);
    await modern.close();
    await legacy.close();
  });

  it("an HTTP server's proxy answers a 2026-07-28 client beside a 2025 one, spec.tools applied, tools sorted in both", async () => {
    const h = await harness();
    await h.write('e.yaml', `${everything('web').replace(', stdio]', ', streamableHttp]')}  transport: streamable-http\n  tools:\n    deny: [get-env]\n`);
    await h.start();
    const url = await ready(h, 'web');
    const token = (await readEndpointToken(new StateLayout(h.stateDir)))!;
    const modern = await modernClient(url, token);
    expect(modern.getDiscoverResult()?.supportedVersions).toEqual([MODERN, '2025-11-25']);
    const legacy = await legacyClient(url, token);
    const names = (await modern.listTools()).tools.map((t) => t.name);
    expect(names).toContain('echo');
    expect(names).not.toContain('get-env');
    expect(names).toEqual(sorted(names));
    expect((await legacy.listTools()).tools.map((t) => t.name)).toEqual(names);
    const [a, b] = await Promise.all([
      modern.callTool({ name: 'echo', arguments: { message: 'proxied 2026' } }),
      legacy.callTool({ name: 'echo', arguments: { message: 'proxied 2025' } }),
    ]);
    expect(a.content).toEqual([{ type: 'text', text: 'Echo: proxied 2026' }]);
    expect(b.content).toEqual([{ type: 'text', text: 'Echo: proxied 2025' }]);
    await expect(modern.callTool({ name: 'get-env', arguments: {} })).rejects.toThrow(/spec\.tools keeps it from clients/);
    const anonymous = await post(url, { 'MCP-Protocol-Version': MODERN, 'Mcp-Method': 'tools/list' }, { jsonrpc: '2.0', id: 1, method: 'tools/list', params: { _meta: ENVELOPE } });
    expect(anonymous.status).toBe(401);
    await modern.close();
    await legacy.close();
  });

  it("the proxy sorts tools for a client of the legacy HTTP+SSE transport too (the answer travels on the /sse stream)", async () => {
    const h = await harness();
    await h.write('e.yaml', `${everything('old').replace(', stdio]', ', sse]')}  transport: sse\n`);
    await h.start();
    const url = await ready(h, 'old');
    const token = (await readEndpointToken(new StateLayout(h.stateDir)))!;
    const client = new Client({ name: 'sse-client', version: '1' });
    await client.connect(new SSEClientTransport(new URL(url), { requestInit: { headers: auth(token) } }));
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names).toContain('echo');
    expect(names).toEqual(sorted(names));
    await client.close();
  });
});
