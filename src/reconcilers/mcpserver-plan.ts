/**
 * The MCPServer reconciler's decisions, as pure functions: what to do
 * (planServer) and what to report (serverStatus). No I/O here; the executor
 * in mcpserver.ts performs the actions and reads the world.
 */
import type { RestartPolicy, Transport } from '../api/manifests.js';
import { serverAppliedRevision } from '../api/applied-revision.js';
import { remoteLabelHost } from '../api/remote.js';
import type { ToolPins, UpstreamState } from '../mcp/bridge.js';
import { describeDrift } from '../api/tool-lock.js';
import type { HealthFailure, HealthOptions } from '../mcp/health.js';
import type { ToolFilterSpec } from '../mcp/tool-filter.js';
import { setCondition, type Condition, type LastTermination, type MCPServerPhase, type MCPServerStatus } from '../api/status.js';
import type { RunHistory } from '../runtime/history.js';
import type { Slot } from '../api/slot.js';
import { backoff } from '../util/backoff.js';
import type { LaunchSpec, ObservedProcess, Termination } from '../runtime/runtime.js';
import type { SandboxSpec } from '../runtime/sandbox.js';
import type { McpView, RemoteServer } from '../mcp/gateway.js';
import type { SecretProblem } from './resolve-env.js';
import type { NamedSecret } from '../api/secret-redactor.js';
import { handshakeName } from '../mcp/era.js';

export const BACKOFF_INITIAL_MS = 1_000;
export const BACKOFF_MAX_MS = 5 * 60_000;

/**
 * What the controller itself remembers about a server between passes: its
 * own intentions and explanations, never what happened to processes (that is
 * the runtime's history: restarts, terminations, failures in a row).
 */
export interface ServerMemory {
  /** The configuration of the serving process, part by part, for saying what a change changed. */
  lastRunParts?: Readonly<Record<string, string>>;
  /** A rollout restart asked for at this time (apiary restart). */
  restartRequestedAt?: string;
  /** The restart request already carried out. */
  restartHandledAt?: string;
  /** The last rolling update failed: the configuration it tried, how many times in a row, when to try again, and why. */
  rollout?: RolloutFailure;
}

export interface RolloutFailure {
  configHash: string;
  generation: number;
  failures: number;
  nextRetryAt: number;
  message: string;
}

export const DEFAULT_PROGRESS_DEADLINE_MS = 60_000;
export const DEFAULT_DRAIN_MS = 30_000;

export type Strategy = 'RollingUpdate' | 'Recreate';

export function emptyMemory(): ServerMemory {
  return {};
}

export type DesiredServer =
  | { state: 'absent' }
  | { state: 'invalid'; message: string }
  | {
      state: 'valid';
      generation: number;
      suspend: boolean;
      restartPolicy: RestartPolicy;
      transport?: Transport;
      /** The port of apiary's endpoint for the server (the stable URL); absent while suspended. */
      port?: number;
      /** HTTP servers: the internal port the server listens on ($PORT), behind apiary's proxy. */
      upstreamPort?: number;
      health?: HealthOptions;
      /** spec.tools: what the endpoint exposes (changing it never restarts the process). */
      tools?: ToolFilterSpec;
      /** The server's entry in tools.lock.yaml and spec.tools.onDrift (judged at the stdio bridge, or at an HTTP or hosted server's proxy). */
      pins?: ToolPins;
      /** How a change reaches the running process (RollingUpdate only for stdio servers). */
      strategy: Strategy;
      rollingUpdate: { progressDeadlineMs: number; drainMs: number };
      /** Present when every secret resolved. */
      launch?: LaunchSpec;
      /** spec.remote: a hosted server, no process here. */
      hosted?: boolean;
      /** The hosted server's URL and headers, present when every secret resolved. */
      remote?: RemoteServer;
      problems: SecretProblem[];
      /** The secret values the server is given, kept out of what it sends its clients (in memory only). */
      secrets?: NamedSecret[];
      /** spec.sandbox cannot be honoured here (no bubblewrap, no user namespaces): never started bare. */
      sandboxProblem?: { reason: 'SandboxUnavailable'; message: string };
    };

export type StopReason =
  | 'Deleted'
  | 'Suspended'
  | 'ConfigChanged'
  | 'RestartRequested'
  | 'Unhealthy'
  | 'Reattach'
  /** A new process no longer wanted: the manifest changed again (or back) while it started. */
  | 'Superseded'
  /** A new process that failed its MCP handshake. */
  | 'RolloutFailed'
  /** A new process that did not become ready within progressDeadlineSeconds. */
  | 'ProgressDeadlineExceeded';

export type ServerAction =
  | { type: 'start'; launch: LaunchSpec }
  /** A rolling update: start the new process beside the current one. */
  | { type: 'surge'; launch: LaunchSpec }
  /** The new process is initialized: it takes over, and the one it replaces drains and stops. */
  | { type: 'promote' }
  /** Stop the process in a slot (current when absent); only a current one's stop is waited for. */
  | { type: 'stop'; reason: StopReason; slot?: Slot }
  | { type: 'requeue'; afterMs: number }
  | { type: 'forget' };

export interface PlanInput {
  now: number;
  desired: DesiredServer;
  observed?: ObservedProcess;
  memory: ServerMemory;
  /** Liveness failed for this process (MCP pings), or it broke MCP's framing (reason ProtocolError): what the backend observed. */
  unhealthy?: { pid: number; message: string; reason?: HealthFailure };
  /** The runtime's record of the server's runs. */
  history: RunHistory;
  /** A rolling update in progress: the new process, and how far its MCP handshake got. */
  next?: ObservedProcess;
  nextState?: UpstreamState;
  /** A replaced process still draining. */
  old?: ObservedProcess;
}

export function shouldRestart(policy: RestartPolicy, t: Termination): boolean {
  if (policy === 'Always') return true;
  if (policy === 'Never') return false;
  return !(t.exitCode === 0 && t.signal === null);
}

/** Back-off before the next start after `crashes` consecutive failed runs: 1 s doubling to 5 min. */
export function backoffDelay(crashes: number): number {
  return backoff({ baseMs: BACKOFF_INITIAL_MS, capMs: BACKOFF_MAX_MS }, crashes);
}

/** When a server whose last run failed may start again (its back-off), if it is to be restarted at all. */
export function nextRetryAt(history: RunHistory, policy: RestartPolicy): number | undefined {
  const last = history.lastTermination;
  if (last === undefined || last.reason === 'Stopped' || history.failures === 0 || !shouldRestart(policy, last)) return undefined;
  return Date.parse(last.finishedAt) + backoffDelay(history.failures);
}

/** How the last failed run ended, with the line its output ended with: "exit code 1: Error: GITHUB_TOKEN is not set". */
export function failureOf(history: RunHistory, last: Termination): string {
  const start = startErrorOf(history);
  if (start !== undefined) return start;
  return last.lastOutput !== undefined ? `${describeTermination(last)}: ${last.lastOutput}` : describeTermination(last);
}

/** Why the last start failed before a process existed (command not found, ...), if it did. */
export function startErrorOf(history: RunHistory): string | undefined {
  const last = history.lastTermination;
  return last?.reason === 'StartError' ? (last.message ?? 'the process could not be started') : undefined;
}

function restartPending(memory: ServerMemory): boolean {
  return memory.restartRequestedAt !== undefined && memory.restartRequestedAt !== memory.restartHandledAt;
}

export function planServer(input: PlanInput): ServerAction[] {
  const { now, desired, observed, memory, history, next, old } = input;
  // Going away: every process of the server stops (a rollout's too); the current one is waited for.
  if (desired.state === 'absent' || (desired.state === 'valid' && desired.suspend)) {
    const reason = desired.state === 'absent' ? 'Deleted' : 'Suspended';
    const stops: ServerAction[] = [];
    for (const p of [next, old]) if (p !== undefined && !p.stopping) stops.push({ type: 'stop', reason, slot: p.slot });
    if (observed !== undefined && !observed.stopping) stops.push({ type: 'stop', reason });
    if (stops.length > 0 || observed !== undefined || next !== undefined || old !== undefined) return stops;
    return desired.state === 'absent' ? [{ type: 'forget' }] : [];
  }
  // A stop in progress finishes first; its exit enqueues the next pass.
  if (observed?.stopping) return [];
  // An invalid manifest changes nothing: a running server keeps its last valid spec.
  if (desired.state === 'invalid') return [];
  // A hosted server runs no process here (one left from when it had a command goes).
  if (desired.state === 'valid' && desired.hosted === true) {
    return observed !== undefined ? [{ type: 'stop', reason: 'ConfigChanged' }] : [];
  }
  const launch = desired.launch;

  if (observed) {
    if (input.unhealthy?.pid === observed.pid) return [{ type: 'stop', reason: 'Unhealthy' }];
    // A configuration that cannot start (secrets missing) never replaces a running one.
    if (launch === undefined) return [];
    // A stdio server left by an earlier controller cannot be talked to (its stdio went with it): replace it.
    if (observed.adopted && launch.attachStdio) return [{ type: 'stop', reason: 'Reattach' }];
    const why: StopReason | undefined = launch.configHash !== observed.configHash ? 'ConfigChanged' : restartPending(memory) ? 'RestartRequested' : undefined;
    if (desired.strategy === 'RollingUpdate' && launch.attachStdio) return planRollout(input, launch, why !== undefined);
    if (next !== undefined && !next.stopping) return [{ type: 'stop', reason: 'Superseded', slot: 'next' }];
    return why !== undefined ? [{ type: 'stop', reason: why }] : [];
  }

  // The serving process is gone in the middle of a rollout: the new one takes over when it can.
  if (next !== undefined) return next.stopping ? [] : planRollout(input, launch, true);
  if (launch === undefined) return [];
  const last = history.lastTermination;
  const configChanged = last?.configHash !== undefined && last.configHash !== launch.configHash;
  if (last !== undefined && !configChanged && !restartPending(memory)) {
    if (last.reason !== 'Stopped' && !shouldRestart(desired.restartPolicy, last)) return [];
    const retryAt = nextRetryAt(history, desired.restartPolicy);
    if (retryAt !== undefined && retryAt > now) return [{ type: 'requeue', afterMs: retryAt - now }];
  }
  return [{ type: 'start', launch }];
}

/**
 * A rolling update, one step per pass: start the new process beside the
 * serving one; once it has answered the MCP handshake, it takes over; a new
 * process that fails, or is not ready in time, is stopped and tried again
 * with back-off while the old one keeps serving.
 */
function planRollout({ now, desired, memory, next, nextState, old }: PlanInput, launch: LaunchSpec | undefined, wanted: boolean): ServerAction[] {
  if (next !== undefined) {
    if (next.stopping) return [];
    if (!wanted || launch === undefined || next.configHash !== launch.configHash) return [{ type: 'stop', reason: 'Superseded', slot: 'next' }];
    // One replaced process at a time: the next switch waits until the last one has answered what it
    // held (at most drainSeconds), so no client's request is cut short by a quick second rollout.
    if (nextState === 'ready') return old !== undefined ? [] : [{ type: 'promote' }];
    if (nextState === 'failed') return [{ type: 'stop', reason: 'RolloutFailed', slot: 'next' }];
    const deadlineMs = desired.state === 'valid' ? desired.rollingUpdate.progressDeadlineMs : DEFAULT_PROGRESS_DEADLINE_MS;
    const deadline = Date.parse(next.startedAt) + deadlineMs;
    if (now >= deadline) return [{ type: 'stop', reason: 'ProgressDeadlineExceeded', slot: 'next' }];
    return [{ type: 'requeue', afterMs: deadline - now }];
  }
  if (!wanted || launch === undefined) return [];
  const failed = memory.rollout;
  if (failed !== undefined && failed.configHash === launch.configHash && failed.nextRetryAt > now) return [{ type: 'requeue', afterMs: failed.nextRetryAt - now }];
  return [{ type: 'surge', launch }];
}

/** Folds a failed rolling update into memory: back-off before the next try, as for a crash. */
export function recordRolloutFailure(memory: ServerMemory, configHash: string, generation: number, message: string, now: number): ServerMemory {
  const failures = memory.rollout?.configHash === configHash ? memory.rollout.failures + 1 : 1;
  return { ...memory, rollout: { configHash, generation, failures, nextRetryAt: now + backoffDelay(failures), message } };
}

export interface StatusInput {
  now: number;
  desired: DesiredServer;
  observed?: ObservedProcess;
  /** The runtime's record of the server's runs. */
  history: RunHistory;
  /** A rolling update's new process, while it starts. */
  next?: ObservedProcess;
  memory: ServerMemory;
  previous?: MCPServerStatus;
  /** The generation status refers to when the manifest is invalid (the last valid one). */
  lastGeneration: number;
  /** The MCP side: handshake state, URL, server info. */
  mcp?: McpView;
  /** Following git: the revision the manifest was read from (status names it once the server runs it). */
  revision?: string | undefined;
}

interface Verdict {
  phase: MCPServerPhase;
  ready: [boolean, string, string];
  message?: string;
}

/** How a run ended, in words: "killed by SIGTERM", "exit code 3". */
export function describeTermination(t: Termination): string {
  if (t.signal !== null) return `killed by ${t.signal}`;
  if (t.exitCode !== null) return `exit code ${t.exitCode}`;
  return t.message ?? 'exit status unknown';
}

function verdict(input: StatusInput): Verdict {
  const { desired, observed, now } = input;
  if (observed?.stopping) return { phase: 'Terminating', ready: [false, 'Terminating', `stopping pid ${observed.pid}`] };
  if (!observed && input.next !== undefined) return { phase: 'Pending', ready: [false, 'Starting', `pid ${input.next.pid} is starting (rolling update)`] };
  if (observed) return { phase: 'Running', ready: mcpReadiness(observed, input.mcp) };
  if (desired.state === 'invalid') {
    return { phase: 'Stuck', ready: [false, 'InvalidManifest', desired.message], message: desired.message };
  }
  if (desired.state === 'absent') return { phase: 'Terminating', ready: [false, 'Deleted', 'the manifest was deleted'] };
  if (desired.suspend) return { phase: 'Suspended', ready: [false, 'Suspended', 'spec.suspend is true'], message: 'suspended' };
  const problem = desired.problems[0];
  // Rule 2 for a hosted server: apiary keeps fronting it with the values it had.
  if (problem !== undefined && desired.hosted === true && input.mcp?.state === 'ready') {
    return { phase: 'Running', ready: [true, 'Initialized', 'fronted with the values it had; a change cannot be applied until the secret is back'] };
  }
  if (problem !== undefined) {
    const message = desired.problems.map((p) => p.message).join('; ');
    return { phase: 'Stuck', ready: [false, problem.reason, message], message };
  }
  if (desired.sandboxProblem !== undefined) {
    const { reason, message } = desired.sandboxProblem;
    return { phase: 'Stuck', ready: [false, reason, message], message };
  }
  // A hosted server that needs a login waits for `apiary connect`; an unreachable authorization server is only not Ready.
  const login = desired.remote !== undefined ? input.mcp?.authorization : undefined;
  if (login?.reason === 'AuthorizationRequired') return { phase: 'Stuck', ready: [false, login.reason, login.message], message: login.message };
  if (login !== undefined) return { phase: 'Running', ready: [false, login.reason, login.message] };
  if (desired.remote !== undefined) return { phase: 'Running', ready: remoteReadiness(desired.remote, input.mcp) };
  const { history } = input;
  const last = history.lastTermination;
  const retryAt = desired.state === 'valid' ? nextRetryAt(history, desired.restartPolicy) : undefined;
  if (retryAt !== undefined && retryAt > now && last !== undefined) {
    const seconds = Math.ceil((retryAt - now) / 1000);
    const why = failureOf(history, last);
    const message = `back-off ${formatDelay(backoffDelay(history.failures))} restarting failed server (${why}); next try in ${seconds}s`;
    return { phase: 'CrashLoopBackOff', ready: [false, 'CrashLoopBackOff', message], message };
  }
  if (last !== undefined && last.reason !== 'Stopped' && !shouldRestart(desired.restartPolicy, last)) {
    const clean = last.exitCode === 0 && last.signal === null;
    const message = `${clean ? 'exited cleanly' : `failed (${failureOf(history, last)})`}; restartPolicy ${desired.restartPolicy} does not restart it`;
    return clean
      ? { phase: 'Completed', ready: [false, 'Completed', message], message }
      : { phase: 'Failed', ready: [false, 'Failed', message], message };
  }
  return { phase: 'Pending', ready: [false, 'Starting', 'starting'] };
}

/** A hosted server is Ready once apiary's session with it is (its handshake answered). */
function remoteReadiness(remote: RemoteServer, mcp: McpView | undefined): [boolean, string, string] {
  // Named as the manifest writes it: the expanded URL may hold a secret.
  const host = remoteLabelHost(remote.label);
  if (mcp?.endpointError !== undefined) return [false, 'EndpointUnavailable', mcp.endpointError];
  if (mcp?.state === 'ready') {
    const info = mcp.serverInfo ? `${mcp.serverInfo.name} ${mcp.serverInfo.version}` : 'the server';
    const filtered = mcp.filteredTools?.length ?? 0;
    return [true, 'Initialized', `${info} at ${host} answered ${handshakeName(mcp.protocolVersion)} and listed ${(mcp.toolCount ?? 0) + filtered} tool(s)${filtered > 0 ? `, ${filtered} filtered out by spec.tools` : ''}`];
  }
  return [false, 'Connecting', mcp?.message ?? `connecting to ${host}`];
}

/** Running is not Ready until the MCP handshake (initialize, then tools/list) has succeeded. */
function mcpReadiness(observed: ObservedProcess, mcp: McpView | undefined): [boolean, string, string] {
  if (mcp === undefined) return [true, 'ProcessRunning', `pid ${observed.pid} is running`];
  if (mcp.endpointError !== undefined) return [false, 'EndpointUnavailable', mcp.endpointError];
  if (mcp.state === 'ready') {
    const info = mcp.serverInfo ? `${mcp.serverInfo.name} ${mcp.serverInfo.version}` : 'the server';
    const filtered = mcp.filteredTools?.length ?? 0;
    return [true, 'Initialized', `${info} answered ${handshakeName(mcp.protocolVersion)} and listed ${(mcp.toolCount ?? 0) + filtered} tool(s)${filtered > 0 ? `, ${filtered} filtered out by spec.tools` : ''}`];
  }
  if (mcp.state === 'failed') return [false, 'HandshakeFailed', mcp.message ?? 'the MCP handshake failed'];
  return [false, 'Initializing', mcp.message ?? 'waiting for the MCP initialize handshake'];
}

function formatDelay(ms: number): string {
  return ms >= 60_000 ? `${Math.round(ms / 60_000)}m` : `${Math.round(ms / 1000)}s`;
}

/**
 * ToolsDrifted, only for a server with an entry in tools.lock.yaml: True
 * naming the tools that differ (and whether they are withheld), False when
 * what the serving process listed matches. Without an entry it is absent.
 */
function toolsDrifted(conditions: Condition[], pins: ToolPins | undefined, mcp: McpView | undefined, nowIso: string, generation: number): Condition[] {
  if (pins === undefined) return conditions.filter((c) => c.type !== 'ToolsDrifted');
  const drift = mcp?.drift;
  const condition: Omit<Condition, 'lastTransitionTime' | 'observedGeneration'> =
    drift === undefined
      ? { type: 'ToolsDrifted', status: 'False', reason: 'ToolsPinned', message: 'the tools match tools.lock.yaml' }
      : {
          type: 'ToolsDrifted',
          status: 'True',
          reason: 'ToolsDrifted',
          message: `${describeDrift(drift)}; ${pins.withhold ? 'changed and new tools are withheld from clients' : 'listed anyway (spec.tools.onDrift: Warn)'}; see apiary tools diff, then apiary tools approve`,
        };
  return setCondition(conditions, { ...condition, observedGeneration: generation }, nowIso);
}

export function serverStatus(input: StatusInput): MCPServerStatus {
  const { desired, observed, memory, previous } = input;
  const nowIso = new Date(input.now).toISOString();
  const generation = desired.state === 'valid' ? desired.generation : input.lastGeneration;
  const v = verdict(input);
  let conditions: Condition[] = previous?.conditions ?? [];
  const set = (type: string, status: boolean | 'Unknown', reason: string, message: string, observedGeneration = generation): void => {
    conditions = setCondition(
      conditions,
      { type, status: status === 'Unknown' ? 'Unknown' : status ? 'True' : 'False', reason, message, observedGeneration },
      nowIso,
    );
  };

  // A rolling update in progress (or failed): the process serving is the old generation's, and Ready
  // says so, so `wait --for=condition=Ready` after an edit waits for the new process to take over.
  const launch = desired.state === 'valid' ? desired.launch : undefined;
  const rollout = input.next !== undefined ? input.next : undefined;
  const failedRollout = observed !== undefined && launch !== undefined && memory.rollout?.configHash === launch.configHash && launch.configHash !== observed.configHash ? memory.rollout : undefined;
  const rolling = observed !== undefined && (rollout !== undefined || failedRollout !== undefined);
  set('Ready', v.ready[0], v.ready[1], v.ready[2], rolling ? observed.generation : generation);

  const problems = desired.state === 'valid' ? desired.problems : [];
  const first = problems[0];
  if (desired.state === 'invalid') {
    set('SecretsResolved', 'Unknown', 'InvalidManifest', 'the manifest is invalid');
  } else if (first !== undefined) {
    const all = problems.map((p) => p.message).join('; ');
    set('SecretsResolved', false, first.reason, observed ? `${all}; the running server keeps running but cannot restart until it is back` : all);
  } else {
    set('SecretsResolved', true, 'SecretsResolved', 'every referenced secret resolved');
  }

  const updateBlocked = observed !== undefined && first !== undefined && desired.state === 'valid' && desired.generation !== observed.generation;
  if (desired.state === 'invalid') {
    set('Stalled', true, 'InvalidManifest', observed ? `${desired.message}; still running generation ${observed.generation}` : desired.message);
  } else if (!observed && first !== undefined && !(desired.state === 'valid' && desired.suspend)) {
    set('Stalled', true, first.reason, problems.map((p) => p.message).join('; '));
  } else if (updateBlocked) {
    set('Stalled', true, first.reason, `update to generation ${generation} blocked: ${first.message}; generation ${observed.generation} keeps running`);
  } else if (failedRollout !== undefined && rollout === undefined) {
    set('Stalled', true, 'RolloutFailed', rolloutFailedMessage(failedRollout, observed!, input.now));
  } else if (observed && input.mcp?.endpointError !== undefined) {
    // Retrying will not free the port: someone has to.
    set('Stalled', true, 'EndpointUnavailable', input.mcp.endpointError);
  } else if (!observed && desired.state === 'valid' && desired.sandboxProblem !== undefined && !desired.suspend) {
    set('Stalled', true, desired.sandboxProblem.reason, desired.sandboxProblem.message);
  } else if (!observed && startErrorOf(input.history) !== undefined) {
    // Command not found or not executable: back-off keeps trying, but only a person can fix it.
    set('Stalled', true, 'StartFailed', startErrorOf(input.history)!);
  } else {
    set('Stalled', false, 'Progressing', 'no intervention needed');
  }

  const reconciling = v.phase === 'Pending' || v.phase === 'Terminating';
  if (rollout !== undefined && observed !== undefined && !reconciling) {
    set('Reconciling', true, 'RollingUpdate', `pid ${rollout.pid} (generation ${rollout.generation}) is starting beside pid ${observed.pid} (generation ${observed.generation}), which serves until the new one answers the MCP handshake`);
  } else {
    set('Reconciling', reconciling, reconciling ? (v.phase === 'Pending' ? 'Starting' : 'Stopping') : 'Reconciled', reconciling ? v.ready[2] : 'the server matches its manifest');
  }

  conditions = toolsDrifted(conditions, desired.state === 'valid' ? desired.pins : undefined, input.mcp, nowIso, generation);

  const order = ['Ready', 'SecretsResolved', 'Reconciling', 'Stalled', 'ToolsDrifted'];
  conditions.sort((a, b) => order.indexOf(a.type) - order.indexOf(b.type));

  const status: MCPServerStatus = {
    observedGeneration: generation,
    phase: v.phase,
    conditions,
    restartCount: input.history.restartCount,
  };
  if (observed) {
    status.pid = observed.pid;
    status.startedAt = observed.startedAt;
    // The sandbox in force is the running process's: the launch's only while it is the one running.
    if (launch?.sandbox !== undefined && launch.configHash === observed.configHash) status.sandbox = sandboxSummary(launch.sandbox, launch.listenPort);
  }
  const mcp = input.mcp;
  if (mcp?.url !== undefined) status.url = mcp.url;
  const serving = observed !== undefined || (desired.state === 'valid' && desired.remote !== undefined);
  if (serving && mcp?.state === 'ready') {
    if (mcp.serverInfo) status.serverInfo = mcp.serverInfo;
    if (mcp.protocolVersion) status.protocolVersion = mcp.protocolVersion;
    status.tools = mcp.toolCount ?? 0;
    if (mcp.filteredTools !== undefined && mcp.filteredTools.length > 0) status.toolsFiltered = mcp.filteredTools;
  }
  const last = input.history.lastTermination;
  if (last) status.lastTermination = toLastTermination(last);
  const retryAt = desired.state === 'valid' ? nextRetryAt(input.history, desired.restartPolicy) : undefined;
  if (v.phase === 'CrashLoopBackOff' && retryAt !== undefined) status.nextRetryAt = new Date(retryAt).toISOString();
  const message = updateBlocked
    ? `update blocked: ${first.message}`
    : failedRollout !== undefined && rollout === undefined
      ? rolloutFailedMessage(failedRollout, observed!, input.now)
    : desired.state === 'invalid' && observed
      ? `manifest invalid, still running generation ${observed.generation}: ${desired.message}`
      : first !== undefined && observed
        ? `${first.message}; keeps running, cannot restart until it is back`
        : v.message;
  if (message !== undefined) status.message = message;
  const applied = serverAppliedRevision(status, input.revision, previous?.lastAppliedRevision);
  if (applied !== undefined) status.lastAppliedRevision = applied;
  return status;
}

function rolloutFailedMessage(failed: RolloutFailure, observed: ObservedProcess, now: number): string {
  const seconds = Math.max(0, Math.ceil((failed.nextRetryAt - now) / 1000));
  return `rolling update to generation ${failed.generation} failed (${failed.message}); generation ${observed.generation} (pid ${observed.pid}) keeps serving; next try in ${seconds}s`;
}

export function toLastTermination(t: Termination): LastTermination {
  return {
    exitCode: t.exitCode,
    signal: t.signal,
    finishedAt: t.finishedAt,
    reason: t.reason,
    ...(t.lastOutput !== undefined ? { message: t.lastOutput } : {}),
  };
}

/** Which parts of a server's configuration differ, e.g. "args, env GITHUB_TOKEN changed". Never values. */
export function describeConfigChange(before: Readonly<Record<string, string>> | undefined, after: Readonly<Record<string, string>> | undefined): string {
  if (before === undefined || after === undefined) return 'the configuration changed';
  const changed: string[] = [];
  const added: string[] = [];
  const removed: string[] = [];
  for (const [part, hash] of Object.entries(after)) {
    if (!(part in before)) added.push(part);
    else if (before[part] !== hash) changed.push(part);
  }
  for (const part of Object.keys(before)) if (!(part in after)) removed.push(part);
  const phrases = [
    ...(changed.length > 0 ? [`${changed.join(', ')} changed`] : []),
    ...(added.length > 0 ? [`${added.join(', ')} added`] : []),
    ...(removed.length > 0 ? [`${removed.join(', ')} removed`] : []),
  ];
  return phrases.length > 0 ? phrases.join('; ') : 'the configuration changed';
}

/**
 * The sandbox a process runs in, in one line: "bubblewrap, profile default, network allow (api.github.com:443), read 1,
 * write 1"; an HTTP server's adds how apiary reaches it and that, unlike an HTTP server outside a sandbox, it is not
 * left running for the next controller to adopt.
 */
export function sandboxSummary(sandbox: SandboxSpec, listenPort?: number): string {
  const network = sandbox.network === 'allow' ? `network allow (${sandbox.allow.join(', ')})` : 'network none';
  const ingress = listenPort !== undefined ? `, port ${listenPort} forwarded in, stops with the controller` : '';
  return `bubblewrap, profile ${sandbox.profile}, ${network}, read ${sandbox.read.length}, write ${sandbox.write.length}${ingress}`;
}
