/**
 * Where a stdio server's questions to its client (sampling, elicitation,
 * roots) go when one process serves many clients: only to the client whose
 * call can have caused it, and only if it declared the capability. Real
 * parts: a server on the official SDK (test/fixtures/servers/sampling-server.mjs)
 * spawned as a process, apiary's Bridge and HttpEndpoint, and SDK clients.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CreateMessageRequestSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../src/util/clock.js';
import { Bridge } from '../src/mcp/bridge.js';
import { HttpEndpoint } from '../src/mcp/http-endpoint.js';
import type { Id, JsonRpcMessage } from '../src/mcp/jsonrpc.js';
import { scriptedServer } from './helpers/scripted-server.js';
import { waitFor } from './helpers/wait.js';

const SAMPLING_SERVER = fileURLToPath(new URL('./fixtures/servers/sampling-server.mjs', import.meta.url));

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** The fixture server as a real process behind a bridge and its HTTP endpoint. */
async function served(): Promise<{ bridge: Bridge; url: string }> {
  const child: ChildProcess = spawn(process.execPath, [SAMPLING_SERVER], { stdio: ['pipe', 'pipe', 'inherit'] });
  cleanups.push(() => void child.kill('SIGKILL'));
  const bridge = new Bridge({ name: 'sampler', clock: systemClock });
  bridge.attach(child.stdin!, child.stdout!, child.pid!);
  const endpoint = new HttpEndpoint(bridge, 0);
  await endpoint.listen();
  cleanups.push(() => endpoint.close());
  await waitFor('the sampling server ready', () => {
    expect(bridge.status().state).not.toBe('failed');
    return bridge.isReady();
  }, 10_000, { observe: () => bridge.status() });
  return { bridge, url: endpoint.url };
}

/** An SDK client; with `sampling`, it declares the capability and records every question it gets. */
async function client(url: string, name: string, sampling: boolean): Promise<{ client: Client; asked: string[] }> {
  const asked: string[] = [];
  const c = new Client({ name, version: '1.0.0' }, { capabilities: sampling ? { sampling: {} } : {} });
  if (sampling) {
    c.setRequestHandler(CreateMessageRequestSchema, (request) => {
      const content = request.params.messages[0]?.content;
      asked.push(content !== undefined && 'text' in content ? String(content.text) : '?');
      return { role: 'assistant', content: { type: 'text', text: `from ${name}` }, model: name };
    });
  }
  await c.connect(new StreamableHTTPClientTransport(new URL(url)));
  cleanups.push(() => c.close());
  return { client: c, asked };
}

const textOf = (result: unknown): string => ((result as CallToolResult).content[0] as { text: string }).text;

describe('a stdio server asks for sampling during a call (SDK server and clients)', () => {
  it("goes to the one client whose call is in flight; B's call in flight alone is not enough to ask B", async () => {
    const { url } = await served();
    const a = await client(url, 'a', true);
    const b = await client(url, 'b', true);
    const result = await a.client.callTool({ name: 'ask', arguments: { text: 'secret of a' } });
    expect(textOf(result)).toBe('reply: from a');
    expect(a.asked).toEqual(['secret of a']);
    expect(b.asked).toEqual([]);
  }, 30_000);

  it("while B has a call in flight, A's question reaches neither: the server is told it cannot be routed", async () => {
    const { url } = await served();
    const a = await client(url, 'a', true);
    const b = await client(url, 'b', true);
    // A's call reaches the server first (its progress says so), then B's; A's tool asks only once B's is in flight.
    let reached!: () => void;
    const atServer = new Promise<void>((resolve) => (reached = resolve));
    const asking = a.client.callTool({ name: 'ask', arguments: { text: 'secret of a', afterHold: true } }, undefined, { onprogress: () => reached() });
    await atServer;
    const holding = b.client.callTool({ name: 'hold', arguments: {} });
    const answer = textOf(await asking);
    expect(b.asked).toEqual([]);
    expect(a.asked).toEqual([]);
    expect(answer).toMatch(/^refused: .*2 clients have requests in flight that sampling\/createMessage could serve, and stdio does not say which one it is for/);
    await a.client.callTool({ name: 'release', arguments: {} });
    expect(textOf(await holding)).toBe('held');
  }, 30_000);

  it('a caller that did not declare sampling (as the aggregate) is refused, and no other client is asked in its place', async () => {
    const { url } = await served();
    const plain = await client(url, 'plain', false);
    const stranger = await client(url, 'stranger', true);
    await stranger.client.listTools();
    const answer = textOf(await plain.client.callTool({ name: 'ask', arguments: { text: 'secret of plain' } }));
    expect(stranger.asked).toEqual([]);
    expect(answer).toMatch(/^refused: .*the client whose request sampling\/createMessage serves did not declare the sampling capability/);
  }, 30_000);
});

describe('Bridge: where a server-to-client request goes (scripted server)', () => {
  async function attached(): Promise<{ bridge: Bridge; up: ReturnType<typeof scriptedServer> }> {
    const bridge = new Bridge({ name: 's', clock: systemClock });
    const up = scriptedServer();
    bridge.attach(up.toServer, up.fromServer, 4242);
    await waitFor('the bridge ready (handshake done)', () => bridge.isReady(), 10_000, { observe: () => bridge.status() });
    return { bridge, up };
  }
  function session(bridge: Bridge, capabilities?: Record<string, unknown>): { id: string; got: JsonRpcMessage[] } {
    const got: JsonRpcMessage[] = [];
    return { id: bridge.openSession((m) => got.push(m), capabilities !== undefined ? { capabilities } : {}), got };
  }
  const answerTo = (up: ReturnType<typeof scriptedServer>, id: Id): JsonRpcMessage | undefined => up.received.find((m) => 'id' in m && m.id === id && !('method' in m));

  it('a session opened with declared capabilities (no initialize, as the aggregate opens one) is asked during its call', async () => {
    const { bridge, up } = await attached();
    const aggregate = session(bridge, { sampling: {} });
    const call = up.next('tools/call');
    await bridge.fromClient(aggregate.id, { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'ask' } });
    await call;
    up.reply({ jsonrpc: '2.0', id: 'q1', method: 'sampling/createMessage', params: { messages: [], maxTokens: 5 } });
    await up.flush();
    expect(aggregate.got.map((m) => ('method' in m ? m.method : undefined))).toEqual(['sampling/createMessage']);
  });

  it('with no call in flight a question goes to nobody: sampling is refused, roots/list answers no roots', async () => {
    const { bridge, up } = await attached();
    const idle = session(bridge, { sampling: {}, roots: {} });
    up.reply({ jsonrpc: '2.0', id: 'q2', method: 'sampling/createMessage', params: { messages: [], maxTokens: 5 } });
    up.reply({ jsonrpc: '2.0', id: 'q3', method: 'roots/list' });
    await up.flush();
    expect(idle.got).toEqual([]);
    expect(answerTo(up, 'q2')).toEqual({ jsonrpc: '2.0', id: 'q2', error: { code: -32601, message: 'no client has a request in flight that sampling/createMessage could serve' } });
    expect(answerTo(up, 'q3')).toEqual({ jsonrpc: '2.0', id: 'q3', result: { roots: [] } });
  });

  it('one client with two calls in flight is still one caller; a list in flight elsewhere is no caller', async () => {
    const { bridge, up } = await attached();
    const a = session(bridge, { elicitation: {} });
    const b = session(bridge, { elicitation: {} });
    const calls = [up.next('tools/call'), up.next('tools/call'), up.next('tools/list')];
    await bridge.fromClient(a.id, { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'x' } });
    await bridge.fromClient(a.id, { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'y' } });
    await bridge.fromClient(b.id, { jsonrpc: '2.0', id: 1, method: 'tools/list' });
    await Promise.all(calls);
    up.reply({ jsonrpc: '2.0', id: 'q4', method: 'elicitation/create', params: { message: 'sure?', requestedSchema: { type: 'object', properties: {} } } });
    await up.flush();
    expect(b.got.filter((m) => 'method' in m)).toEqual([]);
    expect(a.got.filter((m) => 'method' in m).map((m) => (m as { method: string }).method)).toEqual(['elicitation/create']);
  });
});
