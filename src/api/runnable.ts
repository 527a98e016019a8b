/**
 * The seams of the manager, as controller-runtime names them: a `Reconciler`
 * per kind, handed only a name, and `Runnable`s (watchers, sources, backends,
 * endpoints, the console) that the manager starts in the order they were
 * added and stops in reverse. Types only: every room may implement them
 * without importing the manager (which calls them, not the other way round).
 */
import type { Kind, ResourceKey } from './names.js';

export interface ReconcileResult {
  /** Reconcile this key again after this long (a back-off, an interval), unless an event brings it sooner. */
  requeueAfterMs?: number;
}

/** controller-runtime's Reconcile(ctx, req): one per kind; it reads the world afresh each time. */
export interface Reconciler {
  /** `signal` aborts when the manager stops: long work (a git fetch) gives up at once. */
  reconcile(name: string, signal?: AbortSignal): Promise<ReconcileResult>;
}

/** What the manager offers whatever it runs: the queue, and the registry of reconcilers. */
export interface Host {
  /**
   * Queues keys; a Secret also queues every MCPServer that references it.
   * Readers are not told: whoever changed what they show (a manifest re-read)
   * calls `changed()`; a process exit or an endpoint's news reaches them
   * through the status it leads to.
   */
  enqueue(keys: Iterable<ResourceKey>): void;
  /** Queues every key any key source knows (the manifests, the records, what runs). */
  enqueueAll(): void;
  /**
   * `For(kind)`: the one reconciler of a kind, with its own queue (a kind's
   * thousand keys never hold up another's one) and `workers` reconciling it in
   * parallel (MaxConcurrentReconciles; the manager's default when absent).
   */
  register(kind: Kind, reconciler: Reconciler, options?: { workers?: number }): void;
  /** Readers (the console's feed) hear that what they show may have changed. */
  changed(): void;
  /** Resolves when nothing is queued or in progress. */
  idle(): Promise<void>;
  /** Aborts when the manager begins to stop. */
  readonly signal: AbortSignal;
}

/** Anything the manager runs: `start` in the order added, `stop` in reverse, after the work queue has drained. */
export interface Runnable {
  /** For logs and `stopProgress`: what is starting or stopping. */
  readonly name: string;
  start(host: Host): Promise<void>;
  /** Every runnable started and the first full pass queued. */
  started?(): void;
  /** The periodic resync: re-read what an event may have missed. */
  resync?(): Promise<void>;
  /** Keys this runnable knows of (what runs, what it made on a cluster): queued by `enqueueAll`. */
  keys?(): Iterable<ResourceKey>;
  stop(): Promise<void>;
}
