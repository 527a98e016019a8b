/**
 * The HTTP probe's handshake against a server that answers initialize and
 * never tools/list: the status says which step is unanswered, and for how long.
 */
import { spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../src/util/clock.js';
import { HttpProbe } from '../src/mcp/http-probe.js';
import { createMcpHandler, McpServer } from '@modelcontextprotocol/server';
import { toNodeHandler } from '@modelcontextprotocol/node';
import * as z from 'zod';
import { mostAbortListeners } from './helpers/listeners.js';
import { waitFor } from './helpers/wait.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A streamable-HTTP server that answers initialize and holds every tools/list unanswered. */
async function halfwayServer(): Promise<{ url: string; listed: () => number }> {
  let listed = 0;
  const held: ServerResponse[] = [];
  const http = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.method !== 'POST') {
      res.writeHead(req.method === 'DELETE' ? 200 : 405).end();
      return;
    }
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (text += chunk));
    req.on('end', () => {
      const message = JSON.parse(text) as { id?: number; method: string; params?: { protocolVersion?: string } };
      if (message.id === undefined) {
        res.writeHead(202).end();
      } else if (message.method === 'initialize') {
        const result = { protocolVersion: message.params?.protocolVersion, capabilities: { tools: {} }, serverInfo: { name: 'halfway', version: '1' } };
        res.writeHead(200, { 'Content-Type': 'application/json', 'Mcp-Session-Id': 'one' }).end(JSON.stringify({ jsonrpc: '2.0', id: message.id, result }));
      } else if (message.method === 'tools/list') {
        listed += 1;
        held.push(res);
      } else {
        res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: message.id, result: {} }));
      }
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  cleanups.push(async () => {
    for (const res of held) res.destroy();
    http.closeAllConnections();
    await new Promise<void>((resolve) => http.close(() => resolve()));
  });
  return { url: `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`, listed: () => listed };
}

describe('HttpProbe handshake', () => {
  it('a server that answers initialize but never tools/list: the status names tools/list and the timeout', async () => {
    const server = await halfwayServer();
    let changed: () => void = () => undefined;
    const probe = new HttpProbe({ url: server.url, transport: 'streamable-http', clock: systemClock, health: { intervalMs: 30_000, timeoutMs: 300, failureThreshold: 3 }, onChange: () => changed(), onUnhealthy: () => undefined }, 1);
    cleanups.push(() => probe.stop());
    // Waits on the probe's own change event (its first failed handshake), not on time.
    await new Promise<void>((resolve) => {
      changed = () => {
        if (probe.status().message !== 'waiting for the server to listen') resolve();
      };
    });
    expect(server.listed()).toBe(1);
    expect(probe.status()).toMatchObject({ state: 'initializing', message: `waiting for the MCP handshake at ${server.url} (no answer to tools/list within 0.3s (healthCheck.timeoutSeconds))` });
  }, 30_000);
});

/** A modern-only server (2026-07-28, made with the SDK v2): it has no initialize and no ping. `hang` makes it stop answering. */
async function modernServer(): Promise<{ url: string; methods: string[]; hang: () => void }> {
  const factory = (): McpServer => {
    const s = new McpServer({ name: 'modern-http', version: '3.0.0' }, { capabilities: { tools: {} } });
    s.registerTool('echo', { inputSchema: z.object({ text: z.string() }) }, async ({ text }) => ({ content: [{ type: 'text', text: `modern: ${text}` }] }));
    return s;
  };
  const handler = toNodeHandler(createMcpHandler(factory, { legacy: 'reject' }));
  const methods: string[] = [];
  let hanging = false;
  const held: ServerResponse[] = [];
  const http = createServer((req, res) => {
    const method = req.headers['mcp-method'];
    methods.push(typeof method === 'string' ? method : `(${req.method} without Mcp-Method)`);
    if (hanging) held.push(res);
    else void handler(req, res);
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  cleanups.push(async () => {
    for (const res of held) res.destroy();
    http.closeAllConnections();
    await new Promise<void>((resolve) => http.close(() => resolve()));
  });
  return { url: `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`, methods, hang: () => (hanging = true) };
}

describe('HttpProbe eras', () => {
  it('a modern-only server is Ready at 2026-07-28, its liveness is server/discover (never ping), and sessions reach it', async () => {
    const server = await modernServer();
    const unhealthy: string[] = [];
    const probe = new HttpProbe({ url: server.url, transport: 'streamable-http', clock: systemClock, health: { intervalMs: 50, timeoutMs: 1_000, failureThreshold: 2 }, onChange: () => undefined, onUnhealthy: (m) => unhealthy.push(m) }, 1);
    cleanups.push(() => probe.stop());
    await waitFor('the probe ready', async () => probe.status().state === 'ready', 10_000);
    expect(probe.status()).toMatchObject({ protocolVersion: '2026-07-28', serverInfo: { name: 'modern-http', version: '3.0.0' }, tools: [{ name: 'echo' }] });
    await waitFor('liveness checks after the probe', async () => server.methods.filter((m) => m === 'server/discover').length >= 3, 10_000);
    expect(server.methods).not.toContain('ping');
    expect(server.methods).not.toContain('initialize');

    // An aggregate client's session, in the era the probe found: its calls work.
    const session = await probe.openSession({}, async () => ({ jsonrpc: '2.0', id: 0, error: { code: -32601, message: 'none' } }));
    const answer = await session.request('tools/call', { name: 'echo', arguments: { text: 'hi' } }, 5_000);
    expect(answer.result).toMatchObject({ content: [{ type: 'text', text: 'modern: hi' }] });
    await session.close();

    server.hang();
    await waitFor('Unhealthy', async () => unhealthy.length > 0, 15_000);
    expect(unhealthy[0]).toMatch(/^2 MCP liveness checks \(server\/discover\) in a row failed/);
  }, 30_000);
});

const EVERYTHING = createRequire(import.meta.url).resolve('@modelcontextprotocol/server-everything/dist/index.js');

/** server-everything over the 2024 HTTP+SSE transport, as a real process; its /sse URL once it says it listens (an event, not a wait). */
async function everythingOverSse(): Promise<string> {
  const port = await new Promise<number>((resolve) => {
    const free = createServer().listen(0, '127.0.0.1', () => {
      const { port } = free.address() as AddressInfo;
      free.close(() => resolve(port));
    });
  });
  const child = spawn(process.execPath, [EVERYTHING, 'sse'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PORT: String(port) } });
  cleanups.push(async () => void child.kill('SIGKILL'));
  await new Promise<void>((resolve, reject) => {
    let said = '';
    const heard = (chunk: Buffer): void => {
      said += chunk.toString();
      if (said.includes(`running on port ${port}`)) resolve();
    };
    child.stdout!.on('data', heard);
    child.stderr!.on('data', heard);
    child.once('exit', (code) => reject(new Error(`server-everything sse exited (${code}) before it listened: ${said}`)));
  });
  return `http://127.0.0.1:${port}/sse`;
}

describe('HttpProbe over hours', () => {
  it('an HTTP+SSE server\'s liveness checks leave no signal with a listener per ping', async () => {
    const url = await everythingOverSse();
    let pings = 0;
    const probe = new HttpProbe({ url, transport: 'sse', clock: systemClock, health: { intervalMs: 1, timeoutMs: 5_000, failureThreshold: 2 }, onChange: () => undefined, onUnhealthy: () => undefined }, 1);
    cleanups.push(() => probe.stop());
    await waitFor('the probe ready', async () => probe.status().state === 'ready', 15_000);
    // Counted at the fetch under the probe's: each POST to the server's /message.
    const fetched = globalThis.fetch;
    globalThis.fetch = (input, init) => {
      if (init?.method === 'POST') pings += 1;
      return fetched(input, init);
    };
    try {
      const most = await mostAbortListeners(async () => void (await waitFor('200 pings', async () => pings >= 200, 30_000)));
      expect(most).toBeLessThan(20);
    } finally {
      globalThis.fetch = fetched;
    }
  }, 60_000);

  it('its liveness checks and a session\'s requests leave no signal with a listener per request', async () => {
    const server = await modernServer();
    const checks = (): number => server.methods.filter((m) => m === 'server/discover').length;
    const probe = new HttpProbe({ url: server.url, transport: 'streamable-http', clock: systemClock, health: { intervalMs: 1, timeoutMs: 5_000, failureThreshold: 2 }, onChange: () => undefined, onUnhealthy: () => undefined }, 1);
    cleanups.push(() => probe.stop());
    await waitFor('the probe ready', async () => probe.status().state === 'ready', 10_000);
    const probing = await mostAbortListeners(async () => {
      const before = checks();
      await waitFor('200 liveness checks', async () => checks() >= before + 200, 20_000);
    });
    expect(probing).toBeLessThan(20);

    const session = await probe.openSession({}, async () => ({ jsonrpc: '2.0', id: 0, error: { code: -32601, message: 'none' } }));
    const calling = await mostAbortListeners(async () => {
      for (let i = 0; i < 200; i++) expect((await session.request('tools/call', { name: 'echo', arguments: { text: `${i}` } }, 5_000)).result).toBeDefined();
    });
    await session.close();
    expect(calling).toBeLessThan(20);
  }, 60_000);
});
