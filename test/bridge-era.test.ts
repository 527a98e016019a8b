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

  it("a modern server's input_required reaches a 2025 client as a clear error, not as a final result", async () => {
    const bridge = new Bridge({ name: 's', clock: systemClock });
    const up = scriptedServer({ modern: true, tools: ['ask'] });
    bridge.attach(up.toServer, up.fromServer, 4242);
    await waitFor('the modern server ready', () => bridge.isReady(), 10_000, { observe: () => bridge.status() });
    const client = session(bridge, { elicitation: {} });
    const call = up.next('tools/call');
    await bridge.fromClient(client.id, { jsonrpc: '2.0', id: 'c1', method: 'tools/call', params: { name: 'ask', arguments: {} } });
    const sent = await call;
    up.reply({ jsonrpc: '2.0', id: sent.id, result: { resultType: 'input_required', inputRequests: { name: { method: 'elicitation/create', params: { message: 'your name?', requestedSchema: { type: 'object', properties: {} } } } }, requestState: 'r1' } });
    await waitFor('the answer to the call', () => client.got.length > 0, 10_000, { observe: () => client.got });
    expect(client.got).toEqual([
      { jsonrpc: '2.0', id: 'c1', error: { code: -32603, message: 'MCP server "s" asked for input mid-call (elicitation/create); apiary does not yet translate that for 2025-11-25 clients' } },
    ]);
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
