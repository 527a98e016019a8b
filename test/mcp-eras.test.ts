/**
 * apiary speaks to each upstream in its own era, with real servers under the
 * controller: a modern-only stdio server made with the SDK v2
 * (fixtures/servers/modern-server.mjs) and server-everything (a 2025 one),
 * reached by today's 2025 clients (the SDK v1 client) at status.url.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { Client as ModernClient, StreamableHTTPClientTransport as ModernTransport } from '@modelcontextprotocol/client';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { CreateMessageRequestSchema, ElicitRequestSchema, ListRootsRequestSchema, ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { describe, expect, it } from 'vitest';
import { findCondition } from '../src/api/status.js';
import { readEndpointToken } from '../src/mcp/endpoint-token.js';
import { StateLayout } from '../src/state/layout.js';
import { runCli } from './helpers/cli.js';
import { harness, isAlive, nodeServer, type Harness } from './helpers/controller.js';
import { freePort } from './helpers/ports.js';

const MODERN = fileURLToPath(new URL('./fixtures/servers/modern-server.mjs', import.meta.url));
const EVERYTHING = createRequire(import.meta.url).resolve('@modelcontextprotocol/server-everything/dist/index.js');
const SUPERGATEWAY = createRequire(import.meta.url).resolve('supergateway/dist/index.js');

const manifest = nodeServer;

async function ready(h: Harness, name: string, notPid?: number): Promise<{ url: string; pid: number; protocolVersion?: string }> {
  return h.waitFor(`${name} Ready`, async () => {
    const s = await h.status(name);
    return findCondition(s?.conditions, 'Ready')?.status === 'True' && s!.pid !== notPid && s!.url ? { url: s!.url, pid: s!.pid!, ...(s!.protocolVersion ? { protocolVersion: s!.protocolVersion } : {}) } : undefined;
  }, 30_000);
}

async function legacyClient(h: Harness, url: string, capabilities: Record<string, unknown> = {}): Promise<Client> {
  const token = await readEndpointToken(new StateLayout(h.stateDir));
  const client = new Client({ name: 'legacy', version: '1.0.0' }, { capabilities });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: token !== undefined ? { Authorization: `Bearer ${token}` } : {} } }));
  return client;
}

/** A 2025 client (the SDK v1) that answers elicitation with a name, sampling with the model's line and roots with one; `asked` counts its questions. */
async function answeringClient(h: Harness, url: string): Promise<{ client: Client; asked: string[] }> {
  const client = await legacyClient(h, url, { elicitation: {}, sampling: {}, roots: {} });
  const asked: string[] = [];
  client.setRequestHandler(ElicitRequestSchema, (request) => {
    asked.push(request.params.message);
    return { action: 'accept', content: { name: 'octocat' } };
  });
  client.setRequestHandler(CreateMessageRequestSchema, (request) => {
    const first = request.params.messages[0]?.content as { type?: string; text?: string } | undefined;
    const text = first?.type === 'text' ? String(first.text) : '?';
    asked.push(text);
    return { role: 'assistant', content: { type: 'text', text: `Paris, for ${text}` }, model: 'test-model', stopReason: 'endTurn' };
  });
  client.setRequestHandler(ListRootsRequestSchema, () => {
    asked.push('roots');
    return { roots: [{ uri: 'file:///work', name: 'work' }] };
  });
  return { client, asked };
}

/** What the MRTR tools of modern-server.mjs --mrtr give a 2025 client that answers, at `url` (tools named with `prefix` at the aggregate). */
async function callsAskingTools(h: Harness, server: string, url: string, prefix = ''): Promise<void> {
  const { client, asked } = await answeringClient(h, url);
  // Two rounds: a name by elicitation, then the model by sampling (the name carried in the server's requestState).
  expect((await client.callTool({ name: `${prefix}greet`, arguments: { greeting: 'hi' } })).content).toEqual([{ type: 'text', text: 'hi octocat; the model said: Paris, for a line for octocat' }]);
  expect(asked).toEqual(['your name?', 'a line for octocat']);
  expect((await client.callTool({ name: `${prefix}sample`, arguments: { prompt: 'capital of France?' } })).content).toEqual([{ type: 'text', text: 'the model said: Paris, for capital of France?' }]);
  expect((await client.callTool({ name: `${prefix}where`, arguments: {} })).content).toEqual([{ type: 'text', text: 'roots: file:///work' }]);
  // Not only tools: a prompt may ask too.
  expect((await client.getPrompt({ name: `${prefix}whoami` })).messages).toEqual([{ role: 'user', content: { type: 'text', text: 'I am octocat' } }]);
  // A server that never stops asking: apiary answers 8 rounds, then stops with a clear error.
  asked.length = 0;
  await expect(client.callTool({ name: `${prefix}nag`, arguments: {} })).rejects.toThrow(`MCP server "${server}" still asked for input after 8 rounds; apiary stopped retrying the request`);
  expect(asked).toEqual(Array.from({ length: 8 }, (_, i) => `your name? (round ${i + 1})`));
  await client.close();
  // A client without the capability: the server hears in the envelope that it may not ask (-32021), and says so.
  const plain = await legacyClient(h, url);
  await expect(plain.callTool({ name: `${prefix}sample`, arguments: { prompt: 'x' } })).rejects.toThrow(/-32021.*sampling/);
  await plain.close();
}

describe('a 2025 client in front of a 2026-07-28 server: input_required turned into the requests it understands (MRTR in)', () => {
  it('stdio: at the server\'s endpoint and through the aggregate', async () => {
    const h = await harness();
    await h.write('m.yaml', manifest('modern', [MODERN, '--mrtr']));
    await h.start();
    const { url } = await ready(h, 'modern');
    await callsAskingTools(h, 'modern', url);
    await callsAskingTools(h, 'modern', h.controller!.aggregateUrl!, 'modern__');
  }, 120_000);

  it('HTTP: through the proxy in front of a server made with createMcpHandler (which refuses 2025 clients itself)', async () => {
    const h = await harness();
    await h.write('w.yaml', manifest('web', [MODERN, '--http', '--mrtr'], '  transport: streamable-http\n'));
    await h.start();
    const { url } = await ready(h, 'web');
    await callsAskingTools(h, 'web', url);
    await callsAskingTools(h, 'web', h.controller!.aggregateUrl!, 'web__');
    // The server's progress reaches the client under its own token.
    const client = await legacyClient(h, url);
    const progress: unknown[] = [];
    const counted = await client.callTool({ name: 'count', arguments: {} }, undefined, { onprogress: (p) => progress.push(p) });
    expect(counted.content).toEqual([{ type: 'text', text: 'counted' }]);
    expect(progress).toEqual([{ progress: 1, total: 2 }, { progress: 2, total: 2 }]);
    await client.close();
  }, 120_000);

  it("a 2025 client whose session the proxy holds hears tools/list_changed: the server's own, and a spec.tools edit", async () => {
    const h = await harness();
    await h.write('w.yaml', manifest('web', [MODERN, '--http', '--grow'], '  transport: streamable-http\n'));
    await h.start();
    const { url } = await ready(h, 'web');
    const client = await legacyClient(h, url);
    let heard = 0;
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => void (heard += 1));
    const names = async (): Promise<string[]> => (await client.listTools()).tools.map((t) => t.name);
    expect(await names()).toEqual(['ask', 'echo', 'grow']);
    await client.callTool({ name: 'grow', arguments: {} });
    await h.waitFor('the server\'s own list_changed', () => Promise.resolve(heard >= 1), 30_000);
    expect(await names()).toEqual(['ask', 'echo', 'grow', 'grown']);
    await h.write('w.yaml', manifest('web', [MODERN, '--http', '--grow'], '  transport: streamable-http\n  tools:\n    deny: [echo]\n'));
    await h.waitFor('the filter edit\'s list_changed', () => Promise.resolve(heard >= 2), 30_000);
    expect(await names()).toEqual(['ask', 'grow', 'grown']);
    await client.close();
  }, 120_000);

  it('a 2026-07-28 client gets input_required as it is and answers it itself: at a stdio server\'s endpoint, at an HTTP server\'s proxy, and through the aggregate to each', async () => {
    const h = await harness();
    await h.write('m.yaml', manifest('modern', [MODERN, '--mrtr']));
    await h.write('w.yaml', manifest('web', [MODERN, '--http', '--mrtr'], '  transport: streamable-http\n'));
    await h.start();
    const { url } = await ready(h, 'modern');
    const web = await ready(h, 'web');
    const token = await readEndpointToken(new StateLayout(h.stateDir));
    for (const [at, prefix] of [[url, ''], [h.controller!.aggregateUrl!, 'modern__'], [web.url, ''], [h.controller!.aggregateUrl!, 'web__']] as const) {
      const client = new ModernClient({ name: 'modern-test', version: '1' }, { capabilities: { elicitation: {}, sampling: {} }, versionNegotiation: { mode: { pin: '2026-07-28' } } });
      const asked: string[] = [];
      client.setRequestHandler('elicitation/create', (request) => {
        asked.push(request.params.message);
        return { action: 'accept', content: { name: 'octocat' } };
      });
      client.setRequestHandler('sampling/createMessage', () => ({ role: 'assistant', content: { type: 'text', text: 'Paris' }, model: 'test-model', stopReason: 'endTurn' }));
      await client.connect(new ModernTransport(new URL(at), { requestInit: { headers: token !== undefined ? { Authorization: `Bearer ${token}` } : {} } }));
      expect((await client.callTool({ name: `${prefix}greet`, arguments: { greeting: 'hey' } })).content).toEqual([{ type: 'text', text: 'hey octocat; the model said: Paris' }]);
      expect(asked).toEqual(['your name?']);
      await client.close();
    }
  }, 120_000);
});

describe('each upstream in its own era', () => {
  it('a modern-only stdio server is Ready at 2026-07-28, and a 2025 client lists and calls its tools through apiary', async () => {
    const h = await harness();
    await h.write('m.yaml', manifest('modern', [MODERN]));
    await h.start();
    const { url, protocolVersion } = await ready(h, 'modern');
    expect(protocolVersion).toBe('2026-07-28');
    expect((await h.status('modern'))?.serverInfo).toEqual({ name: 'modern', version: '1.0.0' });
    expect(findCondition((await h.status('modern'))?.conditions, 'Ready')?.message).toBe('modern 1.0.0 answered server/discover and listed 2 tool(s)');
    // What apiary speaks to it, in describe and get -o wide.
    expect((await runCli(['describe', 'mcpserver', 'modern'], { env: h.env })).stdout).toMatch(/^Protocol: {9}2026-07-28$/m);
    const wide = (await runCli(['get', 'mcpservers', '-o', 'wide'], { env: h.env })).stdout.split('\n');
    const column = wide[0]!.indexOf('PROTOCOL');
    expect(column).toBeGreaterThan(0);
    expect(wide[1]!.slice(column)).toMatch(/^2026-07-28 /);

    const client = await legacyClient(h, url);
    expect(client.getServerVersion()).toMatchObject({ name: 'modern', version: '1.0.0' });
    expect((await client.listTools()).tools.map((t) => t.name).sort()).toEqual(['ask', 'echo']);
    expect((await client.callTool({ name: 'echo', arguments: { text: 'both eras' } })).content).toEqual([{ type: 'text', text: 'modern echo: both eras' }]);
    await expect(client.ping()).resolves.toBeDefined();
    // This client declared no elicitation, and the envelope says so: the server refuses to ask (-32021), and that passes as it is.
    await expect(client.callTool({ name: 'ask', arguments: {} })).rejects.toThrow(/-32021/);
    await client.close();
    // One that declared it: the server's input_required reaches it as an elicitation request, and its answer completes the call.
    const asked = await legacyClient(h, url, { elicitation: {} });
    asked.setRequestHandler(ElicitRequestSchema, () => ({ action: 'accept', content: { name: 'octocat' } }));
    expect((await asked.callTool({ name: 'ask', arguments: {} })).content).toEqual([{ type: 'text', text: 'hello octocat' }]);
    await asked.close();
  }, 60_000);

  it('server-everything (a 2025 server) is Ready at the version it answered initialize with', async () => {
    const h = await harness();
    await h.write('e.yaml', manifest('everything', [EVERYTHING, 'stdio']));
    await h.start();
    const { url, protocolVersion } = await ready(h, 'everything');
    expect(protocolVersion).toBe('2025-11-25');
    const client = await legacyClient(h, url);
    expect((await client.callTool({ name: 'echo', arguments: { message: 'legacy' } })).content).toEqual([{ type: 'text', text: 'Echo: legacy' }]);
    await client.close();
  }, 60_000);

  it('an HTTP modern-only server (createMcpHandler, legacy: reject) is probed Ready at 2026-07-28', async () => {
    const h = await harness();
    await h.write('w.yaml', manifest('web', [MODERN, '--http'], '  transport: streamable-http\n'));
    await h.start();
    const { protocolVersion } = await ready(h, 'web');
    expect(protocolVersion).toBe('2026-07-28');
    const s = await h.status('web');
    expect(s).toMatchObject({ serverInfo: { name: 'modern', version: '1.0.0' }, tools: 2 });
  }, 60_000);

  it('a modern server that stops answering (SIGSTOP) fails its discover checks and is restarted as Unhealthy', async () => {
    const h = await harness();
    await h.write('m.yaml', manifest('modern', [MODERN], '  healthCheck: { intervalSeconds: 1, timeoutSeconds: 1, failureThreshold: 2 }\n'));
    await h.start();
    const { pid } = await ready(h, 'modern');
    process.kill(pid, 'SIGSTOP');
    const next = await ready(h, 'modern', pid);
    expect(isAlive(pid)).toBe(false);
    expect(next.protocolVersion).toBe('2026-07-28');
    const s = await h.status('modern');
    expect(s?.lastTermination?.reason).toBe('Unhealthy');
    expect((await h.server('modern'))?.events.find((e) => e.reason === 'Unhealthy')?.message).toMatch(/^2 MCP liveness checks \(server\/discover\) in a row failed/);
  }, 60_000);

  it('a 2026-07-28 client reaches modern servers end to end: a stdio one at its endpoint and through the aggregate, an HTTP one through its proxy', async () => {
    const h = await harness();
    await h.write('m.yaml', manifest('modern', [MODERN]));
    await h.write('w.yaml', manifest('web', [MODERN, '--http'], '  transport: streamable-http\n'));
    await h.start();
    const stdio = await ready(h, 'modern');
    const http = await ready(h, 'web');
    const token = await readEndpointToken(new StateLayout(h.stateDir));
    const headers: Record<string, string> = token !== undefined ? { Authorization: `Bearer ${token}` } : {};
    const pinned = async (url: string): Promise<ModernClient> => {
      const client = new ModernClient({ name: 'modern-test', version: '1' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
      await client.connect(new ModernTransport(new URL(url), { requestInit: { headers } }));
      return client;
    };
    for (const url of [stdio.url, http.url]) {
      const client = await pinned(url);
      expect(client.getNegotiatedProtocolVersion()).toBe('2026-07-28');
      expect((await client.listTools()).tools.map((t) => t.name)).toEqual(['ask', 'echo']);
      expect((await client.callTool({ name: 'echo', arguments: { text: 'end to end' } })).content).toEqual([{ type: 'text', text: 'modern echo: end to end' }]);
      await client.close();
    }
    const aggregate = await pinned(h.controller!.aggregateUrl!);
    const names = (await aggregate.listTools()).tools.map((t) => t.name);
    expect(names).toEqual(['modern__ask', 'modern__echo', 'web__ask', 'web__echo']);
    expect((await aggregate.callTool({ name: 'modern__echo', arguments: { text: 'via the aggregate' } })).content).toEqual([{ type: 'text', text: 'modern echo: via the aggregate' }]);
    await aggregate.close();
  }, 60_000);
});

describe('a stdio server that relays to a hosted one', () => {
  it('supergateway --streamableHttp, spoiled by the server/discover probe, is Ready on its next process and serves calls', async () => {
    const port = await freePort();
    const hosted = spawn(process.execPath, [EVERYTHING, 'streamableHttp'], { env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      await new Promise<void>((resolve, reject) => {
        const heard = (chunk: Buffer): void => {
          if (String(chunk).includes(String(port))) resolve();
        };
        hosted.stdout.on('data', heard);
        hosted.stderr.on('data', heard);
        hosted.once('exit', (code) => reject(new Error(`server-everything exited ${code}`)));
      });
      const h = await harness();
      await h.write('gw.yaml', nodeServer('gw', [SUPERGATEWAY, '--streamableHttp', `http://127.0.0.1:${port}/mcp`]));
      await h.start();
      const s = await h.waitFor('gw Ready', async () => {
        const status = await h.status('gw');
        return findCondition(status?.conditions, 'Ready')?.status === 'True' && status?.url ? status : undefined;
      }, 30_000);
      expect(s.protocolVersion).not.toBe('2026-07-28');
      const token = await readEndpointToken(new StateLayout(h.stateDir));
      const client = new Client({ name: 'eras', version: '1' });
      await client.connect(new StreamableHTTPClientTransport(new URL(s.url!), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
      const echoed = await client.callTool({ name: 'echo', arguments: { message: 'relayed' } });
      expect(JSON.stringify(echoed.content)).toContain('relayed');
      await client.close();
    } finally {
      hosted.kill();
    }
  }, 60_000);
});
