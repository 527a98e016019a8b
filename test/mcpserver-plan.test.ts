import { describe, expect, it } from 'vitest';
import { findCondition } from '../src/api/status.js';
import {
  backoffDelay,
  describeConfigChange,
  emptyMemory,
  planServer,
  recordTermination,
  serverStatus,
  type DesiredServer,
  type ServerMemory,
} from '../src/reconcilers/mcpserver-plan.js';
import type { LaunchSpec, ObservedProcess, Termination } from '../src/runtime/runtime.js';

const NOW = Date.parse('2026-01-01T00:00:00Z');
const launch = (hash = 'h1', generation = 1): LaunchSpec => ({ name: 'a', command: 'node', args: [], cwd: '/', env: {}, configHash: hash, generation, attachStdio: true });
const valid = (over: Partial<Extract<DesiredServer, { state: 'valid' }>> = {}): DesiredServer => ({
  state: 'valid',
  generation: 1,
  suspend: false,
  restartPolicy: 'Always',
  launch: launch(),
  strategy: 'Recreate',
  rollingUpdate: { progressDeadlineMs: 60_000, drainMs: 30_000 },
  problems: [],
  ...over,
});
const rolling = (over: Partial<Extract<DesiredServer, { state: 'valid' }>> = {}): DesiredServer => valid({ strategy: 'RollingUpdate', ...over });
const missing = { reason: 'SecretNotFound' as const, secret: 'github', message: 'secret "github" not found (needed for env GITHUB_TOKEN)' };
const running = (over: Partial<ObservedProcess> = {}): ObservedProcess => ({
  name: 'a',
  pid: 42,
  slot: 'current',
  startedAt: new Date(NOW - 1000).toISOString(),
  configHash: 'h1',
  generation: 1,
  stopping: false,
  adopted: false,
  ...over,
});
const exit = (code: number | null, over: Partial<Termination> = {}): Termination => ({
  exitCode: code,
  signal: null,
  finishedAt: new Date(NOW).toISOString(),
  reason: code === 0 ? 'Completed' : 'Error',
  ranForMs: 1000,
  ...over,
});
const mem = (over: Partial<ServerMemory> = {}): ServerMemory => ({ ...emptyMemory(), ...over });

describe('planServer', () => {
  const cases: [string, Parameters<typeof planServer>[0], string[]][] = [
    ['new server starts', { now: NOW, desired: valid(), memory: mem() }, ['start']],
    ['running and unchanged: nothing', { now: NOW, desired: valid(), observed: running(), memory: mem() }, []],
    ['config changed: stop to roll', { now: NOW, desired: valid({ launch: launch('h2', 2) }), observed: running(), memory: mem() }, ['stop:ConfigChanged']],
    ['config changed but a secret is missing: keep running', { now: NOW, desired: valid({ launch: undefined, problems: [missing], generation: 2 }), observed: running(), memory: mem() }, []],
    ['secret deleted while running: keep running', { now: NOW, desired: valid({ launch: undefined, problems: [missing] }), observed: running(), memory: mem() }, []],
    ['not running, secret missing: do not start (Stuck)', { now: NOW, desired: valid({ launch: undefined, problems: [missing] }), memory: mem() }, []],
    ['invalid manifest while running: keep running', { now: NOW, desired: { state: 'invalid', message: 'x' }, observed: running(), memory: mem() }, []],
    ['deleted while running: stop', { now: NOW, desired: { state: 'absent' }, observed: running(), memory: mem() }, ['stop:Deleted']],
    ['deleted and gone: forget', { now: NOW, desired: { state: 'absent' }, memory: mem() }, ['forget']],
    ['suspended while running: stop', { now: NOW, desired: valid({ suspend: true }), observed: running(), memory: mem() }, ['stop:Suspended']],
    ['suspended and stopped: nothing', { now: NOW, desired: valid({ suspend: true }), memory: mem() }, []],
    ['stopping: wait for the exit', { now: NOW, desired: { state: 'absent' }, observed: running({ stopping: true }), memory: mem() }, []],
    ['crashed, back-off pending: requeue', { now: NOW, desired: valid(), memory: mem({ lastTermination: exit(1), lastRunConfigHash: 'h1', nextRetryAt: NOW + 2000, crashes: 2 }) }, ['requeue:2000']],
    ['crashed, back-off over: restart', { now: NOW, desired: valid(), memory: mem({ lastTermination: exit(1), lastRunConfigHash: 'h1', nextRetryAt: NOW - 1, crashes: 2 }) }, ['start:restart']],
    ['crashed, config changed meanwhile: start at once', { now: NOW, desired: valid({ launch: launch('h2') }), memory: mem({ lastTermination: exit(1), lastRunConfigHash: 'h1', nextRetryAt: NOW + 60_000 }) }, ['start:restart']],
    ['Never + failed: stays down', { now: NOW, desired: valid({ restartPolicy: 'Never' }), memory: mem({ lastTermination: exit(1), lastRunConfigHash: 'h1' }) }, []],
    ['OnFailure + clean exit: stays down', { now: NOW, desired: valid({ restartPolicy: 'OnFailure' }), memory: mem({ lastTermination: exit(0), lastRunConfigHash: 'h1' }) }, []],
    ['OnFailure + failure: restarts', { now: NOW, desired: valid({ restartPolicy: 'OnFailure' }), memory: mem({ lastTermination: exit(2), lastRunConfigHash: 'h1' }) }, ['start:restart']],
    ['restart requested: stop', { now: NOW, desired: valid(), observed: running(), memory: mem({ restartRequestedAt: 't1' }) }, ['stop:RestartRequested']],
    ['restart request already handled: nothing', { now: NOW, desired: valid(), observed: running(), memory: mem({ restartRequestedAt: 't1', restartHandledAt: 't1' }) }, []],
    ['after a rollout stop: start, not a restart', { now: NOW, desired: valid({ launch: launch('h2') }), memory: mem({ lastTermination: exit(null, { reason: 'Stopped' }), lastRunConfigHash: 'h1' }) }, ['start']],
  ];
  it.each(cases)('%s', (_name, input, expected) => {
    expect(planServer(input).map(show)).toEqual(expected);
  });
});

const show = (a: ReturnType<typeof planServer>[number]): string =>
  a.type === 'stop' ? `stop:${a.reason}${a.slot ? `@${a.slot}` : ''}` : a.type === 'requeue' ? `requeue:${a.afterMs}` : a.type === 'start' ? (a.restart ? 'start:restart' : 'start') : a.type;

describe('planServer, rolling updates', () => {
  const next = (over: Partial<ObservedProcess> = {}): ObservedProcess => running({ pid: 43, slot: 'next', configHash: 'h2', generation: 2, startedAt: new Date(NOW - 500).toISOString(), ...over });
  const old = running({ pid: 41, slot: 'old', configHash: 'h0' });
  const h2 = rolling({ launch: launch('h2', 2), generation: 2 });
  const cases: [string, Parameters<typeof planServer>[0], string[]][] = [
    ['config changed: start the new process beside the old', { now: NOW, desired: h2, observed: running(), memory: mem() }, ['surge']],
    ['restart requested: the same, beside', { now: NOW, desired: rolling(), observed: running(), memory: mem({ restartRequestedAt: 't1' }) }, ['surge']],
    ['new process initializing: wait until its deadline', { now: NOW, desired: h2, observed: running(), next: next(), nextState: 'initializing', memory: mem() }, ['requeue:59500']],
    ['new process initialized: it takes over', { now: NOW, desired: h2, observed: running(), next: next(), nextState: 'ready', memory: mem() }, ['promote']],
    ['initialized, but the last replaced one still drains: wait for it (its exit brings the next pass)', { now: NOW, desired: h2, observed: running(), next: next(), nextState: 'ready', old, memory: mem() }, []],
    ['handshake failed: stop it, the old keeps serving', { now: NOW, desired: h2, observed: running(), next: next(), nextState: 'failed', memory: mem() }, ['stop:RolloutFailed@next']],
    ['not ready by the deadline: stop it', { now: NOW, desired: h2, observed: running(), next: next({ startedAt: new Date(NOW - 60_000).toISOString() }), nextState: 'initializing', memory: mem() }, ['stop:ProgressDeadlineExceeded@next']],
    ['edited again while it starts: stop it', { now: NOW, desired: rolling({ launch: launch('h3', 3), generation: 3 }), observed: running(), next: next(), nextState: 'initializing', memory: mem() }, ['stop:Superseded@next']],
    ['edited back while it starts: stop it', { now: NOW, desired: rolling(), observed: running(), next: next(), nextState: 'initializing', memory: mem() }, ['stop:Superseded@next']],
    ['a failed rollout waits out its back-off', { now: NOW, desired: h2, observed: running(), memory: mem({ rollout: { configHash: 'h2', generation: 2, failures: 1, nextRetryAt: NOW + 1000, message: 'x' } }) }, ['requeue:1000']],
    ['a failed rollout of another config does not hold a new one', { now: NOW, desired: h2, observed: running(), memory: mem({ rollout: { configHash: 'h9', generation: 9, failures: 3, nextRetryAt: NOW + 8000, message: 'x' } }) }, ['surge']],
    ['the old process died mid-rollout: the new one takes over when ready', { now: NOW, desired: h2, next: next(), nextState: 'ready', memory: mem({ lastTermination: exit(1), lastRunConfigHash: 'h1', nextRetryAt: NOW + 1000 }) }, ['promote']],
    ['deleted mid-rollout: every process stops', { now: NOW, desired: { state: 'absent' }, observed: running(), next: next(), old, memory: mem() }, ['stop:Deleted@next', 'stop:Deleted@old', 'stop:Deleted']],
    ['suspended mid-rollout: every process stops', { now: NOW, desired: rolling({ suspend: true }), observed: running(), next: next(), memory: mem() }, ['stop:Suspended@next', 'stop:Suspended']],
    ['deleted, only a draining one left: it is stopped, nothing forgotten yet', { now: NOW, desired: { state: 'absent' }, old, memory: mem() }, ['stop:Deleted@old']],
    ['Recreate: stop, then start', { now: NOW, desired: valid({ launch: launch('h2', 2) }), observed: running(), memory: mem() }, ['stop:ConfigChanged']],
    ['an adopted stdio server is replaced stop-then-start (its stdio is gone)', { now: NOW, desired: h2, observed: running({ adopted: true }), memory: mem() }, ['stop:Reattach']],
    ['HTTP servers are never rolled beside', { now: NOW, desired: rolling({ launch: { ...launch('h2', 2), attachStdio: false } }), observed: running(), memory: mem() }, ['stop:ConfigChanged']],
  ];
  it.each(cases)('%s', (_name, input, expected) => {
    expect(planServer(input).map(show)).toEqual(expected);
  });
});

describe('back-off', () => {
  it('is 1 s doubling to a 5-minute cap', () => {
    expect([1, 2, 3, 4, 8, 9, 10, 20].map(backoffDelay)).toEqual([1000, 2000, 4000, 8000, 128_000, 256_000, 300_000, 300_000]);
  });

  it('resets after 10 minutes of steady running', () => {
    const crashed = recordTermination(mem({ crashes: 6 }), exit(1, { ranForMs: 10 * 60_000 }), 'Always', 'h1', NOW);
    expect(crashed.crashes).toBe(1);
    expect(crashed.nextRetryAt).toBe(NOW + 1000);
    const again = recordTermination(mem({ crashes: 6 }), exit(1, { ranForMs: 5_000 }), 'Always', 'h1', NOW);
    expect(again.nextRetryAt).toBe(NOW + 64_000);
  });

  it('a stop asked for by apiary is not a crash', () => {
    const stopped = recordTermination(mem({ crashes: 3, nextRetryAt: NOW + 5 }), exit(null, { reason: 'Stopped' }), 'Always', 'h1', NOW);
    expect(stopped.crashes).toBe(3);
    expect(stopped.nextRetryAt).toBeUndefined();
  });
});

describe('serverStatus', () => {
  const base = { now: NOW, memory: mem(), lastGeneration: 1 };
  it('Running: Ready=True, and a deleted secret only turns SecretsResolved false', () => {
    const s = serverStatus({ ...base, desired: valid({ launch: undefined, problems: [missing] }), observed: running() });
    expect(s.phase).toBe('Running');
    expect(findCondition(s.conditions, 'Ready')?.status).toBe('True');
    expect(findCondition(s.conditions, 'Stalled')?.status).toBe('False');
    expect(findCondition(s.conditions, 'SecretsResolved')).toMatchObject({ status: 'False', reason: 'SecretNotFound' });
  });

  it('Stuck: Ready, SecretsResolved and Stalled all carry the reason', () => {
    const s = serverStatus({ ...base, desired: valid({ launch: undefined, problems: [missing] }) });
    expect(s.phase).toBe('Stuck');
    expect(s.conditions.map((c) => [c.type, c.status, c.reason])).toEqual([
      ['Ready', 'False', 'SecretNotFound'],
      ['SecretsResolved', 'False', 'SecretNotFound'],
      ['Reconciling', 'False', 'Reconciled'],
      ['Stalled', 'True', 'SecretNotFound'],
    ]);
    expect(s.message).toBe(missing.message);
  });

  it.each([
    ['command not found', { desired: valid(), memory: mem({ lastTermination: exit(null, { reason: 'StartError' }), crashes: 1, nextRetryAt: NOW + 1000, startError: 'command "nope" not found on PATH' }) }, 'StartFailed', 'command "nope" not found on PATH'],
    ['port in use', { desired: valid(), observed: running(), mcp: { state: 'down', sessions: 0, endpointError: 'port 8931 is already in use on 127.0.0.1' } }, 'EndpointUnavailable', 'port 8931 is already in use on 127.0.0.1'],
  ])('Stalled=True where only a person can help: %s', (_name, over, reason, message) => {
    const s = serverStatus({ ...base, ...over } as Parameters<typeof serverStatus>[0]);
    expect(findCondition(s.conditions, 'Stalled')).toMatchObject({ status: 'True', reason, message });
  });

  it('lastTransitionTime moves only when a condition flips', () => {
    const first = serverStatus({ ...base, desired: valid(), observed: running() });
    const later = serverStatus({ ...base, now: NOW + 60_000, desired: valid(), observed: running({ pid: 43 }), previous: first });
    expect(findCondition(later.conditions, 'Ready')?.lastTransitionTime).toBe(findCondition(first.conditions, 'Ready')?.lastTransitionTime);
    const down = serverStatus({ ...base, now: NOW + 120_000, desired: valid({ launch: undefined, problems: [missing] }), previous: later });
    expect(findCondition(down.conditions, 'Ready')?.lastTransitionTime).toBe(new Date(NOW + 120_000).toISOString());
  });

  it.each([
    ['Suspended', { desired: valid({ suspend: true }) }],
    ['Terminating', { desired: valid(), observed: running({ stopping: true }) }],
    ['CrashLoopBackOff', { desired: valid(), memory: mem({ lastTermination: exit(1), crashes: 1, nextRetryAt: NOW + 1000 }) }],
    ['Failed', { desired: valid({ restartPolicy: 'Never' }), memory: mem({ lastTermination: exit(1) }) }],
    ['Completed', { desired: valid({ restartPolicy: 'OnFailure' }), memory: mem({ lastTermination: exit(0) }) }],
    ['Pending', { desired: valid() }],
    ['Stuck', { desired: { state: 'invalid' as const, message: 'f.yaml:1:1: bad' } }],
  ])('phase %s', (phase, over) => {
    expect(serverStatus({ ...base, ...over } as Parameters<typeof serverStatus>[0]).phase).toBe(phase);
  });

  it('a rolling update: Running and Ready on the old generation, Reconciling until the new process takes over', () => {
    const desired = rolling({ launch: launch('h2', 2), generation: 2 });
    const next = running({ pid: 43, slot: 'next', configHash: 'h2', generation: 2 });
    const s = serverStatus({ ...base, desired, observed: running(), next });
    expect(s.phase).toBe('Running');
    expect(s.pid).toBe(42);
    expect(s.observedGeneration).toBe(2);
    // Ready speaks of the generation serving, so waiting for Ready at generation 2 waits for the new process.
    expect(findCondition(s.conditions, 'Ready')).toMatchObject({ status: 'True', observedGeneration: 1 });
    expect(findCondition(s.conditions, 'Reconciling')).toMatchObject({ status: 'True', reason: 'RollingUpdate', observedGeneration: 2 });
    expect(findCondition(s.conditions, 'Reconciling')?.message).toContain('pid 43 (generation 2) is starting beside pid 42 (generation 1)');
    expect(findCondition(s.conditions, 'Stalled')?.status).toBe('False');
  });

  it('a failed rolling update: the old keeps serving, Stalled says why and when the next try is', () => {
    const desired = rolling({ launch: launch('h2', 2), generation: 2 });
    const rollout = { configHash: 'h2', generation: 2, failures: 2, nextRetryAt: NOW + 2000, message: 'the new process (pid 43) exited (exit code 3) before it was ready' };
    const s = serverStatus({ ...base, desired, observed: running(), memory: mem({ rollout }) });
    expect(s.phase).toBe('Running');
    expect(findCondition(s.conditions, 'Ready')).toMatchObject({ status: 'True', observedGeneration: 1 });
    expect(findCondition(s.conditions, 'Stalled')).toMatchObject({ status: 'True', reason: 'RolloutFailed' });
    expect(s.message).toBe('rolling update to generation 2 failed (the new process (pid 43) exited (exit code 3) before it was ready); generation 1 (pid 42) keeps serving; next try in 2s');
    // Once the serving process is the one the manifest asks for, the old failure says nothing.
    const done = serverStatus({ ...base, desired, observed: running({ configHash: 'h2', generation: 2 }), memory: mem({ rollout }) });
    expect(findCondition(done.conditions, 'Stalled')?.status).toBe('False');
    expect(findCondition(done.conditions, 'Ready')?.observedGeneration).toBe(2);
  });
});

describe('describeConfigChange', () => {
  it('names the parts that changed, were added or were removed, and only falls back when it cannot know', () => {
    const before = { command: 'c1', args: 'a1', 'env TOKEN': 't1', 'env OLD': 'o1' };
    expect(describeConfigChange(before, { command: 'c1', args: 'a2', 'env TOKEN': 't2', 'env NEW': 'n1' })).toBe('args, env TOKEN changed; env NEW added; env OLD removed');
    expect(describeConfigChange(before, { ...before })).toBe('the configuration changed');
    expect(describeConfigChange(undefined, before)).toBe('the configuration changed');
  });
});
