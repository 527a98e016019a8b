/**
 * The controller side of step 17: a real controller (the process runtime,
 * the tiny server) with Gateway and AccessPolicy manifests in its directory.
 * The AccessConfig every endpoint applies follows the edits; the Gateway and
 * each policy say in status whether they are in force; the audit log exists
 * only while a Gateway does; telemetry is opened and closed with the spec.
 *
 * The verifier, limiter and telemetry are the tests' own factories: the
 * real ones are written on other branches and connected in controller.ts.
 */
import { existsSync } from 'node:fs';
import { chmod, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { recordOf } from '../src/api/audit.js';
import { NO_TELEMETRY, type AccessConfig, type RateLimiter } from '../src/api/gate.js';
import { findCondition, type AccessPolicyStatus, type GatewayStatus } from '../src/api/status.js';
import type { MCPServerResource } from '../src/manifests/resource.js';
import { probeIssuer } from '../src/reconcilers/issuer-probe.js';
import { planAccess, type GatewayOidc, type GatewayTelemetry, type RateLimits } from '../src/reconcilers/access-plan.js';
import type { AccessParts, ClosableVerifier, OpenedTelemetry } from '../src/reconcilers/access.js';
import { readEndpointToken } from '../src/mcp/endpoint-token.js';
import { readAuditRecords } from '../src/state/audit-read.js';
import { StateLayout } from '../src/state/layout.js';
import { KubeCluster } from '../src/kubernetes/cluster.js';
import { systemClock } from '../src/util/clock.js';
import { ROOT, runCli, spawnUp } from './helpers/cli.js';
import { FakeApiServer } from './helpers/fake-apiserver.js';
import { harness, isAlive, nodeServer, tinyServer, type Harness } from './helpers/controller.js';
import { gitRepositoryYaml, testRepo } from './helpers/git.js';
import { freePort } from './helpers/ports.js';
import { needsGit } from './helpers/tools.js';
import { waitFor } from './helpers/wait.js';

const EVERYTHING = createRequire(import.meta.url).resolve('@modelcontextprotocol/server-everything/dist/index.js');

/** What the factories were asked for, and what became of it. */
interface Made {
  verifiers: { oidc: GatewayOidc; closed: boolean; unavailable: (problem: string) => void }[];
  limiters: { gateway: unknown; perServer: Map<string, RateLimits> }[];
  telemetry: { spec: GatewayTelemetry; closed: boolean; lifecycle: string[] }[];
}

function parts(failTelemetry = false): { parts: AccessParts; made: Made } {
  const made: Made = { verifiers: [], limiters: [], telemetry: [] };
  return {
    made,
    parts: {
      verifier(oidc, unavailable): ClosableVerifier {
        const entry = { oidc, closed: false, unavailable };
        made.verifiers.push(entry);
        return { verify: async () => ({ error: 'invalid_token', description: 'test verifier' }), close: () => void (entry.closed = true) };
      },
      limiter(gateway, perServer): RateLimiter {
        made.limiters.push({ gateway, perServer: new Map(perServer) });
        return { take: () => undefined };
      },
      async telemetry(spec): Promise<OpenedTelemetry> {
        if (failTelemetry) throw new Error('collector refused');
        const entry = { spec, closed: false, lifecycle: [] as string[] };
        made.telemetry.push(entry);
        return {
          ...NO_TELEMETRY,
          lifecycle: (server, event) => void entry.lifecycle.push(`${server}:${event}`),
          close: async () => void (entry.closed = true),
          ...(spec.prometheus ? { metricsUrl: `http://127.0.0.1:${spec.prometheus.port}/metrics` } : {}),
        };
      },
    },
  };
}

function gatewayYaml(spec: string): string {
  return `apiVersion: apiary.dev/v1alpha1\nkind: Gateway\nmetadata:\n  name: default\nspec:\n${spec}`;
}

function policyYaml(name: string, subject: string, servers = '["*"]', effect = 'Allow'): string {
  return `apiVersion: apiary.dev/v1alpha1\nkind: AccessPolicy\nmetadata:\n  name: ${name}\nspec:\n  subjects:\n    - ${subject}\n  rules:\n    - servers: ${servers}\n      effect: ${effect}\n`;
}

function config(h: Harness): AccessConfig {
  return h.controller!.accessConfig()!;
}

async function accessStatus<S extends GatewayStatus | AccessPolicyStatus>(h: Harness, kind: 'Gateway' | 'AccessPolicy', name: string): Promise<S | undefined> {
  return (await h.view()).objects.find((o) => o.kind === kind && o.name === name)?.object.status as S | undefined;
}

async function auditFiles(h: Harness): Promise<string[]> {
  return (await readdir(new StateLayout(h.stateDir).auditDir).catch(() => [] as string[])).sort();
}

/** A real OpenID provider (oidc-provider, which has no type declarations) on 127.0.0.1: discovery and its JWKS. */
async function openIdProvider(issuer: string, port: number): Promise<Server> {
  const { default: Provider } = (await import('oidc-provider' as string)) as { default: new (issuer: string, config: object) => { listen(port: number): Server } };
  return new Provider(issuer, { clients: [] }).listen(port);
}

/** An MCP initialize POSTed to an endpoint: the HTTP status it answers. */
async function initialize(url: string, token?: string): Promise<number> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'access-test', version: '1' } } }),
  });
  await response.body?.cancel();
  return response.status;
}

const LOCAL = { groups: [], authenticated: false, token: 'local' as const };

describe('access settings: a real controller with Gateway and AccessPolicy manifests', () => {
  it('without a Gateway nothing changes: the bearer token, no policies, no audit file, no telemetry', async () => {
    const h = await harness();
    const { parts: p, made } = parts();
    await h.write('a.yaml', tinyServer('a', h));
    await h.start({}, { access: p });
    await h.waitFor('a running', async () => (await h.status('a'))?.phase === 'Running');
    await h.settled();
    const c = config(h);
    expect(c.mode).toBe('token');
    expect(c.token).toMatch(/.+/);
    expect(c.policies.policies).toBe(0);
    expect(c.policies.decide(LOCAL, { server: 'a', kind: 'tool', name: 'echo' }).effect).toBe('Allow');
    expect(c.audit).toBeUndefined();
    expect(c.verifier).toBeUndefined();
    expect(c.limiter).toBeUndefined();
    expect(c.telemetry).toBe(NO_TELEMETRY);
    expect(made).toEqual({ verifiers: [], limiters: [], telemetry: [] });
    expect(await auditFiles(h)).toEqual([]);
    expect(existsSync(new StateLayout(h.stateDir).auditKeyFile)).toBe(false);
    expect((await h.view()).objects.map((o) => o.kind)).toEqual(['MCPServer']);
  });

  it('the AccessConfig follows the edits: mode token, then policies, then mode none, then the Gateway removed', async () => {
    const h = await harness();
    const { parts: p } = parts();
    await h.write('a.yaml', tinyServer('a', h));
    await h.write('gateway.yaml', gatewayYaml('  auth:\n    mode: token\n'));
    await h.start({}, { access: p });
    // Applied before the first pass: the endpoints never serve with the settings of before.
    expect(config(h).audit).toBeDefined();
    await h.waitFor('a listening', async () => h.logs.some((l) => l.msg === 'MCP endpoint listening'));
    const order = h.logs.flatMap((l) => (['access settings applied', 'aggregate MCP endpoint listening', 'MCP endpoint listening'].includes(l.msg) ? [l.msg] : []));
    expect(order).toEqual(['access settings applied', 'aggregate MCP endpoint listening', 'MCP endpoint listening']);
    await h.waitFor('gateway Ready', async () => findCondition((await accessStatus<GatewayStatus>(h, 'Gateway', 'default'))?.conditions, 'Ready')?.status === 'True');
    expect(await accessStatus<GatewayStatus>(h, 'Gateway', 'default')).toMatchObject({ phase: 'Ready', mode: 'token', audit: true, policies: 0 });
    expect(await auditFiles(h)).toEqual(['audit.head', 'audit.jsonl']);

    // Policies in token mode: the local token is a subject of its own, so it must be named (token: local).
    await h.write('p.yaml', policyYaml('owner', 'token: local', '["a"]'));
    await h.waitFor('policy applied', async () => config(h).policies.policies === 1);
    expect(config(h).policies.decide(LOCAL, { server: 'a', kind: 'tool', name: 'echo' })).toMatchObject({ effect: 'Allow', reason: 'rule' });
    expect(config(h).policies.decide(LOCAL, { server: 'b', kind: 'tool', name: 'echo' })).toMatchObject({ effect: 'Deny', reason: 'default-deny' });
    await h.waitFor('policy Ready', async () => (await accessStatus<AccessPolicyStatus>(h, 'AccessPolicy', 'owner'))?.phase === 'Ready');
    expect(await accessStatus<AccessPolicyStatus>(h, 'AccessPolicy', 'owner')).toMatchObject({ rules: 1 });

    // A policy that names no caller of this mode is said to be unused.
    await h.write('q.yaml', policyYaml('devs', 'group: dev'));
    const devs = await h.waitFor('devs unused', async () => ((await accessStatus<AccessPolicyStatus>(h, 'AccessPolicy', 'devs'))?.phase === 'Unused' ? accessStatus<AccessPolicyStatus>(h, 'AccessPolicy', 'devs') : undefined));
    expect(findCondition(devs?.conditions, 'Ready')).toMatchObject({ status: 'False', reason: 'NoCaller' });

    await h.write('gateway.yaml', gatewayYaml('  auth:\n    mode: none\n'));
    await h.waitFor('mode none', async () => config(h).mode === 'none');
    const gw = await h.waitFor('status mode none', async () => (await h.view()).objects.find((o) => o.kind === 'Gateway' && (o.object.status as GatewayStatus | undefined)?.mode === 'none'));
    expect(gw.events.map((e) => [e.reason, e.message])).toContainEqual(['AuthModeChanged', 'auth mode token -> none']);
    // The pass writes the Gateway's status, then each policy's: the policy's may land a moment after the Gateway's.
    await h.waitFor('the policy says mode none', async () => findCondition((await accessStatus<AccessPolicyStatus>(h, 'AccessPolicy', 'owner'))?.conditions, 'Ready')?.reason === 'AuthModeNone');

    // The Gateway removed: the bearer token again, the policies still in force, the log closed (its files stay).
    await rm(join(h.dir, 'gateway.yaml'));
    await h.waitFor('mode token again', async () => config(h).mode === 'token' && config(h).audit === undefined);
    expect(config(h).policies.policies).toBe(2);
    await h.waitFor('gateway record gone', async () => (await accessStatus(h, 'Gateway', 'default')) === undefined);
  });

  it('the endpoints apply it: mode none lets a caller without the token in, at a server and at the aggregate; mode token refuses it again (401)', async () => {
    const h = await harness();
    await h.write('a.yaml', tinyServer('a', h));
    await h.write('gateway.yaml', gatewayYaml('  auth:\n    mode: none\n'));
    await h.start({}, { access: parts().parts });
    const url = await h.waitFor('a Ready', async () => {
      const s = await h.status('a');
      return findCondition(s?.conditions, 'Ready')?.status === 'True' && s?.url;
    });
    const aggregate = h.controller!.aggregateUrl!;
    expect(await initialize(url)).toBe(200);
    expect(await initialize(aggregate)).toBe(200);
    await h.write('gateway.yaml', gatewayYaml('  auth:\n    mode: token\n'));
    await h.waitFor('mode token', async () => config(h).mode === 'token');
    expect(await initialize(url)).toBe(401);
    expect(await initialize(aggregate)).toBe(401);
    const token = await readEndpointToken(new StateLayout(h.stateDir));
    expect(await initialize(url, token)).toBe(200);
  });

  it('audit: the sink is the state directory log, flushed when the controller stops; apiary audit reads it and audit verify passes', async () => {
    const h = await harness();
    await h.write('gateway.yaml', gatewayYaml('  audit:\n    maxFiles: 2\n'));
    await h.start({}, { access: parts().parts });
    const sink = config(h).audit!;
    expect(sink).toBeDefined();
    // The endpoints do not write records yet (the enforcement work does, through this sink): the test appends
    // what an endpoint will, then checks that the runnable flushes it on stop, after the endpoints have stopped.
    sink.append(recordOf({ method: 'tools/call', id: 7, params: { name: 'echo', arguments: { text: 'canary-value-123' } } }, { time: new Date().toISOString(), subject: { kind: 'token' }, server: 'a', decision: 'allow', durationMs: 1, outcome: 'ok' }));
    await h.controller!.stop();
    const records = await readAuditRecords(new StateLayout(h.stateDir));
    expect(records.map((r) => [r.seq, r.server, r.name, r.args?.[0]?.name])).toEqual([[1, 'a', 'echo', 'text']]);
    const verify = await runCli(['audit', 'verify', '--state-dir', h.stateDir]);
    expect(verify.stdout).toContain('audit log verified: 1 records (1..1) in 1 file');
    expect(verify.code).toBe(0);
    const read = await runCli(['audit', '--state-dir', h.stateDir, '-o', 'json']);
    expect(JSON.parse(read.stdout)).toMatchObject({ seq: 1, server: 'a', method: 'tools/call' });
    expect(read.stdout).not.toContain('canary-value-123');
  });

  // Calls through the endpoint are written by the enforcement work (src/mcp/call-gate.ts, another branch): this runs once it
  // is merged. Run against that branch's files it passed (the report says so); until then the test above checks the sink.
  it.skipIf(!existsSync(new URL('../src/mcp/call-gate.ts', import.meta.url)))('audit: calls through the endpoint with the local token are recorded, allowed and denied; audit verify passes', async () => {
    const h = await harness();
    await h.write('e.yaml', nodeServer('e', [EVERYTHING, 'stdio']));
    await h.write('gateway.yaml', gatewayYaml('  auth:\n    mode: token\n'));
    // Token mode with policies: the local token is a subject of its own, so the policy names it (token: local).
    await h.write('p.yaml', `${policyYaml('owner', 'token: local', '["e"]')}      tools: ["echo"]\n`);
    await h.start({}, { access: parts().parts });
    const url = await h.waitFor('e Ready', async () => {
      const s = await h.status('e');
      return findCondition(s?.conditions, 'Ready')?.status === 'True' && s?.url;
    }, 30_000);
    const token = await readEndpointToken(new StateLayout(h.stateDir));
    const client = new Client({ name: 'access-test', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
    expect((await client.listTools()).tools.map((t) => t.name)).toEqual(['echo']);
    await client.callTool({ name: 'echo', arguments: { message: 'canary-arg-77' } });
    await expect(client.callTool({ name: 'get-sum', arguments: { a: 1, b: 2 } })).rejects.toMatchObject({ code: 403 });
    await client.close();
    await h.controller!.stop();
    const records = await readAuditRecords(new StateLayout(h.stateDir));
    expect(records.filter((r) => r.method === 'tools/call').map((r) => [r.subject.kind, r.name, r.decision])).toEqual([
      ['token', 'echo', 'allow'],
      ['token', 'get-sum', 'deny'],
    ]);
    expect(JSON.stringify(records)).not.toContain('canary-arg-77');
    expect((await runCli(['audit', 'verify', '--state-dir', h.stateDir])).code).toBe(0);
  }, 60_000);

  it('an audit log that cannot be opened (its key gone): the Gateway is Degraded, AuditFailed, saying why; the endpoints still serve', async () => {
    const h = await harness();
    const layout = new StateLayout(h.stateDir);
    await mkdir(layout.auditDir, { recursive: true, mode: 0o700 });
    await chmod(h.stateDir, 0o700);
    await writeFile(layout.auditFile, '{"seq":1}\n');
    await h.write('gateway.yaml', gatewayYaml('  auth:\n    mode: token\n'));
    await h.start({}, { access: parts().parts });
    const s = await h.waitFor('AuditFailed', async () => {
      const status = await accessStatus<GatewayStatus>(h, 'Gateway', 'default');
      return findCondition(status?.conditions, 'Ready')?.reason === 'AuditFailed' ? status : undefined;
    });
    expect(s).toMatchObject({ phase: 'Degraded', audit: false });
    expect(findCondition(s.conditions, 'Ready')?.message).toContain(`the audit log cannot be opened: the audit log in ${layout.auditDir} exists but its key`);
    expect(config(h)).toMatchObject({ mode: 'token' });
    expect(config(h).audit).toBeUndefined();
  });

  it('audit off in the Gateway: no log; turned on: the log opens', async () => {
    const h = await harness();
    await h.write('gateway.yaml', gatewayYaml('  audit:\n    enabled: false\n'));
    await h.start({}, { access: parts().parts });
    await h.settled();
    expect(config(h).audit).toBeUndefined();
    expect(await auditFiles(h)).toEqual([]);
    await h.write('gateway.yaml', gatewayYaml('  audit:\n    enabled: true\n'));
    await h.waitFor('audit on', async () => config(h).audit !== undefined);
    expect(await auditFiles(h)).toEqual(['audit.head', 'audit.jsonl']);
  });

  it('oidc: the verifier is kept across policy edits, replaced (and the old one closed) when spec.auth.oidc changes; an issuer that does not answer is IssuerUnreachable', async () => {
    const port = await freePort();
    const issuer = `http://127.0.0.1:${port}`;
    const server = await openIdProvider(issuer, port);
    try {
      const h = await harness();
      const { parts: p, made } = parts();
      const oidc = (audience: string, at = issuer): string => gatewayYaml(`  auth:\n    mode: oidc\n    oidc:\n      issuer: ${at}\n      audience: ${audience}\n`);
      await h.write('gateway.yaml', oidc('apiary'));
      await h.start({}, { access: p });
      expect(config(h)).toMatchObject({ mode: 'oidc', oidc: { issuer, audience: 'apiary' } });
      expect(config(h).verifier).toBeDefined();
      // oidc and no policy: nothing is allowed, and the Gateway says so.
      const noPolicies = await h.waitFor('provider answered', async () => {
        const s = await accessStatus<GatewayStatus>(h, 'Gateway', 'default');
        return findCondition(s?.conditions, 'Ready')?.status === 'True' ? s : undefined;
      });
      expect(findCondition(noPolicies.conditions, 'Ready')).toMatchObject({ reason: 'NoPolicies' });
      expect(config(h).policies.decide({ user: 'alice', groups: ['dev'], authenticated: true }, { server: 'a', kind: 'tool', name: 'echo' }).effect).toBe('Deny');

      await h.write('p.yaml', policyYaml('devs', 'group: dev'));
      await h.waitFor('policy applied', async () => config(h).policies.policies === 1);
      expect(config(h).policies.decide({ user: 'alice', groups: ['dev'], authenticated: true }, { server: 'a', kind: 'tool', name: 'echo' }).effect).toBe('Allow');
      expect(made.verifiers).toHaveLength(1);

      await h.write('gateway.yaml', oidc('other'));
      await h.waitFor('new audience', async () => config(h).oidc?.audience === 'other');
      expect(made.verifiers.map((v) => [v.oidc.audience, v.closed])).toEqual([['apiary', true], ['other', false]]);
      // The verifier says when a token came and the keys could not be had: the Gateway says so too.
      await h.waitFor('provider answered again', async () => findCondition((await accessStatus<GatewayStatus>(h, 'Gateway', 'default'))?.conditions, 'Ready')?.status === 'True');
      made.verifiers[1]!.unavailable(`cannot fetch ${issuer}/jwks: ECONNRESET`);
      const told = await h.waitFor('told by the verifier', async () => {
        const ready = findCondition((await accessStatus<GatewayStatus>(h, 'Gateway', 'default'))?.conditions, 'Ready');
        return ready?.status === 'False' && ready;
      });
      expect(told).toMatchObject({ status: 'False', reason: 'IssuerUnreachable' });
      expect(told.message).toContain(`cannot fetch ${issuer}/jwks: ECONNRESET`);

      const nobody = `http://127.0.0.1:${await freePort()}`;
      await h.write('gateway.yaml', oidc('other', nobody));
      const unreachable = await h.waitFor('IssuerUnreachable', async () => {
        const s = await accessStatus<GatewayStatus>(h, 'Gateway', 'default');
        return findCondition(s?.conditions, 'Ready')?.message.includes(nobody) === true ? s : undefined;
      });
      expect(unreachable.phase).toBe('Degraded');
      expect(findCondition(unreachable.conditions, 'Ready')?.reason).toBe('IssuerUnreachable');
      expect(findCondition(unreachable.conditions, 'Ready')?.message).toContain(`cannot reach ${nobody}/.well-known/openid-configuration`);
      const get = await runCli(['get', 'gateway', '--dir', h.dir, '--state-dir', h.stateDir]);
      expect(get.stdout).toMatch(/default\s+False\s+oidc\s/);
      expect(get.stdout).toContain('IssuerUnreachable');
      await h.controller!.stop();
      expect(made.verifiers.every((v) => v.closed)).toBe(true);
    } finally {
      server.close();
    }
  });

  it('telemetry: opened with spec.telemetry, reopened on change, closed when removed and on stop; restarts and rollouts are told to it', async () => {
    const h = await harness();
    const { parts: p, made } = parts();
    await h.write('a.yaml', tinyServer('a', h));
    await h.write('gateway.yaml', gatewayYaml('  telemetry:\n    prometheus:\n      port: 9464\n'));
    await h.start({}, { access: p });
    expect(config(h).telemetry).not.toBe(NO_TELEMETRY);
    const ready = await h.waitFor('metricsUrl in status', async () => (await accessStatus<GatewayStatus>(h, 'Gateway', 'default'))?.metricsUrl);
    expect(ready).toBe('http://127.0.0.1:9464/metrics');
    await h.waitFor('a running', async () => (await h.status('a'))?.phase === 'Running');

    // A rollout (args changed) and a restart (the process killed) reach the telemetry of the moment.
    await h.write('a.yaml', tinyServer('a', h, { args: ['--changed'] }));
    await h.waitFor('rollout counted', async () => made.telemetry[0]!.lifecycle.includes('a:rollout'));
    await h.waitFor('a running again', async () => (await h.status('a'))?.observedGeneration === 2 && (await h.status('a'))?.phase === 'Running');
    // Status may still name the process the rollout is retiring (gone by the time it is killed, under load): the
    // process that runs is killed, again if need be, until a restart is counted.
    await h.waitFor(
      'restart counted',
      async () => {
        if (made.telemetry[0]!.lifecycle.includes('a:restart')) return true;
        const pid = (await h.status('a'))?.pid;
        if (pid !== undefined && isAlive(pid)) process.kill(pid, 'SIGKILL');
        return false;
      },
      10_000,
    );

    await h.write('gateway.yaml', gatewayYaml('  telemetry:\n    prometheus:\n      port: 9465\n'));
    await h.waitFor('reopened', async () => made.telemetry.length === 2 && made.telemetry[0]!.closed);
    await h.write('gateway.yaml', gatewayYaml('  auth:\n    mode: token\n'));
    await h.waitFor('closed', async () => config(h).telemetry === NO_TELEMETRY && made.telemetry[1]!.closed);
    await h.write('gateway.yaml', gatewayYaml('  telemetry:\n    serviceName: x\n'));
    await h.waitFor('opened again', async () => made.telemetry.length === 3);
    await h.controller!.stop();
    expect(made.telemetry.map((t) => t.closed)).toEqual([true, true, true]);
  });

  it('telemetry that cannot start leaves the Gateway Degraded (TelemetryFailed) and the endpoints without it', async () => {
    const h = await harness();
    await h.write('gateway.yaml', gatewayYaml('  telemetry:\n    serviceName: x\n'));
    await h.start({}, { access: parts(true).parts });
    const s = await h.waitFor('TelemetryFailed', async () => {
      const status = await accessStatus<GatewayStatus>(h, 'Gateway', 'default');
      return findCondition(status?.conditions, 'Ready')?.reason === 'TelemetryFailed' ? status : undefined;
    });
    expect(s.phase).toBe('Degraded');
    expect(findCondition(s.conditions, 'Ready')?.message).toBe('telemetry cannot be started: collector refused');
    expect(config(h).telemetry).toBe(NO_TELEMETRY);
  });

  it("rate limits: the limiter is built from the Gateway's spec.rateLimits, kept (with its buckets) across other edits, rebuilt when they change, gone when they are", async () => {
    const h = await harness();
    const { parts: p, made } = parts();
    const limits = (n: number): string => gatewayYaml(`  rateLimits:\n    perSubject:\n      requests: ${n}\n      perSeconds: 60\n`);
    await h.write('gateway.yaml', limits(10));
    await h.start({}, { access: p });
    const first = config(h).limiter;
    expect(first).toBeDefined();
    expect(made.limiters.map((l) => l.gateway)).toEqual([{ perSubject: { requests: 10, perSeconds: 60 } }]);
    await h.write('p.yaml', policyYaml('owner', 'token: local'));
    await h.waitFor('policy applied', async () => config(h).policies.policies === 1);
    expect(config(h).limiter).toBe(first);
    await h.write('gateway.yaml', limits(20));
    await h.waitFor('rebuilt', async () => made.limiters.length === 2 && config(h).limiter !== first);
    await h.write('gateway.yaml', gatewayYaml('  auth:\n    mode: token\n'));
    await h.waitFor('gone', async () => config(h).limiter === undefined);
    expect(made.limiters).toHaveLength(2);
  });

  it('up --no-auth wins over the Gateway: mode none, no policies, a warning naming the Gateway file', async () => {
    const h = await harness();
    await h.write('gateway.yaml', gatewayYaml('  auth:\n    mode: token\n'));
    await h.write('p.yaml', policyYaml('owner', 'token: local', '["a"]'));
    await h.start({}, { access: parts().parts, auth: false });
    expect(config(h).mode).toBe('none');
    expect(config(h).token).toBeUndefined();
    expect(config(h).policies.decide({ groups: [], authenticated: false }, { server: 'b', kind: 'tool', name: 'x' }).effect).toBe('Allow');
    expect(h.logs.find((l) => l.msg.startsWith('apiary up --no-auth'))).toMatchObject({ level: 'warn', gateway: expect.stringMatching(/manifests\/gateway\.yaml:1$/) });
    await h.settled();
    expect(findCondition((await accessStatus<GatewayStatus>(h, 'Gateway', 'default'))?.conditions, 'Ready')).toMatchObject({ status: 'True', reason: 'AuthDisabled' });
    expect(await accessStatus<AccessPolicyStatus>(h, 'AccessPolicy', 'owner')).toMatchObject({ phase: 'Unused' });
  });

  it('an AccessPolicy that does not validate: at start everything is denied; fixed, it applies; broken again, the last good set stays', async () => {
    const h = await harness();
    await h.write('gateway.yaml', gatewayYaml('  auth:\n    mode: token\n'));
    await h.write('p.yaml', policyYaml('owner', 'token: local', '["a"]', 'Maybe'));
    await h.start({}, { access: parts().parts });
    expect(config(h).policies.decide(LOCAL, { server: 'a', kind: 'tool', name: 'echo' })).toMatchObject({ effect: 'Deny', reason: 'default-deny' });
    await h.settled();
    expect(await accessStatus<AccessPolicyStatus>(h, 'AccessPolicy', 'owner')).toMatchObject({ phase: 'Invalid' });
    expect(findCondition((await accessStatus<GatewayStatus>(h, 'Gateway', 'default'))?.conditions, 'Ready')).toMatchObject({ status: 'False', reason: 'Held' });

    await h.write('p.yaml', policyYaml('owner', 'token: local', '["a"]'));
    await h.waitFor('applied', async () => config(h).policies.decide(LOCAL, { server: 'a', kind: 'tool', name: 'echo' }).effect === 'Allow');
    const applied = config(h).policies;
    await h.write('p.yaml', policyYaml('owner', 'token: local', '["a"]', 'Maybe'));
    await h.waitFor('held', async () => (await accessStatus<AccessPolicyStatus>(h, 'AccessPolicy', 'owner'))?.phase === 'Invalid');
    await h.settled();
    expect(config(h).policies).toBe(applied);
  });

  it('get and describe show the status of the access kinds', async () => {
    const h = await harness();
    await h.write('gateway.yaml', gatewayYaml('  auth:\n    mode: token\n'));
    await h.write('p.yaml', policyYaml('owner', 'token: local'));
    await h.write('q.yaml', policyYaml('devs', 'group: dev'));
    await h.start({}, { access: parts().parts });
    await h.settled();
    const env = { APIARY_DIR: h.dir, APIARY_STATE_DIR: h.stateDir };
    const gw = await runCli(['get', 'gateway'], { env });
    expect(gw.stdout.split('\n')[0]).toMatch(/^NAME\s+READY\s+AUTH\s+ISSUER\s+AUDIT\s+MESSAGE/);
    expect(gw.stdout).toMatch(/default\s+True\s+token\s+-\s+on\s/);
    const policies = await runCli(['get', 'accesspolicies'], { env });
    expect(policies.stdout.split('\n')[0]).toMatch(/^NAME\s+READY\s+SUBJECTS\s+RULES/);
    expect(policies.stdout).toMatch(/owner\s+True\s+token local/);
    expect(policies.stdout).toMatch(/devs\s+False\s+group dev/);
    expect((await runCli(['describe', 'gateway', 'default'], { env })).stdout).toContain('In force:         auth mode token, 2 AccessPolicy(s), audit log on');
    const described = await runCli(['describe', 'accesspolicy', 'devs'], { env });
    expect(described.stdout).toMatch(/Ready\s+False\s+NoCaller/);
    expect(described.stdout).toContain('Generation:       1 (observed 1)');
  });
});

describe.skipIf(!needsGit().available)('access settings following a git repository', () => {
  it("a revision's Gateway is applied before any of its servers' endpoints listens", async () => {
    const h = await harness();
    const repo = await testRepo();
    await repo.commit({ 'a.yaml': tinyServer('a', h), 'gateway.yaml': gatewayYaml('  auth:\n    mode: none\n  telemetry:\n    serviceName: x\n') });
    await h.write('source.yaml', gitRepositoryYaml(repo.url, { interval: '1h' }));
    const listening = (): boolean => h.logs.some((l) => l.msg === 'MCP endpoint listening');
    const { parts: p } = parts();
    // The revision's access settings are held up in opening telemetry: until a's endpoint listens (which must not
    // happen first), or for 3 s at most, so that a controller that gets it right is not held forever.
    const telemetry = p.telemetry;
    p.telemetry = async (spec) => {
      await waitFor('a listening', listening, 3_000).catch(() => undefined);
      return telemetry(spec);
    };
    await h.start({}, { git: true, access: p });
    await h.waitFor('a listening', async () => listening(), 20_000);
    const order = h.logs.flatMap((l) => (l.msg === 'MCP endpoint listening' ? ['listening'] : l.msg === 'access settings applied' ? [`applied ${String(l['mode'])}`] : []));
    expect(order).toEqual(['applied token', 'applied none', 'listening']);
  }, 30_000);
});

describe('access settings edited while apiary runs', () => {
  it('a Gateway written with a new server (one file) is applied before the server is queued', async () => {
    const h = await harness();
    const listening = (): boolean => h.logs.some((l) => l.msg === 'MCP endpoint listening');
    const { parts: p } = parts();
    // As following git: opening telemetry holds the settings up until a's endpoint listens (which must not happen first), or 3 s.
    const telemetry = p.telemetry;
    p.telemetry = async (spec) => {
      await waitFor('a listening', listening, 3_000).catch(() => undefined);
      return telemetry(spec);
    };
    await h.start({}, { access: p });
    await h.write('all.yaml', `${gatewayYaml('  auth:\n    mode: none\n  telemetry:\n    serviceName: x\n')}---\n${tinyServer('a', h)}`);
    await h.waitFor('a listening', async () => listening(), 20_000);
    const order = h.logs.flatMap((l) => (l.msg === 'MCP endpoint listening' ? ['listening'] : l.msg === 'access settings applied' ? [`applied ${String(l['mode'])}`] : []));
    expect(order).toEqual(['applied token', 'applied none', 'listening']);
  }, 30_000);
});

describe('apiary up with a Gateway', () => {
  it('--no-auth: says at start what the endpoints enforce (mode none) and warns that the Gateway file is overridden', async () => {
    const h = await harness();
    await h.write('gateway.yaml', gatewayYaml('  auth:\n    mode: token\n'));
    const up = spawnUp(['up', '--no-ui', '--no-auth'], h.env);
    await h.waitFor('the access line', async () => up.output().includes('access (gateway/default)'), 20_000);
    expect(up.output()).toContain('access (gateway/default): auth mode none, 0 AccessPolicy(s), audit log on (apiary audit); status: apiary get gateway');
    expect(up.output()).toMatch(/apiary up --no-auth: the Gateway's auth mode and the AccessPolicies are not applied.*gateway\.yaml:1/);
    up.child.kill('SIGTERM');
    expect(await up.exited).toBe(0);
  });

  it('without a Gateway: no access line, as before', async () => {
    const h = await harness();
    await h.write('a.yaml', tinyServer('a', h));
    const up = spawnUp(['up', '--no-ui'], h.env);
    await h.waitFor('the endpoint line', async () => up.output().includes('apiary MCP endpoint'), 20_000);
    up.child.kill('SIGTERM');
    await up.exited;
    expect(up.output()).not.toContain('access (gateway/default)');
    expect(await auditFiles(h)).toEqual([]);
  });
});

describe('access settings on the Kubernetes backend (the fake API server)', () => {
  const hello = (greeting: string): string =>
    `apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata:\n  name: a\nspec:\n  image: docker.io/library/node:22-alpine\n  command: node\n  args: ["examples/hello-server.mjs"]\n  env:\n    - name: GREETING\n      value: ${greeting}\n`;

  it("the cluster backend's gateway gets the same AccessConfig; a new template over a running Deployment is a rollout to telemetry, a container restarted in its pod a restart", async () => {
    const h = await harness();
    const fake = new FakeApiServer({ runContainers: { cwd: ROOT } });
    await fake.listen();
    try {
      const kubeconfig = join(h.stateDir, '..', 'kubeconfig');
      await writeFile(kubeconfig, fake.kubeconfig('apiary-test'));
      const { parts: p, made } = parts();
      await h.write('a.yaml', hello('Hello'));
      await h.write('gateway.yaml', gatewayYaml('  auth:\n    mode: none\n  telemetry:\n    serviceName: apiary\n'));
      await h.start({}, { access: p, cluster: KubeCluster.load({ kubeconfig, namespace: 'apiary-test' }, systemClock) });
      expect(config(h).mode).toBe('none');
      const url = await h.waitFor('a Ready', async () => {
        const s = await h.status('a');
        return findCondition(s?.conditions, 'Ready')?.status === 'True' && s?.url;
      }, 20_000);
      expect(await initialize(url)).toBe(200);
      await h.write('a.yaml', hello('Hi'));
      await h.waitFor('rollout counted', async () => made.telemetry[0]!.lifecycle.includes('a:rollout'), 20_000);
      // A container that exits is restarted by the kubelet in the same pod: each restart is told to telemetry.
      await h.write('crash.yaml', `apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata:\n  name: crash\nspec:\n  image: docker.io/library/node:22-alpine\n  command: node\n  args: ["-e", "process.exit(3)"]\n`);
      await h.waitFor('restart counted', async () => made.telemetry[0]!.lifecycle.includes('crash:restart'), 20_000);
      await h.waitFor('status says so too', async () => ((await h.status('crash'))?.restartCount ?? 0) >= 1, 20_000);
      await h.controller!.stop();
    } finally {
      await fake.shutdown();
    }
  }, 60_000);
});

describe('planAccess', () => {
  const server = (name: string, rateLimits?: RateLimits): MCPServerResource =>
    ({ kind: 'MCPServer', name, manifest: { apiVersion: 'apiary.dev/v1alpha1', kind: 'MCPServer', metadata: { name }, spec: { command: 'x', ...(rateLimits ? { rateLimits } : {}) } }, source: { path: '/x', file: 'x.yaml', index: 0, line: 1, col: 1 } }) as MCPServerResource;

  const gatewayEntry = (spec: object) => ({ key: 'Gateway/default' as const, errors: [], resource: { kind: 'Gateway' as const, name: 'default', manifest: { apiVersion: 'apiary.dev/v1alpha1', kind: 'Gateway' as const, metadata: { name: 'default' }, spec }, source: { path: '/g', file: 'g.yaml', index: 0, line: 1, col: 1 } } });
  const policyEntry = (subject: object) => ({ key: 'AccessPolicy/p' as const, errors: [], resource: { kind: 'AccessPolicy' as const, name: 'p', manifest: { apiVersion: 'apiary.dev/v1alpha1', kind: 'AccessPolicy' as const, metadata: { name: 'p' }, spec: { subjects: [subject], rules: [{ servers: ['*'], effect: 'Allow' as const }] } }, source: { path: '/p', file: 'p.yaml', index: 0, line: 1, col: 1 }, ruleLines: [8] } });
  const broken = { key: 'AccessPolicy/q' as const, errors: [{ file: 'q.yaml', line: 9, col: 15, message: 'spec.rules[0].effect: must be Allow or Deny' }] };
  const reasons = (plan: ReturnType<typeof planAccess>): string[] => plan.statuses.map((s) => `${s.key} ${s.ready} ${s.reason}`);

  it.each([
    ['no access manifest: mode token, no audit', [], true, 'token', false, false, []],
    ['--no-auth, no Gateway', [], false, 'none', false, false, []],
    ['Gateway oidc, no policy', [gatewayEntry({ auth: { mode: 'oidc', oidc: { issuer: 'https://id.example.com', audience: 'a' } } })], true, 'oidc', true, false, ['Gateway/default true NoPolicies']],
    ['Gateway token + a policy naming the token', [gatewayEntry({}), policyEntry({ token: 'local' })], true, 'token', true, false, ['Gateway/default true Applied', 'AccessPolicy/p true Applied']],
    ['a policy naming a group in token mode', [policyEntry({ group: 'dev' })], true, 'token', false, false, ['AccessPolicy/p false NoCaller']],
    ['Gateway none + a policy', [gatewayEntry({ auth: { mode: 'none' } }), policyEntry({ token: 'local' })], true, 'none', true, false, ['Gateway/default true Applied', 'AccessPolicy/p false AuthModeNone']],
    ['--no-auth over Gateway token', [gatewayEntry({ audit: { enabled: false } }), policyEntry({ token: 'local' })], false, 'none', false, false, ['Gateway/default true AuthDisabled', 'AccessPolicy/p false AuthDisabled']],
    ['an invalid policy holds the set', [gatewayEntry({}), policyEntry({ token: 'local' }), broken], true, 'token', true, true, ['AccessPolicy/q false InvalidManifest', 'Gateway/default false Held', 'AccessPolicy/p false Held']],
    ['--no-auth: an invalid policy holds nothing', [policyEntry({ token: 'local' }), broken], false, 'none', false, false, ['AccessPolicy/q false InvalidManifest', 'AccessPolicy/p false AuthDisabled']],
  ])('%s', (_what, entries, auth, mode, audit, hold, statuses) => {
    const plan = planAccess({ entries: entries as never, servers: [], auth });
    expect({ mode: plan.settings.mode, audit: plan.settings.audit !== undefined, hold: plan.hold }).toEqual({ mode, audit, hold });
    expect(reasons(plan)).toEqual(statuses);
    // Held with nothing applied before: every call is denied, the local token's too.
    if (hold) expect(plan.settings.policies.decide(LOCAL, { server: 'a', kind: 'tool', name: 'x' }).effect).toBe('Deny');
  });

  it("gathers each MCPServer's spec.rateLimits into the limiter's perServer map, with or without a Gateway", () => {
    const limits = { perServer: { requests: 5, perSeconds: 1 } };
    const plan = planAccess({ entries: [], servers: [server('b'), server('a', limits)], auth: true });
    expect([...plan.settings.perServer]).toEqual([['a', limits]]);
    expect(plan.settings).toMatchObject({ mode: 'token' });
    expect(plan.settings.audit).toBeUndefined();
  });
});



describe('probeIssuer', () => {
  it('says why a provider gives no keys, and never quotes credentials written into its URL', async () => {
    const signal = new AbortController().signal;
    expect(await probeIssuer({ issuer: 'https://user:s3cret-pass@127.0.0.1:1', audience: 'a' }, signal)).not.toContain('s3cret-pass');
    const jwks = await probeIssuer({ issuer: 'https://127.0.0.1:1', audience: 'a', jwksURL: 'https://user:s3cret-pass@127.0.0.1:1/jwks' }, signal);
    expect(jwks).toBe('https://***@127.0.0.1:1/jwks carries credentials, which apiary does not send');
    const port = await freePort();
    expect(await probeIssuer({ issuer: `http://127.0.0.1:${port}`, audience: 'a', jwksURL: `http://127.0.0.1:${port}/jwks` }, signal)).toBe(`cannot reach http://127.0.0.1:${port}/jwks: fetch failed (ECONNREFUSED)`);
  });
});
