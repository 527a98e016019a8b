/**
 * Resumable streams on apiary's endpoint, as the Streamable HTTP transport
 * describes them: every event carries an id, and a client that lost a stream
 * reconnects with GET and Last-Event-ID and gets what it missed, in order.
 * Raw HTTP, so the test decides exactly when a connection drops.
 */
import { createRequire } from 'node:module';
import { request, type ClientRequest } from 'node:http';
import { describe, expect, it } from 'vitest';
import { findCondition } from '../src/api/status.js';
import { readEndpointToken } from '../src/mcp/endpoint-token.js';
import { readAuditRecords } from '../src/state/audit-read.js';
import { StateLayout } from '../src/state/layout.js';
import { harness, type Harness } from './helpers/controller.js';
import { sseParser } from './helpers/sse.js';
import { waitFor } from './helpers/wait.js';

const EVERYTHING = createRequire(import.meta.url).resolve('@modelcontextprotocol/server-everything/dist/index.js');

function everything(tools = ''): string {
  return `apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata:\n  name: everything\nspec:\n  command: node\n  args: [${JSON.stringify(EVERYTHING)}, stdio]\n${tools}`;
}

interface Event {
  id?: string;
  data: { id?: number; method?: string; result?: unknown; params?: { progress?: number } };
}

/** An open SSE response: the events so far, and a way to drop the connection. */
interface Stream {
  events: Event[];
  req: ClientRequest;
  waitFor(what: string, test: (events: Event[]) => boolean, timeoutMs?: number): Promise<void>;
  /** The server ended the response (everything it sent has been parsed). */
  ended(): boolean;
}

function open(url: URL, headers: Record<string, string>, method = 'GET', body?: string): Promise<{ status: number; headers: Record<string, unknown>; stream: Stream; text: () => string }> {
  return new Promise((resolve, reject) => {
    const events: Event[] = [];
    let raw = '';
    const req = request({ host: url.hostname, port: url.port, path: url.pathname, method, headers: { ...headers, ...(body ? { 'Content-Length': String(Buffer.byteLength(body)) } : {}) } }, (res) => {
      const parse = sseParser((event) => events.push(event as Event));
      res.on('data', (d: Buffer) => {
        raw += d.toString();
        parse(d.toString());
      });
      res.on('error', () => undefined);
      const stream: Stream = {
        events,
        req,
        ended: () => res.readableEnded,
        async waitFor(what, test, timeoutMs = 10_000) {
          await waitFor(what, () => test(events), timeoutMs, { observe: () => events });
        },
      };
      resolve({ status: res.statusCode ?? 0, headers: res.headers, stream, text: () => raw });
    });
    req.on('error', (err) => {
      if ((err as NodeJS.ErrnoException).code !== 'ECONNRESET') reject(err);
    });
    req.end(body);
  });
}

async function session(h: Harness): Promise<{ url: URL; base: Record<string, string> }> {
  await h.waitFor('Ready', async () => findCondition((await h.status('everything'))?.conditions, 'Ready')?.status === 'True', 20_000);
  const url = new URL((await h.status('everything'))!.url!);
  const token = (await readEndpointToken(new StateLayout(h.stateDir)))!;
  const auth = { Authorization: `Bearer ${token}`, Host: `127.0.0.1:${url.port}` };
  const init = await open(url, { ...auth, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' }, 'POST', JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'resume', version: '1' } } }));
  const base = { ...auth, 'Mcp-Session-Id': String(init.headers['mcp-session-id']) };
  await open(url, { ...base, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' }, 'POST', JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
  return { url, base };
}

describe('resumable streams (Last-Event-ID)', () => {
  it('the GET stream: what was sent while it was down comes with a resume, and only then', async () => {
    const h = await harness();
    await h.write('e.yaml', everything());
    await h.start();
    const { url, base } = await session(h);
    const sse = { ...base, Accept: 'text/event-stream' };
    const first = await open(url, sse);
    expect(first.status).toBe(200);
    // A server-to-client message with no request behind it: the tool list changed (spec.tools).
    await h.write('e.yaml', everything('  tools:\n    deny: [echo]\n'));
    await first.stream.waitFor('list_changed', (e) => e.some((x) => x.data.method === 'notifications/tools/list_changed'));
    const seen = first.stream.events.at(-1)!;
    expect(seen.id).toMatch(/^g\/\d+$/);
    first.stream.req.destroy();

    await h.write('e.yaml', everything('  tools:\n    deny: [echo, get-sum]\n'));
    // Sent while nobody listens: the gateway sends list_changed as it applies the new filter.
    await waitFor('get-sum filtered at the gateway', () => h.controller!.mcpView('everything')?.filteredTools?.includes('get-sum'), 10_000, { observe: () => h.controller!.mcpView('everything')?.filteredTools });

    const fresh = await open(url, sse);
    const resumed = await open(url, { ...sse, 'Last-Event-ID': seen.id! });
    await resumed.stream.waitFor('the missed event', (e) => e.some((x) => x.data.method === 'notifications/tools/list_changed'));
    const missed = resumed.stream.events[0]!;
    expect(Number(missed.id!.split('/')[1])).toBeGreaterThan(Number(seen.id!.split('/')[1]));
    // No Last-Event-ID, no replay: a replay is written as the stream opens; the resumed GET stream
    // replaced it, which ends it, so all it was ever sent has arrived once it has ended.
    await fresh.stream.waitFor('the fresh stream ended by the newer one', () => fresh.stream.ended());
    expect(fresh.stream.events).toEqual([]);
    fresh.stream.req.destroy();
    resumed.stream.req.destroy();
  });

  it("a request's stream dropped mid-way: resuming it brings the rest of its progress and the answer", async () => {
    const h = await harness();
    await h.write('e.yaml', everything());
    // A Gateway that keeps an audit log: the call's record says when its answer passed apiary, client or none.
    await h.write('gw.yaml', 'apiVersion: apiary.dev/v1alpha1\nkind: Gateway\nmetadata:\n  name: default\nspec:\n  audit: {}\n');
    await h.start();
    const { url, base } = await session(h);
    const call = await open(
      url,
      { ...base, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' },
      'POST',
      JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'trigger-long-running-operation', arguments: { duration: 1.2, steps: 4 }, _meta: { progressToken: 'tok' } } }),
    );
    await call.stream.waitFor('the first progress', (e) => e.length >= 1);
    const last = call.stream.events.at(-1)!;
    expect(last.id).toMatch(/^p\d+\/\d+$/);
    call.stream.req.destroy();
    // The rest of the progress and the answer are all sent while the client is away: the call's record is written
    // when its answer passes apiary.
    const layout = new StateLayout(h.stateDir);
    await waitFor('the call answered while the client is away', async () => (await readAuditRecords(layout).catch(() => [])).some((r) => r.method === 'tools/call'), 10_000);

    const resumed = await open(url, { ...base, Accept: 'text/event-stream', 'Last-Event-ID': last.id! });
    await resumed.stream.waitFor('the answer', (e) => e.some((x) => x.data.id === 7));
    const progress = [...call.stream.events, ...resumed.stream.events].filter((x) => x.data.method === 'notifications/progress').map((x) => x.data.params?.progress);
    expect(progress).toEqual([1, 2, 3, 4]); // none lost, none twice
    expect(JSON.stringify(resumed.stream.events.at(-1)!.data.result)).toContain('Long running operation completed');
  });
});
