/** What the state directory holds per resource: the object `get -o json` prints, plus bookkeeping. */
import type { Kind } from '../api/names.js';
import type { ResourceEvent, AnyStatus } from '../api/status.js';

export interface ObjectMetadata {
  name: string;
  generation: number;
  creationTimestamp: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface StatusRecord {
  kind: Kind;
  metadata: ObjectMetadata;
  /** Hash of the spec (or secret data) that `generation` counts changes of. */
  specHash: string;
  status: AnyStatus;
  events: ResourceEvent[];
  /** The controller run that wrote this, and when. */
  writtenBy: { pid: number; runId: string };
  writtenAt: string;
}

export const MAX_EVENTS = 20;

/** Adds an event, folding a repeat of the latest same (type, reason, message) into a count. */
export function addEvent(
  events: readonly ResourceEvent[],
  event: { type: 'Normal' | 'Warning'; reason: string; message: string },
  now: string,
): ResourceEvent[] {
  const same = events.find((e) => e.type === event.type && e.reason === event.reason && e.message === event.message);
  if (same !== undefined) {
    const updated = { ...same, count: same.count + 1, lastTimestamp: now };
    return [...events.filter((e) => e !== same), updated];
  }
  const next = [...events, { ...event, count: 1, firstTimestamp: now, lastTimestamp: now }];
  return next.slice(-MAX_EVENTS);
}
