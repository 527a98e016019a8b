/**
 * "At most once a minute per server and X": which reports to make of
 * something that can repeat without end (a server echoing a secret in every
 * answer, a sandboxed server trying host after host). A key is reported the
 * first time in a window; a group (a server) reports at most `perGroup` keys
 * in a window, so a flood of distinct keys is a few reports; keys older than
 * the window are forgotten as new ones come, so memory stays bounded too.
 */
import type { Clock } from './clock.js';

export class OncePerWindow {
  readonly #clock: Clock;
  readonly #windowMs: number;
  readonly #perGroup: number;
  readonly #seen = new Map<string, Map<string, number>>();

  constructor(clock: Clock, windowMs: number, perGroup = Number.POSITIVE_INFINITY) {
    this.#clock = clock;
    this.#windowMs = windowMs;
    this.#perGroup = perGroup;
  }

  /** Whether to report `key` of `group` now; a true answer starts its window. */
  first(group: string, key: string): boolean {
    const now = this.#clock.now();
    const seen = this.#seen.get(group) ?? new Map<string, number>();
    this.#seen.set(group, seen);
    for (const [k, at] of seen) if (now - at >= this.#windowMs) seen.delete(k);
    if (seen.has(key) || seen.size >= this.#perGroup) return false;
    seen.set(key, now);
    return true;
  }

  /** A group gone (a server deleted): its keys forgotten. */
  forget(group: string): void {
    this.#seen.delete(group);
  }
}
