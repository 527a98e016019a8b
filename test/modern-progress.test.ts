/**
 * Progress on the 2026-07-28 path: a request carrying `_meta.progressToken`
 * whose server reports progress is answered with an SSE response stream, the
 * progress notifications (under the client's own token) before the result,
 * as the 2026-07-28 Streamable HTTP transport says; a request without one is
 * still answered with plain JSON. server-everything (a 2025 stdio server)
 * reports the progress of its long-running tool; the SDK v2 client pinned to
 * 2026-07-28 hears it at the server's endpoint and at the aggregate.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Client as ModernClient, StreamableHTTPClientTransport as ModernTransport } from '@modelcontextprotocol/client';
import { describe, expect, it } from 'vitest';
import { findCondition } from '../src/api/status.js';
import { readEndpointToken } from '../src/mcp/endpoint-token.js';
import { StateLayout } from '../src/state/layout.js';
import { harness, type Harness } from './helpers/controller.js';

const EVERYTHING = createRequire(import.meta.url).resolve('@modelcontextprotocol/server-everything/dist/index.js');
const MODERN_SERVER = fileURLToPath(new URL('./fixtures/servers/modern-server.mjs', import.meta.url));
const MODERN = '2026-07-28';
const ENVELOPE = { 'io.modelcontextprotocol/protocolVersion': MODERN, 'io.modelcontextprotocol/clientCapabilities': {} };
const LONG = { duration: 0.4, steps: 4 };

async function started(args: string[] = [EVERYTHING, 'stdio']): Promise<{ url: string; aggregate: string; token: string }> {
  const h: Harness = await harness();
  await h.write('e.yaml', `apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata:\n  name: everything\nspec:\n  command: node\n  args: ${JSON.stringify(args)}\n`);
  const controller = await h.start();
  const url = await h.waitFor('everything Ready', async () => {
    const s = await h.status('everything');
    return findCondition(s?.conditions, 'Ready')?.status === 'True' && s?.url ? s.url : undefined;
  }, 20_000);
  return { url, aggregate: controller.aggregateUrl!, token: (await readEndpointToken(new StateLayout(h.stateDir)))! };
}

async function modernClient(url: string, token: string): Promise<ModernClient> {
  const client = new ModernClient({ name: 'progress-test', version: '1' }, { versionNegotiation: { mode: { pin: MODERN } } });
  await client.connect(new ModernTransport(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
  return client;
}

/** A raw tools/call: the response's content type and its body as text. */
async function rawCall(url: string, token: string, name: string, args: Record<string, unknown>, meta: Record<string, unknown>): Promise<{ type: string | null; text: string }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', Authorization: `Bearer ${token}`, 'MCP-Protocol-Version': MODERN, 'Mcp-Method': 'tools/call', 'Mcp-Name': name },
    body: JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name, arguments: args, _meta: { ...ENVELOPE, ...meta } } }),
  });
  return { type: res.headers.get('content-type'), text: await res.text() };
}

/** The JSON-RPC messages of an SSE body, in order. */
function frames(text: string): Array<Record<string, unknown>> {
  return text
    .split('\n')
    .filter((line) => line.startsWith('data: '))
    .map((line) => JSON.parse(line.slice(6)) as Record<string, unknown>);
}

describe('progress for 2026-07-28 requests', () => {
  it("a modern client hears a 2025 stdio server's progress at the server's endpoint and at the aggregate", async () => {
    const { url, aggregate, token } = await started();
    for (const [where, tool] of [[url, 'trigger-long-running-operation'], [aggregate, 'everything__trigger-long-running-operation']] as const) {
      const client = await modernClient(where, token);
      const heard: Array<{ progress: number; total?: number }> = [];
      const result = await client.callTool({ name: tool, arguments: LONG }, { onprogress: (p) => heard.push({ progress: p.progress, ...(p.total !== undefined ? { total: p.total } : {}) }), timeout: 30_000 });
      expect(JSON.stringify(result.content)).toContain('Long running operation completed');
      expect(heard.map((p) => p.progress)).toEqual([1, 2, 3, 4]);
      expect(heard.every((p) => p.total === 4)).toBe(true);
      await client.close();
    }
  });

  it('a 2026-07-28 stdio server\'s progress reaches a modern client too', async () => {
    const { url, token } = await started([MODERN_SERVER, '--mrtr']);
    const client = await modernClient(url, token);
    const heard: number[] = [];
    const result = await client.callTool({ name: 'count', arguments: {} }, { onprogress: (p) => heard.push(p.progress) });
    expect(result.content).toEqual([{ type: 'text', text: 'counted' }]);
    expect(heard).toEqual([1, 2]);
    await client.close();
  });

  it('the progress goes on the request\'s own SSE stream under the client\'s token, the result last; without a token the answer is plain JSON', async () => {
    const { url, token } = await started();
    const streamed = await rawCall(url, token, 'trigger-long-running-operation', LONG, { progressToken: 'mine-1' });
    expect(streamed.type).toContain('text/event-stream');
    const messages = frames(streamed.text);
    const progress = messages.filter((m) => m['method'] === 'notifications/progress');
    expect(progress.map((m) => (m['params'] as Record<string, unknown>)['progressToken'])).toEqual(['mine-1', 'mine-1', 'mine-1', 'mine-1']);
    expect(messages.at(-1)).toMatchObject({ id: 5, result: { resultType: 'complete' } });
    expect(messages.slice(0, -1).every((m) => m['method'] === 'notifications/progress')).toBe(true);

    const plain = await rawCall(url, token, 'echo', { message: 'no token' }, {});
    expect(plain.type).toBe('application/json');
    expect(JSON.parse(plain.text)).toMatchObject({ id: 5, result: { content: [{ type: 'text', text: 'Echo: no token' }] } });
    const quiet = await rawCall(url, token, 'echo', { message: 'token, no progress' }, { progressToken: 'quiet' });
    expect(quiet.type).toBe('application/json');
  });
});
