/**
 * What one endpoint may hold in memory (issue 13, low items): legacy /sse
 * sessions count against the session cap like Streamable HTTP ones, and the
 * replay buffers of all its sessions share one budget, the idle sessions'
 * events going first. The SessionHost is a small in-memory stand-in that
 * answers initialize and broadcasts a server's notifications to every
 * session, as the Bridge does.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { HttpEndpoint, MAX_SESSIONS } from '../src/mcp/http-endpoint.js';
import { isRequest, type JsonRpcMessage } from '../src/mcp/jsonrpc.js';
import { SessionTable } from './helpers/session-host.js';

class BroadcastHost extends SessionTable {
  fromClient(id: string, message: JsonRpcMessage): Promise<void> {
    if (isRequest(message) && message.method === 'initialize') {
      this.sessions.get(id)?.({ jsonrpc: '2.0', id: message.id, result: { protocolVersion: '2025-06-18', capabilities: {}, serverInfo: { name: 'host', version: '1' } } }, message.id);
    }
    return Promise.resolve();
  }
  /** A server notification, to every session (as the Bridge broadcasts one). */
  broadcast(message: JsonRpcMessage): void {
    for (const deliver of this.sessions.values()) deliver(message);
  }
}

const endpoints: HttpEndpoint[] = [];
afterEach(async () => {
  await Promise.all(endpoints.splice(0).map((e) => e.close()));
});

async function open(options: ConstructorParameters<typeof HttpEndpoint>[2] = {}): Promise<{ endpoint: HttpEndpoint; host: BroadcastHost }> {
  const host = new BroadcastHost();
  const endpoint = new HttpEndpoint(host, 0, options);
  await endpoint.listen();
  endpoints.push(endpoint);
  return { endpoint, host };
}

const post = (url: string, message: unknown, sessionId?: string): Promise<Response> =>
  fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', ...(sessionId ? { 'Mcp-Session-Id': sessionId } : {}) }, body: JSON.stringify(message) });

async function initialize(url: string): Promise<string> {
  const res = await post(url, { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } });
  await res.arrayBuffer();
  return res.headers.get('mcp-session-id')!;
}

const INITIALIZED = { jsonrpc: '2.0', method: 'notifications/initialized' };

/** Opens a session's GET stream resuming after `lastEventId` (by the time its headers are here, the stream is the session's). */
async function resume(url: string, sessionId: string, lastEventId: string): Promise<{ status: number; firstEvent: () => Promise<unknown> }> {
  const stream = await fetch(url, { headers: { Accept: 'text/event-stream', 'Mcp-Session-Id': sessionId, 'Last-Event-ID': lastEventId } });
  const reader = stream.body!.getReader();
  const firstEvent = async (): Promise<unknown> => {
    let text = '';
    while (!text.includes('\n\n')) text += new TextDecoder().decode((await reader.read()).value);
    void reader.cancel();
    return JSON.parse(/^data: (.*)$/m.exec(text)![1]!);
  };
  return { status: stream.status, firstEvent };
}

describe('the session cap', () => {
  it(`counts legacy /sse sessions: the ${MAX_SESSIONS}th stream makes room by closing the idle Streamable HTTP session, and one more than the cap is refused with 503`, async () => {
    const { endpoint } = await open();
    const idle = await initialize(endpoint.url);
    const sse = `http://127.0.0.1:${endpoint.port}/sse`;
    const streams: Response[] = [];
    for (let i = 0; i < MAX_SESSIONS - 1; i++) streams.push(await fetch(sse, { headers: { Accept: 'text/event-stream' } }));
    expect(streams.every((s) => s.status === 200)).toBe(true);
    // The cap is full (1 idle + 255 legacy): the next stream takes the idle session's place.
    const next = await fetch(sse, { headers: { Accept: 'text/event-stream' } });
    expect(next.status).toBe(200);
    expect((await post(endpoint.url, INITIALIZED, idle)).status).toBe(404);
    // Every session now has a stream open: nothing can make room.
    const refused = await fetch(sse, { headers: { Accept: 'text/event-stream' } });
    expect(refused.status).toBe(503);
    expect(await refused.text()).toContain(`all ${MAX_SESSIONS} sessions of this endpoint have a stream open`);
    const refusedInit = await post(endpoint.url, { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } });
    expect(refusedInit.status).toBe(503);
  }, 60_000);
});

describe('the replay budget of an endpoint', () => {
  it('bounds the events kept for every session together; the sessions idle longest lose theirs first, the active one keeps its own', async () => {
    const budget = 64 * 1024;
    const { endpoint, host } = await open({ replayBudgetBytes: budget });
    const sessions: string[] = [];
    for (let i = 0; i < 20; i++) sessions.push(await initialize(endpoint.url));
    const active = sessions.at(-1)!;
    expect((await post(endpoint.url, INITIALIZED, active)).status).toBe(202);

    // 100 notifications of 1 KiB to 20 sessions would keep 2 MB; at most the budget is kept.
    const padding = 'x'.repeat(1024);
    for (let n = 1; n <= 100; n++) host.broadcast({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: { n, padding } } });
    expect(endpoint.replayBytes).toBeLessThanOrEqual(budget);
    expect(endpoint.replayBytes).toBeGreaterThan(budget / 2);

    // The active session resumes from its first event and gets what it missed.
    const activeResume = await resume(endpoint.url, active, 'g/0');
    expect(activeResume.status).toBe(200);
    expect(await activeResume.firstEvent()).toMatchObject({ method: 'notifications/message', params: { data: { n: expect.any(Number) } } });
    // The session idle longest kept nothing: the first event it gets on resuming is the next live one.
    const oldest = await resume(endpoint.url, sessions[0]!, 'g/0');
    expect(oldest.status).toBe(200);
    const marker = { jsonrpc: '2.0' as const, method: 'notifications/message', params: { level: 'info', data: 'marker' } };
    host.broadcast(marker);
    expect(await oldest.firstEvent()).toEqual(marker);
  });
});

describe('a request whose handling throws', () => {
  it('gets 500 and is told to onError; the endpoint and its other sessions carry on, with no unhandled rejection', async () => {
    const told: unknown[] = [];
    const { endpoint, host } = await open({ onError: (e) => told.push(e) });
    const sessionId = await initialize(endpoint.url);
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const original = host.fromClient.bind(host);
      host.fromClient = (id, message) => (isRequest(message) && message.method === 'tools/list' ? Promise.reject(new Error('broken inside')) : original(id, message));
      const res = await post(endpoint.url, { jsonrpc: '2.0', id: 2, method: 'tools/list' }, sessionId);
      expect(res.status).toBe(500);
      expect(await res.json()).toMatchObject({ error: { code: -32603, message: 'apiary could not handle this request; the controller log says why' } });
      expect(told.map(String)).toEqual(['Error: broken inside']);
      // The same session still works.
      const again = await post(endpoint.url, INITIALIZED, sessionId);
      expect(again.status).toBe(202);
      // A macrotask turn lets Node report a rejection nobody handled, had there been one.
      await new Promise((resolve) => setImmediate(resolve));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
