/**
 * The one back-off rule: a delay that doubles with each failed try, up to a
 * cap. Every retry in apiary (a crashed server, the work queue, the git
 * source, cluster links and pods) keeps its own numbers and uses this.
 */

export interface BackoffPolicy {
  /** The delay before the first retry. */
  baseMs: number;
  /** No delay is longer than this. */
  capMs: number;
  /**
   * A fraction (0 to 1) of the delay that may be taken off at random, so that
   * many waiting on the same failure do not all wake at once. None by default.
   */
  jitter?: number;
}

/**
 * The delay before retry number `attempt` (1 for the first): baseMs, then
 * twice that each time, at most capMs. An attempt below 1 counts as the first.
 * `random` stands in for Math.random in tests.
 */
export function backoff(policy: BackoffPolicy, attempt: number, random: () => number = Math.random): number {
  const doublings = Math.max(0, Math.floor(attempt) - 1);
  const delay = Math.min(policy.capMs, policy.baseMs * 2 ** doublings);
  const jitter = Math.min(1, Math.max(0, policy.jitter ?? 0));
  return jitter === 0 ? delay : Math.round(delay * (1 - jitter * random()));
}

/** Flux's jitter on a requeue interval: up to this fraction is added, so sources that share an interval drift apart. */
export const INTERVAL_JITTER = 0.1;

/**
 * `ms` plus up to `fraction` of it at random (never less than `ms`): a
 * periodic task that many run at once (every source's fetch) spreads out
 * instead of waking together. `random` stands in for Math.random in tests.
 */
export function jitter(ms: number, fraction: number = INTERVAL_JITTER, random: () => number = Math.random): number {
  const share = Math.min(1, Math.max(0, fraction));
  return share === 0 ? ms : Math.round(ms + ms * share * random());
}
