/**
 * The aggregate endpoint's sessions with its members, through the official
 * SDK client over HTTP: each aggregate client is its own client at every
 * member (fairness, capabilities, cancellation), a member that never answers
 * a listing is left out after a short wait, and resource URIs say which
 * server they belong to. The members are real Bridges; only the server
 * process behind each is a fixture on in-memory streams.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { Client as ModernClient, StreamableHTTPClientTransport as ModernTransport } from '@modelcontextprotocol/client';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { CreateMessageRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../src/util/clock.js';
import { createLogger, type LogRecord } from '../src/util/logger.js';
import { Aggregate, type AggregateMember, type AggregateOptions, type RemoteMember } from '../src/mcp/aggregate.js';
import { Bridge, MAX_IN_FLIGHT_PER_CLIENT } from '../src/mcp/bridge.js';
import { httpMember } from '../src/mcp/gateway.js';
import { DEFAULT_HEALTH } from '../src/mcp/health.js';
import { HttpEndpoint, type SessionHost } from '../src/mcp/http-endpoint.js';
import { HttpProbe } from '../src/mcp/http-probe.js';
import { ErrorCodes, errorResponse, type Id, type JsonRpcMessage } from '../src/mcp/jsonrpc.js';
import { EXPOSE_ALL } from '../src/mcp/tool-filter.js';
import { waitFor } from './helpers/wait.js';
import { onJsonLines } from './helpers/scripted-server.js';

type Received = JsonRpcMessage & { id?: Id; method?: string; params?: Record<string, unknown> };
/** What the fixture server answers a request with (its result), or undefined to leave it for the test. */
type Handler = (request: Received, ready: boolean) => Record<string, unknown> | undefined;

interface FixtureServer {
  bridge: Bridge;
  received: Received[];
  reply(message: JsonRpcMessage): void;
}

let pid = 5000;

/** A stdio server behind a real Bridge: answers initialize itself, everything else as `handle` says. */
async function fixture(name: string, handle: Handler): Promise<FixtureServer> {
  const toServer = new PassThrough();
  const fromServer = new PassThrough();
  const received: Received[] = [];
  const reply = (message: JsonRpcMessage): void => void fromServer.write(`${JSON.stringify(message)}\n`);
  const bridge = new Bridge({ name, clock: systemClock });
  onJsonLines<Received>(toServer, (message) => {
    received.push(message);
    if (message.method === undefined || message.id === undefined) return;
    if (message.method === 'initialize') {
      reply({ jsonrpc: '2.0', id: message.id, result: { protocolVersion: '2025-06-18', capabilities: { tools: {}, resources: {} }, serverInfo: { name, version: '1' } } });
      return;
    }
    const result = handle(message, bridge.isReady());
    if (result !== undefined) reply({ jsonrpc: '2.0', id: message.id, result } as JsonRpcMessage);
  });
  bridge.attach(toServer, fromServer, pid++);
  await until(`${name} ready`, () => bridge.isReady());
  return { bridge, received, reply };
}

/** Waits for a condition the test's events make true; fails with what was awaited. */
async function until(what: string, condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  await waitFor(what, condition, timeoutMs, { intervalMs: 5 });
}

/** Calls still open when a test fails are rejected at cleanup: that is no news. */
function quiet<T>(...promises: Promise<T>[]): Promise<T>[] {
  for (const p of promises) p.catch(() => undefined);
  return promises;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function serve(members: Record<string, AggregateMember>, options?: AggregateOptions): Promise<string> {
  const aggregate = new Aggregate({ readyMembers: () => new Map(Object.entries(members)) }, 'test', options);
  return serveHost(aggregate, () => aggregate.close());
}

async function serveHost(host: SessionHost, close: () => void = () => undefined): Promise<string> {
  const endpoint = new HttpEndpoint(host, 0);
  await endpoint.listen();
  cleanups.push(async () => {
    await endpoint.close();
    close();
  });
  return endpoint.url;
}

/** The host as the endpoint sees it, counting the tools/call requests that reached it. */
function counting(host: SessionHost): { host: SessionHost; arrived: () => number } {
  let arrived = 0;
  const counted: SessionHost = {
    openSession: (deliver, options) => host.openSession(deliver, options),
    hasSession: (id) => host.hasSession(id),
    closeSession: (id) => host.closeSession(id),
    fromClient: (id, message) => {
      if ('method' in message && message.method === 'tools/call') arrived += 1;
      return host.fromClient(id, message);
    },
  };
  return { host: counted, arrived: () => arrived };
}

async function connectModern(url: string, name: string): Promise<ModernClient> {
  const client = new ModernClient({ name, version: '1' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
  await client.connect(new ModernTransport(new URL(url)));
  cleanups.push(() => client.close());
  return client;
}

async function connect(url: string, name: string, capabilities: Record<string, unknown> = {}): Promise<Client> {
  const client = new Client({ name, version: '1' }, { capabilities });
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  cleanups.push(() => client.close());
  return client;
}

const toolList = (names: string[]): Record<string, unknown> => ({ tools: names.map((name) => ({ name, inputSchema: { type: 'object' } })) });
const listsTools =
  (names: string[]): Handler =>
  (m) =>
    m.method === 'tools/list' ? toolList(names) : undefined;
const argument = (m: Received, key: string): unknown => (m.params?.['arguments'] as Record<string, unknown> | undefined)?.[key];

describe('the aggregate: each client is its own client at every member', () => {
  it('a client that floods a member fills only its own share; another client\'s call reaches the server before any of the flood is answered', async () => {
    const server = await fixture('slow', listsTools(['work']));
    const url = await serve({ slow: server.bridge });
    const flooder = await connect(url, 'flooder');
    const other = await connect(url, 'other');
    const calls = (): Received[] => server.received.filter((m) => m.method === 'tools/call');

    const FLOOD = 40;
    let floodDone = 0;
    const flood = Array.from({ length: FLOOD }, (_, n) =>
      flooder.callTool({ name: 'slow__work', arguments: { from: 'flooder', n } }).then((r) => {
        floodDone += 1;
        return r;
      }),
    );
    void quiet(...flood);
    await until('the flooder fills its share at the server', () => calls().length >= MAX_IN_FLIGHT_PER_CLIENT);
    const mine = quiet(other.callTool({ name: 'slow__work', arguments: { from: 'other' } }))[0]!;
    await until("the other client's call reaches the server", () => calls().some((m) => argument(m, 'from') === 'other'));
    expect(floodDone).toBe(0);
    expect(calls().filter((m) => argument(m, 'from') === 'flooder')).toHaveLength(MAX_IN_FLIGHT_PER_CLIENT);

    // Every call is answered as it reaches the server; none is lost.
    for (let answered = 0; answered < FLOOD + 1; answered++) {
      await until(`call ${answered + 1} at the server`, () => calls().length > answered);
      const call = calls()[answered]!;
      server.reply({ jsonrpc: '2.0', id: call.id!, result: { content: [{ type: 'text', text: `${String(argument(call, 'from'))} ${String(argument(call, 'n'))}` }] } });
    }
    expect((await mine).content).toEqual([{ type: 'text', text: 'other undefined' }]);
    const texts = (await Promise.all(flood)).map((r) => (r.content as { text: string }[])[0]!.text);
    expect(texts).toEqual(Array.from({ length: FLOOD }, (_, n) => `flooder ${n}`));
  }, 60_000);

  it('a 2026-07-28 client that floods fills only its own share too, at the aggregate and at the server\'s own endpoint, though each of its requests is a session of its own', async () => {
    for (const where of ['aggregate', 'endpoint'] as const) {
      const server = await fixture(`slow-${where}`, listsTools(['work']));
      const aggregate = where === 'aggregate' ? new Aggregate({ readyMembers: () => new Map([['slow', server.bridge]]) }, 'test') : undefined;
      const { host, arrived } = counting(aggregate ?? server.bridge);
      const url = await serveHost(host, () => aggregate?.close());
      const tool = aggregate !== undefined ? 'slow__work' : 'work';
      const flooder = await connectModern(url, 'flooder');
      const other = await connectModern(url, 'other');
      const calls = (): Received[] => server.received.filter((m) => m.method === 'tools/call');

      const FLOOD = 24;
      const flood = quiet(...Array.from({ length: FLOOD }, (_, n) => flooder.callTool({ name: tool, arguments: { from: 'flooder', n } })));
      await until(`${where}: the whole flood reached apiary`, () => arrived() >= FLOOD);
      await until(`${where}: the flooder fills its share at the server`, () => calls().length >= MAX_IN_FLIGHT_PER_CLIENT);
      const mine = quiet(other.callTool({ name: tool, arguments: { from: 'other' } }))[0]!;
      await until(`${where}: the other client's call reaches the server`, () => calls().some((m) => argument(m, 'from') === 'other'));
      expect(calls().filter((m) => argument(m, 'from') === 'flooder'), where).toHaveLength(MAX_IN_FLIGHT_PER_CLIENT);

      // Every call is answered as it reaches the server; none is lost.
      for (let answered = 0; answered < FLOOD + 1; answered++) {
        await until(`${where}: call ${answered + 1} at the server`, () => calls().length > answered);
        const call = calls()[answered]!;
        server.reply({ jsonrpc: '2.0', id: call.id!, result: { content: [{ type: 'text', text: `${String(argument(call, 'from'))} ${String(argument(call, 'n'))}` }] } });
      }
      expect((await mine).content).toEqual([{ type: 'text', text: 'other undefined' }]);
      const texts = (await Promise.all(flood)).map((r) => (r.content as { text: string }[])[0]!.text);
      expect(texts.sort()).toEqual(Array.from({ length: FLOOD }, (_, n) => `flooder ${n}`).sort());
    }
  }, 60_000);

  it("a member's sampling request goes to the aggregate client whose call caused it, one that declared sampling", async () => {
    const server = await fixture('asker', listsTools(['ask']));
    const url = await serve({ asker: server.bridge });
    const sampler = await connect(url, 'sampler', { sampling: {} });
    const plain = await connect(url, 'plain');
    const asked: unknown[] = [];
    sampler.setRequestHandler(CreateMessageRequestSchema, (request) => {
      asked.push(request.params.messages);
      return { model: 'm', role: 'assistant', content: { type: 'text', text: 'sampled' } };
    });
    const calls = (): Received[] => server.received.filter((m) => m.method === 'tools/call');

    const samplerCall = quiet(sampler.callTool({ name: 'asker__ask', arguments: { from: 'sampler' } }))[0]!;
    await until("the sampler's call at the server", () => calls().length === 1);
    server.reply({ jsonrpc: '2.0', id: 'srv-1', method: 'sampling/createMessage', params: { messages: [{ role: 'user', content: { type: 'text', text: 'hi' } }], maxTokens: 5 } });
    await until('the answer to the sampling request', () => server.received.some((m) => m.id === 'srv-1' && !('method' in m)));
    expect(server.received.find((m) => m.id === 'srv-1' && !('method' in m))).toEqual({ jsonrpc: '2.0', id: 'srv-1', result: { model: 'm', role: 'assistant', content: { type: 'text', text: 'sampled' } } });
    expect(asked).toHaveLength(1);

    // With the plain client's call in flight too, either call could have asked: stdio does not say which, so
    // the server is refused rather than the sampler shown what may be the plain client's data.
    const plainCall = quiet(plain.callTool({ name: 'asker__ask', arguments: { from: 'plain' } }))[0]!;
    await until("the plain client's call at the server", () => calls().length === 2);
    server.reply({ jsonrpc: '2.0', id: 'srv-2', method: 'sampling/createMessage', params: { messages: [{ role: 'user', content: { type: 'text', text: 'again' } }], maxTokens: 5 } });
    await until('the answer to the second sampling request', () => server.received.some((m) => m.id === 'srv-2' && !('method' in m)));
    expect(server.received.find((m) => m.id === 'srv-2' && !('method' in m))).toMatchObject({ jsonrpc: '2.0', id: 'srv-2', error: { code: -32603 } });
    expect(asked).toHaveLength(1);

    for (const call of calls()) server.reply({ jsonrpc: '2.0', id: call.id!, result: { content: [] } });
    await Promise.all([samplerCall, plainCall]);
  }, 60_000);

  it("a client's sessions at the members open with its first request there and close with its aggregate session", async () => {
    const server = await fixture('s', listsTools(['a']));
    const url = await serve({ s: server.bridge });
    const transport = new StreamableHTTPClientTransport(new URL(url));
    const client = new Client({ name: 'brief', version: '1' });
    await client.connect(transport);
    cleanups.push(() => client.close());
    const other = await connect(url, 'other');
    expect(server.bridge.status().sessions).toBe(0);
    await client.listTools();
    await other.listTools();
    expect(server.bridge.status().sessions).toBe(2);
    await transport.terminateSession();
    await until('its session at the member closed', () => server.bridge.status().sessions === 1);
  }, 60_000);

  it("a member's progress reaches the client whose call it is, under the client's own token", async () => {
    const server = await fixture('slow', listsTools(['work']));
    const url = await serve({ slow: server.bridge });
    const watcher = await connect(url, 'watcher');
    const other = await connect(url, 'other');
    const heard: { watcher: number[]; other: number[] } = { watcher: [], other: [] };
    const calls = (): Received[] => server.received.filter((m) => m.method === 'tools/call');
    const watched = watcher.callTool({ name: 'slow__work', arguments: { from: 'watcher' } }, undefined, { onprogress: (p) => heard.watcher.push(p.progress) });
    const otherCall = other.callTool({ name: 'slow__work', arguments: { from: 'other' } }, undefined, { onprogress: (p) => heard.other.push(p.progress) });
    void quiet(watched, otherCall);
    await until('both calls at the server', () => calls().length === 2);
    const mine = calls().find((m) => argument(m, 'from') === 'watcher')!;
    const token = (mine.params?.['_meta'] as { progressToken: string | number }).progressToken;
    server.reply({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: token, progress: 1, total: 2 } });
    for (const call of calls()) server.reply({ jsonrpc: '2.0', id: call.id!, result: { content: [] } });
    await Promise.all([watched, otherCall]);
    expect(heard).toEqual({ watcher: [1], other: [] });
  }, 60_000);

  it('a cancelled call is cancelled at the member, under the id the member knows it by', async () => {
    const server = await fixture('slow', listsTools(['work']));
    const url = await serve({ slow: server.bridge });
    const client = await connect(url, 'canceller');
    const abort = new AbortController();
    const call = client.callTool({ name: 'slow__work', arguments: {} }, undefined, { signal: abort.signal });
    await until('the call at the server', () => server.received.some((m) => m.method === 'tools/call'));
    const atServer = server.received.find((m) => m.method === 'tools/call')!;
    abort.abort('changed my mind');
    await expect(call).rejects.toThrow();
    await until('notifications/cancelled at the server', () => server.received.some((m) => m.method === 'notifications/cancelled'));
    const cancelled = server.received.find((m) => m.method === 'notifications/cancelled')!;
    expect(cancelled.params?.['requestId']).toBe(atServer.id);
  }, 60_000);
});

/**
 * An HTTP MCP server made with the SDK, one McpServer per session as SDK
 * servers are written: `wait` waits until it is cancelled, `ask` asks its
 * client to sample. What it saw is counted.
 */
async function httpServer(): Promise<{ url: string; cancelled: string[]; started: () => number; sessions: () => number }> {
  const cancelled: string[] = [];
  let started = 0;
  const open = new Map<string, StreamableHTTPServerTransport>();
  const servers: McpServer[] = [];
  const session = async (): Promise<StreamableHTTPServerTransport> => {
    const mcp = new McpServer({ name: 'web', version: '1' });
    servers.push(mcp);
    mcp.registerTool('wait', { description: 'waits for its cancellation' }, (extra) =>
      new Promise((resolve) => {
        started += 1;
        extra.signal.addEventListener('abort', () => {
          cancelled.push(String(extra.signal.reason));
          resolve({ content: [] });
        });
      }),
    );
    mcp.registerTool('count', { description: 'reports progress, then answers' }, async (extra) => {
      const token = extra._meta?.progressToken;
      if (token !== undefined) await extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: 1, total: 2 } });
      return { content: [{ type: 'text', text: 'counted' }] };
    });
    mcp.registerTool('ask', { description: 'asks its client to sample' }, async () => {
      const text = await mcp.server
        .createMessage({ messages: [{ role: 'user', content: { type: 'text', text: 'hi' } }], maxTokens: 5 })
        .then((r) => (r.content as { text: string }).text)
        .catch((err: unknown) => `no sampling: ${(err as Error).message}`);
      return { content: [{ type: 'text', text }] };
    });
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({ sessionIdGenerator: randomUUID, onsessioninitialized: (id) => void open.set(id, transport) });
    transport.onclose = () => {
      if (transport.sessionId !== undefined) open.delete(transport.sessionId);
    };
    await mcp.connect(transport);
    return transport;
  };
  const http = createServer((req, res) => {
    const id = req.headers['mcp-session-id'];
    const known = typeof id === 'string' ? open.get(id) : undefined;
    void (known !== undefined ? Promise.resolve(known) : session()).then((t) => t.handleRequest(req, res));
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  cleanups.push(async () => {
    for (const mcp of servers) await mcp.close();
    http.closeAllConnections();
    await new Promise<void>((resolve) => http.close(() => resolve()));
  });
  return { url: `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`, cancelled, started: () => started, sessions: () => open.size };
}

/** The gateway's view of an HTTP server: its probe (apiary's own session), and a session per aggregate client. */
async function httpMemberOf(url: string): Promise<AggregateMember> {
  const probe = new HttpProbe({ url, transport: 'streamable-http', clock: systemClock, health: DEFAULT_HEALTH, onChange: () => undefined, onUnhealthy: () => undefined }, 1);
  cleanups.push(() => probe.stop());
  await until('the probe ready', () => probe.status().state === 'ready');
  return httpMember(probe, EXPOSE_ALL);
}

describe('the aggregate and HTTP members', () => {
  it('each aggregate client has a session of its own with an HTTP server, with its own capabilities, closed with its aggregate session', async () => {
    const web = await httpServer();
    const url = await serve({ web: await httpMemberOf(web.url) });
    expect(web.sessions()).toBe(1); // the probe's
    const transport = new StreamableHTTPClientTransport(new URL(url));
    const sampler = new Client({ name: 'sampler', version: '1' }, { capabilities: { sampling: {} } });
    let sampled = 0;
    sampler.setRequestHandler(CreateMessageRequestSchema, () => {
      sampled += 1;
      return { model: 'm', role: 'assistant', content: { type: 'text', text: 'sampled' } };
    });
    await sampler.connect(transport);
    cleanups.push(() => sampler.close());
    const plain = await connect(url, 'plain');

    expect((await sampler.callTool({ name: 'web__ask', arguments: {} })).content).toEqual([{ type: 'text', text: 'sampled' }]);
    // The plain client's call asks the plain client (which cannot sample), never the sampler.
    const refused = await plain.callTool({ name: 'web__ask', arguments: {} });
    expect(refused.content).toEqual([{ type: 'text', text: 'no sampling: MCP error -32601: Method not found' }]);
    expect(sampled).toBe(1);
    expect(web.sessions()).toBe(3);
    await transport.terminateSession();
    await until("the sampler's session at the server closed", () => web.sessions() === 2);
  }, 60_000);

  it("an HTTP member's progress reaches the client whose call it is, under the client's own token", async () => {
    const web = await httpServer();
    const url = await serve({ web: await httpMemberOf(web.url) });
    const watcher = await connect(url, 'watcher');
    const heard: { progress: number; total?: number }[] = [];
    const answer = await watcher.callTool({ name: 'web__count', arguments: {} }, undefined, { onprogress: (p) => heard.push(p) });
    expect(answer.content).toEqual([{ type: 'text', text: 'counted' }]);
    expect(heard).toEqual([{ progress: 1, total: 2 }]);
  }, 60_000);

  it("a cancelled call is cancelled at an HTTP member through the client's session with it", async () => {
    const web = await httpServer();
    const url = await serve({ web: await httpMemberOf(web.url) });
    const client = await connect(url, 'canceller');
    const abort = new AbortController();
    const call = client.callTool({ name: 'web__wait', arguments: {} }, undefined, { signal: abort.signal });
    await until('the call at the server', () => web.started() === 1);
    abort.abort('changed my mind');
    await expect(call).rejects.toThrow();
    await until('the server hears the cancellation', () => web.cancelled.length === 1);
    expect(web.cancelled).toEqual(['changed my mind']);
  }, 60_000);
});

describe('the aggregate: listings do not wait on a member that never answers', () => {
  it("lists the other members' tools within the listing timeout and names the member left out", async () => {
    const good = await fixture('good', listsTools(['a']));
    // Answers apiary's own handshake, then never a client's tools/list.
    const mute = await fixture('mute', (m, ready) => (m.method === 'tools/list' && !ready ? toolList(['b']) : undefined));
    const records: LogRecord[] = [];
    const url = await serve({ good: good.bridge, mute: mute.bridge }, { listTimeoutMs: 200, logger: createLogger((r) => records.push(r)) });
    const client = await connect(url, 'lister');

    const listed = await client.listTools(undefined, { timeout: 10_000 });
    expect(listed.tools.map((t) => t.name)).toEqual(['good__a']);
    expect(listed._meta?.['apiary.dev/missing']).toEqual([{ server: 'mute', reason: 'tools/list got no answer within 0.2 s' }]);
    expect(records.find((r) => r.msg.includes('left out'))).toMatchObject({ level: 'warn', server: 'mute', method: 'tools/list' });
    // The member is told to stop working on it.
    const asked = mute.received.filter((m) => m.method === 'tools/list').at(-1)!;
    await until('notifications/cancelled at the mute member', () => mute.received.some((m) => m.method === 'notifications/cancelled' && m.params?.['requestId'] === asked.id));
    // With every member answering, nothing is said to be missing.
    const url2 = await serve({ good: good.bridge }, { listTimeoutMs: 200 });
    const whole = await (await connect(url2, 'lister2')).listTools(undefined, { timeout: 10_000 });
    expect(whole.tools.map((t) => t.name)).toEqual(['good__a']);
    expect(whole._meta).toBeUndefined();
  }, 60_000);
});

describe('the aggregate: listings do not wait on an HTTP member that never answers', () => {
  it('leaves it out after the listing timeout, and cancels the request at it', async () => {
    const good = await fixture('good', listsTools(['a']));
    const cancelled: string[] = [];
    // The member's end only: a session whose requests are never answered, until cancelled.
    const stuck: RemoteMember = {
      key: 'stuck',
      tools: () => [],
      openSession: () =>
        Promise.resolve({
          close: () => Promise.resolve(),
          request: (_method, _params, _timeoutMs, signal) =>
            new Promise((resolve) =>
              signal?.addEventListener('abort', () => {
                cancelled.push(String(signal.reason));
                resolve(errorResponse(0, ErrorCodes.InternalError, String(signal.reason)));
              }),
            ),
        }),
    };
    const url = await serve({ good: good.bridge, web: stuck }, { listTimeoutMs: 200 });
    const listed = await (await connect(url, 'lister')).listTools(undefined, { timeout: 10_000 });
    expect(listed.tools.map((t) => t.name)).toEqual(['good__a']);
    expect(listed._meta?.['apiary.dev/missing']).toEqual([{ server: 'web', reason: 'tools/list got no answer within 0.2 s' }]);
    expect(cancelled).toEqual(['tools/list got no answer within 0.2 s']);
  }, 60_000);
});

describe('the aggregate: resource URIs name their server', () => {
  const notes = (text: string): Handler => (m) => {
    if (m.method === 'tools/list') return toolList(['link']);
    if (m.method === 'tools/call') return { content: [{ type: 'resource_link', uri: 'file:///notes.txt', name: 'notes' }, { type: 'resource', resource: { uri: 'file:///notes.txt', text } }, { type: 'text', text }] };
    if (m.method === 'resources/list') return { resources: [{ uri: 'file:///notes.txt', name: 'notes' }] };
    if (m.method === 'resources/read') return { contents: [{ uri: String(m.params?.['uri']), mimeType: 'text/plain', text }] };
    return undefined;
  };

  it('two servers listing the same URI are two resources, each read from its own server; a bare or unknown URI is a clear error', async () => {
    const one = await fixture('one', notes('from one'));
    const two = await fixture('two', notes('from two'));
    const url = await serve({ one: one.bridge, two: two.bridge });
    const client = await connect(url, 'reader');

    const listed = (await client.listResources()).resources;
    expect(listed.map((r) => [r.uri, r.name]).sort()).toEqual([
      ['apiary://one/file:///notes.txt', 'one__notes'],
      ['apiary://two/file:///notes.txt', 'two__notes'],
    ]);
    const fromTwo = await client.readResource({ uri: 'apiary://two/file:///notes.txt' });
    expect(fromTwo.contents).toEqual([{ uri: 'apiary://two/file:///notes.txt', mimeType: 'text/plain', text: 'from two' }]);
    expect(two.received.find((m) => m.method === 'resources/read')?.params?.['uri']).toBe('file:///notes.txt');
    const fromOne = await client.readResource({ uri: 'apiary://one/file:///notes.txt' });
    expect(fromOne.contents).toEqual([{ uri: 'apiary://one/file:///notes.txt', mimeType: 'text/plain', text: 'from one' }]);

    // Resources in a tool's answer name their server too, so the client can read them here.
    const linked = await client.callTool({ name: 'two__link', arguments: {} });
    expect(linked.content).toEqual([
      { type: 'resource_link', uri: 'apiary://two/file:///notes.txt', name: 'notes' },
      { type: 'resource', resource: { uri: 'apiary://two/file:///notes.txt', text: 'from two' } },
      { type: 'text', text: 'from two' },
    ]);

    await expect(client.readResource({ uri: 'file:///notes.txt' })).rejects.toThrow(/resource URI "file:\/\/\/notes\.txt" names no server: aggregate resource URIs are apiary:\/\/<server>\/<uri>/);
    await expect(client.readResource({ uri: 'apiary://three/file:///notes.txt' })).rejects.toThrow(/server "three" is not Ready/);
    await expect(client.readResource({ uri: 'apiary://one' })).rejects.toThrow(/names no server/);
  }, 60_000);

  it('refuses a tool, prompt or resource named by anything but a string, and sends nothing on', async () => {
    const one = await fixture('one', notes('from one'));
    const url = await serve({ one: one.bridge });
    const raw = async (method: string, params: Record<string, unknown>): Promise<{ error?: { code: number; message: string } }> => {
      const init = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }) });
      const session = init.headers.get('mcp-session-id')!;
      await init.arrayBuffer();
      const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json', Accept: 'application/json', 'Mcp-Session-Id': session }, body: JSON.stringify({ jsonrpc: '2.0', id: 2, method, params }) });
      return (await res.json()) as { error?: { code: number; message: string } };
    };
    // Turned into a string, ["one__link"] would be the name one__link and reach the server as link.
    expect((await raw('tools/call', { name: ['one__link'], arguments: {} })).error).toEqual({ code: -32602, message: 'tools/call needs params.name as a string: <server>__<name>' });
    expect((await raw('prompts/get', { name: { toString: 'one__p' } })).error?.code).toBe(-32602);
    expect((await raw('resources/read', { uri: ['apiary://one/file:///notes.txt'] })).error).toEqual({ code: -32602, message: 'resources/read needs params.uri as a string: apiary://<server>/<uri>' });
    expect(one.received.filter((m) => m.method === 'tools/call' || m.method === 'resources/read' || m.method === 'prompts/get')).toEqual([]);
  }, 60_000);
});
