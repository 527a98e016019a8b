/**
 * The bridge's routing rules, with a scripted upstream on in-memory streams
 * (the server end is the only fake here; end-to-end runs are in mcp.test.ts).
 */
import { request } from 'node:http';
import { describe, expect, it } from 'vitest';
import { FakeClock, systemClock } from '../src/util/clock.js';
import { Bridge, MAX_IN_FLIGHT_PER_CLIENT } from '../src/mcp/bridge.js';
import { HttpEndpoint, MAX_SESSIONS } from '../src/mcp/http-endpoint.js';
import type { Id, JsonRpcMessage } from '../src/mcp/jsonrpc.js';
import { scriptedServer, type ScriptedServer } from './helpers/scripted-server.js';
import { lockEntry } from '../src/api/tool-lock.js';
import { waitFor, within } from './helpers/wait.js';

type Upstream = Pick<ScriptedServer, 'received' | 'reply' | 'next' | 'close' | 'flush'>;

/** Attaches a scripted server that completes the handshake, then lets the test answer. */
async function attached(bridge: Bridge): Promise<Upstream> {
  const server = scriptedServer();
  bridge.attach(server.toServer, server.fromServer, 4242);
  await waitFor('the bridge ready (handshake done)', () => bridge.isReady(), 10_000, { observe: () => bridge.status() });
  return server;
}

function session(bridge: Bridge): { id: string; got: { message: JsonRpcMessage; related?: Id }[] } {
  const got: { message: JsonRpcMessage; related?: Id }[] = [];
  const id = bridge.openSession((message, related) => got.push({ message, ...(related !== undefined ? { related } : {}) }));
  return { id, got };
}

describe('Bridge', () => {
  it('two clients using the same request id get their own answers, whatever the order', async () => {
    const bridge = new Bridge({ name: 's', clock: systemClock });
    const up = await attached(bridge);
    const a = session(bridge);
    const b = session(bridge);
    const first = up.next('tools/call');
    await bridge.fromClient(a.id, { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'x', arguments: { who: 'a' } } });
    const fromA = await first;
    const second = up.next('tools/call');
    await bridge.fromClient(b.id, { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'x', arguments: { who: 'b' } } });
    const fromB = await second;
    expect(fromA.id).not.toBe(fromB.id);
    up.reply({ jsonrpc: '2.0', id: fromB.id, result: { who: 'b' } });
    up.reply({ jsonrpc: '2.0', id: fromA.id, result: { who: 'a' } });
    await up.flush();
    expect(a.got).toEqual([{ message: { jsonrpc: '2.0', id: 1, result: { who: 'a' } }, related: 1 }]);
    expect(b.got).toEqual([{ message: { jsonrpc: '2.0', id: 1, result: { who: 'b' } }, related: 1 }]);
  });

  it('progress tokens are remapped per client and routed back with the original token', async () => {
    const bridge = new Bridge({ name: 's', clock: systemClock });
    const up = await attached(bridge);
    const a = session(bridge);
    const b = session(bridge);
    const calls = [up.next('tools/call'), up.next('tools/call')];
    await bridge.fromClient(a.id, { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'x', _meta: { progressToken: 'tok' } } });
    await bridge.fromClient(b.id, { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'x', _meta: { progressToken: 'tok' } } });
    const [ca, cb] = (await Promise.all(calls)) as [Awaited<(typeof calls)[0]>, Awaited<(typeof calls)[1]>];
    const ta = (ca.params!['_meta'] as { progressToken: string }).progressToken;
    const tb = (cb.params!['_meta'] as { progressToken: string }).progressToken;
    expect(ta).not.toBe(tb);
    up.reply({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: tb, progress: 1 } });
    await up.flush();
    expect(a.got).toEqual([]);
    expect(b.got).toEqual([{ message: { jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 'tok', progress: 1 } }, related: 7 }]);
  });

  it('a server-to-client request goes to the client whose call is in flight, and its answer goes back with the server id', async () => {
    const bridge = new Bridge({ name: 's', clock: systemClock });
    const up = await attached(bridge);
    const plain = session(bridge);
    const sampler = session(bridge);
    await bridge.fromClient(plain.id, { jsonrpc: '2.0', id: 1, method: 'initialize', params: { capabilities: {} } });
    await bridge.fromClient(sampler.id, { jsonrpc: '2.0', id: 1, method: 'initialize', params: { capabilities: { sampling: {} } } });
    const call = up.next('tools/call');
    await bridge.fromClient(sampler.id, { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'x' } });
    await call;
    up.reply({ jsonrpc: '2.0', id: 'srv-9', method: 'sampling/createMessage', params: {} });
    await up.flush();
    const request = sampler.got.find((g) => 'method' in g.message)!.message as { id: Id };
    expect(plain.got.filter((g) => 'method' in g.message)).toEqual([]);
    await bridge.fromClient(sampler.id, { jsonrpc: '2.0', id: request.id, result: { content: 'hi' } });
    await up.flush();
    expect(up.received.filter((m) => 'id' in m && m.id === 'srv-9')).toEqual([{ jsonrpc: '2.0', id: 'srv-9', result: { content: 'hi' } }]);
  });

  it('requests in flight when the process goes get a clear error at once', async () => {
    // On a clock that does not move, waiting for readiness would never end: "at once" is "without waiting".
    const bridge = new Bridge({ name: 's', clock: new FakeClock(), readyWaitMs: 200 });
    await attached(bridge);
    const a = session(bridge);
    await bridge.fromClient(a.id, { jsonrpc: '2.0', id: 3, method: 'tools/call', params: {} });
    bridge.detach('the server process exited (Error)');
    expect(a.got[0]?.message).toMatchObject({ id: 3, error: { code: -32002, message: expect.stringContaining('stopped while handling this request') } });
    bridge.markUnavailable('Stuck: secret "x" not found (needed for env X)');
    await within('the answer to tools/list without waiting for readiness', bridge.fromClient(a.id, { jsonrpc: '2.0', id: 4, method: 'tools/list' }));
    expect(a.got[1]?.message).toMatchObject({ id: 4, error: { code: -32001, message: 'MCP server "s" is not ready (failed: Stuck: secret "x" not found (needed for env X))' } });
  });
});

describe('Bridge: one client never reaches into another', () => {
  const capable = async (bridge: Bridge): Promise<ReturnType<typeof session>> => {
    const s = session(bridge);
    await bridge.fromClient(s.id, { jsonrpc: '2.0', id: 'init', method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: { sampling: {} }, clientInfo: { name: 'c', version: '1' } } });
    s.got.length = 0;
    return s;
  };

  it('a client cancels only its own request, though another uses the same id', async () => {
    const bridge = new Bridge({ name: 's', clock: systemClock });
    const up = await attached(bridge);
    const a = await capable(bridge);
    const b = await capable(bridge);
    const calls = [up.next('tools/call'), up.next('tools/call')];
    await bridge.fromClient(a.id, { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'slow' } });
    await bridge.fromClient(b.id, { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'slow' } });
    const [fromA, fromB] = await Promise.all(calls);
    await bridge.fromClient(b.id, { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 7 } });
    await up.flush();
    const cancels = up.received.filter((m) => 'method' in m && m.method === 'notifications/cancelled');
    expect(cancels).toEqual([{ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: fromB!.id } }]);
    up.reply({ jsonrpc: '2.0', id: fromA!.id, result: { ok: 'a' } });
    await up.flush();
    expect(a.got).toEqual([{ message: { jsonrpc: '2.0', id: 7, result: { ok: 'a' } }, related: 7 }]);
  });

  it("a sampling request during A's tool call goes to A, though B asked for a list since, and only A may answer it", async () => {
    const bridge = new Bridge({ name: 's', clock: systemClock });
    const up = await attached(bridge);
    const a = await capable(bridge);
    const b = await capable(bridge);
    const call = up.next('tools/call');
    await bridge.fromClient(a.id, { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'summarize' } });
    const upstreamCall = await call;
    const list = up.next('prompts/list');
    await bridge.fromClient(b.id, { jsonrpc: '2.0', id: 1, method: 'prompts/list' });
    await list;
    up.reply({ jsonrpc: '2.0', id: 900, method: 'sampling/createMessage', params: { messages: [], maxTokens: 10 } });
    await up.flush();
    expect(b.got).toEqual([]);
    const asked = a.got.find((g) => 'method' in g.message && g.message.method === 'sampling/createMessage')?.message as { id: Id } | undefined;
    expect(asked).toBeDefined();

    // B answering A's question (by guessing its id) is ignored; A's answer reaches the server.
    await bridge.fromClient(b.id, { jsonrpc: '2.0', id: asked!.id, result: { content: { type: 'text', text: 'from b' } } });
    await bridge.fromClient(a.id, { jsonrpc: '2.0', id: asked!.id, result: { content: { type: 'text', text: 'from a' } } });
    await up.flush();
    const answers = up.received.filter((m) => 'id' in m && m.id === 900);
    expect(answers).toEqual([{ jsonrpc: '2.0', id: 900, result: { content: { type: 'text', text: 'from a' } } }]);
    expect(upstreamCall.id).toBeDefined();
  });

  it('a client that disconnects with a question pending gets the server an error, not a hang', async () => {
    const bridge = new Bridge({ name: 's', clock: systemClock });
    const up = await attached(bridge);
    const a = await capable(bridge);
    const call = up.next('tools/call');
    await bridge.fromClient(a.id, { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'summarize' } });
    await call;
    up.reply({ jsonrpc: '2.0', id: 901, method: 'sampling/createMessage', params: { messages: [], maxTokens: 10 } });
    await up.flush();
    bridge.closeSession(a.id);
    await up.flush();
    expect(up.received.find((m) => 'id' in m && m.id === 901)).toMatchObject({ error: { message: 'the client this request went to has disconnected' } });
  });
});

describe('Bridge: one client cannot crowd out another', () => {
  it(`a client's requests beyond ${MAX_IN_FLIGHT_PER_CLIENT} wait in its own queue; another client's ping goes straight to the server`, async () => {
    const bridge = new Bridge({ name: 's', clock: systemClock });
    const up = await attached(bridge);
    const flood = session(bridge);
    const other = session(bridge);
    for (let i = 0; i < 50; i++) await bridge.fromClient(flood.id, { jsonrpc: '2.0', id: i, method: 'tools/call', params: { name: 'slow' } });
    const ping = up.next('ping');
    await bridge.fromClient(other.id, { jsonrpc: '2.0', id: 'p', method: 'ping' });
    const upstreamPing = await ping;
    const calls = () => up.received.filter((m) => 'method' in m && m.method === 'tools/call') as { id: Id }[];
    expect(calls()).toHaveLength(MAX_IN_FLIGHT_PER_CLIENT);
    up.reply({ jsonrpc: '2.0', id: upstreamPing.id, result: {} });
    await up.flush();
    expect(other.got).toEqual([{ message: { jsonrpc: '2.0', id: 'p', result: {} }, related: 'p' }]);

    // Each answer lets the next waiting request go; none is lost or reordered.
    for (let answered = 0; answered < 50; answered++) {
      const next = calls()[answered]!;
      up.reply({ jsonrpc: '2.0', id: next.id, result: { n: answered } });
      await up.flush(); // the answer delivered and the next waiting request sent on
    }
    await up.flush();
    expect(flood.got.map((g) => (g.message as { id: Id }).id)).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });
});

describe('HttpEndpoint: malformed and oversized input', () => {
  const post = (url: string, body: string, sessionId?: string): Promise<Response> =>
    fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', ...(sessionId ? { 'Mcp-Session-Id': sessionId } : {}) }, body });
  const open = async (): Promise<{ endpoint: HttpEndpoint; up: Upstream; sessionId: string }> => {
    const bridge = new Bridge({ name: 's', clock: systemClock });
    const up = await attached(bridge);
    const endpoint = new HttpEndpoint(bridge, 0);
    await endpoint.listen();
    const init = await post(endpoint.url, JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } }));
    return { endpoint, up, sessionId: init.headers.get('mcp-session-id')! };
  };

  it('an invalid request is answered with Invalid Request, never forwarded; a repeated id in a batch is answered, not merged', async () => {
    const { endpoint, up, sessionId } = await open();
    const badMethod = await post(endpoint.url, JSON.stringify({ jsonrpc: '2.0', id: 3, method: 123 }), sessionId);
    expect(await badMethod.json()).toEqual({ jsonrpc: '2.0', id: 3, error: { code: -32600, message: 'not a valid JSON-RPC 2.0 message' } });
    const nullId = await post(endpoint.url, JSON.stringify({ jsonrpc: '2.0', id: null, method: 'tools/list' }), sessionId);
    expect(await nullId.json()).toEqual({ jsonrpc: '2.0', id: null, error: { code: -32600, message: 'not a valid JSON-RPC 2.0 message' } });
    expect(up.received.filter((m) => 'method' in m && (m.method as unknown) === 123)).toEqual([]);

    const answered = up.next('tools/call');
    const batch = post(endpoint.url, JSON.stringify([
      { jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'a' } },
      { jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'b' } },
      { jsonrpc: '2.0', method: 7 },
    ]), sessionId);
    const call = await answered;
    up.reply({ jsonrpc: '2.0', id: call.id, result: { ok: true } });
    expect(await (await batch).json()).toEqual([
      { jsonrpc: '2.0', id: 5, error: { code: -32600, message: 'request id 5 is used twice in this batch' } },
      { jsonrpc: '2.0', id: null, error: { code: -32600, message: 'not a valid JSON-RPC 2.0 message' } },
      { jsonrpc: '2.0', id: 5, result: { ok: true } },
    ]);
    await endpoint.close();
  });

  it('a body over the limit gets 413, declared or streamed, and the endpoint goes on serving', async () => {
    const { endpoint, sessionId } = await open();
    const declared = await rawPost(endpoint.port, { 'Content-Length': String(100 * 1024 * 1024) }, 'x'.repeat(1024));
    expect(declared).toBe(413);
    const streamed = await rawPost(endpoint.port, { 'Transfer-Encoding': 'chunked' }, 'x'.repeat(5 * 1024 * 1024));
    expect(streamed).toBe(413);
    const ok = await post(endpoint.url, JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }), sessionId);
    expect(ok.status).toBe(202);
    await endpoint.close();
  });

  it(`sessions are bounded at ${MAX_SESSIONS}: the one idle longest makes room`, async () => {
    const { endpoint, sessionId: first } = await open();
    const init = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } });
    let last = '';
    for (let i = 0; i < MAX_SESSIONS + 20; i++) last = (await post(endpoint.url, init)).headers.get('mcp-session-id')!;
    const ping = JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' });
    expect((await post(endpoint.url, ping, first)).status).toBe(404);
    expect((await post(endpoint.url, ping, last)).status).toBe(202);
    await endpoint.close();
  });
});

/** A POST over a plain socket, so a body can lie about its length or stream past the limit; resolves with the status. */
function rawPost(port: number, headers: Record<string, string>, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/mcp', method: 'POST', headers: { 'Content-Type': 'application/json', ...headers } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('HttpEndpoint sessions', () => {
  it('closes sessions that stay idle with nothing open', async () => {
    const bridge = new Bridge({ name: 's', clock: systemClock });
    await attached(bridge);
    const endpoint = new HttpEndpoint(bridge, 0);
    await endpoint.listen();
    const init = await fetch(endpoint.url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } }),
    });
    const sessionId = init.headers.get('mcp-session-id')!;
    expect(await init.json()).toMatchObject({ id: 1, result: { serverInfo: { name: 'scripted' } } });
    expect(endpoint.expireIdleSessions(Date.now())).toBe(0);
    expect(endpoint.expireIdleSessions(Date.now() + 31 * 60_000)).toBe(1);
    const after = await fetch(endpoint.url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', 'Mcp-Session-Id': sessionId },
      body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }),
    });
    expect(after.status).toBe(404);
    await endpoint.close();
  });
});

describe('Bridge rolling updates', () => {
  it('a new process is initialized beside the serving one, takes new requests at promote, and the old answers what it held', async () => {
    const bridge = new Bridge({ name: 's', clock: systemClock });
    const old = await attached(bridge);
    const client = session(bridge);
    // A call in flight at the old process when the rollout begins.
    const heldAtOld = old.next('tools/call');
    await bridge.fromClient(client.id, { jsonrpc: '2.0', id: 'slow', method: 'tools/call', params: { name: 'slow' } });
    const slow = await heldAtOld;

    const fresh = scriptedServer({ name: 'fresh' });
    bridge.prepare(fresh.toServer, fresh.fromServer, 5252);
    expect(bridge.status().next).toMatchObject({ pid: 5252 });
    await waitFor('the new process ready', () => bridge.status().next?.state === 'ready', 10_000, { observe: () => bridge.status() });
    expect(bridge.status()).toMatchObject({ pid: 4242, state: 'ready', next: { pid: 5252, state: 'ready' } });
    // Before promote, clients still talk to the old process only, and the new one asked nobody anything.
    expect(fresh.received.map((m) => (m as { method?: string }).method)).toEqual(['server/discover', 'initialize', 'notifications/initialized', 'tools/list']);

    expect(bridge.promote()).toBe(true);
    expect(bridge.status()).toMatchObject({ pid: 5252, state: 'ready', serverInfo: { name: 'fresh' } });
    expect(bridge.status().next).toBeUndefined();
    const drained = bridge.drained(4242, 10_000);
    let isDrained = false;
    void drained.then(() => (isDrained = true));

    // A new request goes to the new process.
    const atFresh = fresh.next('tools/call');
    await bridge.fromClient(client.id, { jsonrpc: '2.0', id: 'quick', method: 'tools/call', params: { name: 'quick' } });
    fresh.reply({ jsonrpc: '2.0', id: (await atFresh).id, result: { from: 'fresh' } });
    await fresh.flush();
    expect(client.got.some((g) => (g.message as { id?: unknown }).id === 'quick')).toBe(true);
    await old.flush(); // whatever the old process said has been handled too: it still holds its call
    expect(isDrained).toBe(false);
    // The old one answers the call it held: the client gets it, under its own id, and the old one is drained.
    old.reply({ jsonrpc: '2.0', id: slow.id, result: { from: 'old' } });
    expect(await drained).toBe(true);
    const answers = client.got.map((g) => g.message).filter((m) => 'result' in m || 'error' in m);
    expect(answers).toEqual([
      { jsonrpc: '2.0', id: 'quick', result: { from: 'fresh' } },
      { jsonrpc: '2.0', id: 'slow', result: { from: 'old' } },
    ]);
    // Clients were told their lists may have changed; nothing failed.
    expect(client.got.some((g) => (g.message as { method?: string }).method === 'notifications/tools/list_changed')).toBe(true);
  });

  it('a replaced process that leaves with a request unanswered: that request fails, saying it is safe to retry; a failed candidate is dropped', async () => {
    const bridge = new Bridge({ name: 's', clock: systemClock });
    const old = await attached(bridge);
    const client = session(bridge);
    const held = old.next('tools/call');
    await bridge.fromClient(client.id, { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'slow' } });
    await held;
    const fresh = scriptedServer();
    bridge.prepare(fresh.toServer, fresh.fromServer, 5252);
    await waitFor('the new process ready', () => bridge.status().next?.state === 'ready', 10_000, { observe: () => bridge.status() });
    bridge.promote();
    expect(await bridge.drained(4242, 20)).toBe(false);
    old.close();
    await waitFor('the error for the call the old process held', () => client.got.some((g) => 'error' in g.message), 10_000, { observe: () => client.got });
    expect(client.got.map((g) => g.message)).toContainEqual(expect.objectContaining({ id: 7, error: expect.objectContaining({ message: expect.stringMatching(/it is safe to retry/) }) }));

    // A candidate that never answers and then leaves is dropped; the serving process is untouched.
    const silent = scriptedServer({ silent: true });
    bridge.prepare(silent.toServer, silent.fromServer, 6262);
    expect(bridge.status().next).toMatchObject({ pid: 6262, state: 'initializing' });
    silent.close();
    await waitFor('the failed candidate dropped', () => bridge.status().next === undefined, 10_000, { observe: () => bridge.status() });
    expect(bridge.status()).toMatchObject({ pid: 5252, state: 'ready' });
    expect(bridge.status().next).toBeUndefined();
  });
});

describe('Bridge handshake', () => {
  it("a server whose initialize answer is not an MCP InitializeResult (by the SDK's schema) fails the handshake, saying which field", async () => {
    const bridge = new Bridge({ name: 's', clock: systemClock });
    const server = scriptedServer({ silent: true });
    const probe = server.next('server/discover');
    const asked = server.next('initialize');
    bridge.attach(server.toServer, server.fromServer, 4242);
    // A 2025 server: the era probe is refused, then comes initialize.
    server.reply({ jsonrpc: '2.0', id: (await probe).id, error: { code: -32601, message: 'Method not found' } });
    const init = await asked;
    server.reply({ jsonrpc: '2.0', id: init.id, result: { protocolVersion: '2025-06-18', capabilities: {} } });
    await waitFor('the handshake over', () => bridge.status().state !== 'initializing', 10_000, { observe: () => bridge.status() });
    expect(bridge.status()).toMatchObject({ state: 'failed' });
    expect(bridge.status().message).toMatch(/^initialize failed: the answer is not an MCP InitializeResult \(serverInfo: /);
  });
});

describe('Bridge rolling updates, a client at its limit', () => {
  it('requests waiting behind ones held by a replaced process go to the new one when it leaves', async () => {
    const bridge = new Bridge({ name: 's', clock: systemClock });
    const old = await attached(bridge);
    const client = session(bridge);
    for (let i = 0; i < MAX_IN_FLIGHT_PER_CLIENT + 1; i++) await bridge.fromClient(client.id, { jsonrpc: '2.0', id: i, method: 'tools/call', params: { name: 'slow' } });
    // Eight at the old process, the ninth waiting its turn.
    await waitFor(`${MAX_IN_FLIGHT_PER_CLIENT} calls at the old process`, () => old.received.filter((m) => (m as { method?: string }).method === 'tools/call').length >= MAX_IN_FLIGHT_PER_CLIENT, 10_000, { observe: () => old.received });
    const fresh = scriptedServer();
    bridge.prepare(fresh.toServer, fresh.fromServer, 5252);
    await waitFor('the new process ready', () => bridge.status().next?.state === 'ready', 10_000, { observe: () => bridge.status() });
    bridge.promote();
    const atFresh = fresh.next('tools/call');
    old.close(); // the old process leaves with eight unanswered (a drain that timed out)
    const ninth = await atFresh;
    fresh.reply({ jsonrpc: '2.0', id: ninth.id, result: { from: 'fresh' } });
    await waitFor('the answer to the waiting request', () => client.got.some((g) => (g.message as { id?: unknown }).id === MAX_IN_FLIGHT_PER_CLIENT), 10_000, { observe: () => client.got });
    const answers = client.got.map((g) => g.message).filter((m) => 'id' in m) as { id: number; error?: { message: string }; result?: unknown }[];
    expect(answers.filter((a) => a.error?.message.includes('it is safe to retry'))).toHaveLength(MAX_IN_FLIGHT_PER_CLIENT);
    expect(answers.find((a) => a.id === MAX_IN_FLIGHT_PER_CLIENT)).toEqual({ jsonrpc: '2.0', id: MAX_IN_FLIGHT_PER_CLIENT, result: { from: 'fresh' } });
  });
});

describe('Bridge and tools.lock.yaml pins', () => {
  it('a call that arrives while a new process is in its handshake is judged against what that process lists, not let through', async () => {
    const bridge = new Bridge({ name: 's', clock: systemClock });
    bridge.setPins({ entry: lockEntry([{ name: 'x', description: 'as approved', inputSchema: { type: 'object' } }]), withhold: true });
    const server = scriptedServer({ tools: ['x'] });
    bridge.attach(server.toServer, server.fromServer, 4242);
    const a = session(bridge);
    // Sent before the handshake is done: nothing is known yet of the new process's tools.
    const call = bridge.fromClient(a.id, { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'x', arguments: {} } });
    await call;
    await waitFor('the call answered', () => a.got.length > 0, 10_000, { observe: () => a.got });
    expect(a.got[0]!.message).toMatchObject({ id: 1, error: { message: expect.stringContaining('tool "x" is withheld') } });
    expect(server.received.filter((m) => 'method' in m && m.method === 'tools/call')).toEqual([]);
    expect(bridge.status().drift).toEqual({ changed: ['x'], added: [], removed: [] });
  });
});
