/**
 * Both MCP revisions at a hosted server's endpoint (spec.remote, a server
 * apiary does not run): a 2026-07-28 client (the SDK v2 client pinned to it)
 * and a 2025 client (the SDK v1 client) side by side, in front of a hosted
 * 2026-07-28 server (the SDK v2's createMcpHandler, modern only) and in
 * front of a hosted 2025 server (server-everything over Streamable HTTP).
 * Each hosted server is a process the test starts; apiary only knows its URL.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Client as ModernClient, StreamableHTTPClientTransport as ModernTransport } from '@modelcontextprotocol/client';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { ResourceUpdatedNotificationSchema, SubscribeRequestSchema, UnsubscribeRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { createServer, type Server as HttpServer } from 'node:http';
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { findCondition } from '../src/api/status.js';
import { readEndpointToken } from '../src/mcp/endpoint-token.js';
import { StateLayout } from '../src/state/layout.js';
import { harness, type Harness } from './helpers/controller.js';
import { freePort } from './helpers/ports.js';
import { waitFor } from './helpers/wait.js';

const EVERYTHING = createRequire(import.meta.url).resolve('@modelcontextprotocol/server-everything/dist/index.js');
const MODERN_SERVER = fileURLToPath(new URL('./fixtures/servers/modern-server.mjs', import.meta.url));
const MODERN = '2026-07-28';

const children: ChildProcess[] = [];
const servers: HttpServer[] = [];
afterEach(async () => {
  for (const child of children.splice(0)) child.kill();
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

/**
 * A hosted 2025 server (the SDK v1's, with sessions) offering one resource
 * that can be subscribed to: `touch()` tells each session subscribed to it
 * that it changed; `subscribed` is who is subscribed now.
 */
async function subscribable(): Promise<{ url: string; uri: string; touch: () => Promise<void>; subscribed: Set<string> }> {
  const uri = 'note://one';
  const subscribed = new Set<string>();
  const sessions = new Map<string, { mcp: McpServer; transport: StreamableHTTPServerTransport }>();
  const http = createServer((req, res) => {
    const id = req.headers['mcp-session-id'];
    const known = typeof id === 'string' ? sessions.get(id) : undefined;
    if (known !== undefined) return void known.transport.handleRequest(req, res);
    const mcp = new McpServer({ name: 'notes', version: '1' }, { capabilities: { resources: { subscribe: true } } });
    mcp.registerResource('one', uri, {}, () => ({ contents: [{ uri, text: 'one' }] }));
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({ sessionIdGenerator: randomUUID, onsessioninitialized: (sid) => void sessions.set(sid, { mcp, transport }) });
    mcp.server.setRequestHandler(SubscribeRequestSchema, (r) => (subscribed.add(`${transport.sessionId} ${r.params.uri}`), {}));
    mcp.server.setRequestHandler(UnsubscribeRequestSchema, (r) => (subscribed.delete(`${transport.sessionId} ${r.params.uri}`), {}));
    void mcp.connect(transport).then(() => transport.handleRequest(req, res));
  });
  servers.push(http);
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const touch = async (): Promise<void> => {
    for (const [sid, { mcp }] of sessions) if (subscribed.has(`${sid} ${uri}`)) await mcp.server.sendResourceUpdated({ uri });
  };
  return { url: `http://127.0.0.1:${(http.address() as { port: number }).port}/mcp`, uri, touch, subscribed };
}

/** A hosted server: a process listening on a port of its own, ready once it says so on stderr. */
async function hosted(args: string[], listening: RegExp): Promise<string> {
  const port = await freePort();
  const child = spawn(process.execPath, args, { env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    let said = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      said += chunk;
      if (listening.test(said)) resolve();
    });
    child.once('exit', (code) => reject(new Error(`the hosted server exited (${code}) before listening: ${said}`)));
  });
  return `http://127.0.0.1:${port}/mcp`;
}

async function fronted(url: string): Promise<{ h: Harness; endpoint: string; aggregate: string; token: string }> {
  const h = await harness();
  await h.write('hosted.yaml', `apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata:\n  name: hosted\nspec:\n  remote:\n    url: ${url}\n`);
  const controller = await h.start();
  const endpoint = await h.waitFor('hosted Ready', async () => {
    const s = await h.status('hosted');
    return findCondition(s?.conditions, 'Ready')?.status === 'True' && s?.url ? s.url : undefined;
  }, 20_000);
  return { h, endpoint, aggregate: controller.aggregateUrl!, token: (await readEndpointToken(new StateLayout(h.stateDir)))! };
}

async function modernClient(url: string, token: string): Promise<ModernClient> {
  const client = new ModernClient({ name: 'modern-test', version: '1' }, { versionNegotiation: { mode: { pin: MODERN } } });
  await client.connect(new ModernTransport(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
  return client;
}

async function legacyClient(url: string, token: string): Promise<Client> {
  const client = new Client({ name: 'legacy-test', version: '1' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
  return client;
}

/** Both clients call `echo` at once ('hosted 2026', 'hosted 2025', as `args` names it): the text of each answer. */
async function echoes(modern: ModernClient, legacy: Client, args: (text: string) => Record<string, unknown>): Promise<string[]> {
  const answers = await Promise.all([modern.callTool({ name: 'echo', arguments: args('hosted 2026') }), legacy.callTool({ name: 'echo', arguments: args('hosted 2025') })]);
  return answers.map((a) => (a.content as Array<{ text?: string }>).map((c) => c.text ?? '').join(''));
}

/** The progress each client heard on a call of `tool` (the call succeeding), the 2026-07-28 client's first. */
async function heardProgress(modern: ModernClient, legacy: Client, tool: string, args: Record<string, unknown>): Promise<number[][]> {
  const heard: number[][] = [[], []];
  const calls = [
    await modern.callTool({ name: tool, arguments: args }, { onprogress: (p) => heard[0]!.push(p.progress) }),
    await legacy.callTool({ name: tool, arguments: args }, undefined, { onprogress: (p) => heard[1]!.push(p.progress) }),
  ];
  for (const call of calls) expect(call.isError ?? false).toBe(false);
  return heard;
}

describe('both revisions at a hosted server (spec.remote)', () => {
  it("a listener's resourceSubscriptions at a hosted 2025 server's proxy: subscribed at the server, its updates heard tagged, unsubscribed at the stream's end", async () => {
    const notes = await subscribable();
    const { endpoint, token } = await fronted(notes.url);
    const modern = await modernClient(endpoint, token);
    const updates: Array<{ uri: string; meta: Record<string, unknown> }> = [];
    modern.setNotificationHandler('notifications/resources/updated', (n) => void updates.push({ uri: n.params.uri, meta: (n.params._meta ?? {}) as Record<string, unknown> }));
    const subscription = await modern.listen({ resourceSubscriptions: [notes.uri] });
    expect(subscription.honoredFilter).toEqual({ resourceSubscriptions: [notes.uri] });
    await waitFor('the hosted server subscribed', () => notes.subscribed.size === 1, 10_000, { observe: () => notes.subscribed });
    await notes.touch();
    const update = await waitFor('the update on the listen stream', () => updates[0], 10_000, { observe: () => updates });
    expect(update.uri).toBe(notes.uri);
    expect(update.meta['io.modelcontextprotocol/subscriptionId']).toBeDefined();
    await subscription.close();
    await waitFor('the hosted server unsubscribed', () => notes.subscribed.size === 0, 10_000, { observe: () => notes.subscribed });
    await modern.close();
  });

  it("at the aggregate, a hosted 2025 server's resource is subscribed as apiary://hosted/<uri> on the client's own session with it, and its updates come back under that URI", async () => {
    const notes = await subscribable();
    const { aggregate, token } = await fronted(notes.url);
    const client = new Client({ name: 'aggregate-subscriber', version: '1' });
    const heard: string[] = [];
    client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void heard.push(n.params.uri));
    await client.connect(new StreamableHTTPClientTransport(new URL(aggregate), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
    const uri = `apiary://hosted/${notes.uri}`;
    await client.subscribeResource({ uri });
    expect(notes.subscribed.size).toBe(1);
    await notes.touch();
    await waitFor('the update at the aggregate client', () => heard.length > 0, 10_000, { observe: () => heard });
    expect(heard).toEqual([uri]);
    await client.unsubscribeResource({ uri });
    expect(notes.subscribed.size).toBe(0);
    await client.close();
  });

  it("a listener's resourceSubscriptions at a hosted 2026-07-28 server's proxy: made on a listen stream of apiary's with the server, its updates heard", async () => {
    const url = await hosted([MODERN_SERVER, '--http', '--resources'], /modern server on/);
    const { endpoint, token } = await fronted(url);
    const modern = await modernClient(endpoint, token);
    const updates: string[] = [];
    modern.setNotificationHandler('notifications/resources/updated', (n) => void updates.push(n.params.uri));
    const subscription = await modern.listen({ resourceSubscriptions: ['note://one'] });
    expect(subscription.honoredFilter).toEqual({ resourceSubscriptions: ['note://one'] });
    await waitFor('the update on the listen stream', async () => {
      await modern.callTool({ name: 'touch', arguments: {} });
      return updates.length > 0;
    }, 10_000, { observe: () => updates, intervalMs: 200 });
    expect(updates[0]).toBe('note://one');
    await subscription.close();
    await modern.close();
  });

  it('a hosted 2026-07-28 server answers a 2026-07-28 client and a 2025 client side by side', async () => {
    const url = await hosted([MODERN_SERVER, '--http', '--mrtr'], /modern server on/);
    const { endpoint, token } = await fronted(url);
    const modern = await modernClient(endpoint, token);
    expect(modern.getNegotiatedProtocolVersion()).toBe(MODERN);
    expect(modern.getServerVersion()?.name).toBe('modern');
    const legacy = await legacyClient(endpoint, token);
    expect(legacy.getServerVersion()?.name).toBe('modern');
    const modernNames = (await modern.listTools()).tools.map((t) => t.name);
    expect(modernNames).toEqual(['ask', 'count', 'echo', 'greet', 'nag', 'sample', 'where']);
    expect((await legacy.listTools()).tools.map((t) => t.name)).toEqual(modernNames);
    expect(await echoes(modern, legacy, (text) => ({ text }))).toEqual(['modern echo: hosted 2026', 'modern echo: hosted 2025']);
    // The server's progress reaches each client on its own request.
    expect(await heardProgress(modern, legacy, 'count', {})).toEqual([[1, 2], [1, 2]]);
    await modern.close();
    await legacy.close();
  });

  it('a hosted 2025 server (server-everything over Streamable HTTP) answers a 2026-07-28 client and a 2025 client side by side', async () => {
    const url = await hosted([EVERYTHING, 'streamableHttp'], /listening on port/);
    const { endpoint, token } = await fronted(url);
    const modern = await modernClient(endpoint, token);
    expect(modern.getNegotiatedProtocolVersion()).toBe(MODERN);
    expect(modern.getDiscoverResult()?.supportedVersions).toEqual([MODERN, '2025-11-25']);
    const legacy = await legacyClient(endpoint, token);
    const modernNames = (await modern.listTools()).tools.map((t) => t.name);
    expect(modernNames).toContain('echo');
    expect((await legacy.listTools()).tools.map((t) => t.name)).toEqual(modernNames);
    expect(await echoes(modern, legacy, (message) => ({ message }))).toEqual(['Echo: hosted 2026', 'Echo: hosted 2025']);
    // The server's progress reaches each client on its own request.
    expect(await heardProgress(modern, legacy, 'trigger-long-running-operation', { duration: 0.3, steps: 3 })).toEqual([[1, 2, 3], [1, 2, 3]]);
    await modern.close();
    await legacy.close();
  });
});
