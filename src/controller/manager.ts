/**
 * The manager, as controller-runtime's: it runs what it is given and knows
 * nothing of what each thing is. Runnables (the backend that runs the
 * servers, the MCP endpoints, the manifest watcher or the git source, the
 * request watcher, the console) start in the order they were added; each
 * kind has its reconciler and its own work queue (as each controller has in
 * controller-runtime); a periodic resync re-reads what an event may have
 * missed. Stopping aborts the reconciles in progress,
 * drains the queue, then stops the runnables in reverse order.
 */
import { KINDS, parseResourceKey, type Kind, type ResourceKey } from '../api/names.js';
import type { Host, ReconcileResult, Reconciler, Runnable } from '../api/runnable.js';
import { messageOf } from '../errors.js';
import type { Clock, Timer } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import { WorkQueue } from './queue.js';

export interface ManagerOptions {
  clock: Clock;
  logger: Logger;
  /** How often everything is re-read and reconciled (default 30 s). */
  resyncMs?: number;
  /** Reconciles of a kind in parallel, unless its registration says otherwise (default 16; one key is never reconciled twice at once). */
  workers?: number;
  /** Keys every full pass queues beside the runnables' own (the manifests, the status records). */
  keys?: () => Iterable<ResourceKey>;
  /** controller-runtime's `Watches` with a map function: the keys a queued key also wakes (a Secret, the servers using it). */
  wakes?: (key: ResourceKey) => Iterable<ResourceKey>;
  /** controller-runtime's predicates: a key not admitted now is dropped from the queue unreconciled (a full pass brings it back). */
  admit?: (key: ResourceKey) => boolean;
}

export class Manager implements Host {
  readonly #opts: ManagerOptions;
  /** One queue per kind: the GitRepository's key is not queued behind a thousand servers a new revision woke. */
  readonly #queues = new Map<Kind, WorkQueue<ResourceKey>>();
  readonly #reconcilers = new Map<Kind, { reconciler: Reconciler; workers: number }>();
  readonly #runnables: Runnable[] = [];
  readonly #started: Runnable[] = [];
  readonly #observers = new Set<() => void>();
  readonly #abort = new AbortController();
  #workers: Promise<void>[] = [];
  #resyncTimer: Timer | undefined;
  #stopping = false;
  /** What a stop in progress is doing, for a log line when it takes long. */
  step = 'not stopping';

  constructor(options: ManagerOptions) {
    this.#opts = options;
    for (const kind of KINDS) this.#queues.set(kind, new WorkQueue<ResourceKey>({ clock: options.clock }));
  }

  #queue(key: ResourceKey): WorkQueue<ResourceKey> {
    return this.#queues.get(parseResourceKey(key).kind)!;
  }

  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  /** `mgr.Add(runnable)`: started after those added before it, stopped before them. */
  add(runnable: Runnable): void {
    this.#runnables.push(runnable);
  }

  register(kind: Kind, reconciler: Reconciler, options: { workers?: number } = {}): void {
    if (this.#reconcilers.has(kind)) throw new Error(`a reconciler for ${kind} is registered already`);
    this.#reconcilers.set(kind, { reconciler, workers: options.workers ?? this.#opts.workers ?? 16 });
  }

  /**
   * Hears that what readers see may have changed (a manifest re-read, a
   * status written). Level, not edge: the listener reads a fresh snapshot.
   */
  observe(listener: () => void): () => void {
    this.#observers.add(listener);
    return () => this.#observers.delete(listener);
  }

  changed(): void {
    for (const listener of this.#observers) listener();
  }

  enqueue(keys: Iterable<ResourceKey>): void {
    for (const key of keys) {
      this.#queue(key).add(key);
      for (const woken of this.#opts.wakes?.(key) ?? []) this.#queue(woken).add(woken);
    }
  }

  enqueueAll(): void {
    const keys = new Set<ResourceKey>(this.#opts.keys?.() ?? []);
    for (const runnable of this.#started) for (const key of runnable.keys?.() ?? []) keys.add(key);
    for (const key of keys) this.#queue(key).add(key);
  }

  /** Every queue idle at once: a reconcile that queued work in another kind's queue is waited for too. */
  async idle(): Promise<void> {
    const queues = [...this.#queues.values()];
    while (!queues.every((queue) => queue.isIdle)) await Promise.all(queues.map((queue) => queue.idle()));
  }

  /** Keys being reconciled now. */
  busy(): ResourceKey[] {
    return [...this.#queues.values()].flatMap((queue) => queue.busy());
  }

  /** Starts every runnable in order, then the workers, then the first full pass. A runnable that fails to start stops those started before it. */
  async start(): Promise<void> {
    for (const runnable of this.#runnables) {
      try {
        await runnable.start(this);
      } catch (err) {
        await this.stop();
        throw err;
      }
      this.#started.push(runnable);
    }
    // A kind nobody reconciles still has its keys taken off its queue (and dropped), so the queue goes idle.
    for (const [kind, queue] of this.#queues) {
      const workers = this.#reconcilers.get(kind)?.workers ?? 1;
      for (let i = 0; i < workers; i++) this.#workers.push(this.#work(queue));
    }
    this.enqueueAll();
    for (const runnable of this.#started) runnable.started?.();
    this.#scheduleResync();
  }

  #scheduleResync(): void {
    this.#resyncTimer = this.#opts.clock.setTimeout(() => {
      void this.resync().finally(() => {
        if (!this.#stopping) this.#scheduleResync();
      });
    }, this.#opts.resyncMs ?? 30_000);
  }

  /** Every runnable re-reads what an event may have missed; then everything is reconciled. */
  async resync(): Promise<void> {
    for (const runnable of this.#started) {
      await runnable.resync?.().catch((err: unknown) => this.#opts.logger.warn('resync failed', { runnable: runnable.name, error: messageOf(err) }));
    }
    this.enqueueAll();
  }

  async #work(queue: WorkQueue<ResourceKey>): Promise<void> {
    for (;;) {
      const key = await queue.get();
      if (key === undefined) return;
      try {
        const result = await this.#reconcile(key);
        queue.forget(key);
        if (result.requeueAfterMs !== undefined) queue.addAfter(key, result.requeueAfterMs);
      } catch (err) {
        const delay = queue.addRateLimited(key);
        this.#opts.logger.error('reconcile failed', { key, error: messageOf(err), retryInMs: delay });
      } finally {
        queue.done(key);
      }
    }
  }

  #reconcile(key: ResourceKey): Promise<ReconcileResult> {
    if (this.#opts.admit?.(key) === false) return Promise.resolve({});
    const { kind, name } = parseResourceKey(key);
    return this.#reconcilers.get(kind)?.reconciler.reconcile(name, this.#abort.signal) ?? Promise.resolve({});
  }

  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#resyncTimer?.cancel();
    this.#abort.abort();
    this.step = 'waiting for reconciles in progress to finish';
    for (const queue of this.#queues.values()) queue.shutDown();
    await Promise.allSettled(this.#workers);
    for (const runnable of this.#started.slice().reverse()) {
      this.step = `stopping ${runnable.name}`;
      await runnable.stop().catch((err: unknown) => this.#opts.logger.warn('stop failed', { runnable: runnable.name, error: messageOf(err) }));
    }
    this.step = 'stopped';
  }
}
