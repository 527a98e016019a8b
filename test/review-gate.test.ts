/**
 * Defects found in the security review of the per-caller layer
 * (call-gate.ts), each shown at a real endpoint: server-everything over
 * stdio behind a Bridge and its HttpEndpoint, in mode oidc, with a tiny
 * TokenVerifier (token 'alice' is alice of group dev).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { join } from 'node:path';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compilePolicies, type PolicySource } from '../src/api/access.js';
import type { AuditRecord } from '../src/api/audit.js';
import { NO_TELEMETRY, type AccessConfig, type TokenVerifier } from '../src/api/gate.js';
import { DEFAULT_HEALTH } from '../src/mcp/health.js';
import { Gateway } from '../src/mcp/gateway.js';
import type { JsonRpcMessage } from '../src/mcp/jsonrpc.js';
import { StateLayout } from '../src/state/layout.js';
import { systemClock } from '../src/util/clock.js';
import { silentLogger } from '../src/util/logger.js';
import { EVERYTHING, everythingBehindProxy, observedChild } from './helpers/gateway-servers.js';
import { sseParser } from './helpers/sse.js';
import { tempDir } from './helpers/tmp.js';
import { waitFor } from './helpers/wait.js';


const verifier: TokenVerifier = {
  verify: async (token) => {
    if (token === 'alice') return { user: 'alice', groups: ['dev'], scopes: [] };
    // A token the provider issued alice after she left group dev.
    if (token === 'alice-left-dev') return { user: 'alice', groups: [], scopes: [] };
    if (token === 'bob') return { user: 'bob', groups: [], scopes: [] };
    return { error: 'invalid_token', description: 'unknown token' };
  },
};

const POLICIES: PolicySource[] = [
  {
    name: 'devs',
    file: 'policies.yaml',
    subjects: [{ group: 'dev' }],
    rules: [
      { servers: ['everything', 'old', 'web'], tools: ['echo', 'trigger-long-running-operation', 'simulate-research-query'], resources: ['*'], effect: 'Allow' },
      { servers: ['everything'], resources: ['demo://resource/static/document/features.md'], effect: 'Deny' },
    ],
    ruleLines: [10, 14],
  },
];

let gateway: Gateway;
let url: string;
/** The HTTP+SSE server behind its proxy. */
let oldUrl: string;
/** The Streamable HTTP server behind its proxy. */
let webUrl: string;
const children: ChildProcess[] = [];
const audit: AuditRecord[] = [];

function access(): Omit<AccessConfig, 'token'> {
  return { mode: 'oidc', verifier, policies: compilePolicies(POLICIES, 'oidc'), audit: { append: (r) => audit.push(r) }, telemetry: NO_TELEMETRY };
}


/** server-everything over HTTP behind the gateway's proxy, ready; gives the proxy's port. */
async function behindProxy(name: string, transport: 'sse' | 'streamable-http'): Promise<number> {
  const proxyPort = await everythingBehindProxy(gateway, children, name, transport);
  await waitFor(`${name} ready`, () => gateway.view(name)?.state === 'ready', 30_000);
  return proxyPort;
}

beforeAll(async () => {
  const layout = new StateLayout(join(await tempDir(), 'state'));
  gateway = new Gateway({ clock: systemClock, logger: silentLogger, layout, onChange: () => undefined, onUnhealthy: () => undefined, token: 'local-token' });
  gateway.configure(access());
  const child = spawn(process.execPath, [EVERYTHING, 'stdio'], { stdio: ['pipe', 'pipe', 'ignore'] });
  children.push(child);
  await gateway.ensure('everything', 'stdio', 0, DEFAULT_HEALTH);
  gateway.attach('everything', observedChild('everything', child));
  await waitFor('the server ready', () => gateway.view('everything')?.state === 'ready', 30_000);
  url = gateway.view('everything')!.url!;
  // server-everything over HTTP on ports of its own, behind the gateway's proxies (a 2025 client's messages passed through).
  oldUrl = `http://127.0.0.1:${await behindProxy('old', 'sse')}/sse`;
  webUrl = `http://127.0.0.1:${await behindProxy('web', 'streamable-http')}/mcp`;
}, 60_000);

afterAll(async () => {
  await gateway?.closeAll();
  for (const child of children) child.kill('SIGKILL');
});

/** A 2025 session of alice's (or `token`'s), opened by the SDK client; its id for raw requests. */
async function aliceSession(token = 'alice'): Promise<{ client: Client; session: string }> {
  const client = new Client({ name: 'review', version: '1.0' }, { versionNegotiation: { mode: 'legacy' } });
  const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${token}` } } });
  await client.connect(transport);
  return { client, session: transport.sessionId! };
}

/**
 * One HTTP request as alice: each JSON-RPC message of its answer (a JSON body or an event stream, the HTTP+SSE
 * transport's endpoint event included) handed to `onMessage` as it arrives; resolves with the status once it ends.
 * `stop`: a request whose answer does not end (a GET stream) is closed by it.
 */
function exchange(
  target: string,
  options: { method: 'GET' | 'POST'; headers?: Record<string, string>; body?: unknown; stop?: Promise<void> },
  onMessage: (m: JsonRpcMessage | { event: 'endpoint'; data: string }) => void = () => undefined,
): Promise<number> {
  const { hostname, port, pathname, search } = new URL(target);
  const bytes = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
  const headers = { Authorization: 'Bearer alice', Accept: 'application/json, text/event-stream', ...(bytes ? { 'Content-Type': 'application/json', 'Content-Length': String(bytes.length) } : {}), ...options.headers };
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, path: `${pathname}${search}`, method: options.method, headers }, (res) => {
      res.setEncoding('utf8');
      const sse = String(res.headers['content-type']).includes('text/event-stream');
      const feed = sseParser((event) => onMessage((event.event === 'endpoint' ? event : event.data) as JsonRpcMessage));
      let text = '';
      res.on('data', (chunk: string) => (sse ? feed(chunk) : (text += chunk)));
      res.on('end', () => {
        if (!sse && text.startsWith('{')) onMessage(JSON.parse(text) as JsonRpcMessage);
        resolve(res.statusCode ?? 0);
      });
      void options.stop?.then(() => res.destroy());
      res.on('close', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(bytes);
  });
}

/** A POST on a 2025 Streamable HTTP session (as alice, or with `token`); the messages of its answer. */
async function post(session: string, body: unknown, onMessage: (m: JsonRpcMessage) => void = () => undefined, token = 'alice'): Promise<JsonRpcMessage[]> {
  const got: JsonRpcMessage[] = [];
  await exchange(url, { method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Mcp-Session-Id': session, 'MCP-Protocol-Version': '2025-11-25' }, body }, (m) => {
    got.push(m as JsonRpcMessage);
    onMessage(m as JsonRpcMessage);
  });
  return got;
}

const LONG_CALL = { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 4 }, _meta: { progressToken: 'p7' } } };
const SAME_ID_CALL = { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'echo', arguments: { message: 'same id' } } };

/**
 * The HTTP+SSE transport at `sseUrl` (`/sse`): a long call under id 7, and once it is in flight (its first progress
 * came back) an echo under id 7 too. Every answer comes on the one stream; gives the answers to id 7.
 */
async function legacyReusedId(sseUrl: string): Promise<JsonRpcMessage[]> {
  const got: JsonRpcMessage[] = [];
  const waiters = new Set<() => void>();
  const seen = (probe: (m: JsonRpcMessage) => boolean): Promise<void> =>
    new Promise((resolve) => {
      const check = (): void => {
        if (!got.some(probe)) return;
        waiters.delete(check);
        resolve();
      };
      waiters.add(check);
      check();
    });
  let path!: (p: string) => void;
  const endpoint = new Promise<string>((resolve) => (path = resolve));
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  const stream = exchange(sseUrl, { method: 'GET', stop: stopped }, (m) => {
    if ('event' in m) return path(m.data);
    got.push(m);
    for (const check of [...waiters]) check();
  });
  const messages = new URL(await endpoint, sseUrl).href;
  const send = (body: unknown): Promise<number> => exchange(messages, { method: 'POST', body });
  await send({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2024-11-05', capabilities: {}, clientInfo: { name: 'old', version: '1' } } });
  await seen((m) => 'id' in m && m.id === 1);
  await send({ jsonrpc: '2.0', method: 'notifications/initialized' });
  await send(LONG_CALL);
  await seen((m) => 'method' in m && m.method === 'notifications/progress');
  await send(SAME_ID_CALL);
  await seen((m) => !('method' in m) && 'id' in m && m.id === 7 && 'result' in m);
  stop();
  await stream;
  return got.filter((m) => !('method' in m) && 'id' in m && m.id === 7);
}

const REUSED_ID_REFUSED = { error: { code: -32600, message: expect.stringContaining('request id 7 is in use') } };
const LONG_CALL_DONE = { result: { content: [{ text: expect.stringContaining('Long running operation completed') }] } };

describe('security review: the call gate at a real endpoint', () => {
  it('refuses a request whose id is already in flight on the session: reusing it left the first call without an audit record', async () => {
    audit.length = 0;
    const { client, session } = await aliceSession();
    let progressed!: () => void;
    const started = new Promise<void>((resolve) => (progressed = resolve));
    const slow = post(session, LONG_CALL, (m) => {
      if ('method' in m && m.method === 'notifications/progress') progressed();
    });
    // The long call reached the server (its first progress came back): it is in flight under id 7.
    await started;
    const again = await post(session, SAME_ID_CALL);
    expect(again).toEqual([{ jsonrpc: '2.0', id: 7, ...REUSED_ID_REFUSED }]);
    expect((await slow).filter((m) => !('method' in m))).toMatchObject([{ id: 7, ...LONG_CALL_DONE }]);
    // Every call that reached the server has its record.
    expect(audit.map((r) => [r.name, r.outcome])).toEqual([['trigger-long-running-operation', 'ok']]);
    await client.close();
  }, 30_000);

  it('the same through the HTTP+SSE transport, where every answer comes on one stream: the gate refuses the reused id itself', async () => {
    audit.length = 0;
    expect(await legacyReusedId(new URL('/sse', url).href)).toMatchObject([REUSED_ID_REFUSED, LONG_CALL_DONE]);
    expect(audit.map((r) => [r.name, r.outcome])).toEqual([['trigger-long-running-operation', 'ok']]);
  }, 30_000);

  it("the same at a proxy passing an HTTP+SSE server's messages through: the reused id is refused before the server sees it", async () => {
    audit.length = 0;
    expect(await legacyReusedId(oldUrl)).toMatchObject([REUSED_ID_REFUSED, LONG_CALL_DONE]);
    expect(audit.map((r) => [r.server, r.name, r.outcome])).toEqual([['old', 'trigger-long-running-operation', 'ok']]);
  }, 30_000);

  it('a resource a rule denies cannot be read under another spelling of its URI (dot segments, an upper-case scheme, a tab) that the server reads as it', async () => {
    audit.length = 0;
    const { client, session } = await aliceSession();
    const read = async (uri: string): Promise<JsonRpcMessage> => (await post(session, { jsonrpc: '2.0', id: 1, method: 'resources/read', params: { uri } }))[0]!;
    expect(await read('demo://resource/static/document/features.md')).toMatchObject({ error: { code: 403, data: { rule: 'devs (policies.yaml:14)' } } });
    for (const uri of ['demo://resource/static/x/../document/features.md', 'demo://resource/static/x/%2E%2e/document/features.md', 'demo://resource/static/document/features.md\t']) {
      expect(await read(uri), uri).toMatchObject({ error: { code: -32602, message: expect.stringContaining('resources/read') } });
    }
    expect(await read('DEMO://resource/static/document/features.md')).toMatchObject({ error: { code: 403, data: { rule: 'devs (policies.yaml:14)' } } });
    // Another document is read as before.
    expect(await read('demo://resource/static/document/architecture.md')).toMatchObject({ result: { contents: [{ uri: 'demo://resource/static/document/architecture.md' }] } });
    expect(audit.filter((r) => r.decision === 'allow').map((r) => r.name)).toEqual(['demo://resource/static/document/architecture.md']);
    await client.close();
  }, 30_000);

  it("judges each request of a 2025 session by the token it carries: a group the caller's newer token no longer names gives nothing on the session the older one opened", async () => {
    audit.length = 0;
    const { client, session } = await aliceSession();
    const echo = { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'echo', arguments: { message: 'hi' } } };
    expect(await post(session, echo)).toMatchObject([{ id: 3, result: { content: [{ text: 'Echo: hi' }] } }]);
    expect(await post(session, { ...echo, id: 4 }, undefined, 'alice-left-dev')).toMatchObject([{ id: 4, error: { code: 403, data: { reason: 'default-deny' } } }]);
    expect(await post(session, { jsonrpc: '2.0', id: 5, method: 'tools/list', params: {} }, undefined, 'alice-left-dev')).toMatchObject([{ id: 5, result: { tools: [] } }]);
    expect(audit.map((r) => [r.subject.groups, r.decision])).toEqual([
      [['dev'], 'allow'],
      [[], 'deny'],
    ]);
    await client.close();
  }, 30_000);

  it("keeps a caller's tasks to that caller: the server's one session behind the bridge is everyone's, so another caller listed them and read their results", async () => {
    const alice = await aliceSession();
    const bob = await aliceSession('bob');
    const answers = (messages: JsonRpcMessage[]): JsonRpcMessage[] => messages.filter((m) => !('method' in m));
    const [created] = answers(await post(alice.session, { jsonrpc: '2.0', id: 21, method: 'tools/call', params: { name: 'simulate-research-query', arguments: { topic: 'ALICE-TOPIC' }, task: { ttl: 60_000 } } }));
    const taskId = (created as { result?: { task?: { taskId?: string } } }).result?.task?.taskId;
    expect(taskId, JSON.stringify(created)).toEqual(expect.any(String));
    const asBob = (id: number, method: string, params: Record<string, unknown>): Promise<JsonRpcMessage[]> => post(bob.session, { jsonrpc: '2.0', id, method, params }, undefined, 'bob');
    expect(answers(await asBob(22, 'tasks/list', {}))).toMatchObject([{ id: 22, result: { tasks: [] } }]);
    for (const [id, method] of [[23, 'tasks/get'], [24, 'tasks/result'], [25, 'tasks/cancel']] as const) {
      const answer = answers(await asBob(id, method, { taskId }));
      expect(answer, method).toMatchObject([{ id, error: { code: -32602, message: `no task "${taskId}" of yours at this server` } }]);
      expect(JSON.stringify(answer)).not.toContain('ALICE-TOPIC');
    }
    // Alice's own task is hers as before: listed, and its result read.
    expect(answers(await post(alice.session, { jsonrpc: '2.0', id: 26, method: 'tasks/list', params: {} }))).toMatchObject([{ id: 26, result: { tasks: [{ taskId }] } }]);
    const result = answers(await post(alice.session, { jsonrpc: '2.0', id: 27, method: 'tasks/result', params: { taskId } }));
    expect(JSON.stringify(result)).toContain('ALICE-TOPIC');
    await alice.client.close();
    await bob.client.close();
  }, 30_000);

  it("a Streamable HTTP server's proxy judges the answers to a POST whose URL names a sessionId as the HTTP+SSE transport's: they passed unfiltered and unrecorded", async () => {
    audit.length = 0;
    const client = new Client({ name: 'review', version: '1.0' }, { versionNegotiation: { mode: 'legacy' } });
    const transport = new StreamableHTTPClientTransport(new URL(webUrl), { requestInit: { headers: { Authorization: 'Bearer alice' } } });
    await client.connect(transport);
    const allowed = ['echo', 'simulate-research-query', 'trigger-long-running-operation'];
    expect((await client.listTools()).tools.map((t) => t.name).sort()).toEqual(allowed);
    // The server's router takes /mcp/ for /mcp; the query makes it look like the legacy transport's POST.
    const at = new URL('/mcp/?sessionId=1', webUrl).href;
    const send = async (body: unknown): Promise<JsonRpcMessage[]> => {
      const got: JsonRpcMessage[] = [];
      await exchange(at, { method: 'POST', headers: { 'Mcp-Session-Id': transport.sessionId!, 'MCP-Protocol-Version': '2025-11-25' }, body }, (m) => got.push(m as JsonRpcMessage));
      return got.filter((m) => !('method' in m));
    };
    const [listed] = await send({ jsonrpc: '2.0', id: 31, method: 'tools/list', params: {} });
    expect((listed as unknown as { result: { tools: { name: string }[] } }).result.tools.map((t) => t.name).sort()).toEqual(allowed);
    expect(await send({ jsonrpc: '2.0', id: 32, method: 'tools/call', params: { name: 'echo', arguments: { message: 'via /mcp/' } } })).toMatchObject([{ id: 32, result: { content: [{ text: 'Echo: via /mcp/' }] } }]);
    expect(audit.map((r) => [r.server, r.name, r.outcome])).toEqual([['web', 'echo', 'ok']]);
    await client.close();
  }, 30_000);

  it("a 2025 session the server gave alice through its proxy is hers: bob's POST, GET and DELETE with her Mcp-Session-Id are 404 and her session lives on; the same for an HTTP+SSE session's messages", async () => {
    const client = new Client({ name: 'review', version: '1.0' }, { versionNegotiation: { mode: 'legacy' } });
    const transport = new StreamableHTTPClientTransport(new URL(webUrl), { requestInit: { headers: { Authorization: 'Bearer alice' } } });
    await client.connect(transport);
    const hers = { 'Mcp-Session-Id': transport.sessionId!, 'MCP-Protocol-Version': '2025-11-25' };
    const asBob = { Authorization: 'Bearer bob', ...hers };
    expect(await exchange(webUrl, { method: 'POST', headers: asBob, body: { jsonrpc: '2.0', id: 41, method: 'tools/list', params: {} } })).toBe(404);
    expect(await exchange(webUrl, { method: 'GET', headers: asBob })).toBe(404);
    const deleted = await new Promise<number>((resolve, reject) => {
      const { hostname, port, pathname } = new URL(webUrl);
      request({ host: hostname, port, path: pathname, method: 'DELETE', headers: asBob }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
        .on('error', reject)
        .end();
    });
    expect(deleted).toBe(404);
    expect((await client.callTool({ name: 'echo', arguments: { message: 'still mine' } })).content).toEqual([{ type: 'text', text: 'Echo: still mine' }]);
    await client.close();

    // HTTP+SSE: alice's stream names her session; bob's POST to its messages URL is refused before the server sees it.
    let endpoint!: (p: string) => void;
    const named = new Promise<string>((resolve) => (endpoint = resolve));
    let stop!: () => void;
    const stopped = new Promise<void>((resolve) => (stop = resolve));
    const stream = exchange(oldUrl, { method: 'GET', stop: stopped }, (m) => {
      if ('event' in m) endpoint(m.data);
    });
    const messages = new URL(await named, oldUrl).href;
    const initialize = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2024-11-05', capabilities: {}, clientInfo: { name: 'bob', version: '1' } } };
    expect(await exchange(messages, { method: 'POST', headers: { Authorization: 'Bearer bob' }, body: initialize })).toBe(404);
    expect(await exchange(messages, { method: 'POST', body: initialize })).toBe(202);
    stop();
    await stream;
  }, 30_000);
});
