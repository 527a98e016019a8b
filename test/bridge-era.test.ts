/**
 * The bridge speaks to each stdio server in its own era: the server/discover
 * probe, the envelope on every request to a modern server, liveness by
 * discover, and what a 2025 client gets of a modern server's results. The
 * server end is scripted (test/helpers/scripted-server.ts); real servers of
 * both eras run in mcp-eras.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { FakeClock, systemClock } from '../src/util/clock.js';
import { Bridge } from '../src/mcp/bridge.js';
import { MAX_INPUT_ROUNDS } from '../src/mcp/mrtr.js';
import type { JsonRpcMessage } from '../src/mcp/jsonrpc.js';
import { scriptedServer } from './helpers/scripted-server.js';
import { waitFor } from './helpers/wait.js';

const ENVELOPE_VERSION = 'io.modelcontextprotocol/protocolVersion';
const ENVELOPE_CAPS = 'io.modelcontextprotocol/clientCapabilities';

function session(bridge: Bridge, capabilities?: Record<string, unknown>): { id: string; got: JsonRpcMessage[] } {
  const got: JsonRpcMessage[] = [];
  const id = bridge.openSession((message) => got.push(message), capabilities !== undefined ? { capabilities } : {});
  return { id, got };
}

const methods = (received: JsonRpcMessage[]): string[] => received.flatMap((m) => ('method' in m ? [m.method] : []));

describe('Bridge eras', () => {
  it('a modern server is discovered, never initialized, and every request to it carries the envelope', async () => {
    const bridge = new Bridge({ name: 's', clock: systemClock });
    const up = scriptedServer({ modern: true, tools: ['echo'] });
    bridge.attach(up.toServer, up.fromServer, 4242);
    await waitFor('the modern server ready', () => bridge.isReady(), 10_000, { observe: () => bridge.status() });
    expect(bridge.status()).toMatchObject({ protocolVersion: '2026-07-28', serverInfo: { name: 'scripted', version: '2' }, toolCount: 1 });
    expect(methods(up.received)).toEqual(['server/discover', 'tools/list']);
    const list = up.received.find((m) => 'method' in m && m.method === 'tools/list') as { params: { _meta: Record<string, unknown> } };
    expect(list.params._meta[ENVELOPE_VERSION]).toBe('2026-07-28');

    // A 2025 client: its initialize is answered from the DiscoverResult, its call goes with the envelope (its input capabilities in it).
    const client = session(bridge);
    await bridge.fromClient(client.id, { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: { sampling: {}, experimental: {} }, clientInfo: { name: 'c', version: '1' } } });
    expect(client.got[0]).toMatchObject({ id: 1, result: { protocolVersion: '2025-11-25', capabilities: { tools: {} }, serverInfo: { name: 'scripted', version: '2' } } });
    const call = up.next('tools/call');
    await bridge.fromClient(client.id, { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'echo', arguments: { text: 'hi' }, _meta: { progressToken: 'tok' } } });
    const sent = await call;
    const meta = sent.params!['_meta'] as Record<string, unknown>;
    expect(meta[ENVELOPE_VERSION]).toBe('2026-07-28');
    expect(meta[ENVELOPE_CAPS]).toEqual({ sampling: {} });
    expect(meta['progressToken']).toEqual(expect.any(String));
    expect(sent.params!['arguments']).toEqual({ text: 'hi' });
    // A modern result passes as it is: resultType is an extra field to a 2025 client.
    up.reply({ jsonrpc: '2.0', id: sent.id, result: { resultType: 'complete', content: [{ type: 'text', text: 'hi' }] } });
    await up.flush();
    expect(client.got).toContainEqual({ jsonrpc: '2.0', id: 2, result: { resultType: 'complete', content: [{ type: 'text', text: 'hi' }] } });
    // A modern server has no ping: apiary answers a client's itself.
    await bridge.fromClient(client.id, { jsonrpc: '2.0', id: 3, method: 'ping' });
    expect(client.got).toContainEqual({ jsonrpc: '2.0', id: 3, result: {} });
    expect(methods(up.received)).not.toContain('ping');
    expect(methods(up.received)).not.toContain('initialize');
  });

  describe("a modern server's input_required, for a 2025 client (MRTR in)", () => {
    const ELICIT = { method: 'elicitation/create', params: { message: 'your name?', requestedSchema: { type: 'object', properties: { name: { type: 'string' } } } } };
    const SAMPLE = { method: 'sampling/createMessage', params: { messages: [{ role: 'user', content: { type: 'text', text: 'capital of France?' } }], maxTokens: 10 } };

    /** A modern server Ready behind a bridge, and a 2025 client session that records where each message went (the request it belongs to). */
    async function modernBridge(capabilities: Record<string, unknown>): Promise<{ bridge: Bridge; up: ReturnType<typeof scriptedServer>; client: { id: string; got: { message: JsonRpcMessage; related?: unknown }[] } }> {
      const bridge = new Bridge({ name: 's', clock: systemClock });
      const up = scriptedServer({ modern: true, tools: ['ask'] });
      bridge.attach(up.toServer, up.fromServer, 4242);
      await waitFor('the modern server ready', () => bridge.isReady(), 10_000, { observe: () => bridge.status() });
      const got: { message: JsonRpcMessage; related?: unknown }[] = [];
      const id = bridge.openSession((message, related) => got.push({ message, ...(related !== undefined ? { related } : {}) }), { capabilities });
      return { bridge, up, client: { id, got } };
    }

    const asks = (got: { message: JsonRpcMessage }[]): (JsonRpcMessage & { id: string; method: string; params?: Record<string, unknown> })[] =>
      got.flatMap(({ message }) => ('method' in message && 'id' in message && message.id !== undefined ? [message as never] : []));

    it('each question goes to the client beside its call; the answers go back on a new id with requestState as it was, round after round', async () => {
      const { bridge, up, client } = await modernBridge({ elicitation: {}, sampling: {} });
      const first = up.next('tools/call');
      await bridge.fromClient(client.id, { jsonrpc: '2.0', id: 'c1', method: 'tools/call', params: { name: 'ask', arguments: { a: 1 }, _meta: { progressToken: 'tok' } } });
      const sent = await first;
      const state = ' opaque\u00e9 state/+= ';
      up.reply({ jsonrpc: '2.0', id: sent.id, result: { resultType: 'input_required', inputRequests: { name: ELICIT, capital: SAMPLE }, requestState: state } });
      await waitFor('both questions at the client', () => asks(client.got).length === 2, 10_000, { observe: () => client.got });
      const [q1, q2] = asks(client.got);
      // Real server-to-client requests, on the stream of the call they serve.
      expect(q1).toEqual({ jsonrpc: '2.0', id: expect.stringMatching(/^apiary-/), ...ELICIT });
      expect(q2).toEqual({ jsonrpc: '2.0', id: expect.stringMatching(/^apiary-/), ...SAMPLE });
      expect(client.got.map((g) => g.related)).toEqual(['c1', 'c1']);
      const second = up.next('tools/call');
      await bridge.fromClient(client.id, { jsonrpc: '2.0', id: q2!.id, result: { role: 'assistant', content: { type: 'text', text: 'Paris' }, model: 'm', stopReason: 'endTurn' } });
      await up.flush();
      // One answer in, one still out: nothing goes to the server yet.
      expect(up.received.filter((m) => 'method' in m && m.method === 'tools/call')).toHaveLength(1);
      await bridge.fromClient(client.id, { jsonrpc: '2.0', id: q1!.id, result: { action: 'accept', content: { name: 'octocat' } } });
      const retry = await second;
      expect(retry.id).not.toBe(sent.id);
      const meta = retry.params!['_meta'] as Record<string, unknown>;
      expect(retry.params).toEqual({
        name: 'ask',
        arguments: { a: 1 },
        inputResponses: { name: { action: 'accept', content: { name: 'octocat' } }, capital: { role: 'assistant', content: { type: 'text', text: 'Paris' }, model: 'm', stopReason: 'endTurn' } },
        requestState: state,
        _meta: meta,
      });
      expect(meta[ENVELOPE_CAPS]).toEqual({ elicitation: {}, sampling: {} });
      // The same (remapped) progress token: the server's progress still reaches the client as its own.
      expect(meta['progressToken']).toBe((sent.params!['_meta'] as Record<string, unknown>)['progressToken']);
      up.reply({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: meta['progressToken'], progress: 1 } });
      await waitFor('the progress at the client', () => client.got.some((g) => 'method' in g.message && g.message.method === 'notifications/progress'), 10_000, { observe: () => client.got });
      expect(client.got.at(-1)).toEqual({ message: { jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 'tok', progress: 1 } }, related: 'c1' });
      // A round with state only (no question): sent again at once, with no answers.
      const third = up.next('tools/call');
      up.reply({ jsonrpc: '2.0', id: retry.id, result: { resultType: 'input_required', requestState: 'r2' } });
      const again = await third;
      expect(again.params).toMatchObject({ inputResponses: {}, requestState: 'r2', arguments: { a: 1 } });
      up.reply({ jsonrpc: '2.0', id: again.id, result: { resultType: 'complete', content: [{ type: 'text', text: 'hello octocat, Paris' }] } });
      await waitFor('the final answer', () => client.got.some((g) => 'result' in g.message && g.message.id === 'c1'), 10_000, { observe: () => client.got });
      expect(client.got.at(-1)).toEqual({ message: { jsonrpc: '2.0', id: 'c1', result: { resultType: 'complete', content: [{ type: 'text', text: 'hello octocat, Paris' }] } }, related: 'c1' });
    });

    it('a client that did not declare what the server asks for gets a clear error naming it, and the server is not asked again', async () => {
      const { bridge, up, client } = await modernBridge({ sampling: {} });
      const call = up.next('tools/call');
      await bridge.fromClient(client.id, { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'ask', arguments: {} } });
      up.reply({ jsonrpc: '2.0', id: (await call).id, result: { resultType: 'input_required', inputRequests: { name: ELICIT, capital: SAMPLE }, requestState: 'r1' } });
      await waitFor('the answer to the call', () => client.got.length > 0, 10_000, { observe: () => client.got });
      await up.flush();
      expect(client.got).toEqual([
        {
          message: { jsonrpc: '2.0', id: 7, error: { code: -32603, message: 'MCP server "s" asked this client for elicitation/create (the elicitation capability), which it did not declare at initialize; the server was not asked again' } },
          related: 7,
        },
      ]);
      expect(up.received.filter((m) => 'method' in m && m.method === 'tools/call')).toHaveLength(1);
    });

    it(`a server that keeps asking is retried ${MAX_INPUT_ROUNDS} times, then the client gets a clear error`, async () => {
      const { bridge, up, client } = await modernBridge({ elicitation: {} });
      let call = up.next('tools/call');
      await bridge.fromClient(client.id, { jsonrpc: '2.0', id: 'n', method: 'tools/call', params: { name: 'ask', arguments: {} } });
      for (let round = 1; round <= MAX_INPUT_ROUNDS + 1; round++) {
        const sent = await call;
        call = up.next('tools/call');
        up.reply({ jsonrpc: '2.0', id: sent.id, result: { resultType: 'input_required', inputRequests: { name: ELICIT }, requestState: String(round) } });
        if (round > MAX_INPUT_ROUNDS) break;
        await waitFor(`question ${round}`, () => asks(client.got).length === round, 10_000, { observe: () => client.got });
        await bridge.fromClient(client.id, { jsonrpc: '2.0', id: asks(client.got)[round - 1]!.id, result: { action: 'accept', content: { name: 'n' } } });
      }
      await waitFor('the error', () => client.got.some((g) => 'error' in g.message), 10_000, { observe: () => client.got });
      expect(client.got.at(-1)!.message).toEqual({ jsonrpc: '2.0', id: 'n', error: { code: -32603, message: `MCP server "s" still asked for input after ${MAX_INPUT_ROUNDS} rounds; apiary stopped retrying the request` } });
      expect(asks(client.got)).toHaveLength(MAX_INPUT_ROUNDS);
      expect(up.received.filter((m) => 'method' in m && m.method === 'tools/call')).toHaveLength(MAX_INPUT_ROUNDS + 1);
    });

    it("the client's cancellation while it is being asked withdraws the questions and ends the call; an error as an answer ends it too", async () => {
      const { bridge, up, client } = await modernBridge({ elicitation: {} });
      const call = up.next('tools/call');
      await bridge.fromClient(client.id, { jsonrpc: '2.0', id: 'x', method: 'tools/call', params: { name: 'ask', arguments: {} } });
      up.reply({ jsonrpc: '2.0', id: (await call).id, result: { resultType: 'input_required', inputRequests: { name: ELICIT } } });
      await waitFor('the question', () => asks(client.got).length === 1, 10_000, { observe: () => client.got });
      const question = asks(client.got)[0]!;
      await bridge.fromClient(client.id, { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 'x', reason: 'user gave up' } });
      expect(client.got.at(-1)!.message).toEqual({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: question.id, reason: 'the request was cancelled by the client' } });
      // A late answer goes nowhere: the server is not asked again, and the client hears nothing more of 'x'.
      await bridge.fromClient(client.id, { jsonrpc: '2.0', id: question.id, result: { action: 'accept', content: { name: 'late' } } });
      await up.flush();
      expect(up.received.filter((m) => 'method' in m && m.method === 'tools/call')).toHaveLength(1);
      expect(client.got.filter((g) => 'id' in g.message && g.message.id === 'x')).toEqual([]);

      // Its place is free again; and a question answered with an error ends that call with the client's own code.
      const next = up.next('tools/call');
      await bridge.fromClient(client.id, { jsonrpc: '2.0', id: 'y', method: 'tools/call', params: { name: 'ask', arguments: {} } });
      up.reply({ jsonrpc: '2.0', id: (await next).id, result: { resultType: 'input_required', inputRequests: { name: ELICIT } } });
      await waitFor('the second question', () => asks(client.got).length === 2, 10_000, { observe: () => client.got });
      await bridge.fromClient(client.id, { jsonrpc: '2.0', id: asks(client.got)[1]!.id, error: { code: -32601, message: 'no elicitation here' } });
      expect(client.got.at(-1)!.message).toEqual({ jsonrpc: '2.0', id: 'y', error: { code: -32601, message: 'the client answered MCP server "s"\'s elicitation/create with an error (no elicitation here); the call ends there' } });
    });

    it('a rollout while the client is being asked: the old process is drained at once, and the retry goes to the new one', async () => {
      const { bridge, up, client } = await modernBridge({ elicitation: {} });
      const call = up.next('tools/call');
      await bridge.fromClient(client.id, { jsonrpc: '2.0', id: 'r', method: 'tools/call', params: { name: 'ask', arguments: {} } });
      up.reply({ jsonrpc: '2.0', id: (await call).id, result: { resultType: 'input_required', inputRequests: { name: ELICIT }, requestState: 'kept' } });
      await waitFor('the question', () => asks(client.got).length === 1, 10_000, { observe: () => client.got });
      const fresh = scriptedServer({ modern: true, tools: ['ask'] });
      bridge.prepare(fresh.toServer, fresh.fromServer, 4343);
      await waitFor('the new process ready', () => bridge.status().next?.state === 'ready', 10_000, { observe: () => bridge.status() });
      expect(bridge.promote()).toBe(true);
      // Nothing of the call is at the old process while its client decides: it may stop now.
      await expect(bridge.drained(4242, 10_000)).resolves.toBe(true);
      const retry = fresh.next('tools/call');
      await bridge.fromClient(client.id, { jsonrpc: '2.0', id: asks(client.got)[0]!.id, result: { action: 'accept', content: { name: 'n' } } });
      const sent = await retry;
      expect(sent.params).toMatchObject({ name: 'ask', requestState: 'kept', inputResponses: { name: { action: 'accept', content: { name: 'n' } } } });
      fresh.reply({ jsonrpc: '2.0', id: sent.id, result: { resultType: 'complete', content: [] } });
      await waitFor('the answer', () => client.got.some((g) => 'result' in g.message && g.message.id === 'r'), 10_000, { observe: () => client.got });
    });

    it('a session for one 2026-07-28 request gets input_required as it is: its client retries by itself', async () => {
      const bridge = new Bridge({ name: 's', clock: systemClock });
      const up = scriptedServer({ modern: true, tools: ['ask'] });
      bridge.attach(up.toServer, up.fromServer, 4242);
      await waitFor('the modern server ready', () => bridge.isReady(), 10_000, { observe: () => bridge.status() });
      const got: JsonRpcMessage[] = [];
      const id = bridge.openSession((m) => got.push(m), { capabilities: { elicitation: {} }, ephemeral: true });
      const call = up.next('tools/call');
      await bridge.fromClient(id, { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'ask', arguments: {} } });
      const result = { resultType: 'input_required', inputRequests: { name: ELICIT }, requestState: 'r1' };
      up.reply({ jsonrpc: '2.0', id: (await call).id, result });
      await waitFor('the answer', () => got.length > 0, 10_000, { observe: () => got });
      expect(got).toEqual([{ jsonrpc: '2.0', id: 1, result }]);
    });
  });

  it('a 2025 server that refuses server/discover is initialized on the same process', async () => {
    const bridge = new Bridge({ name: 's', clock: systemClock });
    const up = scriptedServer({ tools: ['a'] });
    bridge.attach(up.toServer, up.fromServer, 4242);
    await waitFor('the legacy server ready', () => bridge.isReady(), 10_000, { observe: () => bridge.status() });
    expect(methods(up.received)).toEqual(['server/discover', 'initialize', 'notifications/initialized', 'tools/list']);
    expect(bridge.status().protocolVersion).toBe('2025-06-18');
    const client = session(bridge);
    const call = up.next('tools/call');
    await bridge.fromClient(client.id, { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'a' } });
    expect((await call).params).toEqual({ name: 'a' });
  });

  it('silence on server/discover past healthCheck.timeoutSeconds means legacy; a late DiscoverResult still wins over initialize', async () => {
    const clock = new FakeClock();
    const health = { intervalMs: 60_000, timeoutMs: 2_000, failureThreshold: 3 };
    // Silent on the probe, then answers initialize: a 2025 server that ignores unknown methods.
    const quiet = new Bridge({ name: 's', clock, health });
    const legacy = scriptedServer({ silent: true });
    const probe = legacy.next('server/discover');
    quiet.attach(legacy.toServer, legacy.fromServer, 1);
    await probe;
    const initialize = legacy.next('initialize');
    clock.advance(1_999);
    await legacy.flush();
    expect(methods(legacy.received)).toEqual(['server/discover']);
    clock.advance(1);
    const init = await initialize;
    expect(quiet.status().message).toMatch(/^no answer to server\/discover within 2s \(healthCheck.timeoutSeconds\); trying initialize/);
    legacy.reply({ jsonrpc: '2.0', id: init.id, result: { protocolVersion: '2025-03-26', capabilities: {}, serverInfo: { name: 'old', version: '1' } } });
    await waitFor('the quiet server ready', () => quiet.isReady(), 10_000, { observe: () => quiet.status() });
    expect(quiet.status().protocolVersion).toBe('2025-03-26');

    // A modern server slow to start: it answers the probe only after apiary has sent initialize too.
    const slowBridge = new Bridge({ name: 's', clock, health });
    const slow = scriptedServer({ silent: true });
    const discover = slow.next('server/discover');
    slowBridge.attach(slow.toServer, slow.fromServer, 2);
    const asked = await discover;
    const fallback = slow.next('initialize');
    clock.advance(2_000);
    const late = await fallback;
    slow.reply({ jsonrpc: '2.0', id: asked.id, result: { resultType: 'complete', supportedVersions: ['2026-07-28'], capabilities: {}, _meta: {} } });
    slow.reply({ jsonrpc: '2.0', id: late.id, error: { code: -32022, message: 'Unsupported protocol version', data: { supported: ['2026-07-28'] } } });
    await waitFor('the slow modern server ready', () => slowBridge.isReady(), 10_000, { observe: () => slowBridge.status() });
    expect(slowBridge.status()).toMatchObject({ protocolVersion: '2026-07-28', serverInfo: { name: 's', version: 'unknown' } });
  });

  it('a server that exits on the probe is legacy for its configuration: its next process is not probed, a new configuration is', async () => {
    const bridge = new Bridge({ name: 's', clock: systemClock });
    const first = scriptedServer({ silent: true });
    const probe = first.next('server/discover');
    bridge.attach(first.toServer, first.fromServer, 1, 'config-a');
    await probe;
    first.close();
    await waitFor('the exited process detached', () => bridge.status().state === 'down', 10_000, { observe: () => bridge.status() });

    const second = scriptedServer();
    bridge.attach(second.toServer, second.fromServer, 2, 'config-a');
    await waitFor('the next process ready', () => bridge.isReady(), 10_000, { observe: () => bridge.status() });
    expect(methods(second.received)).toEqual(['initialize', 'notifications/initialized', 'tools/list']);

    // The verdict was wrong (that process crashed for another reason): initialize is refused, and the next process is probed again.
    const wrong = scriptedServer({ modern: true });
    bridge.attach(wrong.toServer, wrong.fromServer, 4, 'config-a');
    await waitFor('the handshake failed', () => bridge.status().state === 'failed', 10_000, { observe: () => bridge.status() });
    expect(methods(wrong.received)).toEqual(['initialize']);
    const probedAgain = scriptedServer({ modern: true });
    bridge.attach(probedAgain.toServer, probedAgain.fromServer, 5, 'config-a');
    await waitFor('probed again, ready', () => bridge.isReady() && bridge.status().pid === 5, 10_000, { observe: () => bridge.status() });
    expect(bridge.status().protocolVersion).toBe('2026-07-28');

    const edited = scriptedServer({ modern: true });
    bridge.attach(edited.toServer, edited.fromServer, 6, 'config-b');
    await waitFor('the edited server ready', () => bridge.isReady() && bridge.status().pid === 6, 10_000, { observe: () => bridge.status() });
    expect(bridge.status().protocolVersion).toBe('2026-07-28');
  });

  it('liveness of a modern server is a server/discover, never a ping; failing ones make it Unhealthy', async () => {
    const clock = new FakeClock();
    const unhealthy: string[] = [];
    const bridge = new Bridge({ name: 's', clock, health: { intervalMs: 1_000, timeoutMs: 500, failureThreshold: 2 }, onUnhealthy: (m) => unhealthy.push(m) });
    const up = scriptedServer({ modern: true });
    bridge.attach(up.toServer, up.fromServer, 4242);
    await waitFor('the modern server ready', () => bridge.isReady(), 10_000, { observe: () => bridge.status() });
    const check = up.next('server/discover');
    clock.advance(1_000);
    const sent = await check;
    expect((sent.params!['_meta'] as Record<string, unknown>)[ENVELOPE_VERSION]).toBe('2026-07-28');
    await up.flush();
    expect(unhealthy).toEqual([]);
    expect(methods(up.received)).not.toContain('ping');

    // It stops answering: two unanswered checks in a row.
    up.fromServer.pause();
    for (let i = 0; i < 2; i++) {
      clock.advance(1_000);
      await new Promise((r) => setImmediate(r));
      clock.advance(500);
      await new Promise((r) => setImmediate(r));
    }
    await waitFor('Unhealthy', () => unhealthy.length > 0, 10_000, { observe: () => unhealthy });
    expect(unhealthy[0]).toMatch(/^2 MCP liveness checks \(server\/discover\) in a row failed \(last: no answer to server\/discover within 500 ms\)/);
  });

  it('a rolling update from a 2025 process to a modern one: the new one is discovered beside the old, and takes requests with the envelope', async () => {
    const bridge = new Bridge({ name: 's', clock: systemClock });
    const old = scriptedServer();
    bridge.attach(old.toServer, old.fromServer, 1);
    await waitFor('the old process ready', () => bridge.isReady(), 10_000, { observe: () => bridge.status() });
    const fresh = scriptedServer({ modern: true });
    bridge.prepare(fresh.toServer, fresh.fromServer, 2);
    await waitFor('the new process ready', () => bridge.status().next?.state === 'ready', 10_000, { observe: () => bridge.status() });
    expect(bridge.status().protocolVersion).toBe('2025-06-18');
    expect(bridge.promote()).toBe(true);
    expect(bridge.status()).toMatchObject({ pid: 2, protocolVersion: '2026-07-28' });
    const client = session(bridge);
    const call = fresh.next('tools/call');
    await bridge.fromClient(client.id, { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'x' } });
    expect(((await call).params!['_meta'] as Record<string, unknown>)[ENVELOPE_VERSION]).toBe('2026-07-28');
    expect(methods(fresh.received)).not.toContain('initialize');
  });

  it('a server the probe leaves unable to initialize (supergateway opens its upstream session on it) is legacy for its configuration: its next process gets initialize at once', async () => {
    const gaveUp: string[] = [];
    const bridge = new Bridge({ name: 's', clock: systemClock, onProtocolError: (message) => gaveUp.push(message) });
    const first = scriptedServer({ silent: true });
    const probe = first.next('server/discover');
    bridge.attach(first.toServer, first.fromServer, 1, 'config-a');
    const asked = await probe;
    const initialize = first.next('initialize');
    first.reply({ jsonrpc: '2.0', id: asked.id, error: { code: -32603, message: 'Bad Request: Server not initialized' } });
    const init = await initialize;
    first.reply({ jsonrpc: '2.0', id: init.id, error: { code: -32600, message: 'Invalid Request: Server already initialized' } });
    // Given up (its owner restarts it), as a process that breaks the framing is: it cannot be talked to any more.
    await waitFor('the process given up', () => bridge.status().state === 'down', 10_000, { observe: () => bridge.status() });
    expect(bridge.status().message).toMatch(/initialize failed after the server\/discover probe.*next process gets initialize at once/);
    expect(gaveUp).toEqual([bridge.status().message]);

    const second = scriptedServer();
    bridge.attach(second.toServer, second.fromServer, 2, 'config-a');
    await waitFor('the next process ready', () => bridge.isReady() && bridge.status().pid === 2, 10_000, { observe: () => bridge.status() });
    expect(methods(second.received)).toEqual(['initialize', 'notifications/initialized', 'tools/list']);
  });

  it('a server slow to start that then exits on the probe is remembered as legacy too', async () => {
    const clock = new FakeClock();
    const bridge = new Bridge({ name: 's', clock, health: { intervalMs: 60_000, timeoutMs: 1_000, failureThreshold: 3 } });
    const first = scriptedServer({ silent: true });
    const probe = first.next('server/discover');
    bridge.attach(first.toServer, first.fromServer, 1, 'slow-config');
    await probe;
    const fallback = first.next('initialize');
    clock.advance(1_000);
    await fallback;
    first.close();
    await waitFor('the exited process detached', () => bridge.status().state === 'down', 10_000, { observe: () => bridge.status() });
    const second = scriptedServer();
    bridge.attach(second.toServer, second.fromServer, 2, 'slow-config');
    await waitFor('the next process ready', () => bridge.isReady(), 10_000, { observe: () => bridge.status() });
    expect(methods(second.received)).toEqual(['initialize', 'notifications/initialized', 'tools/list']);
  });
});
