import { describe, expect, it } from 'vitest';
import { findCondition } from '../src/api/status.js';
import {
  backoffDelay,
  describeConfigChange,
  emptyMemory,
  planServer,
  serverStatus,
  type DesiredServer,
  type ServerMemory,
} from '../src/reconcilers/mcpserver-plan.js';
import { NO_HISTORY, RunHistories, type RunHistory } from '../src/runtime/history.js';
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
  slot: 'current',
  configHash: 'h1',
  ...over,
});
const mem = (over: Partial<ServerMemory> = {}): ServerMemory => ({ ...emptyMemory(), ...over });
/** The runtime's record: the last run ended with `t`, after `failures` failed runs in a row. */
const ran = (t: Termination, failures = 1, restartCount = 0): RunHistory => ({ lastTermination: t, failures, restartCount });
const ago = (ms: number): string => new Date(NOW - ms).toISOString();

describe('planServer', () => {
  const h = NO_HISTORY;
  const cases: [string, Parameters<typeof planServer>[0], string[]][] = [
    ['new server starts', { now: NOW, desired: valid(), memory: mem(), history: h }, ['start']],
    ['running and unchanged: nothing', { now: NOW, desired: valid(), observed: running(), memory: mem(), history: h }, []],
    ['config changed: stop to roll', { now: NOW, desired: valid({ launch: launch('h2', 2) }), observed: running(), memory: mem(), history: h }, ['stop:ConfigChanged']],
    ['config changed but a secret is missing: keep running', { now: NOW, desired: valid({ launch: undefined, problems: [missing], generation: 2 }), observed: running(), memory: mem(), history: h }, []],
    ['secret deleted while running: keep running', { now: NOW, desired: valid({ launch: undefined, problems: [missing] }), observed: running(), memory: mem(), history: h }, []],
    ['not running, secret missing: do not start (Stuck)', { now: NOW, desired: valid({ launch: undefined, problems: [missing] }), memory: mem(), history: h }, []],
    ['invalid manifest while running: keep running', { now: NOW, desired: { state: 'invalid', message: 'x' }, observed: running(), memory: mem(), history: h }, []],
    ['deleted while running: stop', { now: NOW, desired: { state: 'absent' }, observed: running(), memory: mem(), history: h }, ['stop:Deleted']],
    ['deleted and gone: forget', { now: NOW, desired: { state: 'absent' }, memory: mem(), history: h }, ['forget']],
    ['suspended while running: stop', { now: NOW, desired: valid({ suspend: true }), observed: running(), memory: mem(), history: h }, ['stop:Suspended']],
    ['suspended and stopped: nothing', { now: NOW, desired: valid({ suspend: true }), memory: mem(), history: h }, []],
    ['stopping: wait for the exit', { now: NOW, desired: { state: 'absent' }, observed: running({ stopping: true }), memory: mem(), history: h }, []],
    ['crashed, back-off pending: requeue', { now: NOW, desired: valid(), memory: mem(), history: ran(exit(1), 2) }, ['requeue:2000']],
    ['crashed, back-off over: restart', { now: NOW, desired: valid(), memory: mem(), history: ran(exit(1, { finishedAt: ago(2001) }), 2) }, ['start']],
    ['crashed, config changed meanwhile: start at once', { now: NOW, desired: valid({ launch: launch('h2') }), memory: mem(), history: ran(exit(1), 7) }, ['start']],
    ['Never + failed: stays down', { now: NOW, desired: valid({ restartPolicy: 'Never' }), memory: mem(), history: ran(exit(1)) }, []],
    ['OnFailure + clean exit: stays down', { now: NOW, desired: valid({ restartPolicy: 'OnFailure' }), memory: mem(), history: ran(exit(0)) }, []],
    ['OnFailure + failure: restarts after its back-off', { now: NOW, desired: valid({ restartPolicy: 'OnFailure' }), memory: mem(), history: ran(exit(2, { finishedAt: ago(5000) })) }, ['start']],
    ['a failed start (command not found) backs off too', { now: NOW, desired: valid(), memory: mem(), history: ran(exit(null, { reason: 'StartError', message: 'command "x" not found on PATH' }), 3) }, ['requeue:4000']],
    ['restart requested: stop', { now: NOW, desired: valid(), observed: running(), memory: mem({ restartRequestedAt: 't1' }), history: h }, ['stop:RestartRequested']],
    ['restart request already handled: nothing', { now: NOW, desired: valid(), observed: running(), memory: mem({ restartRequestedAt: 't1', restartHandledAt: 't1' }), history: h }, []],
    ['after a rollout stop: start at once', { now: NOW, desired: valid({ launch: launch('h2') }), memory: mem(), history: ran(exit(null, { reason: 'Stopped' }), 3) }, ['start']],
  ];
  it.each(cases)('%s', (_name, input, expected) => {
    expect(planServer(input).map(show)).toEqual(expected);
  });
});

const show = (a: ReturnType<typeof planServer>[number]): string =>
  a.type === 'stop' ? `stop:${a.reason}${a.slot ? `@${a.slot}` : ''}` : a.type === 'requeue' ? `requeue:${a.afterMs}` : a.type;

describe('planServer, rolling updates', () => {
  const next = (over: Partial<ObservedProcess> = {}): ObservedProcess => running({ pid: 43, slot: 'next', configHash: 'h2', generation: 2, startedAt: new Date(NOW - 500).toISOString(), ...over });
  const old = running({ pid: 41, slot: 'old', configHash: 'h0' });
  const h2 = rolling({ launch: launch('h2', 2), generation: 2 });
  const cases: [string, Omit<Parameters<typeof planServer>[0], 'history'> & { history?: RunHistory }, string[]][] = [
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
    ['the old process died mid-rollout: the new one takes over when ready', { now: NOW, desired: h2, next: next(), nextState: 'ready', memory: mem(), history: ran(exit(1)) }, ['promote']],
    ['deleted mid-rollout: every process stops', { now: NOW, desired: { state: 'absent' }, observed: running(), next: next(), old, memory: mem() }, ['stop:Deleted@next', 'stop:Deleted@old', 'stop:Deleted']],
    ['suspended mid-rollout: every process stops', { now: NOW, desired: rolling({ suspend: true }), observed: running(), next: next(), memory: mem() }, ['stop:Suspended@next', 'stop:Suspended']],
    ['deleted, only a draining one left: it is stopped, nothing forgotten yet', { now: NOW, desired: { state: 'absent' }, old, memory: mem() }, ['stop:Deleted@old']],
    ['Recreate: stop, then start', { now: NOW, desired: valid({ launch: launch('h2', 2) }), observed: running(), memory: mem() }, ['stop:ConfigChanged']],
    ['an adopted stdio server is replaced stop-then-start (its stdio is gone)', { now: NOW, desired: h2, observed: running({ adopted: true }), memory: mem() }, ['stop:Reattach']],
    ['HTTP servers are never rolled beside', { now: NOW, desired: rolling({ launch: { ...launch('h2', 2), attachStdio: false } }), observed: running(), memory: mem() }, ['stop:ConfigChanged']],
  ];
  it.each(cases)('%s', (_name, input, expected) => {
    expect(planServer({ history: NO_HISTORY, ...input }).map(show)).toEqual(expected);
  });
});

describe('back-off', () => {
  it('is 1 s doubling to a 5-minute cap', () => {
    expect([1, 2, 3, 4, 8, 9, 10, 20].map(backoffDelay)).toEqual([1000, 2000, 4000, 8000, 128_000, 256_000, 300_000, 300_000]);
  });
});

describe("the runtime's run history (what back-off and restart counts come from)", () => {
  it('counts failed runs in a row, and a run of 10 minutes starts the count again', () => {
    const runs = new RunHistories();
    for (let i = 0; i < 6; i++) runs.ended('a', exit(1, { ranForMs: 5_000 }));
    expect(runs.get('a').failures).toBe(6);
    runs.ended('a', exit(1, { ranForMs: 10 * 60_000 }));
    expect(runs.get('a').failures).toBe(1);
  });

  it('a stop asked for by apiary is not a failure, and the start after it is not a restart', () => {
    const runs = new RunHistories();
    runs.ended('a', exit(1));
    runs.started('a');
    expect(runs.get('a')).toMatchObject({ restartCount: 1, failures: 1 });
    runs.ended('a', exit(null, { reason: 'Stopped' }));
    runs.started('a');
    expect(runs.get('a')).toMatchObject({ restartCount: 1, failures: 1, lastTermination: { reason: 'Stopped' } });
    // A failed start (no process) is a failed run, and the next start a restart.
    runs.ended('a', exit(null, { reason: 'StartError', message: 'command "x" not found on PATH' }));
    runs.started('a');
    expect(runs.get('a')).toMatchObject({ restartCount: 2, failures: 2 });
    runs.amend('a', { failures: 0 });
    expect(runs.get('a')).toMatchObject({ restartCount: 2, failures: 0 });
    runs.amend('a', undefined);
    expect(runs.get('a')).toEqual(NO_HISTORY);
  });
});

describe('serverStatus', () => {
  const base = { now: NOW, memory: mem(), history: NO_HISTORY, lastGeneration: 1 };
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
    ['command not found', { desired: valid(), history: ran(exit(null, { reason: 'StartError', message: 'command "nope" not found on PATH' })) }, 'StartFailed', 'command "nope" not found on PATH'],
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
    ['CrashLoopBackOff', { desired: valid(), history: ran(exit(1)) }],
    ['Failed', { desired: valid({ restartPolicy: 'Never' }), history: ran(exit(1)) }],
    ['Completed', { desired: valid({ restartPolicy: 'OnFailure' }), history: ran(exit(0)) }],
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

describe('serverStatus: lastAppliedRevision (following git)', () => {
  const base = { now: NOW, memory: mem(), history: NO_HISTORY, lastGeneration: 1 };
  const before = { ...serverStatus({ ...base, desired: valid(), observed: running() }), lastAppliedRevision: 'main@sha1:old' };
  const rollout = { configHash: 'h2', generation: 2, failures: 1, nextRetryAt: NOW + 2000, message: 'exited' };

  it('names the revision the manifest was read from once the server runs it, and none without git', () => {
    expect(serverStatus({ ...base, desired: valid(), observed: running(), previous: before, revision: 'main@sha1:new' }).lastAppliedRevision).toBe('main@sha1:new');
    expect(serverStatus({ ...base, desired: valid(), revision: 'main@sha1:new' }).lastAppliedRevision).toBe('main@sha1:new');
    expect(serverStatus({ ...base, desired: valid(), observed: running() }).lastAppliedRevision).toBeUndefined();
  });

  it.each([
    ['its update blocked by a missing secret', { desired: valid({ launch: undefined, generation: 2, problems: [missing] }), observed: running() }],
    ['a failed rolling update', { desired: rolling({ launch: launch('h2', 2), generation: 2 }), observed: running(), memory: mem({ rollout }) }],
    ['a rolling update in progress', { desired: rolling({ launch: launch('h2', 2), generation: 2 }), observed: running(), next: running({ pid: 43, slot: 'next', configHash: 'h2', generation: 2 }) }],
    ['an invalid manifest', { desired: { state: 'invalid' as const, message: 'f.yaml:1:1: bad' }, observed: running() }],
  ])('a running server held back (%s) keeps the revision it was applied from', (_why, over) => {
    const s = serverStatus({ ...base, previous: before, revision: 'main@sha1:new', ...over } as Parameters<typeof serverStatus>[0]);
    expect(s.pid).toBe(42);
    expect(s.lastAppliedRevision).toBe('main@sha1:old');
  });

  it('a held-back server that is not running takes the new revision', () => {
    const s = serverStatus({ ...base, desired: valid({ launch: undefined, problems: [missing] }), previous: before, revision: 'main@sha1:new' });
    expect(s.phase).toBe('Stuck');
    expect(s.lastAppliedRevision).toBe('main@sha1:new');
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
