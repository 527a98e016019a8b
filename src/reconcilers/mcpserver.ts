/**
 * The MCPServer reconciler's executor: reads the desired and observed state,
 * asks the pure planner what to do, does it, and writes status computed
 * from the world. Steps are numbered in reconcile().
 */
import { createHash } from 'node:crypto';
import { dirname, resolve } from 'node:path';
import { specHash } from '../api/generation.js';
import { withRevision } from '../api/applied-revision.js';
import { toolsDriftRecord } from '../api/audit.js';
import type { NamedSecret } from '../api/secret-redactor.js';
import type { ToolDrift } from '../api/tool-lock.js';
import { resourceKey } from '../api/names.js';
import { findCondition, setCondition, type MCPServerStatus } from '../api/status.js';
import type { ToolPins } from '../mcp/bridge.js';
import { isApiaryError } from '../errors.js';
import { formatManifestError } from '../manifests/errors.js';
import type { MCPServerSpec } from '../api/manifests.js';
import { expandReferences, referencedNames, remoteLabel } from '../api/remote.js';
import { expandArgs, expandEnvironment, secretBearing } from '../api/expansion.js';
import type { RemoteServer } from '../mcp/gateway.js';
import { DEFAULT_HEALTH, type HealthOptions } from '../mcp/health.js';
import { upstreamPortKey } from '../mcp/ports.js';
import type { MCPServerResource } from '../manifests/resource.js';
import { buildEnvironment } from '../runtime/env.js';
import type { Slot } from '../api/slot.js';
import type { LaunchSpec, ObservedProcess, Termination } from '../runtime/runtime.js';
import type { SandboxSpec } from '../runtime/sandbox.js';
import type { ReconcileContext, ReconcileResult } from './context.js';
import {
  DEFAULT_DRAIN_MS,
  DEFAULT_PROGRESS_DEADLINE_MS,
  describeConfigChange,
  describeTermination,
  emptyMemory,
  planServer,
  nextRetryAt,
  recordRolloutFailure,
  serverStatus,
  toLastTermination,
  type DesiredServer,
  type ServerAction,
  type ServerMemory,
  type StopReason,
} from './mcpserver-plan.js';
import { resolveEnv } from './resolve-env.js';
import { resolveOAuthSettings } from './remote-auth.js';
import type { OAuthSettings } from '../mcp/oauth-client.js';

const KIND = 'MCPServer';

/**
 * tools.lock.yaml's entry for the server, with spec.tools.onDrift (Withhold
 * unless it says Warn). Judged at the stdio bridge, or for an HTTP or hosted
 * server on what its probe lists, applied at its proxy.
 */
function pinsOf(ctx: ReconcileContext, name: string, spec: MCPServerSpec): { pins?: ToolPins } {
  const entry = ctx.desired.toolsLockEntry(name);
  return entry === undefined ? {} : { pins: { entry, withhold: spec.tools?.onDrift !== 'Warn' } };
}

/** Reads the desired server: valid (with its launch if secrets resolve), invalid, or absent. */
export async function desiredServer(ctx: ReconcileContext, name: string): Promise<DesiredServer> {
  const entry = ctx.desired.get(resourceKey(KIND, name));
  if (entry === undefined) return { state: 'absent' };
  if (entry.resource === undefined || entry.resource.kind !== KIND) {
    ctx.records.ensure(KIND, name);
    return { state: 'invalid', message: entry.errors.map(formatManifestError).join('; ') };
  }
  const resource = entry.resource;
  const { labels, annotations } = resource.manifest.metadata;
  const generation = ctx.records.observeSpec(KIND, name, specHash(resource.manifest), {
    ...(labels ? { labels } : {}),
    ...(annotations ? { annotations } : {}),
  });
  const spec = resource.manifest.spec;
  const resolved = await resolveEnv(spec, (secret) => ctx.secrets.lookup(ctx.desired, secret));
  const oauth = spec.remote?.auth === undefined ? undefined : await resolveOAuthSettings(spec.remote.auth, (secret) => ctx.secrets.lookup(ctx.desired, secret));
  const authProblems = oauth !== undefined && 'problems' in oauth ? oauth.problems : [];
  const suspend = spec.suspend === true;
  const transport = spec.remote !== undefined ? (spec.remote.transport ?? 'streamable-http') : (spec.transport ?? 'stdio');
  const base = {
    state: 'valid' as const,
    generation,
    suspend,
    restartPolicy: spec.restartPolicy ?? 'Always',
    transport,
    health: healthOf(spec.healthCheck),
    ...(spec.tools ? { tools: spec.tools } : {}),
    ...pinsOf(ctx, name, spec),
    // Only apiary holds a stdio server's sessions, so only there can a new process take over unnoticed.
    strategy: spec.strategy?.type ?? (transport === 'stdio' ? 'RollingUpdate' : 'Recreate'),
    rollingUpdate: {
      progressDeadlineMs: (spec.strategy?.rollingUpdate?.progressDeadlineSeconds ?? DEFAULT_PROGRESS_DEADLINE_MS / 1000) * 1000,
      drainMs: (spec.strategy?.rollingUpdate?.drainSeconds ?? DEFAULT_DRAIN_MS / 1000) * 1000,
    },
    problems: [...resolved.problems, ...authProblems],
    secrets: resolved.secrets,
    ...(spec.remote !== undefined ? { hosted: true } : {}),
  };
  if (suspend) return base;
  if (spec.remote !== undefined) {
    const port = spec.port ?? (await ctx.gateway.ports.portFor(name));
    if (base.problems.length > 0) return { ...base, port };
    return { ...base, port, remote: remoteServer(ctx, spec.remote, resolved.vars, oauth !== undefined && !('problems' in oauth) ? oauth : undefined) };
  }
  // An HTTP server needs its port before it starts ($PORT); a stdio server's endpoint port is
  // settled after the spawn, so a burst of starts does not wait on port bookkeeping.
  const port = spec.port ?? (transport === 'stdio' ? undefined : await ctx.gateway.ports.portFor(name));
  // An HTTP server listens on an internal port; apiary's proxy serves the stable one in front of it.
  const upstreamPort = transport === 'stdio' ? undefined : (declaredPort(spec) ?? (await ctx.gateway.ports.portFor(upstreamPortKey(name))));
  const withPort = { ...base, ...(port !== undefined ? { port } : {}), ...(upstreamPort !== undefined ? { upstreamPort } : {}) };
  if (resolved.problems.length > 0) return withPort;
  const sandboxProblem = spec.sandbox !== undefined ? sandboxProblemOf(ctx) : undefined;
  if (sandboxProblem !== undefined) return { ...withPort, sandboxProblem };
  return { ...withPort, launch: launchSpec(ctx, resource, generation, resolved.vars, upstreamPort, resolved.secrets) };
}

/**
 * A hosted server's URL and headers with $(VAR) replaced by spec.env's values
 * (Kubernetes' dependent-variable syntax; $$ escapes). The values stay in
 * memory, in the gateway; the fingerprint holds secrets only as a keyed hash.
 */
function remoteServer(ctx: ReconcileContext, remote: NonNullable<MCPServerSpec['remote']>, vars: [string, string | { reveal(): string }][], oauth?: OAuthSettings): RemoteServer {
  const values = new Map(expandEnvironment(vars, (v) => v.reveal()).map(([k, v]) => [k, typeof v === 'string' ? v : v.reveal()]));
  // A literal that takes in a secret ($(VAR) of spec.env) is as secret as it.
  const secret = secretBearing(vars.map(([name, v]) => ({ name, ...(typeof v === 'string' ? { value: v } : {}), fromSecret: typeof v !== 'string' })));
  const expand = (text: string, hashed: boolean): string =>
    expandReferences(text, (name) => {
      const value = values.get(name);
      return value !== undefined && hashed && secret.has(name) ? `secret:${ctx.fingerprint(value)}` : value;
    });
  const headers = Object.fromEntries((remote.headers ?? []).map((h) => [h.name, expand(h.value, false)]));
  const identity = {
    url: expand(remote.url, true),
    headers: (remote.headers ?? []).map((h) => [h.name, expand(h.value, true)]),
    // A changed client or scope is a new login; the client secret counts only through a keyed hash.
    ...(oauth !== undefined ? { auth: { ...remote.auth, clientSecret: oauth.clientSecret === undefined ? undefined : ctx.fingerprint(oauth.clientSecret.reveal()) } } : {}),
  };
  const used = [remote.url, ...(remote.headers ?? []).map((h) => h.value)].flatMap(referencedNames);
  const secrets = [...new Set(used.filter((name) => secret.has(name)).flatMap((name) => [values.get(name)!, ...secretsWithin(name, vars)]))];
  return {
    url: expand(remote.url, false),
    label: remoteLabel(remote.url),
    transport: remote.transport ?? 'streamable-http',
    headers,
    secrets,
    hash: shortHash(identity),
    ...(oauth !== undefined ? { oauth: { settings: { ...oauth, serverUrl: expand(remote.url, false) }, key: () => ctx.secrets.masterKey() } } : {}),
  };
}

/** The secret values a literal variable takes in through $(VAR), however deep (for redaction: each alone, as a server may quote it so). */
function secretsWithin(name: string, vars: readonly [string, string | { reveal(): string }][], seen = new Set<string>()): string[] {
  if (seen.has(name)) return [];
  seen.add(name);
  const value = vars.findLast(([k]) => k === name)?.[1];
  if (value === undefined) return [];
  if (typeof value !== 'string') return [value.reveal()];
  return referencedNames(value).flatMap((ref) => secretsWithin(ref, vars, seen));
}

/** Why a server that asks for a sandbox cannot have one here (and the way out), if it cannot. */
function sandboxProblemOf(ctx: ReconcileContext): { reason: 'SandboxUnavailable'; message: string } | undefined {
  const support = ctx.runtime.sandboxSupport?.();
  return support?.available === false ? { reason: 'SandboxUnavailable', message: `spec.sandbox cannot be honoured: ${support.reason}; the server is not started unsandboxed (apiary checks once: restart it after the fix)` } : undefined;
}

/** The files that hold Secret manifests: a sandbox never shows them (a plain value in one is readable by anyone who can read the file). */
function secretFiles(ctx: ReconcileContext): string[] {
  return [...new Set(ctx.desired.resources().flatMap((r) => (r.kind === 'Secret' ? [r.source.path] : [])))].sort();
}

/** spec.sandbox with its defaults: the default profile, no network, nothing declared. */
function sandboxOf(sandbox: NonNullable<MCPServerSpec['sandbox']>): SandboxSpec {
  return {
    profile: sandbox.profile ?? 'default',
    read: sandbox.filesystem?.read ?? [],
    write: sandbox.filesystem?.write ?? [],
    network: sandbox.network ?? 'none',
    allow: (sandbox.allow ?? []).map((a) => a.toLowerCase()),
  };
}

/** A literal PORT the manifest sets itself: the server listens there, and the proxy forwards to it. */
export function declaredPort(spec: MCPServerSpec): number | undefined {
  const value = spec.env?.find((e) => e.name === 'PORT')?.value;
  const port = value === undefined ? NaN : Number(value);
  return Number.isInteger(port) && port > 0 && port < 65536 ? port : undefined;
}

/** spec.healthCheck as the gateway's liveness settings. */
export function healthOf(check: MCPServerSpec['healthCheck']): HealthOptions {
  return {
    intervalMs: (check?.intervalSeconds ?? DEFAULT_HEALTH.intervalMs / 1000) * 1000,
    timeoutMs: (check?.timeoutSeconds ?? DEFAULT_HEALTH.timeoutMs / 1000) * 1000,
    failureThreshold: check?.failureThreshold ?? DEFAULT_HEALTH.failureThreshold,
  };
}

const shortHash = (value: unknown): string => createHash('sha256').update(JSON.stringify(value) ?? '').digest('hex').slice(0, 16);

function configParts(identity: { env: (string | undefined)[][] } & Record<string, unknown>): Record<string, string> {
  const parts: Record<string, string> = {};
  for (const [field, value] of Object.entries(identity)) if (field !== 'env') parts[field === 'cwd' ? 'workingDir' : field] = shortHash(value);
  for (const [name, value] of identity.env) parts[`env ${name}`] = shortHash(value);
  return parts;
}

/** Each variable given a secret value, by the secret and key it came from: what the output shim is told (never the values). */
function secretEnvOf(vars: readonly [string, string | { reveal(): string }][], secrets: readonly NamedSecret[]): Pick<LaunchSpec, 'secretEnv'> {
  const env: Record<string, { secret: string; key: string }> = {};
  for (const [name, value] of vars) {
    if (typeof value === 'string') continue;
    const from = secrets.find((s) => s.value === value.reveal());
    if (from !== undefined) env[name] = { secret: from.secret, key: from.key };
  }
  return Object.keys(env).length > 0 ? { secretEnv: env } : {};
}

function launchSpec(ctx: ReconcileContext, resource: MCPServerResource, generation: number, vars: [string, string | { reveal(): string }][], port: number | undefined, secrets: readonly NamedSecret[]): LaunchSpec {
  const spec = resource.manifest.spec;
  const transport = spec.transport ?? 'stdio';
  // HTTP servers listen themselves, on $PORT (the internal port behind apiary's proxy, unless the manifest sets PORT), set first as render sets it.
  const withPort: [string, string | { reveal(): string }][] = transport !== 'stdio' && port !== undefined && !vars.some(([k]) => k === 'PORT') ? [['PORT', String(port)], ...vars] : vars;
  const declared: [string, string][] = expandEnvironment(withPort, (v) => v.reveal()).map(([k, v]) => [k, typeof v === 'string' ? v : v.reveal()]);
  const environment = new Map(declared);
  const cwd = resolve(dirname(resource.source.path), spec.workingDir ?? '.');
  // The fingerprint covers what changes the process; secret values enter only through a keyed hash.
  const identity = {
    command: spec.command ?? '',
    args: spec.args ?? [],
    cwd,
    transport,
    port: transport === 'stdio' ? undefined : port,
    env: vars.map(([k, v]) => [k, typeof v === 'string' ? v : `secret:${ctx.fingerprint(v.reveal())}`]),
    // Absent for a server without one, so its fingerprint is what it was before sandboxes existed.
    ...(spec.sandbox !== undefined ? { sandbox: sandboxOf(spec.sandbox) } : {}),
  };
  return {
    name: resource.name,
    command: expandArgs([spec.command ?? ''], environment)[0]!,
    // $(VAR) expanded as the kubelet does; the fingerprint keeps the text as written (secrets enter it only through env's keyed hash).
    args: expandArgs(spec.args ?? [], environment),
    cwd,
    env: buildEnvironment(ctx.inheritedEnv, declared),
    configHash: shortHash(identity),
    configParts: configParts(identity),
    generation,
    attachStdio: transport === 'stdio',
    ...(transport !== 'stdio' && port !== undefined ? { listenPort: port } : {}),
    secrets: [...new Set(vars.flatMap(([, v]) => (typeof v === 'string' ? [] : [v.reveal()])))],
    ...secretEnvOf(vars, secrets),
    // Secret manifests are hidden from it, and not part of the fingerprint (a new Secret file restarts nothing).
    ...(identity.sandbox !== undefined ? { sandbox: { ...identity.sandbox, hide: secretFiles(ctx) } } : {}),
  };
}

export class MCPServerReconciler {
  readonly #ctx: ReconcileContext;
  /** The drifted tools last seen per server, to record each tool that starts drifting once. */
  readonly #driftRecorded = new Map<string, Set<string>>();

  constructor(ctx: ReconcileContext) {
    this.#ctx = ctx;
  }

  memory(name: string): ServerMemory {
    let memory = this.#ctx.memory.get(name);
    if (memory === undefined) {
      memory = emptyMemory();
      this.#ctx.memory.set(name, memory);
    }
    return memory;
  }

  async reconcile(name: string): Promise<ReconcileResult> {
    const ctx = this.#ctx;
    // 1. Desired state: the manifest, its generation and its resolved environment.
    let desired = await desiredServer(ctx, name);
    let requeueAfterMs: number | undefined;
    // A server on its way out leaves the aggregate before its process is stopped (which can take the whole grace).
    if (desired.state === 'absent' || (desired.state === 'valid' && desired.suspend)) ctx.gateway.withdraw(name);

    // 2. Plan and act; a stop for a rollout is followed by a second pass that starts the new process.
    for (let pass = 0; pass < 3; pass++) {
      const observed = ctx.runtime.observe(name);
      const next = ctx.runtime.observe(name, 'next');
      const old = ctx.runtime.observe(name, 'old');
      const memory = this.memory(name);
      // A server stuck on secrets starts as soon as they are back, not after a back-off timer.
      if (!observed && desired.state === 'valid' && desired.problems.length > 0 && ctx.runtime.history(name).failures > 0) {
        ctx.runtime.amendHistory(name, { failures: 0 });
      }
      const nextState = next !== undefined ? ctx.gateway.view(name)?.next : undefined;
      const unhealthy = ctx.liveness(name);
      const actions = planServer({
        now: ctx.clock.now(),
        desired,
        observed,
        memory,
        ...(unhealthy !== undefined ? { unhealthy } : {}),
        history: ctx.runtime.history(name),
        ...(next ? { next, nextState: nextState?.pid === next.pid ? nextState.state : 'initializing' } : {}),
        ...(old ? { old } : {}),
      });
      if (actions.length === 0) break;
      const outcome = await this.#execute(name, actions, desired);
      if (outcome.forgotten) return {};
      requeueAfterMs = outcome.requeueAfterMs;
      if (!outcome.again) break;
      desired = await desiredServer(ctx, name);
    }

    // 3. The MCP side: endpoint, upstream session, readiness.
    const retryEndpoint = await this.#convergeMcp(name, desired);
    if (retryEndpoint) requeueAfterMs = Math.min(requeueAfterMs ?? Infinity, 5_000);

    // 4. Status, recomputed from the world.
    await this.#writeStatus(name, desired);
    return requeueAfterMs !== undefined ? { requeueAfterMs } : {};
  }

  /** Returns true when the endpoint could not listen and should be retried. */
  async #convergeMcp(name: string, desired: DesiredServer): Promise<boolean> {
    const { gateway, runtime } = this.#ctx;
    if (desired.state === 'invalid') return false;
    if (desired.state === 'absent' || desired.suspend || desired.transport === undefined || desired.health === undefined) {
      await gateway.remove(name);
      return false;
    }
    const port = desired.port ?? (await gateway.ports.portFor(name));
    // A secret gone missing keeps the values the running process (or the hosted server's headers) still has.
    if (desired.secrets !== undefined && desired.problems.length === 0) gateway.setSecrets(name, desired.secrets);
    if (desired.hosted === true) {
      // A secret gone missing leaves the hosted server fronted with the values it had (as a running process keeps its environment).
      if (desired.remote !== undefined) await gateway.ensureRemote(name, port, desired.remote, desired.health, desired.tools, desired.pins);
      return gateway.view(name)?.endpointError !== undefined;
    }
    await gateway.ensure(name, desired.transport, port, desired.health, desired.tools, desired.upstreamPort, desired.pins);
    const observed = runtime.observe(name);
    if (observed !== undefined) gateway.attach(name, observed);
    const next = runtime.observe(name, 'next');
    if (next !== undefined) gateway.prepare(name, next);
    return gateway.view(name)?.endpointError !== undefined;
  }

  async #execute(name: string, actions: ServerAction[], desired: DesiredServer): Promise<{ again: boolean; forgotten?: boolean; requeueAfterMs?: number }> {
    const ctx = this.#ctx;
    let again = false;
    let requeueAfterMs: number | undefined;
    for (const action of actions) {
      switch (action.type) {
        case 'forget':
          await ctx.gateway.release(name);
          ctx.memory.delete(name);
          this.#driftRecorded.delete(name);
          ctx.runtime.amendHistory(name, undefined);
          await ctx.records.remove(KIND, name);
          ctx.logger.info('server removed', { server: name });
          return { again: false, forgotten: true };
        case 'stop': {
          if (action.slot !== undefined && action.slot !== 'current') {
            requeueAfterMs = this.#stopBeside(name, action.slot, action.reason, desired);
            break;
          }
          const observed = ctx.runtime.observe(name);
          const unhealthy = action.reason === 'Unhealthy' ? ctx.liveness(name) : undefined;
          const why =
            action.reason === 'ConfigChanged' && desired.state === 'valid'
              ? describeConfigChange(this.memory(name).lastRunParts, desired.launch?.configParts)
              : stopReason(action.reason, unhealthy?.message);
          if (unhealthy !== undefined) ctx.records.event(KIND, name, 'Warning', unhealthy.reason ?? 'Unhealthy', `${unhealthy.message}; restarting`);
          ctx.records.event(KIND, name, 'Normal', 'Stopping', `stopping pid ${observed?.pid ?? '?'}: ${why}`);
          ctx.logger.info('stopping server', { server: name, pid: observed?.pid, reason: action.reason });
          // stop() marks the process as stopping at once, so status shows Terminating while it goes.
          // A liveness failure is a failed run (restarted per restartPolicy, with back-off), not a stop asked for.
          const stopped = ctx.runtime.stop(name, 'current', action.reason === 'Unhealthy' ? { failure: { reason: unhealthy?.reason ?? 'Unhealthy', message: unhealthy?.message ?? 'MCP pings failed' } } : {});
          await this.#writeStatus(name, desired);
          await stopped;
          if (action.reason === 'RestartRequested') await this.#restartHandled(name);
          if (action.reason === 'Deleted') {
            await ctx.gateway.release(name);
            ctx.memory.delete(name);
            this.#driftRecorded.delete(name);
            ctx.runtime.amendHistory(name, undefined);
            await ctx.records.remove(KIND, name);
            return { again: false, forgotten: true };
          }
          again = action.reason !== 'Suspended';
          break;
        }
        case 'start':
          requeueAfterMs = await this.#start(name, action.launch, desired);
          break;
        case 'surge':
          requeueAfterMs = await this.#surge(name, action.launch, desired);
          break;
        case 'promote':
          await this.#promote(name, desired);
          break;
        case 'requeue':
          requeueAfterMs = action.afterMs;
          break;
      }
    }
    return requeueAfterMs !== undefined ? { again, requeueAfterMs } : { again };
  }

  async #start(name: string, launch: LaunchSpec, desired: DesiredServer): Promise<number | undefined> {
    const ctx = this.#ctx;
    const memory = this.memory(name);
    if (launch.configParts !== undefined) memory.lastRunParts = launch.configParts;
    else delete memory.lastRunParts;
    const requested = memory.restartRequestedAt !== undefined && memory.restartRequestedAt !== memory.restartHandledAt;
    const restarts = ctx.runtime.history(name).restartCount;
    try {
      const observed = await ctx.runtime.start(launch);
      // The run history counts a start after a run that ended on its own as a restart: so does telemetry.
      if (ctx.runtime.history(name).restartCount > restarts) ctx.gateway.gate.config.telemetry.lifecycle(name, 'restart');
      if (requested) await this.#restartHandled(name);
      ctx.records.event(KIND, name, 'Normal', 'Started', `started pid ${observed.pid} (generation ${launch.generation})`);
      ctx.logger.info('server started', { server: name, pid: observed.pid, generation: launch.generation, command: launch.command });
      return undefined;
    } catch (err) {
      if (!isApiaryError(err, 'StartFailed')) throw err;
      // The runtime recorded the failed start in the server's history: back-off follows from it.
      ctx.records.event(KIND, name, 'Warning', 'FailedStart', err.message);
      ctx.logger.warn('server failed to start', { server: name, error: err.message });
      const retryAt = nextRetryAt(ctx.runtime.history(name), desired.state === 'valid' ? desired.restartPolicy : 'Always');
      return retryAt !== undefined ? Math.max(0, retryAt - ctx.clock.now()) : undefined;
    }
  }

  /** A rolling update begins: the new process starts beside the serving one, which is left alone. */
  async #surge(name: string, launch: LaunchSpec, desired: DesiredServer): Promise<number | undefined> {
    const ctx = this.#ctx;
    const current = ctx.runtime.observe(name);
    try {
      const next = await ctx.runtime.start(launch, 'next');
      const why = current !== undefined && launch.configHash === current.configHash ? 'a restart was requested' : describeConfigChange(this.memory(name).lastRunParts, launch.configParts);
      ctx.records.event(KIND, name, 'Normal', 'RollingUpdate', `started pid ${next.pid} (generation ${launch.generation}) beside pid ${current?.pid ?? '?'}: ${why}`);
      ctx.logger.info('rolling update: new process started', { server: name, pid: next.pid, replaces: current?.pid, generation: launch.generation });
      ctx.gateway.prepare(name, next);
      // Its handshake brings the next pass; this one comes at its deadline if the handshake never does.
      return desired.state === 'valid' ? desired.rollingUpdate.progressDeadlineMs : DEFAULT_PROGRESS_DEADLINE_MS;
    } catch (err) {
      if (!isApiaryError(err, 'StartFailed')) throw err;
      return this.#rolloutFailed(name, launch.configHash, launch.generation, err.message);
    }
  }

  /** The new process answered the handshake: clients move to it, and the old one drains, then stops. */
  async #promote(name: string, desired: DesiredServer): Promise<void> {
    const ctx = this.#ctx;
    const old = ctx.runtime.observe(name);
    const next = ctx.runtime.observe(name, 'next');
    if (next === undefined || !ctx.gateway.promote(name)) return;
    ctx.runtime.promote(name);
    ctx.gateway.gate.config.telemetry.lifecycle(name, 'rollout');
    const memory = this.memory(name);
    const launch = desired.state === 'valid' ? desired.launch : undefined;
    if (launch?.configHash === next.configHash && launch.configParts !== undefined) memory.lastRunParts = launch.configParts;
    delete memory.rollout;
    if (memory.restartRequestedAt !== undefined && memory.restartRequestedAt !== memory.restartHandledAt) await this.#restartHandled(name);
    const took = ctx.clock.now() - Date.parse(next.startedAt);
    ctx.records.event(KIND, name, 'Normal', 'RolledOut', `pid ${next.pid} (generation ${next.generation}) took over${old ? ` from pid ${old.pid}` : ''}, ${took} ms after it started`);
    ctx.logger.info('rolling update: new process serving', { server: name, pid: next.pid, replaced: old?.pid, ms: took });
    if (old === undefined) return;
    const drainMs = desired.state === 'valid' ? desired.rollingUpdate.drainMs : DEFAULT_DRAIN_MS;
    void this.#drainAndStop(name, old, drainMs);
  }

  /** The replaced process answers what it holds (at most drainMs), then stops; its exit enqueues a pass. */
  async #drainAndStop(name: string, old: ObservedProcess, drainMs: number): Promise<void> {
    const ctx = this.#ctx;
    const drained = await ctx.gateway.drained(name, old.pid, drainMs);
    if (ctx.runtime.observe(name, 'old')?.pid !== old.pid) return;
    if (!drained) ctx.records.event(KIND, name, 'Warning', 'DrainTimeout', `pid ${old.pid} still had requests after ${drainMs / 1000}s (strategy.rollingUpdate.drainSeconds); stopping it`);
    await ctx.runtime.stop(name, 'old').catch((err: unknown) => ctx.logger.warn('cannot stop a replaced process', { server: name, pid: old.pid, error: String(err) }));
  }

  /** Stops a rollout's new or old process, without waiting: its exit enqueues the next pass. */
  #stopBeside(name: string, slot: Slot, reason: StopReason, desired: DesiredServer): number | undefined {
    const ctx = this.#ctx;
    const target = ctx.runtime.observe(name, slot);
    if (target === undefined) return undefined;
    let retryInMs: number | undefined;
    if (reason === 'RolloutFailed' || reason === 'ProgressDeadlineExceeded') {
      const view = ctx.gateway.view(name)?.next;
      const why =
        reason === 'RolloutFailed'
          ? `the new process (pid ${target.pid}) failed the MCP handshake: ${view?.message ?? 'no answer'}`
          : `the new process (pid ${target.pid}) was not ready within ${desired.state === 'valid' ? desired.rollingUpdate.progressDeadlineMs / 1000 : DEFAULT_PROGRESS_DEADLINE_MS / 1000}s (strategy.rollingUpdate.progressDeadlineSeconds)`;
      retryInMs = this.#rolloutFailed(name, target.configHash, target.generation, why);
    } else {
      ctx.logger.info('stopping a rollout process', { server: name, slot, pid: target.pid, reason });
    }
    // A new process never served anyone: it need not be given time to leave on its own.
    void ctx.runtime.stop(name, slot, { terminate: slot === 'next' }).catch((err: unknown) => ctx.logger.warn('cannot stop a rollout process', { server: name, pid: target.pid, error: String(err) }));
    return retryInMs;
  }

  /** A rolling update failed: the old process keeps serving; the next try waits out a back-off. */
  #rolloutFailed(name: string, configHash: string, generation: number, message: string): number {
    const ctx = this.#ctx;
    const now = ctx.clock.now();
    const next = recordRolloutFailure(this.memory(name), configHash, generation, message, now);
    ctx.memory.set(name, next);
    const current = ctx.runtime.observe(name);
    ctx.records.event(KIND, name, 'Warning', 'RolloutFailed', `${message}; ${current ? `pid ${current.pid} keeps serving; ` : ''}next try in ${Math.ceil((next.rollout!.nextRetryAt - now) / 1000)}s`);
    ctx.logger.warn('rolling update failed', { server: name, generation, reason: message });
    return next.rollout!.nextRetryAt - now;
  }

  async #restartHandled(name: string): Promise<void> {
    const memory = this.memory(name);
    const at = memory.restartRequestedAt;
    if (at === undefined) return;
    memory.restartHandledAt = at;
    await this.#ctx.restartHandled(name, at);
  }

  /** A rollout restart was asked for (apiary restart). */
  requestRestart(name: string, requestedAt: string): boolean {
    const memory = this.memory(name);
    if (memory.restartRequestedAt === requestedAt || memory.restartHandledAt === requestedAt) return false;
    memory.restartRequestedAt = requestedAt;
    this.#ctx.records.event(KIND, name, 'Normal', 'RestartRequested', `rollout restart requested at ${requestedAt}`);
    return true;
  }

  /** Called by the backend that owns the process when it exits. */
  onExit(name: string, termination: Termination): void {
    const ctx = this.#ctx;
    // A replaced process stopping is the end of a rollout, not news; a new one that dies before it
    // took over is a failed rollout (the old one still serves), not a crash of the server.
    if (termination.slot === 'old') return;
    if (termination.slot === 'next') {
      if (termination.reason === 'Stopped') return;
      this.#rolloutFailed(name, termination.configHash ?? '', termination.generation ?? 0, `the new process (pid ${termination.pid ?? '?'}) exited (${describeTermination(termination)}) before it was ready; its output: apiary logs ${name} --next`);
      return;
    }
    // The runtime has the termination in the server's history; what is left here is telling people.
    if (termination.reason === 'Stopped') return;
    const how = termination.signal ?? (termination.exitCode !== null ? `exit code ${termination.exitCode}` : termination.message ?? 'unknown');
    const clean = termination.exitCode === 0 && termination.signal === null;
    ctx.records.event(KIND, name, clean ? 'Normal' : 'Warning', clean ? 'Completed' : 'Exited', `process exited (${how})${termination.lastOutput !== undefined ? `: ${termination.lastOutput}` : ''}`);
    ctx.logger.warn('server exited', { server: name, exitCode: termination.exitCode, signal: termination.signal, reason: termination.reason });
  }

  /** After a graceful controller shutdown: the server was stopped with it and starts again with the next one. */
  async markControllerStopped(name: string): Promise<void> {
    const ctx = this.#ctx;
    const record = ctx.records.get(KIND, name);
    if (record === undefined) return;
    const previous = record.status as MCPServerStatus;
    const now = new Date(ctx.clock.now()).toISOString();
    const message = 'the apiary controller stopped, and stopped this server with it';
    const { pid: _pid, startedAt: _startedAt, ...rest } = previous;
    const last = ctx.runtime.history(name).lastTermination;
    await ctx.records.setStatus(KIND, name, {
      ...rest,
      phase: 'Pending',
      conditions: setCondition(previous.conditions, { type: 'Ready', status: 'False', reason: 'ControllerStopped', message, observedGeneration: previous.observedGeneration }, now),
      ...(last ? { lastTermination: toLastTermination(last) } : {}),
      message,
      ...withRevision({}, ctx.desired.revisionOf(resourceKey(KIND, name))),
    });
  }

  async #writeStatus(name: string, desired: DesiredServer): Promise<void> {
    const ctx = this.#ctx;
    const record = ctx.records.get(KIND, name);
    if (record === undefined) return;
    const previous = record.status as MCPServerStatus;
    const observed = ctx.runtime.observe(name);
    const next = ctx.runtime.observe(name, 'next');
    const mcp = ctx.gateway.view(name);
    const status = serverStatus({
      now: ctx.clock.now(),
      desired,
      ...(observed ? { observed } : {}),
      ...(next ? { next } : {}),
      memory: this.memory(name),
      history: ctx.runtime.history(name),
      previous,
      lastGeneration: observed?.generation ?? previous.observedGeneration,
      ...(mcp ? { mcp } : {}),
      revision: ctx.desired.revisionOf(resourceKey(KIND, name)),
    });
    if (!observed && !next && ['Stuck', 'CrashLoopBackOff', 'Failed', 'Completed'].includes(status.phase)) {
      ctx.gateway.unavailable(name, `${status.phase}: ${status.message ?? ''}`.trim());
    }
    if (previous.phase !== status.phase && ['Stuck', 'CrashLoopBackOff', 'Failed'].includes(status.phase)) {
      ctx.records.event(KIND, name, 'Warning', status.phase, status.message ?? status.phase);
    }
    const drifted = findCondition(status.conditions, 'ToolsDrifted');
    if (drifted?.status === 'True' && drifted.message !== findCondition(previous.conditions, 'ToolsDrifted')?.message) {
      ctx.records.event(KIND, name, 'Warning', 'ToolsDrifted', drifted.message);
    }
    this.#auditDrift(name, desired, previous, drifted?.status === 'True' ? mcp?.drift : undefined);
    await ctx.records.setStatus(KIND, name, status);
  }

  /**
   * One audit record (when the Gateway keeps a log) each time a tool starts
   * to drift: as ToolsDrifted turns True, and when a tool joins those already
   * drifted. A tool approved and drifting again is recorded again; a
   * condition that was True before this controller started was recorded by
   * the one before it.
   */
  #auditDrift(name: string, desired: DesiredServer, previous: MCPServerStatus, drift: ToolDrift | undefined): void {
    if (drift === undefined) {
      this.#driftRecorded.delete(name);
      return;
    }
    const tools = [...drift.changed, ...drift.added, ...drift.removed].sort();
    const seen = this.#driftRecorded.get(name);
    this.#driftRecorded.set(name, new Set(tools));
    if (seen === undefined && findCondition(previous.conditions, 'ToolsDrifted')?.status === 'True') return;
    if (tools.every((t) => seen?.has(t) === true)) return;
    const withheld = desired.state === 'valid' && desired.pins?.withhold === true;
    this.#ctx.gateway.gate.config.audit?.append(toolsDriftRecord({ time: new Date(this.#ctx.clock.now()).toISOString(), server: name, tools, withheld }));
  }
}

/** Why a process is stopped, as its Stopping event says it: every reason has its own words. */
function stopReason(reason: StopReason, unhealthy: string | undefined): string {
  switch (reason) {
    case 'Deleted':
      return 'the manifest was deleted';
    case 'Suspended':
      return 'spec.suspend is true';
    case 'ConfigChanged':
      return 'the configuration changed';
    case 'RestartRequested':
      return 'a restart was requested';
    case 'Unhealthy':
      return `it failed its health checks (${unhealthy ?? 'MCP pings failed'})`;
    case 'Reattach':
      return 'it was started by an earlier controller and its stdio cannot be reattached';
    case 'Superseded':
      return 'the manifest changed again while it started';
    case 'RolloutFailed':
      return 'it failed the MCP handshake of a rolling update';
    case 'ProgressDeadlineExceeded':
      return 'it was not ready within the rolling update\'s progress deadline';
    default: {
      // A new reason that is not named above fails to compile here.
      const unnamed: never = reason;
      return String(unnamed);
    }
  }
}
