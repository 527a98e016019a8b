/**
 * Waiting in tests: on a condition, never for a fixed time. A wait that runs
 * out fails and says what it waited for (and what it saw last), so a slow
 * machine shows as a clear timeout rather than a silent pass or a
 * confusing assertion further down.
 */

export type Probe<T> = () => T | undefined | false | Promise<T | undefined | false>;

export interface WaitOptions {
  /** What was seen instead, for the error (the last probe's value when not given). */
  observe?: () => unknown;
  /** How often to look; a wait on a child process or a file has nothing to subscribe to. */
  intervalMs?: number;
}

export class WaitTimeout extends Error {
  readonly code = 'WaitTimeout';
}

/**
 * Resolves with the probe's first value that is neither `undefined` nor
 * `false`; throws `timed out after N ms waiting for: <what>` once `timeoutMs` pass.
 */
export async function waitFor<T>(what: string, probe: Probe<T>, timeoutMs = 10_000, options: WaitOptions = {}): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    last = value;
    if (Date.now() > deadline) throw new WaitTimeout(await timeoutMessage(what, timeoutMs, options.observe, last));
    await pause(options.intervalMs ?? 10);
  }
}

async function timeoutMessage(what: string, timeoutMs: number, observe: WaitOptions['observe'], last: unknown): Promise<string> {
  const seen = observe === undefined ? last : await Promise.resolve(observe()).catch((error: unknown) => `(observing failed: ${String(error)})`);
  const shown = seen === undefined || seen === false ? '' : `; last observed: ${typeof seen === 'string' ? seen : JSON.stringify(seen, null, 1)}`;
  return `timed out after ${timeoutMs} ms waiting for: ${what}${shown}`;
}

/** The one pause in the suite: between two looks of a bounded wait. */
function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves with the promise's value, or throws the same timeout error as `waitFor`. */
export async function within<T>(what: string, promise: Promise<T>, timeoutMs = 10_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new WaitTimeout(`timed out after ${timeoutMs} ms waiting for: ${what}`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, limit]);
  } finally {
    clearTimeout(timer);
  }
}
