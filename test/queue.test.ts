import { describe, expect, it } from 'vitest';
import { FakeClock } from '../src/util/clock.js';
import { WorkQueue } from '../src/controller/queue.js';

/**
 * What get() hands out now, or 'none'. The queue hands out keys without
 * timers (timed work runs on the FakeClock), so a key it has is given by the
 * time the pending promise jobs have run: the next turn of the event loop.
 */
async function next(q: WorkQueue): Promise<string | undefined | 'none'> {
  return Promise.race([q.get(), afterPromiseJobs()]);
}

function afterPromiseJobs(): Promise<'none'> {
  return new Promise((r) => setImmediate(() => r('none')));
}

describe('WorkQueue', () => {
  it('de-duplicates keys waiting to be processed', async () => {
    const q = new WorkQueue({ clock: new FakeClock() });
    q.add('MCPServer/a');
    q.add('MCPServer/a');
    q.add('Secret/b');
    expect(q.length).toBe(2);
    expect(await q.get()).toBe('MCPServer/a');
    expect(await q.get()).toBe('Secret/b');
  });

  it('never hands out a key that is being processed, and re-queues it after if it was added meanwhile', async () => {
    const q = new WorkQueue({ clock: new FakeClock() });
    q.add('k');
    expect(await q.get()).toBe('k');
    q.add('k');
    const pending = q.get();
    expect(await Promise.race([pending, afterPromiseJobs()])).toBe('none');
    q.done('k');
    expect(await pending).toBe('k');
    q.done('k');
    expect(await next(q)).toBe('none');
  });

  it('a key added while processing is not re-queued twice', async () => {
    const q = new WorkQueue({ clock: new FakeClock() });
    q.add('k');
    await q.get();
    q.add('k');
    q.add('k');
    q.done('k');
    expect(q.length).toBe(1);
  });

  it('wakes a waiting worker', async () => {
    const q = new WorkQueue({ clock: new FakeClock() });
    const waiting = q.get();
    q.add('k');
    expect(await waiting).toBe('k');
  });

  it('addAfter fires on the clock, and the earliest schedule wins', async () => {
    const clock = new FakeClock();
    const q = new WorkQueue({ clock });
    q.addAfter('k', 5_000);
    q.addAfter('k', 1_000);
    q.addAfter('k', 3_000);
    clock.advance(999);
    expect(q.length).toBe(0);
    clock.advance(1);
    expect(q.length).toBe(1);
    clock.advance(10_000);
    expect(q.length).toBe(1);
  });

  it('backs off per key on errors, doubling, capped, and forget() resets it', () => {
    const clock = new FakeClock();
    const q = new WorkQueue({ clock, baseDelayMs: 100, maxDelayMs: 1_000 });
    expect([1, 2, 3, 4, 5, 6].map(() => q.addRateLimited('k'))).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(q.addRateLimited('other')).toBe(100);
    q.forget('k');
    expect(q.addRateLimited('k')).toBe(100);
  });

  it('shutDown releases waiting workers and drops timers', async () => {
    const clock = new FakeClock();
    const q = new WorkQueue({ clock });
    const waiting = q.get();
    q.addAfter('k', 100);
    q.shutDown();
    expect(await waiting).toBeUndefined();
    expect(clock.pending()).toBe(0);
  });
});

describe('WorkQueue.idle', () => {
  it('resolves once nothing is queued or in progress', async () => {
    const q = new WorkQueue({ clock: new FakeClock() });
    await q.idle();
    q.add('a');
    let idle = false;
    const waiting = q.idle().then(() => (idle = true));
    const key = await q.get();
    await Promise.resolve();
    expect(idle).toBe(false);
    q.done(key!);
    await waiting;
    expect(idle).toBe(true);
  });
});
