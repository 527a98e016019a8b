import { getEventListeners } from 'node:events';

/**
 * The most abort listeners any AbortSignal had while `run` ran. undici adds
 * one to a request's signal per request and takes it off only when the
 * request is garbage collected: a session that hands all its requests the
 * same signal piles them up on it (MaxListenersExceededWarning past 1500).
 */
export async function mostAbortListeners(run: () => Promise<void>): Promise<number> {
  const add = EventTarget.prototype.addEventListener;
  let most = 0;
  EventTarget.prototype.addEventListener = function (this: EventTarget, type: string, ...rest: [EventListenerOrEventListenerObject | null, (boolean | AddEventListenerOptions)?]) {
    add.call(this, type, ...rest);
    if (type === 'abort' && this instanceof AbortSignal) most = Math.max(most, getEventListeners(this, 'abort').length);
  };
  try {
    await run();
  } finally {
    EventTarget.prototype.addEventListener = add;
  }
  return most;
}
