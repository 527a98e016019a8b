/**
 * A stdio server that writes more than a message may hold without a newline
 * has broken MCP's framing: the bridge stops reading it and fails what it
 * holds at once, and the controller restarts it with a reason that says so.
 */
import { describe, expect, it } from 'vitest';
import { findCondition } from '../src/api/status.js';
import { systemClock } from '../src/util/clock.js';
import { Bridge } from '../src/mcp/bridge.js';
import type { JsonRpcMessage } from '../src/mcp/jsonrpc.js';
import { MAX_MESSAGE_BYTES } from '../src/mcp/line-reader.js';
import { harness, tinyServer } from './helpers/controller.js';
import { scriptedServer } from './helpers/scripted-server.js';
import { waitFor } from './helpers/wait.js';

const OVERSIZED = 'the server wrote a message over 4 MiB on stdout without a newline: protocol error';

describe('a stdio server that writes a message over the cap', () => {
  it('the bridge fails the requests it held at once, says why, and asks for a restart of that process', async () => {
    const errors: { message: string; pid: number }[] = [];
    const bridge = new Bridge({ name: 's', clock: systemClock, onProtocolError: (message, pid) => errors.push({ message, pid }) });
    const up = scriptedServer();
    bridge.attach(up.toServer, up.fromServer, 4242);
    await waitFor('the bridge ready (handshake done)', () => bridge.isReady(), 10_000, { observe: () => bridge.status() });
    const got: JsonRpcMessage[] = [];
    const client = bridge.openSession((m) => got.push(m));
    const call = up.next('tools/call');
    await bridge.fromClient(client, { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'x' } });
    await call;
    // 5 MiB in 64 KiB writes, and no newline.
    const chunk = 'x'.repeat(64 * 1024);
    for (let written = 0; written < 5 * 1024 * 1024; written += chunk.length) up.fromServer.write(chunk);
    await waitFor('the held call failed', () => got.length > 0, 10_000, { observe: () => bridge.status() });
    expect(MAX_MESSAGE_BYTES).toBe(4 * 1024 * 1024);
    expect(errors).toEqual([{ message: OVERSIZED, pid: 4242 }]);
    expect(got).toEqual([{ jsonrpc: '2.0', id: 1, error: { code: -32002, message: `MCP server "s" stopped while handling this request (${OVERSIZED}); it is safe to retry` } }]);
    expect(bridge.status()).toMatchObject({ state: 'down', message: OVERSIZED });
  });

  it('a new process of a rolling update that does it fails there, saying why, and the serving one is untouched', async () => {
    const errors: string[] = [];
    const bridge = new Bridge({ name: 's', clock: systemClock, onProtocolError: (message) => errors.push(message) });
    const serving = scriptedServer();
    bridge.attach(serving.toServer, serving.fromServer, 4242);
    await waitFor('the bridge ready (handshake done)', () => bridge.isReady(), 10_000, { observe: () => bridge.status() });
    const fresh = scriptedServer();
    bridge.prepare(fresh.toServer, fresh.fromServer, 5252);
    await waitFor('the new process ready', () => bridge.status().next?.state === 'ready', 10_000, { observe: () => bridge.status() });
    fresh.fromServer.write('x'.repeat(MAX_MESSAGE_BYTES + 1));
    await waitFor('the new process failed', () => bridge.status().next?.state === 'failed', 10_000, { observe: () => bridge.status() });
    expect(bridge.status()).toMatchObject({ state: 'ready', pid: 4242, next: { pid: 5252, state: 'failed', message: OVERSIZED } });
    expect(bridge.promote()).toBe(false);
    expect(errors).toEqual([]);
  });

  it('the controller restarts it, the termination reason ProtocolError, and the new process serves', async () => {
    const h = await harness();
    await h.write('a.yaml', tinyServer('a', h, { args: ['--flood-once', String(5 * 1024 * 1024)] }));
    await h.start();
    const restarted = await h.waitFor(
      'a restarted after its oversized message, and Ready',
      async () => {
        const s = await h.status('a');
        return s?.lastTermination !== undefined && findCondition(s.conditions, 'Ready')?.status === 'True' ? s : undefined;
      },
      30_000,
    );
    expect(restarted.lastTermination?.reason).toBe('ProtocolError');
    expect(restarted.restartCount).toBe(1);
    const starts = await h.starts('a');
    expect(starts).toHaveLength(2);
    expect(restarted.pid).toBe(starts[1]);
    const events = (await h.server('a'))?.events ?? [];
    expect(events.find((e) => e.reason === 'ProtocolError')?.message).toBe(`${OVERSIZED}; restarting`);
  }, 40_000);
});
