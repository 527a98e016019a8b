import { readFileSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { systemClock } from '../src/util/clock.js';
import { ProcessRuntime } from '../src/runtime/process-runtime.js';
import type { LaunchSpec, Termination } from '../src/runtime/runtime.js';
import { StateLayout } from '../src/state/layout.js';
import { isAlive } from './helpers/controller.js';
import { tempDir } from './helpers/tmp.js';
import { waitFor } from './helpers/wait.js';

function launch(name: string, script: string, cwd: string): LaunchSpec {
  return { name, command: 'sh', args: ['-c', script], cwd, env: { PATH: process.env['PATH'] ?? '' }, configHash: 'h', generation: 1, attachStdio: false };
}

describe('ProcessRuntime', () => {
  it('rotates a log past its size limit without losing what the process writes next', async () => {
    const root = await tempDir();
    const layout = new StateLayout(root);
    const runtime = new ProcessRuntime({ layout, clock: systemClock, maxLogBytes: 1000 });
    await runtime.start(launch('chatty', 'head -c 5000 /dev/zero | tr "\\0" x; echo; read line; echo after-rotation; sleep 5', root));
    const logSize = async (): Promise<number> => (await stat(layout.logFile('chatty')).catch(() => undefined))?.size ?? 0;
    await waitFor('5000 bytes in the log', async () => (await logSize()) >= 5000, 10_000, { observe: logSize });
    await runtime.maintain();
    expect((await stat(layout.rotatedLogFile('chatty'))).size).toBeGreaterThanOrEqual(5000);
    expect((await stat(layout.logFile('chatty'))).size).toBe(0);
    await runtime.stop('chatty');
  });

  it('stops a whole process group: close stdin, then SIGTERM, then SIGKILL', async () => {
    const root = await tempDir();
    const layout = new StateLayout(root);
    const runtime = new ProcessRuntime({ layout, clock: systemClock, stdinGraceMs: 100, termGraceMs: 300 });
    const exits: Termination[] = [];
    runtime.onExit((_n, t) => exits.push(t));
    // A launcher that ignores stdin and SIGTERM and leaves a child behind, like a stubborn npx.
    const p = await runtime.start(launch('stubborn', 'trap "" TERM; sleep 30 & echo $! > child.pid; wait', root));
    const childPid = Number(await waitFor('the launcher naming its child', async () => (await readFile(`${root}/child.pid`, 'utf8').catch(() => '')).trim() || undefined));
    const started = Date.now();
    const t = await runtime.stop('stubborn');
    expect(Date.now() - started).toBeGreaterThanOrEqual(350);
    expect(t?.signal).toBe('SIGKILL');
    expect(t?.reason).toBe('Stopped');
    expect(isAlive(p.pid)).toBe(false);
    // SIGKILL went to the whole group; the orphan dies as soon as it is scheduled.
    await waitFor(`the orphan ${childPid} gone`, () => !isAlive(childPid));
    expect(exits).toHaveLength(1);
  });

  it('a rollout: next beside current, promoted; records and logs follow; a controller lost mid-rollout leaves one copy', async () => {
    const root = await tempDir();
    const layout = new StateLayout(root);
    const runtime = new ProcessRuntime({ layout, clock: systemClock, stdinGraceMs: 100, termGraceMs: 300 });
    const exits: Termination[] = [];
    runtime.onExit((_n, t) => exits.push(t));
    const first = await runtime.start(launch('s', 'echo first $$; sleep 30', root));
    const second = await runtime.start({ ...launch('s', 'echo second $$; sleep 30', root), configHash: 'h2', generation: 2 }, 'next');
    expect(runtime.observe('s')?.pid).toBe(first.pid);
    expect(runtime.observe('s', 'next')?.pid).toBe(second.pid);
    await expect(runtime.start(launch('s', 'sleep 30', root), 'next')).rejects.toThrow(/already has a next process/);
    // Both have written their first line (under load a shell can take a while to start).
    await waitFor("the next process's first line", async () => (await readFile(layout.nextLogFile('s'), 'utf8')).includes('second'));
    await waitFor("the current process's first line", async () => (await readFile(layout.logFile('s'), 'utf8')).includes('first'));
    expect(JSON.parse(await readFile(layout.processRecord('s', 'next'), 'utf8')).pid).toBe(second.pid);

    runtime.promote('s');
    expect(runtime.observe('s')).toMatchObject({ pid: second.pid, slot: 'current' });
    expect(runtime.observe('s', 'old')).toMatchObject({ pid: first.pid, slot: 'old' });
    expect(runtime.observe('s', 'next')).toBeUndefined();
    expect(() => runtime.promote('s')).toThrow(/no next process/);
    expect(await readFile(layout.logFile('s'), 'utf8')).toContain('second');
    expect(await readFile(layout.previousLogFile('s'), 'utf8')).toContain('first');
    const records = async (): Promise<string[]> => Promise.all([readFile(layout.processRecord('s'), 'utf8').catch(() => ''), readFile(layout.processRecord('s', 'old'), 'utf8').catch(() => '')]);
    // Rewritten in order (old, current), then next's removed: all three done, the last one too.
    const nextGone = async (): Promise<boolean> => stat(layout.processRecord('s', 'next')).then(() => false, () => true);
    await waitFor('the process records rewritten for the promotion and next.json removed', async () => {
      const [current, old] = await records();
      return current!.includes(`"pid": ${second.pid}`) && old!.includes(`"pid": ${first.pid}`) && (await nextGone());
    }, 10_000, { observe: records });
    expect(JSON.parse(await readFile(layout.processRecord('s'), 'utf8')).pid).toBe(second.pid);
    expect(JSON.parse(await readFile(layout.processRecord('s', 'old'), 'utf8')).pid).toBe(first.pid);

    // The controller is lost here (its runtime forgotten, the processes left running): the next one
    // adopts the current process and ends the old one, so two copies never outlive a rollout.
    const next = new ProcessRuntime({ layout, clock: systemClock });
    const report = await next.adopt();
    expect(report.adopted.map((p) => p.pid)).toEqual([second.pid]);
    expect(report.strays).toEqual([{ name: 's', pid: first.pid, action: 'killed' }]);
    await waitFor(`the old process ${first.pid} gone`, () => !isAlive(first.pid));
    await expect(stat(layout.processRecord('s', 'old'))).rejects.toThrow();
    await next.stop('s');
    expect(isAlive(second.pid)).toBe(false);
  });

  it('a missing working directory or command is a StartFailed error, not a crash', async () => {
    const root = await tempDir();
    const runtime = new ProcessRuntime({ layout: new StateLayout(root), clock: systemClock });
    await expect(runtime.start({ ...launch('x', 'true', root), cwd: `${root}/nope` })).rejects.toMatchObject({ code: 'StartFailed', message: `working directory ${root}/nope does not exist` });
    await expect(runtime.start({ ...launch('y', 'true', root), command: 'no-such-binary-xyz' })).rejects.toMatchObject({ code: 'StartFailed', message: 'command "no-such-binary-xyz" not found on PATH' });
  });
});

describe('ProcessRuntime exit reporting', () => {
  it('reports an exit in the same turn the process leaves observe(), so no reconcile sees neither', async () => {
    const root = await tempDir();
    const runtime = new ProcessRuntime({ layout: new StateLayout(root), clock: systemClock });
    let reported = false;
    let gap = false;
    runtime.onExit(() => (reported = true));
    await runtime.start(launch('quick', 'sleep 0.3; exit 3', root));
    expect(runtime.observe('quick')).toBeDefined();
    // Look between every I/O turn, as a reconcile woken by another event would.
    while (!reported) {
      if (runtime.observe('quick') === undefined && !reported) gap = true;
      await new Promise((r) => setImmediate(r));
    }
    expect(gap).toBe(false);
    expect(runtime.observe('quick')).toBeUndefined();
  });
});

function procState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}

function wchan(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/wchan`, 'utf8');
  } catch {
    return '?';
  }
}

/**
 * The state a process settles in. A signal reaches a process only once it leaves an
 * uninterruptible sleep ('D', e.g. paging in its binary right after exec), so a state
 * read right after kill() can still show the state from before it.
 */
async function settledState(pid: number, want: string): Promise<string | undefined> {
  const settled = (state: string | undefined): boolean => state === want || (state !== 'D' && state !== 'R');
  const look = (): { state: string | undefined } | false => {
    const state = procState(pid);
    return settled(state) && { state };
  };
  return (await waitFor(`process ${pid} settled (${want}, or any state but D and R)`, look, 10_000, { observe: () => procState(pid) })).state;
}

describe('ProcessRuntime holding a cold start', () => {
  it('keeps processes started while holding stopped until releaseHeld, then lets them run', async () => {
    const root = await tempDir();
    const runtime = new ProcessRuntime({ layout: new StateLayout(root), clock: systemClock });
    runtime.holdStarts();
    // sleep itself, not through sh: dash vforks, and its parent half waits in 'D' (kernel_clone)
    // for as long as the stopped child is held, which says nothing about the hold.
    const held = await runtime.start({ ...launch('held', '', root), command: 'sleep', args: ['30'] });
    expect(await settledState(held.pid, 'T'), `waiting in ${wchan(held.pid)}`).toBe('T');
    runtime.releaseHeld(); // SIGCONT, sent before it returns
    await waitFor('the released process sleeping in its own sleep (S)', () => procState(held.pid) === 'S', 10_000, { observe: () => `${procState(held.pid)} in ${wchan(held.pid)}` });
    const later = await runtime.start({ ...launch('later', '', root), command: 'sleep', args: ['30'] });
    expect(procState(later.pid)).not.toBe('T');
    await Promise.all([runtime.stop('held'), runtime.stop('later')]);
  });
});
