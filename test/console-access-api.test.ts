/**
 * The console's read-only API for step 17: the Gateway, the AccessPolicies,
 * the effective access of a caller (the very evaluator `apiary policy check`
 * uses, asked about each tool the servers listed), and the audit log a page
 * at a time with what `audit verify` says. No answer carries a token, a
 * secret value or an argument value.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { AccessAnswer, AccessPoliciesAnswer, AuditAnswer, GatewayAnswer } from '../src/api/console-access.js';
import { gateway } from '../src/console/access-api.js';
import type { ApiContext } from '../src/console/api.js';
import { Feed } from '../src/console/feed.js';
import { loadDirectory } from '../src/manifests/loader.js';
import { readEndpointToken } from '../src/mcp/endpoint-token.js';
import type { StatusRecord } from '../src/state/records.js';
import { StateLayout } from '../src/state/layout.js';
import { alice, ARGUMENT_CANARY, bob, OIDC_GATEWAY, SECRET_CANARY, twoPolicies, writeAudit, type Call } from './helpers/access-fixture.js';
import { runCli } from './helpers/cli.js';
import { startConsole, type ConsoleClient } from './helpers/console.js';
import { harness, secretYaml, tinyServer, type Harness } from './helpers/controller.js';
import { sseParser } from './helpers/sse.js';
import { workspace } from './helpers/tmp.js';
import { within } from './helpers/wait.js';

const ROUTES = ['/api/v1/gateway', '/api/v1/accesspolicies', '/api/v1/access?user=alice', '/api/v1/audit', '/api/v1/audit/follow', '/api/v1/audit/verify'];

/** Two tiny servers (each lists one tool, noop), a Secret holding the canary, a Gateway in oidc mode and two policies. */
async function teamDirectory(): Promise<{ h: Harness; c: ConsoleClient }> {
  const h = await harness();
  await h.write('a.yaml', tinyServer('a', h));
  await h.write('b.yaml', tinyServer('b', h, { env: '    - name: TOKEN\n      valueFrom:\n        secretKeyRef: { name: github, key: token }\n' }));
  await h.write('github.yaml', secretYaml('github', { token: SECRET_CANARY }));
  await h.write('gateway.yaml', OIDC_GATEWAY);
  await h.write('access.yaml', twoPolicies('a', ['noop'], 'b', 'noop'));
  const c = await startConsole(h);
  return { h, c };
}

/** Until both servers have listed their tools to the gateway. */
async function toolsListed(h: Harness, c: ConsoleClient): Promise<AccessAnswer> {
  return h.waitFor('a and b listed their tools', async () => {
    const answer = (await c.request('GET', '/api/v1/access?user=alice&group=dev')).json<AccessAnswer>();
    return answer.servers?.every((s) => s.toolsKnown) === true && answer;
  }, 20_000);
}

function decisions(answer: AccessAnswer): Record<string, string> {
  return Object.fromEntries(answer.servers.flatMap((s) => s.items.map((i) => [`${s.server}/${i.name}`, `${i.effect} ${i.rule ?? i.reason}`])));
}

const CALLS: Call[] = [
  { subject: alice, server: 'a', name: 'noop', decision: 'allow', rule: 'devs (access.yaml:9)', outcome: 'ok', at: 1 },
  { subject: bob, server: 'b', name: 'noop', decision: 'deny', rule: 'contractors (access.yaml:23)', outcome: 'denied', code: 403, at: 2 },
  { subject: { kind: 'token' }, server: 'b', name: 'noop', decision: 'deny', outcome: 'denied', code: 403, at: 3 },
  { subject: alice, server: 'b', method: 'prompts/get', name: 'greet', decision: 'allow', rule: 'devs (access.yaml:12)', outcome: 'ok', at: 4 },
  { subject: { kind: 'unauthenticated' }, server: '*', method: 'initialize', decision: 'deny', outcome: 'unauthenticated', at: 5 },
];

describe('console API: Gateway, AccessPolicies, effective access', () => {
  it('says there is no Gateway (token mode, what to write) and shows no token', async () => {
    const h = await harness();
    await h.write('a.yaml', tinyServer('a', h));
    const c = await startConsole(h);
    const answer = await c.request('GET', '/api/v1/gateway');
    expect(answer.status).toBe(200);
    expect(answer.json<GatewayAnswer>()).toMatchObject({ present: false, mode: 'token', errors: [], warnings: [] });
    expect(answer.json<GatewayAnswer>().message).toMatch(/^No Gateway: apiary asks every client for its bearer token.*Write a Gateway/);
    expect((await c.request('GET', '/api/v1/accesspolicies')).json<AccessPoliciesAnswer>()).toEqual({ mode: 'token', items: [], warnings: [] });
    const token = await readEndpointToken(new StateLayout(h.stateDir));
    expect(token).toBeDefined();
    expect(answer.body).not.toContain(token);
  });

  it('shows the Gateway, each policy with its rules at file:line, and the decisions policy check takes, per caller and per tool', async () => {
    const { h, c } = await teamDirectory();
    const gw = (await c.request('GET', '/api/v1/gateway')).json<GatewayAnswer>();
    expect(gw).toMatchObject({ present: true, mode: 'oidc', file: 'gateway.yaml', line: 1, provider: { issuer: 'http://127.0.0.1:9/realms/team', audience: 'apiary', usernameClaim: 'sub', groupsClaim: 'groups' }, errors: [] });
    expect(gw.spec).toEqual({ auth: { mode: 'oidc', oidc: { issuer: 'http://127.0.0.1:9/realms/team', audience: 'apiary', groupsClaim: 'groups' } }, audit: { maxFiles: 3 } });

    const policies = (await c.request('GET', '/api/v1/accesspolicies')).json<AccessPoliciesAnswer>();
    expect(policies.mode).toBe('oidc');
    expect(policies.items.map((p) => [p.name, p.file, p.line, p.subjects, p.rules.map((r) => `${r.at} ${r.effect} ${r.servers.join(',')} ${r.tools?.join(',') ?? '*'}`)])).toEqual([
      ['devs', 'access.yaml', 1, [{ group: 'dev' }], ['access.yaml:9 Allow a noop', 'access.yaml:12 Allow b *']],
      ['contractors', 'access.yaml', 15, [{ user: 'bob' }], ['access.yaml:23 Deny * noop']],
    ]);

    // alice (group dev) may call noop on both; bob (also dev) is denied b's by the contractors policy; carol by the default.
    const forAlice = await toolsListed(h, c);
    expect(decisions(forAlice)).toEqual({ 'a/noop': 'Allow devs (access.yaml:9)', 'b/noop': 'Allow devs (access.yaml:12)' });
    expect(forAlice).toMatchObject({ mode: 'oidc', label: 'alice (groups dev)', notes: [] });
    const forBob = (await c.request('GET', '/api/v1/access?user=bob&group=dev')).json<AccessAnswer>();
    expect(decisions(forBob)).toEqual({ 'a/noop': 'Deny contractors (access.yaml:23)', 'b/noop': 'Deny contractors (access.yaml:23)' });
    expect(forBob.servers.map((s) => [s.server, s.allowed, s.denied])).toEqual([['a', 0, 1], ['b', 0, 1]]);
    const forCarol = (await c.request('GET', '/api/v1/access?user=carol')).json<AccessAnswer>();
    expect(decisions(forCarol)).toEqual({ 'a/noop': 'Deny default-deny', 'b/noop': 'Deny default-deny' });
    const forToken = (await c.request('GET', '/api/v1/access?token=local')).json<AccessAnswer>();
    expect(forToken.notes).toEqual(['auth mode is oidc: the local token is a caller only where a policy names it (subjects: [{token: local}])']);

    // The very decision `apiary policy check` prints, rule and line included.
    const check = JSON.parse((await runCli(['policy', 'check', '--user', 'bob', '--group', 'dev', 'b', 'noop', '-o', 'json'], { env: h.env })).stdout) as { effect: string; rule: { policy: string; line: number } };
    expect(`${check.effect} ${check.rule.policy} (access.yaml:${check.rule.line})`).toBe(decisions(forBob)['b/noop']);

    // The matrix: every subject the policies name, by server.
    expect(forAlice.matrix).toEqual({
      subjects: [{ label: 'group dev', query: 'group=dev' }, { label: 'user bob', query: 'user=bob' }],
      servers: ['a', 'b'],
      cells: [
        [{ known: true, allowed: 1, denied: 0 }, { known: true, allowed: 1, denied: 0 }],
        [{ known: true, allowed: 0, denied: 1 }, { known: true, allowed: 0, denied: 1 }],
      ],
    });
  }, 60_000);

  it('refuses a caller it cannot name, and decides nothing while a policy is invalid', async () => {
    const { h, c } = await teamDirectory();
    for (const [query, message] of [
      ['', 'who is asking?'],
      ['token=admin', 'token takes "local"'],
      ['token=local&user=alice', 'not both'],
    ] as const) {
      const answer = await c.request('GET', `/api/v1/access?${query}`);
      expect(answer.status).toBe(400);
      expect(answer.json<{ message: string }>().message).toContain(message);
    }
    await h.write('access.yaml', twoPolicies('a', ['noop'], 'b', 'noop').replace('effect: Deny', 'effect: Maybe'));
    const broken = await h.waitFor('the broken policy seen', async () => {
      const answer = await c.request('GET', '/api/v1/access?user=alice');
      return answer.status === 422 && answer;
    });
    expect(broken.json<{ message: string; hints: string[] }>()).toMatchObject({ message: 'the access settings are invalid; no decision until they are fixed:', hints: ['access.yaml:25:15: spec.rules[0].effect: must be one of Allow, Deny; got "Maybe"'] });
    const shown = (await c.request('GET', '/api/v1/accesspolicies')).json<AccessPoliciesAnswer>();
    expect(shown.items.find((p) => p.name === 'contractors')).toMatchObject({ rules: [], errors: [expect.stringContaining('effect')] });
  }, 60_000);

  it('answers 401 without a session on every new route', async () => {
    const h = await harness();
    const c = await startConsole(h);
    for (const path of ROUTES) expect((await c.request('GET', path, { auth: false })).status, path).toBe(401);
  });
});

/** The gateway route over a directory and a status record, as a controller that writes Gateway status would give them. */
async function gatewayWithStatus(): Promise<GatewayAnswer> {
  const ws = await workspace();
  await mkdir(ws.dir, { recursive: true });
  await writeFile(join(ws.dir, 'gateway.yaml'), OIDC_GATEWAY.replace('http://127.0.0.1:9/', 'http://ops:hunter2@127.0.0.1:9/'));
  const { documents } = await loadDirectory(ws.dir);
  const status = { conditions: [{ type: 'Ready', status: 'False', reason: 'IssuerUnreachable', message: 'the provider did not answer', lastTransitionTime: '2026-12-04T12:00:00Z' }] };
  const record = { kind: 'Gateway', metadata: { name: 'default', generation: 1, creationTimestamp: '2026-12-04T12:00:00Z' }, specHash: '', status, events: [], writtenBy: { pid: 1, runId: 'r' }, writtenAt: '2026-12-04T12:00:00Z' } as unknown as StatusRecord;
  const feed = new Feed({ snapshot: () => ({ documents, records: [record] }), observe: () => () => undefined });
  const ctx = { dir: ws.dir, stateDir: ws.stateDir, feed } as unknown as ApiContext;
  let body = '';
  const res = { writeHead: () => res, end: (text: string) => (body = text) } as unknown as ServerResponse;
  await gateway(ctx, {} as IncomingMessage, res);
  return JSON.parse(body) as GatewayAnswer;
}

describe('console API: the Gateway as the controller sees it', () => {
  it('carries the status the controller wrote, and never a password someone put in a URL', async () => {
    const answer = await gatewayWithStatus();
    expect(answer.status).toMatchObject({ conditions: [{ type: 'Ready', status: 'False', reason: 'IssuerUnreachable' }] });
    expect(answer.provider?.issuer).toBe('http://***@127.0.0.1:9/realms/team');
    expect(JSON.stringify(answer)).not.toContain('hunter2');
  });
});

describe('console API: the audit log', () => {
  it('says what to do while there is no log', async () => {
    const h = await harness();
    const c = await startConsole(h);
    const answer = (await c.request('GET', '/api/v1/audit')).json<AuditAnswer>();
    expect(answer.records).toEqual([]);
    expect(answer.message).toMatch(/^No audit log yet: it is written when a Gateway exists/);
    expect((await c.request('GET', '/api/v1/audit/verify')).json()).toEqual({ ok: true, records: 0, files: 0, unanchored: 0 });
    // Filtered, an empty answer says nothing of the log as a whole.
    expect((await c.request('GET', '/api/v1/audit?server=a')).json<AuditAnswer>().message).toBeUndefined();
  });

  it('pages newest first, filters by server, user and since, and says whether the chain verifies', async () => {
    const { h, c } = await teamDirectory();
    await writeAudit(h.stateDir, CALLS);
    const all = (await c.request('GET', '/api/v1/audit')).json<AuditAnswer>();
    expect(all.records.map((r) => r.seq)).toEqual([5, 4, 3, 2, 1]);
    expect(all.message).toBeUndefined();
    // A page never waits for the whole chain to be verified: it carries the result once a verify ran on these files.
    expect(all.verify).toBeUndefined();
    const verified = { ok: true, records: 5, files: 1, first: 1, last: 5, unanchored: 0 };
    expect((await c.request('GET', '/api/v1/audit/verify')).json()).toEqual(verified);
    expect((await c.request('GET', '/api/v1/audit?limit=1')).json<AuditAnswer>().verify).toEqual(verified);
    expect(all.records[3]).toMatchObject({ subject: bob, client: 'claude-code 2.1', server: 'b', method: 'tools/call', name: 'noop', decision: 'deny', rule: 'contractors (access.yaml:23)', outcome: 'denied', code: 403, args: [{ name: 'message', type: 'string', bytes: ARGUMENT_CANARY.length + 2 }, { name: 'count', type: 'number', bytes: 1 }] });

    const first = (await c.request('GET', '/api/v1/audit?limit=2')).json<AuditAnswer>();
    expect([first.records.map((r) => r.seq), first.next]).toEqual([[5, 4], 4]);
    const second = (await c.request('GET', `/api/v1/audit?limit=2&before=${first.next}`)).json<AuditAnswer>();
    expect([second.records.map((r) => r.seq), second.next]).toEqual([[3, 2], 2]);
    const last = (await c.request('GET', `/api/v1/audit?limit=2&before=${second.next}`)).json<AuditAnswer>();
    expect([last.records.map((r) => r.seq), last.next]).toEqual([[1], undefined]);

    const seqs = async (query: string) => (await c.request('GET', `/api/v1/audit?${query}`)).json<AuditAnswer>().records.map((r) => r.seq);
    expect(await seqs('server=b')).toEqual([4, 3, 2]);
    expect(await seqs('user=alice')).toEqual([4, 1]);
    expect(await seqs('user=(token)')).toEqual([3]);
    expect(await seqs('since=2026-12-04T12:00:03Z')).toEqual([5, 4, 3]);
    expect(await seqs('server=b&user=bob')).toEqual([2]);
    const wrong = await c.request('GET', '/api/v1/audit?since=yesterday');
    expect([wrong.status, wrong.json<{ message: string }>().message]).toEqual([400, 'since: "yesterday" is neither a duration (10m, 1h30m) nor a time (2026-12-04T10:00:00Z)']);
    expect((await c.request('GET', '/api/v1/audit?limit=-1')).status).toBe(400);

    // A record edited on disk: the badge names it, as `apiary audit verify` does.
    const layout = new StateLayout(h.stateDir);
    const text = await readFile(layout.auditFile, 'utf8');
    await writeFile(layout.auditFile, text.replace('"outcome":"denied"', '"outcome":"ok"'));
    expect((await c.request('GET', '/api/v1/audit')).json<AuditAnswer>().verify).toBeUndefined();
    const [broken, again] = await Promise.all([c.request('GET', '/api/v1/audit/verify'), c.request('GET', '/api/v1/audit/verify')]);
    const cli = await runCli(['audit', 'verify'], { env: h.env });
    expect(broken.json()).toMatchObject({ ok: false, seq: 2, file: 'audit.jsonl', line: 2 });
    expect(again.json()).toEqual(broken.json());
    expect(cli.stderr).toContain(broken.json<{ message: string }>().message);
  }, 60_000);

  it('streams the records written next that pass the filter', async () => {
    const { h, c } = await teamDirectory();
    await writeAudit(h.stateDir, CALLS.slice(0, 2));
    const seen: { seq: number; server: string }[] = [];
    let opened!: () => void;
    const open = new Promise<void>((resolve) => (opened = resolve));
    const done = new Promise<void>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: c.port, path: '/api/v1/audit/follow?after=2&server=a', headers: { Host: `127.0.0.1:${c.port}`, Authorization: `Bearer ${c.server.apiToken}` } }, (res) => {
        const parse = sseParser((event) => seen.push(event.data as { seq: number; server: string }));
        res.on('data', (d: Buffer) => {
          opened();
          parse(d.toString());
          if (seen.length >= 2) {
            req.destroy();
            resolve();
          }
        });
      });
      req.on('error', (err) => (seen.length >= 2 ? undefined : reject(err)));
      req.end();
    });
    await within('the follow stream open', open);
    await writeAudit(h.stateDir, [CALLS[2]!, { ...CALLS[0]!, at: 6 }, CALLS[1]!, { ...CALLS[0]!, at: 7 }]);
    await within('two records of a', done);
    expect(seen.map((r) => [r.seq, r.server])).toEqual([[4, 'a'], [6, 'a']]);
  }, 60_000);

  it('never answers with a token, a secret value or an argument value', async () => {
    const { h, c } = await teamDirectory();
    await writeAudit(h.stateDir, CALLS);
    await toolsListed(h, c);
    const token = (await readEndpointToken(new StateLayout(h.stateDir)))!;
    const queries = ['/api/v1/gateway', '/api/v1/accesspolicies', '/api/v1/access?user=alice&group=dev', '/api/v1/access?token=local', '/api/v1/audit', '/api/v1/audit?limit=1', '/api/v1/audit/verify'];
    for (const path of queries) {
      const { body, status } = await c.request('GET', path);
      expect(status, path).toBe(200);
      for (const canary of [SECRET_CANARY, ARGUMENT_CANARY, token, c.server.apiToken]) expect(body, path).not.toContain(canary);
    }
  }, 60_000);
});
