/**
 * `apiary proxy NAME`'s pipe (src/mcp/stdio-shim.ts) over a long session: it
 * forwards each message of the client's as one HTTP request, and a client
 * such as Claude Desktop keeps the session for hours.
 */
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { runStdioShim } from '../src/mcp/stdio-shim.js';
import { mostAbortListeners } from './helpers/listeners.js';
import { onJsonLines } from './helpers/scripted-server.js';
import { tinyEndpoint, type TinyEndpoint } from './helpers/tiny-endpoint.js';

let tiny: TinyEndpoint | undefined;
afterEach(async () => {
  await tiny?.close();
  tiny = undefined;
});

describe('the stdio shim over a long session', () => {
  it('answers every request and leaves no signal with a listener per message', async () => {
    tiny = await tinyEndpoint('shimmed', { ready: true });
    const stdin = new PassThrough();
    const stdout = new PassThrough();
    const answered = new Set<unknown>();
    const waiting = new Map<unknown, () => void>();
    onJsonLines<{ id?: unknown }>(stdout, (message) => {
      answered.add(message.id);
      waiting.get(message.id)?.();
    });
    const answer = (id: unknown): Promise<void> => (answered.has(id) ? Promise.resolve() : new Promise((resolve) => waiting.set(id, resolve)));
    const errors: string[] = [];
    const shim = runStdioShim({ url: new URL(tiny.endpoint.url), stdin, stdout, onError: (m) => errors.push(m) });
    const send = (message: object): boolean => stdin.write(`${JSON.stringify({ jsonrpc: '2.0', ...message })}\n`);
    send({ id: 'init', method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'shim-test', version: '1' } } });
    await answer('init');
    // One after another, as a session goes on: at any time one request is in flight.
    const most = await mostAbortListeners(async () => {
      send({ method: 'notifications/initialized' });
      for (let i = 0; i < 200; i++) {
        send({ id: i, method: 'ping' });
        await answer(i);
      }
    });
    expect(answered.size).toBe(201);
    stdin.end();
    await shim;
    expect(errors).toEqual([]);
    expect(most).toBeLessThan(20);
  }, 60_000);
});
