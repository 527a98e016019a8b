/**
 * MRTR out: a 2026-07-28 client in front of a 2025 stdio server that asks
 * its client something mid-call. The client gets `input_required` with the
 * server's question, the call stays open at the server, and the client's
 * retry with `inputResponses` answers the waiting server and gets the
 * result. Real peers: server-everything (a 2025 stdio server) behind a
 * Bridge, the server's HttpEndpoint and the aggregate's, and the SDK v2
 * client pinned to 2026-07-28, whose input_required driver answers through
 * the handlers it registered. Where the test must see exactly what the
 * server receives (an expired hold, a bound, two questions at once), the
 * server is the scripted one on in-memory streams.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Client as ModernClient, StreamableHTTPClientTransport as ModernTransport } from '@modelcontextprotocol/client';
import { afterEach, describe, expect, it } from 'vitest';
import { Aggregate, type AggregateMember } from '../src/mcp/aggregate.js';
import { Bridge } from '../src/mcp/bridge.js';
import { HttpEndpoint } from '../src/mcp/http-endpoint.js';
import { httpMember } from '../src/mcp/gateway.js';
import { DEFAULT_HEALTH } from '../src/mcp/health.js';
import { HttpProbe } from '../src/mcp/http-probe.js';
import { HttpProxy } from '../src/mcp/http-proxy.js';
import { EXPOSE_ALL } from '../src/mcp/tool-filter.js';
import type { Id, JsonRpcMessage } from '../src/mcp/jsonrpc.js';
import { systemClock } from '../src/util/clock.js';
import { scriptedServer, type ScriptedServer } from './helpers/scripted-server.js';
import { waitFor } from './helpers/wait.js';

const MODERN_SERVER = fileURLToPath(new URL('./fixtures/servers/modern-server.mjs', import.meta.url));
const EVERYTHING = createRequire(import.meta.url).resolve('@modelcontextprotocol/server-everything/dist/index.js');

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** server-everything as a real process behind a Bridge (apiary declares sampling, elicitation and roots, so its asking tools exist). */
async function everything(): Promise<Bridge> {
  const child = spawn(process.execPath, [EVERYTHING, 'stdio'], { stdio: ['pipe', 'pipe', 'ignore'] });
  cleanups.push(() => void child.kill('SIGKILL'));
  const bridge = new Bridge({ name: 'everything', clock: systemClock });
  bridge.attach(child.stdin!, child.stdout!, child.pid!);
  cleanups.push(() => bridge.close());
  await waitFor('server-everything ready', () => {
    expect(bridge.status().state).not.toBe('failed');
    return bridge.isReady();
  }, 30_000, { observe: () => bridge.status() });
  return bridge;
}

/** A port nobody listens on now (server-everything takes its port from $PORT). */
async function freePort(): Promise<number> {
  const probe = createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** server-everything over streamable HTTP as a real process; its port. */
function everythingOverHttp(): Promise<number> {
  return overHttp([EVERYTHING, 'streamableHttp'], (port) => `listening on port ${port}`);
}

/** A server process that listens on $PORT; its port once its stderr says `listening(port)` (an event, not a wait for a while). */
async function overHttp(args: string[], listening: (port: number) => string): Promise<number> {
  const port = await freePort();
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, PORT: String(port) } });
  cleanups.push(() => void child.kill('SIGKILL'));
  await new Promise<void>((resolve, reject) => {
    let said = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      said += chunk.toString();
      if (said.includes(listening(port))) resolve();
    });
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited (${code}) before it listened: ${said}`)));
  });
  return port;
}

async function proxyTo(port: number): Promise<string> {
  const proxy = new HttpProxy(0, port);
  await proxy.listen();
  cleanups.push(() => proxy.close());
  return `http://127.0.0.1:${proxy.port}/mcp`;
}

/** The gateway's view of an HTTP server: its probe, and a session with it per aggregate client. */
async function httpMemberAt(port: number): Promise<AggregateMember> {
  const probe = new HttpProbe({ url: `http://127.0.0.1:${port}/mcp`, transport: 'streamable-http', clock: systemClock, health: DEFAULT_HEALTH, onChange: () => undefined, onUnhealthy: () => undefined }, 1);
  cleanups.push(() => probe.stop());
  await waitFor('the probe ready', () => probe.status().state === 'ready', 30_000, { observe: () => probe.status() });
  return httpMember(probe, EXPOSE_ALL);
}

let pid = 7000;

/** A scripted server behind a Bridge (its tools/call requests are the test's to answer). */
async function scripted(name: string): Promise<{ server: ScriptedServer; bridge: Bridge }> {
  const server = scriptedServer({ name, tools: ['ask'] });
  const bridge = new Bridge({ name, clock: systemClock });
  bridge.attach(server.toServer, server.fromServer, pid++);
  cleanups.push(() => bridge.close());
  await waitFor(`${name} ready`, () => bridge.isReady(), 10_000, { intervalMs: 5 });
  return { server, bridge };
}

async function endpointOver(host: ConstructorParameters<typeof HttpEndpoint>[0], options?: ConstructorParameters<typeof HttpEndpoint>[2]): Promise<string> {
  const endpoint = new HttpEndpoint(host, 0, options);
  await endpoint.listen();
  cleanups.push(() => endpoint.close());
  return endpoint.url;
}

function aggregateOf(members: Record<string, AggregateMember>): Aggregate {
  const aggregate = new Aggregate({ readyMembers: () => new Map(Object.entries(members)) }, 'test');
  cleanups.push(() => aggregate.close());
  return aggregate;
}

const ANSWERED_NAME = 'Octo Cat';

/** The SDK v2 client pinned to 2026-07-28, answering elicitation and sampling through its handlers (its driver retries with their answers). */
async function modernClient(url: string, capabilities: Record<string, unknown> = { elicitation: {}, sampling: {} }): Promise<{ client: ModernClient; asked: string[] }> {
  const asked: string[] = [];
  const client = new ModernClient({ name: 'mrtr-test', version: '1' }, { versionNegotiation: { mode: { pin: '2026-07-28' } }, capabilities });
  if (capabilities['elicitation'] !== undefined) {
    client.setRequestHandler('elicitation/create', (request) => {
      asked.push(`elicitation: ${String(request.params.message)}`);
      return { action: 'accept', content: { name: ANSWERED_NAME } };
    });
  }
  if (capabilities['sampling'] !== undefined) {
    client.setRequestHandler('sampling/createMessage', (request) => {
      const content = request.params.messages[0]?.content;
      asked.push(`sampling: ${content !== undefined && 'text' in content ? String(content.text) : '?'}`);
      return { role: 'assistant', content: { type: 'text', text: 'Paris' }, model: 'test-model', stopReason: 'endTurn' };
    });
  }
  await client.connect(new ModernTransport(new URL(url)));
  cleanups.push(() => client.close());
  return { client, asked };
}

/** server-everything's elicitation and sampling tools (named with `prefix`) called by the pinned client: each completes with its handler's answer. */
async function asksAndCompletes(url: string, prefix: string): Promise<void> {
  const { client, asked } = await modernClient(url);
  const elicited = await client.callTool({ name: `${prefix}trigger-elicitation-request`, arguments: {} });
  expect(texts(elicited)).toContain(`- Name: ${ANSWERED_NAME}`);
  const sampled = await client.callTool({ name: `${prefix}trigger-sampling-request`, arguments: { prompt: 'capital of France?' } });
  expect(texts(sampled)).toContain('"text": "Paris"');
  expect(asked).toEqual(['elicitation: Please provide inputs for the following fields:', 'sampling: Resource trigger-sampling-request context: capital of France?']);
}

const texts = (result: unknown): string => ((result as { content: { type: string; text?: string }[] }).content ?? []).map((c) => c.text ?? '').join('\n');

const MODERN = '2026-07-28';

interface RawAnswer {
  status: number;
  body: { id?: Id; result?: Record<string, unknown>; error?: { code: number; message: string; data?: Record<string, unknown> } };
}

/** One 2026-07-28 POST by hand: the envelope, the headers; the client declares elicitation and sampling unless told otherwise. */
async function post(url: string, id: Id, method: string, params: Record<string, unknown>, capabilities: Record<string, unknown> = { elicitation: {}, sampling: {} }): Promise<RawAnswer> {
  const name = method === 'resources/read' ? params['uri'] : params['name'];
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
      Accept: 'application/json, text/event-stream',
      'MCP-Protocol-Version': MODERN,
      'Mcp-Method': method,
      ...(typeof name === 'string' ? { 'Mcp-Name': name } : {}),
    },
    body: JSON.stringify({ jsonrpc: '2.0', id, method, params: { ...params, _meta: { 'io.modelcontextprotocol/protocolVersion': MODERN, 'io.modelcontextprotocol/clientCapabilities': capabilities } } }),
  });
  return { status: res.status, body: (await res.json()) as RawAnswer['body'] };
}

/** The messages the scripted server received that answer its request `id`. */
const answersTo = (server: ScriptedServer, id: Id): JsonRpcMessage[] => server.received.filter((m) => 'id' in m && m.id === id && !('method' in m));

describe('a 2026-07-28 client and a 2025 server that asks mid-call (MRTR out)', () => {
  it("server-everything's elicitation and sampling complete at its endpoint with the answers the client's handlers gave", async () => {
    await asksAndCompletes(await endpointOver(await everything()), '');
  }, 60_000);

  it('the same through the aggregate, whose member asks', async () => {
    await asksAndCompletes(await endpointOver(aggregateOf({ everything: await everything() })), 'everything__');
  }, 60_000);

  it('the same at the proxy in front of server-everything over HTTP: its question comes on the SDK v2 client session apiary holds with it', async () => {
    await asksAndCompletes(await proxyTo(await everythingOverHttp()), '');
  }, 60_000);

  it('and through the aggregate, whose HTTP member asks on the session apiary holds with it for this client', async () => {
    await asksAndCompletes(await endpointOver(aggregateOf({ web: await httpMemberAt(await everythingOverHttp()) })), 'web__');
  }, 60_000);

  it("a 2026-07-28 HTTP server's own input_required at its proxy: the session apiary holds with it asks the client in turn, and the call completes", async () => {
    const url = await proxyTo(await overHttp([MODERN_SERVER, '--http'], (port) => `modern server on 127.0.0.1:${port}`));
    const { client, asked } = await modernClient(url);
    expect(texts(await client.callTool({ name: 'ask', arguments: {} }))).toBe(`hello ${ANSWERED_NAME}`);
    expect(asked).toEqual(['elicitation: your name?']);
  }, 60_000);

  it('a question for a capability the envelope lacks is refused to the server, which answers the call with its error', async () => {
    const url = await endpointOver(await everything());
    const { client, asked } = await modernClient(url, { elicitation: {} });
    const result = await client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'x' } });
    expect(result.isError).toBe(true);
    expect(texts(result)).toMatch(/did not declare the sampling capability/);
    expect(asked).toEqual([]);
  }, 60_000);

  it('input_required on the wire, and a retry whose requestState is forged, for another call, or already used is refused saying which', async () => {
    const url = await endpointOver(await everything());
    const first = await post(url, 1, 'tools/call', { name: 'trigger-elicitation-request', arguments: {} });
    expect(first.status).toBe(200);
    const result = first.body.result!;
    expect(result['resultType']).toBe('input_required');
    // An interim result: nothing a cache may keep.
    expect(result).not.toHaveProperty('ttlMs');
    expect(result).not.toHaveProperty('cacheScope');
    const requests = result['inputRequests'] as Record<string, { method: string; params: Record<string, unknown> }>;
    const [key, ...others] = Object.keys(requests);
    expect(others).toEqual([]);
    expect(requests[key!]).toMatchObject({ method: 'elicitation/create', params: { message: 'Please provide inputs for the following fields:' } });
    const state = result['requestState'] as string;
    expect(typeof state).toBe('string');

    const answers = { [key!]: { action: 'accept', content: { name: 'Raw Client' } } };
    const forged = `${state.slice(0, -2)}${state.endsWith('AA') ? 'BB' : 'AA'}`;
    const refused = await post(url, 2, 'tools/call', { name: 'trigger-elicitation-request', arguments: {}, inputResponses: answers, requestState: forged });
    expect(refused.body.error).toMatchObject({ code: -32602, data: { reason: 'invalid_request_state', fault: 'forged' } });
    expect(refused.body.error!.message).toMatch(/requestState does not verify/);
    const elsewhere = await post(url, 3, 'tools/call', { name: 'echo', arguments: { message: 'x' }, inputResponses: answers, requestState: state });
    expect(elsewhere.body.error).toMatchObject({ code: -32602, data: { fault: 'mismatched' } });
    expect(elsewhere.body.error!.message).toBe('requestState belongs to tools/call "trigger-elicitation-request", not to tools/call "echo": retry the call that returned it, with the same params');

    // Neither refusal let go of the held call: the right retry completes it.
    const done = await post(url, 4, 'tools/call', { name: 'trigger-elicitation-request', arguments: {}, inputResponses: answers, requestState: state });
    expect(done.body.result?.['resultType']).toBe('complete');
    expect(texts(done.body.result)).toContain('- Name: Raw Client');
    const again = await post(url, 5, 'tools/call', { name: 'trigger-elicitation-request', arguments: {}, inputResponses: answers, requestState: state });
    expect(again.body.error).toMatchObject({ code: -32602, data: { fault: 'unknown' } });
  }, 60_000);

  it('a held call nobody retries is given up: the server is answered with an error, the call cancelled at it, and a late retry refused as expired', async () => {
    const { server, bridge } = await scripted('asker');
    const url = await endpointOver(bridge, { heldCalls: { timeoutMs: 300 } });
    const reached = server.next('tools/call');
    const call = post(url, 1, 'tools/call', { name: 'ask', arguments: {} });
    const upstream = await reached;
    server.reply({ jsonrpc: '2.0', id: 'q1', method: 'elicitation/create', params: { message: 'name?', requestedSchema: { type: 'object', properties: {} } } });
    const held = (await call).body.result!;
    expect(held['resultType']).toBe('input_required');

    await waitFor('the server answered and the call cancelled', () => answersTo(server, 'q1').length > 0 && server.received.some((m) => 'method' in m && m.method === 'notifications/cancelled' && m.params?.['requestId'] === upstream.id), 10_000, { observe: () => server.received.slice(-4) });
    expect(answersTo(server, 'q1')).toEqual([{ jsonrpc: '2.0', id: 'q1', error: { code: -32603, message: expect.stringMatching(/^the 2026-07-28 client did not answer: no retry with its answers came within 0.3 s/) as unknown } }]);
    const late = await post(url, 2, 'tools/call', { name: 'ask', arguments: {}, inputResponses: { x: {} }, requestState: held['requestState'] });
    expect(late.body.error).toMatchObject({ code: -32602, data: { fault: 'expired' } });
  }, 30_000);

  it("two questions sent together are one input_required; an answer the retry leaves out is an error to the server; a later question is another round, which the SDK client's driver completes", async () => {
    const { server, bridge } = await scripted('asker');
    const url = await endpointOver(bridge);
    const reached = server.next('tools/call');
    const call = post(url, 1, 'tools/call', { name: 'ask', arguments: {} });
    const upstream = await reached;
    // One write, two lines: the server asked both at once.
    server.fromServer.write(
      `${JSON.stringify({ jsonrpc: '2.0', id: 'e1', method: 'elicitation/create', params: { message: 'name?', requestedSchema: { type: 'object', properties: {} } } })}\n` +
        `${JSON.stringify({ jsonrpc: '2.0', id: 's1', method: 'sampling/createMessage', params: { messages: [{ role: 'user', content: { type: 'text', text: 'hi' } }], maxTokens: 5 } })}\n`,
    );
    const first = (await call).body.result!;
    const requests = first['inputRequests'] as Record<string, { method: string }>;
    expect(Object.values(requests).map((r) => r.method).sort()).toEqual(['elicitation/create', 'sampling/createMessage']);
    const elicitKey = Object.keys(requests).find((k) => requests[k]!.method === 'elicitation/create')!;

    // The retry answers only the elicitation; the server then asks a second time, and finishes once answered.
    const retry = post(url, 2, 'tools/call', { name: 'ask', arguments: {}, inputResponses: { [elicitKey]: { action: 'accept', content: { n: 1 } } }, requestState: first['requestState'] });
    await waitFor('both questions answered', () => answersTo(server, 'e1').length > 0 && answersTo(server, 's1').length > 0, 10_000, { observe: () => server.received.slice(-3) });
    expect(answersTo(server, 'e1')).toEqual([{ jsonrpc: '2.0', id: 'e1', result: { action: 'accept', content: { n: 1 } } }]);
    expect(answersTo(server, 's1')).toEqual([{ jsonrpc: '2.0', id: 's1', error: { code: -32603, message: expect.stringMatching(/carried no inputResponses\["sampling-\d+"\]/) as unknown } }]);
    server.reply({ jsonrpc: '2.0', id: 'e2', method: 'elicitation/create', params: { message: 'again?', requestedSchema: { type: 'object', properties: {} } } });
    const second = (await retry).body.result!;
    expect(second['resultType']).toBe('input_required');
    expect(Object.values(second['inputRequests'] as Record<string, { params: { message: string } }>).map((r) => r.params.message)).toEqual(['again?']);
    expect(second['requestState']).not.toBe(first['requestState']);
    // The first round's state does not fit the second round.
    const stale = await post(url, 3, 'tools/call', { name: 'ask', arguments: {}, inputResponses: {}, requestState: first['requestState'] });
    expect(stale.body.error).toMatchObject({ data: { fault: 'stale' } });
    const finalKey = Object.keys(second['inputRequests'] as object)[0]!;
    const last = post(url, 4, 'tools/call', { name: 'ask', arguments: {}, inputResponses: { [finalKey]: { action: 'decline' } }, requestState: second['requestState'] });
    await waitFor('the second question answered', () => answersTo(server, 'e2').length > 0);
    server.reply({ jsonrpc: '2.0', id: upstream.id, result: { content: [{ type: 'text', text: 'done after two rounds' }] } });
    expect(texts((await last).body.result)).toBe('done after two rounds');

    // The SDK client's driver does the same rounds by itself.
    const { client, asked } = await modernClient(url);
    const reachedAgain = server.next('tools/call');
    const driven = client.callTool({ name: 'ask', arguments: {} });
    const again = await reachedAgain;
    server.reply({ jsonrpc: '2.0', id: 'e3', method: 'elicitation/create', params: { message: 'round one', requestedSchema: { type: 'object', properties: {} } } });
    await waitFor('round one answered', () => answersTo(server, 'e3').length > 0);
    server.reply({ jsonrpc: '2.0', id: 's3', method: 'sampling/createMessage', params: { messages: [{ role: 'user', content: { type: 'text', text: 'round two' } }], maxTokens: 5 } });
    await waitFor('round two answered', () => answersTo(server, 's3').length > 0);
    server.reply({ jsonrpc: '2.0', id: again.id, result: { content: [{ type: 'text', text: 'driven' }] } });
    expect(texts(await driven)).toBe('driven');
    expect(asked).toEqual(['elicitation: round one', 'sampling: round two']);
    expect(answersTo(server, 'e3')).toEqual([{ jsonrpc: '2.0', id: 'e3', result: { action: 'accept', content: { name: ANSWERED_NAME } } }]);
  }, 30_000);

  it('an endpoint holds a bounded number of calls: past it, a server\'s question is refused to the server', async () => {
    const a = await scripted('a');
    const b = await scripted('b');
    const url = await endpointOver(aggregateOf({ a: a.bridge, b: b.bridge }), { heldCalls: { max: 1 } });
    const reachedA = a.server.next('tools/call');
    const callA = post(url, 1, 'tools/call', { name: 'a__ask', arguments: {} });
    await reachedA;
    a.server.reply({ jsonrpc: '2.0', id: 'qa', method: 'elicitation/create', params: { message: 'a?', requestedSchema: { type: 'object', properties: {} } } });
    expect((await callA).body.result?.['resultType']).toBe('input_required');

    const reachedB = b.server.next('tools/call');
    const callB = post(url, 2, 'tools/call', { name: 'b__ask', arguments: {} });
    const upstreamB = await reachedB;
    b.server.reply({ jsonrpc: '2.0', id: 'qb', method: 'elicitation/create', params: { message: 'b?', requestedSchema: { type: 'object', properties: {} } } });
    await waitFor("b's question refused", () => answersTo(b.server, 'qb').length > 0);
    expect(answersTo(b.server, 'qb')).toEqual([{ jsonrpc: '2.0', id: 'qb', error: { code: -32603, message: 'apiary already holds 1 call(s) waiting for their clients\' input at this endpoint (the most it holds): refused' } }]);
    b.server.reply({ jsonrpc: '2.0', id: upstreamB.id, result: { content: [{ type: 'text', text: 'b went on without' }] } });
    expect(texts((await callB).body.result)).toBe('b went on without');
  }, 30_000);
});
