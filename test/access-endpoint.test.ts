/**
 * Per-caller access at apiary's real endpoints: server-everything over stdio
 * behind a Bridge and its HttpEndpoint, server-everything over Streamable
 * HTTP behind the HttpProxy, and the aggregate, all of one Gateway whose
 * Gatekeeper is in mode oidc with two policies. Two people are told apart by
 * a tiny TokenVerifier (the interface the oidc part fills with jose):
 * token 'alice' is alice of group dev, token 'bob' is bob. Clients are the
 * SDK v2 client pinned to 2025-11-25 and to 2026-07-28.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { request, type IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, ProtocolError, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compilePolicies, type PolicySource } from '../src/api/access.js';
import type { AuditRecord } from '../src/api/audit.js';
import { NO_TELEMETRY, type AccessConfig, type RateLimiter, type TokenVerifier } from '../src/api/gate.js';
import { DEFAULT_HEALTH } from '../src/mcp/health.js';
import { Gateway } from '../src/mcp/gateway.js';
import { AuditLog } from '../src/state/audit-log.js';
import { readAuditRecords, verifyAudit } from '../src/state/audit-read.js';
import { StateLayout } from '../src/state/layout.js';
import { systemClock } from '../src/util/clock.js';
import { silentLogger } from '../src/util/logger.js';
import { EVERYTHING, everythingBehindProxy, observedChild } from './helpers/gateway-servers.js';
import { freePort } from './helpers/ports.js';
import { tempDir } from './helpers/tmp.js';
import { waitFor } from './helpers/wait.js';

const MODERN_SERVER = fileURLToPath(new URL('./fixtures/servers/modern-server.mjs', import.meta.url));
const TOKEN = 'local-endpoint-token';

const verifier: TokenVerifier = {
  verify: async (token) => {
    if (token === 'alice') return { user: 'alice', groups: ['dev'], scopes: [] };
    if (token === 'bob') return { user: 'bob', groups: [], scopes: [] };
    if (token === 'carol') return { user: 'carol', groups: ['ops'], scopes: [] };
    return { error: 'invalid_token', description: 'unknown token' };
  },
};

const POLICIES: PolicySource[] = [
  { name: 'devs', file: 'policies.yaml', subjects: [{ group: 'dev' }], rules: [{ servers: ['everything', 'web', 'old', 'hosted'], tools: ['echo', 'get-sum'], effect: 'Allow' }], ruleLines: [10] },
  { name: 'ops', file: 'ops.yaml', subjects: [{ group: 'ops' }], rules: [{ servers: ['everything'], tools: ['trigger-long-running-operation'], effect: 'Allow' }], ruleLines: [8] },
  { name: 'everyone', file: 'policies.yaml', subjects: [{ authenticated: true }], rules: [{ servers: ['*'], tools: ['get-sum'], effect: 'Allow' }], ruleLines: [20] },
];

let gateway: Gateway;
let layout: StateLayout;
const children: ChildProcess[] = [];
let stdioUrl: string;
let webUrl: string;
let aggregateUrl: string;
/** A legacy HTTP+SSE server (server-everything sse) behind its proxy. */
let sseUrl: string;
/** A hosted 2026-07-28-only server (spec.remote) behind its proxy: its 2025 clients are served by apiary's legacy front. */
let hostedUrl: string;
const audit: AuditRecord[] = [];
/** The rate limit the test sets: calls of bob's to get-sum are over it. */
const limiter: RateLimiter = { take: (key, _server, tool) => (key === 'user:bob' && tool === 'get-sum' ? { limit: 'subject', retryAfterMs: 2500 } : undefined) };

function access(extra: Partial<AccessConfig> = {}): Omit<AccessConfig, 'token'> {
  return { mode: 'oidc', verifier, policies: compilePolicies(POLICIES, 'oidc'), audit: { append: (r) => audit.push(r) }, limiter, telemetry: NO_TELEMETRY, ...extra };
}


async function connect(url: string, token: string, version: '2025-11-25' | '2026-07-28', name = `${version}-client`): Promise<Client> {
  const client = new Client({ name, version: '7.0' }, { versionNegotiation: { mode: version === '2026-07-28' ? { pin: version } : 'legacy' } });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
  return client;
}

async function toolNames(client: Client): Promise<string[]> {
  return (await client.listTools()).tools.map((t) => t.name).sort();
}

async function refusal(promise: Promise<unknown>): Promise<{ code: number; message: string; data: unknown }> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ProtocolError);
  const { code, message, data } = err as ProtocolError;
  return { code, message, data };
}


/** The modern-only fixture server as a hosted server (apiary knows only its URL); gives the proxy's port. */
async function hostedModern(name: string): Promise<number> {
  const upstreamPort = await freePort();
  children.push(spawn(process.execPath, [MODERN_SERVER, '--http'], { stdio: 'ignore', env: { ...process.env, PORT: String(upstreamPort) } }));
  const proxyPort = await freePort();
  const url = `http://127.0.0.1:${upstreamPort}/mcp`;
  await gateway.ensureRemote(name, proxyPort, { url, label: url, headers: {}, transport: 'streamable-http', secrets: [], hash: name }, { ...DEFAULT_HEALTH, intervalMs: 200 });
  return proxyPort;
}

beforeAll(async () => {
  layout = new StateLayout(join(await tempDir(), 'state'));
  gateway = new Gateway({ clock: systemClock, logger: silentLogger, layout, onChange: () => gateway?.readyMembers() && undefined, onUnhealthy: () => undefined, token: TOKEN });
  const stdio = spawn(process.execPath, [EVERYTHING, 'stdio'], { stdio: ['pipe', 'pipe', 'ignore'] });
  children.push(stdio);
  await gateway.ensure('everything', 'stdio', 0, DEFAULT_HEALTH);
  gateway.attach('everything', observedChild('everything', stdio));
  webUrl = `http://127.0.0.1:${await everythingBehindProxy(gateway, children, 'web', 'streamable-http')}/mcp`;
  sseUrl = `http://127.0.0.1:${await everythingBehindProxy(gateway, children, 'old', 'sse')}/sse`;
  hostedUrl = `http://127.0.0.1:${await hostedModern('hosted')}/mcp`;
  const names = ['everything', 'web', 'old', 'hosted'];
  await waitFor('the servers ready', () => names.every((n) => gateway.view(n)?.state === 'ready'), 30_000, { observe: () => names.map((n) => gateway.view(n)) });
  stdioUrl = gateway.view('everything')!.url!;
  const aggregate = await gateway.startAggregate('test', 0);
  if (!('url' in aggregate)) throw new Error(aggregate.error);
  aggregateUrl = aggregate.url;
}, 60_000);

afterAll(async () => {
  await gateway?.closeAll();
  for (const child of children) child.kill('SIGKILL');
});

describe('per-caller access at the endpoints (real servers, mode oidc, two policies)', () => {
  it('without a Gateway manifest nothing changes: the token sees and calls every tool', async () => {
    const client = await connect(stdioUrl, TOKEN, '2025-11-25');
    const names = await toolNames(client);
    expect(names).toContain('echo');
    expect(names).toContain('get-env');
    expect(await client.callTool({ name: 'echo', arguments: { message: 'as before' } })).toMatchObject({ content: [{ type: 'text', text: 'Echo: as before' }] });
    await client.close();
  });

  for (const version of ['2025-11-25', '2026-07-28'] as const) {
    it(`${version}, a stdio server's endpoint: alice sees and calls echo; bob sees only get-sum, and a forced call gets 403 and is audited`, async () => {
      gateway.configure(access());
      audit.length = 0;
      const alice = await connect(stdioUrl, 'alice', version);
      const bob = await connect(stdioUrl, 'bob', version);
      expect(await toolNames(alice)).toEqual(['echo', 'get-sum']);
      expect(await toolNames(bob)).toEqual(['get-sum']);
      expect(await alice.callTool({ name: 'echo', arguments: { message: 'hi' } })).toMatchObject({ content: [{ type: 'text', text: 'Echo: hi' }] });
      expect(await refusal(bob.callTool({ name: 'echo', arguments: { message: 'CANARY-ARG' } }))).toMatchObject({ code: 403, message: expect.stringMatching(/^Forbidden by policy/), data: { reason: 'default-deny' } });
      const records = audit.filter((r) => r.method === 'tools/call');
      expect(records.map((r) => [r.subject.user, r.server, r.name, r.decision, r.outcome, r.code, r.client])).toEqual([
        ['alice', 'everything', 'echo', 'allow', 'ok', undefined, `${version}-client/7.0`],
        ['bob', 'everything', 'echo', 'deny', 'denied', 403, `${version}-client/7.0`],
      ]);
      expect(records[0]!.rule).toBe('devs (policies.yaml:10)');
      expect(typeof records[0]!.requestId).toBe('number');
      expect(JSON.stringify(audit)).not.toContain('CANARY-ARG');
      // Over the rate limit: 429 with the hint, recorded.
      expect(await refusal(bob.callTool({ name: 'get-sum', arguments: { a: 1, b: 2 } }))).toMatchObject({ code: 429, message: 'Rate limit exceeded', data: { retryAfterSeconds: 3, retryAfterMs: 2500, limit: 'subject', server: 'everything', tool: 'get-sum' } });
      expect(audit.at(-1)).toMatchObject({ subject: { kind: 'user', user: 'bob' }, name: 'get-sum', outcome: 'rate_limited', code: 429, decision: 'allow' });
      await alice.close();
      await bob.close();
    });
  }

  for (const version of ['2025-11-25', '2026-07-28'] as const) {
    it(`${version}, the aggregate lists per caller with each member's own names, and refuses a forced call`, async () => {
      gateway.configure(access());
      audit.length = 0;
      const alice = await connect(aggregateUrl, 'alice', version);
      const bob = await connect(aggregateUrl, 'bob', version);
      expect(await toolNames(alice)).toEqual(['everything__echo', 'everything__get-sum', 'hosted__echo', 'old__echo', 'old__get-sum', 'web__echo', 'web__get-sum']);
      expect(await toolNames(bob)).toEqual(['everything__get-sum', 'old__get-sum', 'web__get-sum']);
      expect(await alice.callTool({ name: 'web__echo', arguments: { message: 'via aggregate' } })).toMatchObject({ content: [{ type: 'text', text: 'Echo: via aggregate' }] });
      expect(await refusal(bob.callTool({ name: 'web__echo', arguments: { message: 'x' } }))).toMatchObject({ code: 403, message: 'Forbidden by policy: tool "echo" of server "web"' });
      expect(audit.filter((r) => r.method === 'tools/call').map((r) => [r.subject.user, r.server, r.name, r.outcome])).toEqual([
        ['alice', 'web', 'echo', 'ok'],
        ['bob', 'web', 'echo', 'denied'],
      ]);
      await alice.close();
      await bob.close();
    });
  }

  for (const version of ['2025-11-25', '2026-07-28'] as const) {
    it(`${version}, an HTTP server's proxy: lists per caller, 403 for a forced call, audited`, async () => {
      gateway.configure(access());
      audit.length = 0;
      const alice = await connect(webUrl, 'alice', version);
      const bob = await connect(webUrl, 'bob', version);
      expect(await toolNames(alice)).toEqual(['echo', 'get-sum']);
      expect(await toolNames(bob)).toEqual(['get-sum']);
      expect(await alice.callTool({ name: 'echo', arguments: { message: 'proxied' } })).toMatchObject({ content: [{ type: 'text', text: 'Echo: proxied' }] });
      expect(await refusal(bob.callTool({ name: 'echo', arguments: { message: 'x' } }))).toMatchObject({ code: 403, data: { reason: 'default-deny' } });
      expect(audit.filter((r) => r.method === 'tools/call').map((r) => [r.subject.user, r.server, r.name, r.outcome, r.client])).toEqual([
        ['alice', 'web', 'echo', 'ok', `${version}-client/7.0`],
        ['bob', 'web', 'echo', 'denied', `${version}-client/7.0`],
      ]);
      await alice.close();
      await bob.close();
    });
  }

  it('legacy HTTP+SSE clients (SDK v1): at a stdio server\'s /sse and at the proxy of an SSE server, lists per caller, 403 on the stream, audited', async () => {
    gateway.configure(access());
    audit.length = 0;
    for (const [url, server] of [
      [stdioUrl.replace(/\/mcp$/, '/sse'), 'everything'],
      [sseUrl, 'old'],
    ] as const) {
      const sse = async (token: string): Promise<V1Client> => {
        const client = new V1Client({ name: 'sse-client', version: '1' });
        await client.connect(new SSEClientTransport(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
        return client;
      };
      const alice = await sse('alice');
      const bob = await sse('bob');
      expect((await alice.listTools()).tools.map((t) => t.name).sort()).toEqual(['echo', 'get-sum']);
      expect((await bob.listTools()).tools.map((t) => t.name).sort()).toEqual(['get-sum']);
      expect((await alice.callTool({ name: 'echo', arguments: { message: 'sse' } })).content).toEqual([{ type: 'text', text: 'Echo: sse' }]);
      const err = await bob.callTool({ name: 'echo', arguments: { message: 'x' } }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(McpError);
      expect(err).toMatchObject({ code: 403, data: { reason: 'default-deny' } });
      expect(audit.filter((r) => r.server === server).map((r) => [r.subject.user, r.name, r.outcome, r.client])).toEqual([
        ['alice', 'echo', 'ok', 'sse-client/1'],
        ['bob', 'echo', 'denied', 'sse-client/1'],
      ]);
      await alice.close();
      await bob.close();
    }
  });

  for (const version of ['2025-11-25', '2026-07-28'] as const) {
    it(`${version}: a call whose client gives up mid-way is recorded too, outcome error`, async () => {
      gateway.configure(access());
      audit.length = 0;
      const carol = await connect(stdioUrl, 'carol', version);
      const abort = new AbortController();
      const call = carol.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 30, steps: 30 } }, { signal: abort.signal, onprogress: () => abort.abort('enough') });
      await expect(call).rejects.toThrow();
      const record = await waitFor('the record of the abandoned call', () => audit.find((r) => r.name === 'trigger-long-running-operation'), 10_000);
      expect(record).toMatchObject({ subject: { user: 'carol' }, server: 'everything', decision: 'allow', outcome: 'error', rule: 'ops (ops.yaml:8)' });
      await carol.close();
    });
  }

  it('a rate-limited call written as plain JSON carries Retry-After beside the JSON-RPC error', async () => {
    gateway.configure(access());
    const opened = await post(stdioUrl, 'bob', undefined, { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
    const session = opened.headers['mcp-session-id'] as string;
    const limited = await post(stdioUrl, 'bob', session, { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'get-sum', arguments: { a: 1, b: 2 } } });
    expect(limited.status).toBe(200);
    expect(limited.headers['retry-after']).toBe('3');
    expect(JSON.parse(limited.text)).toMatchObject({ id: 2, error: { code: 429, message: 'Rate limit exceeded' } });
  });

  for (const version of ['2025-11-25', '2026-07-28'] as const) {
    it(`${version}, a hosted 2026-07-28 server's proxy (apiary's own 2025 sessions there): lists per caller, 403, audited`, async () => {
      gateway.configure(access());
      audit.length = 0;
      const alice = await connect(hostedUrl, 'alice', version);
      const bob = await connect(hostedUrl, 'bob', version);
      expect(await toolNames(alice)).toEqual(['echo']);
      expect(await toolNames(bob)).toEqual([]);
      expect(await alice.callTool({ name: 'echo', arguments: { text: 'hosted' } })).toMatchObject({ content: [{ type: 'text' }] });
      expect(await refusal(bob.callTool({ name: 'echo', arguments: { text: 'x' } }))).toMatchObject({ code: 403, data: { reason: 'default-deny' } });
      expect(audit.filter((r) => r.method === 'tools/call').map((r) => [r.subject.user, r.server, r.name, r.outcome])).toEqual([
        ['alice', 'hosted', 'echo', 'ok'],
        ['bob', 'hosted', 'echo', 'denied'],
      ]);
      await alice.close();
      await bob.close();
    });
  }

  it("another caller sending a 2025 session's Mcp-Session-Id gets 404 (the stdio endpoint, the aggregate, a modern server's proxy)", async () => {
    gateway.configure(access());
    for (const url of [stdioUrl, aggregateUrl, hostedUrl]) {
      const alice = await connect(url, 'alice', '2025-11-25');
      const transport = (alice as unknown as { transport?: { sessionId?: string } }).transport;
      const session = transport?.sessionId;
      expect(session).toBeTruthy();
      const asBob = await post(url, 'bob', session!, { jsonrpc: '2.0', id: 9, method: 'tools/list', params: {} });
      expect(asBob.status).toBe(404);
      const asAlice = await post(url, 'alice', session!, { jsonrpc: '2.0', id: 9, method: 'tools/list', params: {} });
      expect(asAlice.status).toBe(200);
      await alice.close();
    }
  });

  it('writes the records to the real audit log, which verifies', async () => {
    const log = await AuditLog.open(layout);
    gateway.configure(access({ audit: log }));
    const alice = await connect(stdioUrl, 'alice', '2025-11-25');
    const bob = await connect(stdioUrl, 'bob', '2026-07-28');
    await alice.callTool({ name: 'echo', arguments: { message: 'logged' } });
    await refusal(bob.callTool({ name: 'echo', arguments: { message: 'CANARY-LOGGED' } }));
    await alice.close();
    await bob.close();
    gateway.configure(access());
    await log.close();
    expect(await verifyAudit(layout)).toMatchObject({ ok: true });
    const records = await readAuditRecords(layout);
    expect(records.map((r) => [r.subject.user, r.name, r.outcome])).toEqual([
      ['alice', 'echo', 'ok'],
      ['bob', 'echo', 'denied'],
    ]);
    expect(JSON.stringify(records)).not.toContain('CANARY-LOGGED');
  });
});

function post(url: string, token: string, session: string | undefined, body: unknown): Promise<{ status: number; text: string; headers: IncomingHttpHeaders }> {
  const { hostname, port, pathname } = new URL(url);
  const bytes = Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: hostname,
        port,
        path: pathname,
        method: 'POST',
        headers: { Authorization: `Bearer ${token}`, ...(session !== undefined ? { 'Mcp-Session-Id': session } : {}), 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', 'Content-Length': bytes.length, 'MCP-Protocol-Version': '2025-11-25' },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), headers: res.headers }));
      },
    );
    req.on('error', reject);
    req.end(bytes);
  });
}
