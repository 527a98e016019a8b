/** The manager alone: runnables in order, one queue, one reconciler per kind, a stop that drains before anything stops. */
import { describe, expect, it } from 'vitest';
import { resourceKey, type ResourceKey } from '../src/api/names.js';
import type { Host, Reconciler, Runnable } from '../src/api/runnable.js';
import { Manager } from '../src/controller/manager.js';
import { FakeClock } from '../src/util/clock.js';
import { createLogger } from '../src/util/logger.js';

const logger = createLogger(() => undefined, 'error');

/** A runnable that writes what happens to it into `log`. */
function recorder(name: string, log: string[], extra: Partial<Runnable> = {}): Runnable {
  return {
    name,
    async start() {
      log.push(`start ${name}`);
    },
    started() {
      log.push(`started ${name}`);
    },
    async stop() {
      log.push(`stop ${name}`);
    },
    ...extra,
  };
}

describe('Manager', () => {
  it('starts runnables in the order added, reconciles the first full pass, and stops them in reverse once the queue has drained', async () => {
    const log: string[] = [];
    const manager = new Manager({ clock: new FakeClock(), logger, keys: () => [resourceKey('MCPServer', 'a')] });
    let release: () => void = () => undefined;
    const slow = new Promise<void>((resolve) => (release = resolve));
    let begun: () => void = () => undefined;
    const reconciling = new Promise<void>((resolve) => (begun = resolve));
    manager.add({
      ...recorder('backend', log),
      async start(host: Host) {
        log.push('start backend');
        host.register('MCPServer', {
          async reconcile(name) {
            log.push(`reconcile ${name}`);
            begun();
            await slow;
            log.push(`reconciled ${name}`);
            return {};
          },
        });
      },
    });
    manager.add(recorder('watcher', log));
    await manager.start();
    await reconciling;
    expect(log.filter((l) => l !== 'reconcile a')).toEqual(['start backend', 'start watcher', 'started backend', 'started watcher']);
    const stopped = manager.stop();
    // Nothing stops while a reconcile is in progress.
    await new Promise((resolve) => setImmediate(resolve));
    expect(log.some((l) => l.startsWith('stop '))).toBe(false);
    release();
    await stopped;
    expect(log.slice(-3)).toEqual(['reconciled a', 'stop watcher', 'stop backend']);
  });

  it('aborts the signal a reconcile in progress holds when it stops', async () => {
    const manager = new Manager({ clock: new FakeClock(), logger, keys: () => [resourceKey('GitRepository', 'repo')] });
    let seen: AbortSignal | undefined;
    const inProgress = new Promise<void>((resolve) => {
      manager.register('GitRepository', {
        reconcile: (_name, signal) =>
          new Promise((done) => {
            seen = signal;
            resolve();
            signal?.addEventListener('abort', () => done({}));
          }),
      });
    });
    await manager.start();
    await inProgress;
    expect(seen?.aborted).toBe(false);
    await manager.stop();
    expect(seen?.aborted).toBe(true);
  });

  it('a Secret wakes the keys its map names; a key not admitted is not reconciled', async () => {
    const reconciled: string[] = [];
    let open = false;
    const manager = new Manager({
      clock: new FakeClock(),
      logger,
      wakes: (key) => (key === resourceKey('Secret', 's') ? [resourceKey('MCPServer', 'uses-s')] : []),
      admit: (key) => open || !key.startsWith('MCPServer'),
    });
    const record: Reconciler = { reconcile: async (name) => (reconciled.push(name), {}) };
    manager.register('MCPServer', record);
    manager.register('Secret', record);
    await manager.start();
    manager.enqueue([resourceKey('Secret', 's')]);
    await manager.idle();
    expect(reconciled.sort()).toEqual(['s']);
    open = true;
    manager.enqueue([resourceKey('Secret', 's')]);
    await manager.idle();
    expect(reconciled.sort()).toEqual(['s', 's', 'uses-s']);
    await manager.stop();
  });

  it('a runnable that fails to start stops those started before it, and a second reconciler for a kind is refused', async () => {
    const log: string[] = [];
    const manager = new Manager({ clock: new FakeClock(), logger });
    manager.add(recorder('first', log));
    manager.add({ ...recorder('broken', log), start: () => Promise.reject(new Error('cannot listen')) });
    manager.add(recorder('never', log));
    await expect(manager.start()).rejects.toThrow('cannot listen');
    expect(log).toEqual(['start first', 'stop first']);
    manager.register('Secret', { reconcile: async () => ({}) });
    expect(() => manager.register('Secret', { reconcile: async () => ({}) })).toThrow('registered already');
  });

  it('requeues after what a reconcile asks, on the clock; resync asks every runnable, then queues every key', async () => {
    const clock = new FakeClock();
    const keys = new Set<ResourceKey>([resourceKey('GitRepository', 'repo')]);
    let passes = 0;
    let resyncs = 0;
    const manager = new Manager({ clock, logger, resyncMs: 60_000, keys: () => keys });
    manager.register('GitRepository', { reconcile: async () => (passes++, { requeueAfterMs: 10_000 }) });
    manager.add({ name: 'source', start: async () => undefined, stop: async () => undefined, resync: async () => void resyncs++ });
    await manager.start();
    await manager.idle();
    expect(passes).toBe(1);
    clock.advance(9_999);
    await manager.idle();
    expect(passes).toBe(1);
    clock.advance(1);
    await manager.idle();
    expect(passes).toBe(2);
    await manager.resync();
    await manager.idle();
    expect([passes, resyncs]).toEqual([3, 1]);
    await manager.stop();
  });

  it('each kind has its own queue: a GitRepository key is not held up behind busy servers', async () => {
    let release: () => void = () => undefined;
    const blocked = new Promise<void>((resolve) => (release = resolve));
    const servers = Array.from({ length: 50 }, (_, i) => resourceKey('MCPServer', `s${i}`));
    const manager = new Manager({ clock: new FakeClock(), logger, workers: 2, keys: () => servers });
    manager.register('MCPServer', { reconcile: () => blocked.then(() => ({})) });
    let fetched: () => void = () => undefined;
    const sourceReconciled = new Promise<void>((resolve) => (fetched = resolve));
    manager.register('GitRepository', { reconcile: async () => (fetched(), {}) }, { workers: 1 });
    await manager.start();
    manager.enqueue([resourceKey('GitRepository', 'repo')]);
    // Every server worker is blocked, yet the source's key is reconciled.
    await sourceReconciled;
    expect(manager.busy().filter((k) => k.startsWith('MCPServer')).length).toBe(2);
    release();
    await manager.idle();
    await manager.stop();
  });
});
