/**
 * A 2025 client's session at the proxy of a 2026-07-28 HTTP server
 * (src/mcp/legacy-sessions.ts), against the real fixture server made with
 * the SDK v2 (modern-server.mjs --http --mrtr): what a client's cancellation
 * and an error for an answer do to the server's questions. The whole path
 * with the SDK v1 client, under the controller, is in mcp-eras.test.ts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import type { JsonRpcMessage } from '../src/mcp/jsonrpc.js';
import { LegacySessions } from '../src/mcp/legacy-sessions.js';
import { EXPOSE_ALL } from '../src/mcp/tool-filter.js';
import { waitFor } from './helpers/wait.js';

const MODERN = fileURLToPath(new URL('./fixtures/servers/modern-server.mjs', import.meta.url));
const children: ChildProcess[] = [];

afterEach(() => {
  for (const child of children.splice(0)) child.kill();
});

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  return port;
}

/** The fixture server on a port of its own, once it listens. */
async function modernHttpServer(): Promise<URL> {
  const port = await freePort();
  const child = spawn(process.execPath, [MODERN, '--http', '--mrtr'], { env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(child);
  let said = '';
  child.stderr!.on('data', (chunk: Buffer) => (said += chunk.toString('utf8')));
  await waitFor('the modern server listening', () => said.includes('modern server on'), 20_000, { observe: () => said });
  return new URL(`http://127.0.0.1:${port}/mcp`);
}

/** A 2025 client's session, initialized with `capabilities`; what it is sent, with the request each message belongs to. */
async function session(url: URL, capabilities: Record<string, unknown>): Promise<{ host: LegacySessions; id: string; got: { message: JsonRpcMessage; related?: unknown }[] }> {
  const host = new LegacySessions(() => ({ url, headers: {}, label: url.host }), () => EXPOSE_ALL, 'web');
  const got: { message: JsonRpcMessage; related?: unknown }[] = [];
  const id = host.openSession((message, related) => got.push({ message, ...(related !== undefined ? { related } : {}) }));
  await host.fromClient(id, { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities, clientInfo: { name: 'c', version: '1' } } });
  await waitFor('the initialize answer', () => got.length > 0, 20_000, { observe: () => got });
  expect(got.shift()!.message).toMatchObject({ id: 0, result: { protocolVersion: '2025-11-25', serverInfo: { name: 'modern', version: '1.0.0' }, capabilities: { tools: {} } } });
  return { host, id, got };
}

const questions = (got: { message: JsonRpcMessage }[]): (JsonRpcMessage & { id: string; method: string })[] =>
  got.flatMap(({ message }) => ('method' in message && 'id' in message && message.id !== undefined ? [message as never] : []));

describe("a 2025 client's session in front of a 2026-07-28 HTTP server", () => {
  it('asks the server\'s questions beside the call, answers them, and gives the final result', async () => {
    const { host, id, got } = await session(await modernHttpServer(), { elicitation: {}, sampling: {} });
    await host.fromClient(id, { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'greet', arguments: { greeting: 'hello' } } });
    await waitFor('the elicitation', () => questions(got).length === 1, 20_000, { observe: () => got });
    expect(got[0]).toEqual({ message: { jsonrpc: '2.0', id: expect.stringMatching(/^apiary-/), method: 'elicitation/create', params: expect.objectContaining({ message: 'your name?' }) }, related: 1 });
    await host.fromClient(id, { jsonrpc: '2.0', id: questions(got)[0]!.id, result: { action: 'accept', content: { name: 'ada' } } });
    await waitFor('the sampling request', () => questions(got).length === 2, 20_000, { observe: () => got });
    expect(questions(got)[1]).toMatchObject({ method: 'sampling/createMessage', params: { messages: [{ role: 'user', content: { type: 'text', text: 'a line for ada' } }] } });
    await host.fromClient(id, { jsonrpc: '2.0', id: questions(got)[1]!.id, result: { role: 'assistant', content: { type: 'text', text: 'hi ada' }, model: 'm', stopReason: 'endTurn' } });
    await waitFor('the result', () => got.some((g) => 'result' in g.message), 20_000, { observe: () => got });
    expect(got.at(-1)).toEqual({ message: { jsonrpc: '2.0', id: 1, result: expect.objectContaining({ content: [{ type: 'text', text: 'hello ada; the model said: hi ada' }] }) }, related: 1 });
    host.closeSession(id);
  }, 60_000);

  it("the client's cancellation withdraws the question and ends the call unanswered; an error for an answer ends the call with the client's code", async () => {
    const { host, id, got } = await session(await modernHttpServer(), { elicitation: {}, sampling: {} });
    await host.fromClient(id, { jsonrpc: '2.0', id: 'n', method: 'tools/call', params: { name: 'nag', arguments: {} } });
    await waitFor('the question', () => questions(got).length === 1, 20_000, { observe: () => got });
    const asked = questions(got)[0]!;
    await host.fromClient(id, { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 'n', reason: 'user gave up' } });
    expect(got.at(-1)!.message).toEqual({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: asked.id, reason: 'cancelled by the client' } });

    await host.fromClient(id, { jsonrpc: '2.0', id: 's', method: 'tools/call', params: { name: 'sample', arguments: { prompt: 'p' } } });
    await waitFor('the sampling request', () => questions(got).length === 2, 20_000, { observe: () => got });
    await host.fromClient(id, { jsonrpc: '2.0', id: questions(got)[1]!.id, error: { code: -1, message: 'the user declined' } });
    await waitFor('the error', () => got.some((g) => 'error' in g.message), 20_000, { observe: () => got });
    expect(got.at(-1)!.message).toEqual({ jsonrpc: '2.0', id: 's', error: { code: -1, message: 'the client answered MCP server "web"\'s sampling/createMessage with an error (the user declined); the call ends there' } });
    // The cancelled call was never answered.
    expect(got.filter((g) => 'id' in g.message && g.message.id === 'n')).toEqual([]);
    host.closeSession(id);
  }, 60_000);
});
