/**
 * What a runtime keeps of each server's past runs, as the kubelet keeps a
 * container's status: how often it was restarted, how its last run ended,
 * and how many runs in a row failed (what back-off grows with). The
 * controller reads this as observed state; it keeps no copy of its own.
 * Only the serving process counts: a rollout's new or replaced process is
 * not a run of the server.
 */
import type { Termination } from './runtime.js';

/** A run this long resets the failure count: the next crash backs off from the start again. */
export const STEADY_RUN_MS = 10 * 60_000;

export interface RunHistory {
  /** Starts of a process after the previous one ended on its own (a stop asked for, or a rollout, is no restart). */
  restartCount: number;
  /** Runs in a row that ended on their own (or could not start); back-off grows with them. A stop asked for leaves it as it is. */
  failures: number;
  lastTermination?: Termination;
}

export const NO_HISTORY: RunHistory = Object.freeze({ restartCount: 0, failures: 0 });

export class RunHistories {
  readonly #byName = new Map<string, RunHistory>();

  get(name: string): RunHistory {
    return this.#byName.get(name) ?? NO_HISTORY;
  }

  /** A serving process starts: a restart when the last one ended on its own. */
  started(name: string): void {
    const h = this.get(name);
    const last = h.lastTermination;
    if (last !== undefined && last.reason !== 'Stopped') this.#byName.set(name, { ...h, restartCount: h.restartCount + 1 });
  }

  /** A serving process ended (or could not start). */
  ended(name: string, t: Termination): void {
    const h = this.get(name);
    const failures = t.reason === 'Stopped' ? h.failures : t.ranForMs >= STEADY_RUN_MS ? 1 : h.failures + 1;
    this.#byName.set(name, { ...h, lastTermination: t, failures });
  }

  /** Carries over what an earlier controller knew (its restart count), waives back-off ({ failures: 0 }), or forgets (undefined). */
  amend(name: string, change: Partial<RunHistory> | undefined): void {
    if (change === undefined) this.#byName.delete(name);
    else this.#byName.set(name, { ...this.get(name), ...change });
  }
}
