/**
 * A 2026-07-28 request is a client session at the Bridge that lives as long
 * as the request. Such a session is no news to the controller: opening and
 * closing it must not tell the Bridge's owner that something changed (that
 * queues a reconcile of the server, twice per request), whether it comes to
 * the server's own endpoint or through the aggregate. A 2025 session still
 * is news. The server is a fixture on in-memory streams behind a real Bridge.
 */
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { Aggregate } from '../src/mcp/aggregate.js';
import { Bridge } from '../src/mcp/bridge.js';
import { HttpEndpoint } from '../src/mcp/http-endpoint.js';
import type { JsonRpcMessage } from '../src/mcp/jsonrpc.js';
import { systemClock } from '../src/util/clock.js';
import { waitFor } from './helpers/wait.js';
import { onJsonLines } from './helpers/scripted-server.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A Bridge over a fixture server with one tool, counting what it tells its owner. */
async function counted(): Promise<{ bridge: Bridge; changes: () => number }> {
  const toServer = new PassThrough();
  const fromServer = new PassThrough();
  let changes = 0;
  const bridge = new Bridge({ name: 'fixture', clock: systemClock, onChange: () => void (changes += 1) });
  onJsonLines<{ id?: number; method?: string }>(toServer, (message) => {
    if (message.id === undefined || message.method === undefined) return;
    const result =
      message.method === 'initialize'
        ? { protocolVersion: '2025-11-25', capabilities: { tools: {} }, serverInfo: { name: 'fixture', version: '1' } }
        : message.method === 'tools/list'
          ? { tools: [{ name: 'only', inputSchema: { type: 'object' } }] }
          : {};
    fromServer.write(`${JSON.stringify({ jsonrpc: '2.0', id: message.id, result } as JsonRpcMessage)}\n`);
  });
  bridge.attach(toServer, fromServer, 4242);
  await waitFor('fixture ready', () => bridge.isReady(), 10_000, { intervalMs: 5 });
  cleanups.push(() => Promise.resolve(bridge.close()));
  return { bridge, changes: () => changes };
}

async function endpointOver(host: ConstructorParameters<typeof HttpEndpoint>[0]): Promise<string> {
  const endpoint = new HttpEndpoint(host, 0);
  await endpoint.listen();
  cleanups.push(() => endpoint.close());
  return endpoint.url;
}

const ENVELOPE = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} };

async function modernList(url: string): Promise<unknown> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', 'MCP-Protocol-Version': '2026-07-28', 'Mcp-Method': 'tools/list' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: { _meta: ENVELOPE } }),
  });
  return ((await res.json()) as { result?: unknown }).result;
}

describe("a modern request's short session", () => {
  it("is no change to the Bridge's owner, at the server's endpoint or through the aggregate; a 2025 session is", async () => {
    const { bridge, changes } = await counted();
    const own = await endpointOver(bridge);
    const aggregate = new Aggregate({ readyMembers: () => new Map([['fixture', bridge]]) }, 'test');
    cleanups.push(() => Promise.resolve(aggregate.close()));
    const through = await endpointOver(aggregate);
    const before = changes();

    for (let i = 0; i < 3; i++) {
      expect(await modernList(own)).toMatchObject({ tools: [{ name: 'only' }] });
      expect(await modernList(through)).toMatchObject({ tools: [{ name: 'fixture__only' }] });
    }
    expect(changes()).toBe(before);
    expect(bridge.status().sessions).toBe(0);

    // The counter does count: a 2025 session opened is news.
    const session = bridge.openSession(() => undefined);
    expect(changes()).toBe(before + 1);
    bridge.closeSession(session);
  });
});
