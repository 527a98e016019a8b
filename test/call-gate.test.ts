/**
 * The per-caller layer in front of an endpoint's SessionHost (call-gate.ts):
 * lists kept to what a caller may see, calls decided (403) and rate-limited
 * (429) before they reach the host, one audit record per call, spans, and a
 * session's owner. The host here is an in-memory one that records what it
 * is sent; the endpoint test runs the same layer with real servers.
 */
import { describe, expect, it } from 'vitest';
import { compilePolicies, type PolicySource } from '../src/api/access.js';
import type { AuditRecord } from '../src/api/audit.js';
import { NO_TELEMETRY, type AccessConfig, type Caller, type RateLimiter, type RequestTelemetry, type Telemetry } from '../src/api/gate.js';
import { AGGREGATE_NAMING, GatedHost, inert, serverNaming } from '../src/mcp/call-gate.js';
import { defaultAccess, userCaller } from '../src/mcp/gatekeeper.js';
import type { JsonRpcMessage, JsonRpcRequest } from '../src/mcp/jsonrpc.js';
import { SessionTable } from './helpers/session-host.js';

const ALICE: Caller = userCaller({ user: 'alice', groups: ['dev'], scopes: [] });
const BOB: Caller = userCaller({ user: 'bob', groups: [], scopes: [] });

const POLICIES: PolicySource[] = [
  {
    name: 'devs',
    file: 'policies.yaml',
    subjects: [{ group: 'dev' }],
    rules: [
      { servers: ['mini'], tools: ['echo', 'add'], prompts: ['greet'], resources: ['file:///*'], effect: 'Allow' },
      { servers: ['mini'], tools: ['add'], effect: 'Deny' },
    ],
    ruleLines: [9, 12],
  },
  { name: 'everyone', file: 'policies.yaml', subjects: [{ authenticated: true }], rules: [{ servers: ['mini'], tools: ['time'], effect: 'Allow' }], ruleLines: [20] },
];

/** A host that answers every request with a canned result and keeps what it was sent. */
class Recorder extends SessionTable {
  readonly sent: JsonRpcMessage[] = [];
  result: (request: JsonRpcRequest) => Record<string, unknown> = () => ({ content: [{ type: 'text', text: 'ok' }] });
  /** Requests left unanswered (to close the session under them). */
  hold = false;
  fromClient(id: string, message: JsonRpcMessage): Promise<void> {
    this.sent.push(message);
    if ('method' in message && 'id' in message && !this.hold) this.sessions.get(id)?.({ jsonrpc: '2.0', id: message.id, result: this.result(message) }, message.id);
    return Promise.resolve();
  }
}

function oidc(extra: Partial<AccessConfig> = {}): AccessConfig {
  return { mode: 'oidc', policies: compilePolicies(POLICIES, 'oidc'), telemetry: NO_TELEMETRY, ...extra };
}

function setup(config: AccessConfig, caller: Caller, naming = serverNaming('mini')) {
  const host = new Recorder();
  const gated = new GatedHost(host, () => config, naming);
  const got: JsonRpcMessage[] = [];
  const session = gated.openSession((m) => got.push(m), { caller });
  const send = async (id: number, method: string, params: Record<string, unknown> = {}): Promise<JsonRpcMessage | undefined> => {
    await gated.fromClient(session, { jsonrpc: '2.0', id, method, params });
    return got.find((m) => 'id' in m && m.id === id && !('method' in m));
  };
  return { host, gated, session, got, send };
}

describe('the call gate (per-caller policies, limits, audit, telemetry)', () => {
  it('with the default config passes every message on untouched: nothing filtered, tracked, copied or traced', async () => {
    const config = defaultAccess('t0k3n');
    expect(inert(config)).toBe(true);
    const { host, gated, session, send } = setup(config, BOB);
    host.result = () => ({ tools: [{ name: 'echo' }, { name: 'add' }] });
    const request: JsonRpcRequest = { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'add', _meta: { traceparent: 't' } } };
    await gated.fromClient(session, request);
    expect(host.sent[0]).toBe(request);
    expect(await send(2, 'tools/list')).toMatchObject({ result: { tools: [{ name: 'echo' }, { name: 'add' }] } });
  });

  it('keeps a list to what the caller may use, and refuses a forced call with 403 and the rule, which never reaches the server', async () => {
    const audit: AuditRecord[] = [];
    const alice = setup(oidc({ audit: { append: (r) => audit.push(r) } }), ALICE);
    alice.host.result = (r) => (r.method === 'tools/list' ? { tools: [{ name: 'echo' }, { name: 'add' }, { name: 'time' }, { name: 'env' }] } : { content: [] });
    expect(await alice.send(1, 'tools/list')).toMatchObject({ result: { tools: [{ name: 'echo' }, { name: 'time' }] } });

    const bob = setup(oidc({ audit: { append: (r) => audit.push(r) } }), BOB);
    bob.host.result = alice.host.result;
    expect(await bob.send(1, 'tools/list')).toMatchObject({ result: { tools: [{ name: 'time' }] } });
    const refused = await bob.send(2, 'tools/call', { name: 'echo', arguments: { message: 'CANARY-VALUE' } });
    expect(refused).toEqual({ jsonrpc: '2.0', id: 2, error: { code: 403, message: 'Forbidden by policy: tool "echo" of server "mini"', data: { reason: 'default-deny' } } });
    const denied = await alice.send(2, 'tools/call', { name: 'add' });
    expect(denied).toMatchObject({ error: { code: 403, data: { rule: 'devs (policies.yaml:12)' } } });
    expect(bob.host.sent.filter((m) => 'method' in m && m.method === 'tools/call')).toEqual([]);
    expect(alice.host.sent.filter((m) => 'method' in m && m.method === 'tools/call')).toEqual([]);

    expect(await alice.send(3, 'tools/call', { name: 'echo', arguments: { message: 'hi' } })).toMatchObject({ result: {} });
    expect(audit.map((r) => [r.subject.user, r.name, r.decision, r.outcome, r.rule, r.code])).toEqual([
      ['bob', 'echo', 'deny', 'denied', undefined, 403],
      ['alice', 'add', 'deny', 'denied', 'devs (policies.yaml:12)', 403],
      ['alice', 'echo', 'allow', 'ok', 'devs (policies.yaml:9)', undefined],
    ]);
    expect(JSON.stringify(audit)).not.toContain('CANARY-VALUE');
  });

  it('decides prompts, resources, templates by uriTemplate and completions on their ref', async () => {
    const { host, send } = setup(oidc(), ALICE);
    host.result = (r) => (r.method === 'resources/templates/list' ? { resourceTemplates: [{ uriTemplate: 'file:///{path}' }, { uriTemplate: 'db://{table}' }] } : r.method === 'prompts/list' ? { prompts: [{ name: 'greet' }, { name: 'other' }] } : {});
    expect(await send(1, 'resources/templates/list')).toMatchObject({ result: { resourceTemplates: [{ uriTemplate: 'file:///{path}' }] } });
    expect(await send(2, 'prompts/list')).toMatchObject({ result: { prompts: [{ name: 'greet' }] } });
    expect(await send(3, 'prompts/get', { name: 'other' })).toMatchObject({ error: { code: 403 } });
    expect(await send(4, 'resources/read', { uri: 'db://users' })).toMatchObject({ error: { code: 403 } });
    expect(await send(5, 'resources/subscribe', { uri: 'db://users' })).toMatchObject({ error: { code: 403 } });
    expect(await send(6, 'resources/read', { uri: 'file:///a' })).toMatchObject({ result: {} });
    expect(await send(7, 'completion/complete', { ref: { type: 'ref/prompt', name: 'other' }, argument: { name: 'x', value: '' } })).toMatchObject({ error: { code: 403 } });
    expect(await send(8, 'completion/complete', { ref: { type: 'ref/prompt', name: 'greet' }, argument: { name: 'x', value: '' } })).toMatchObject({ result: {} });
    expect(await send(9, 'tools/call', { name: ['echo'] })).toMatchObject({ error: { code: -32602 } });
  });

  it('at the aggregate asks about each member under its own names', async () => {
    const audit: AuditRecord[] = [];
    const { host, send } = setup(oidc({ audit: { append: (r) => audit.push(r) } }), ALICE, AGGREGATE_NAMING);
    host.result = (r) => (r.method === 'tools/list' ? { tools: [{ name: 'mini__echo' }, { name: 'other__echo' }, { name: 'mini__env' }] } : r.method === 'resources/list' ? { resources: [{ uri: 'apiary://mini/file:///a', name: 'mini__a' }, { uri: 'apiary://mini/db://x', name: 'mini__x' }] } : {});
    expect(await send(1, 'tools/list')).toMatchObject({ result: { tools: [{ name: 'mini__echo' }] } });
    expect(await send(2, 'resources/list')).toMatchObject({ result: { resources: [{ name: 'mini__a' }] } });
    expect(await send(3, 'tools/call', { name: 'other__echo' })).toMatchObject({ error: { code: 403, message: 'Forbidden by policy: tool "echo" of server "other"' } });
    expect(await send(4, 'tools/call', { name: 'mini__echo' })).toMatchObject({ result: {} });
    expect(audit.map((r) => [r.server, r.name, r.outcome])).toEqual([
      ['other', 'echo', 'denied'],
      ['mini', 'echo', 'ok'],
    ]);
  });

  it('asks the limiter before forwarding an allowed call: over it, 429 with the retry hint, recorded', async () => {
    const audit: AuditRecord[] = [];
    const taken: unknown[] = [];
    let left = 1;
    const limiter: RateLimiter = { take: (key, server, tool) => (taken.push([key, server, tool]), left-- > 0 ? undefined : { limit: 'tool', retryAfterMs: 1500 }) };
    const { host, send } = setup(oidc({ limiter, audit: { append: (r) => audit.push(r) } }), ALICE);
    expect(await send(1, 'tools/call', { name: 'echo' })).toMatchObject({ result: {} });
    expect(await send(2, 'tools/call', { name: 'echo' })).toEqual({ jsonrpc: '2.0', id: 2, error: { code: 429, message: 'Rate limit exceeded', data: { retryAfterSeconds: 2, retryAfterMs: 1500, limit: 'tool', server: 'mini', tool: 'echo' } } });
    // A denied call spends nothing.
    await send(3, 'tools/call', { name: 'add' });
    expect(taken).toEqual([
      ['user:alice', 'mini', 'echo'],
      ['user:alice', 'mini', 'echo'],
    ]);
    expect(host.sent.filter((m) => 'method' in m && m.method === 'tools/call')).toHaveLength(1);
    expect(audit.map((r) => [r.outcome, r.code, r.decision])).toEqual([
      ['ok', undefined, 'allow'],
      ['rate_limited', 429, 'allow'],
      ['denied', 403, 'deny'],
    ]);
  });

  it('records a call whose client goes away before the answer (outcome error), and a tool error as tool_error', async () => {
    const audit: AuditRecord[] = [];
    const { host, gated, session, send } = setup(oidc({ audit: { append: (r) => audit.push(r) } }), ALICE);
    host.result = () => ({ content: [], isError: true });
    await send(1, 'tools/call', { name: 'echo' });
    host.hold = true;
    await send(2, 'tools/call', { name: 'echo' });
    expect(audit).toHaveLength(1);
    gated.closeSession(session);
    expect(audit.map((r) => [r.requestId, r.outcome])).toEqual([
      [1, 'tool_error'],
      [2, 'error'],
    ]);
  });

  it('starts a span per call and list, continues its trace upstream in _meta, and counts sessions; the default sends _meta untouched', async () => {
    const started: RequestTelemetry[] = [];
    const ended: unknown[] = [];
    const sessions: number[] = [];
    const telemetry: Telemetry = {
      startRequest: (r) => (started.push(r), { upstreamMeta: () => ({ traceparent: '00-abc-def-01' }), end: (outcome, error) => ended.push([outcome, error]) }),
      sessions: (_server, delta) => sessions.push(delta),
      lifecycle: () => undefined,
    };
    const { host, gated, session, send } = setup(oidc({ telemetry }), ALICE);
    await send(1, 'tools/call', { name: 'echo', _meta: { tracestate: 'x=1' } });
    await send(2, 'tools/call', { name: 'env' });
    await send(3, 'tools/list');
    expect(host.sent[0]).toMatchObject({ params: { name: 'echo', _meta: { tracestate: 'x=1', traceparent: '00-abc-def-01' } } });
    expect(started.map((s) => [s.method, s.server, s.name, s.requestId, s.sessionId === session])).toEqual([
      ['tools/call', 'mini', 'echo', 1, true],
      ['tools/call', 'mini', 'env', 2, true],
      ['tools/list', 'mini', undefined, 3, true],
    ]);
    expect(started[0]!.meta).toEqual({ tracestate: 'x=1' });
    expect(ended.map((e) => (e as [string])[0])).toEqual(['ok', 'denied', 'ok']);
    gated.closeSession(session);
    expect(sessions).toEqual([1, -1]);

    const plain = setup({ ...oidc(), telemetry: NO_TELEMETRY }, ALICE);
    await plain.send(1, 'tools/call', { name: 'echo' });
    expect(plain.host.sent[0]).toEqual({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo' } });
  });

  it("keeps a 2026-07-28 listener's resourceSubscriptions to what its caller may read (the watch itself is apiary's own session)", () => {
    const { gated } = setup(oidc(), ALICE);
    expect(gated.subscribable(ALICE, ['file:///a', 'db://x'])).toEqual(['file:///a']);
    expect(gated.subscribable(BOB, ['file:///a'])).toEqual([]);
    const aggregate = new GatedHost(new Recorder(), () => oidc(), AGGREGATE_NAMING);
    expect(aggregate.subscribable(ALICE, ['apiary://mini/file:///a', 'apiary://other/file:///a', 'file:///a'])).toEqual(['apiary://mini/file:///a']);
    expect(new GatedHost(new Recorder(), () => defaultAccess(undefined), serverNaming('mini')).subscribable(BOB, ['db://x'])).toEqual(['db://x']);
  });

  it('a session belongs to the caller that opened it', () => {
    const { gated, session } = setup(oidc(), ALICE);
    expect(gated.ownedBy(session, ALICE)).toBe(true);
    expect(gated.ownedBy(session, BOB)).toBe(false);
    expect(gated.ownedBy(session, userCaller({ user: 'alice', groups: [], scopes: [] }))).toBe(true);
  });

  it('a request in flight keeps the config it started with', async () => {
    const audit: AuditRecord[] = [];
    let config = oidc({ audit: { append: (r) => audit.push(r) } });
    const host = new Recorder();
    host.hold = true;
    const gated = new GatedHost(host, () => config, serverNaming('mini'));
    const session = gated.openSession(() => undefined, { caller: ALICE });
    await gated.fromClient(session, { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo' } });
    config = oidc();
    host.sessions.get(session)!({ jsonrpc: '2.0', id: 1, result: { content: [] } }, 1);
    expect(audit).toHaveLength(1);
  });
});
