/**
 * The one duration parser: every `--timeout`, `--interval` and manifest
 * `interval:`/`timeout:` goes through it, so a value that works in one place
 * works in every other. It reads Go's (and so Kubernetes' and Flux's)
 * durations, `1h2m3.5s`, `500ms`, `90s`, `1m30s`, and the bare number of
 * seconds the CLI has always taken (`--timeout 30`).
 */
import { ApiaryError } from '../errors.js';

const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, 'μs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** One number with its unit; Go allows `1.5s`, `.5s` and `1.s`. */
const PART = /(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/gy;
const BARE_SECONDS = /^(?:\d+\.?\d*|\.\d+)$/;

/** `1h2m3.5s`, `500ms`, `90` (seconds) -> milliseconds; undefined when the text is no duration. */
export function parseDuration(text: string): number | undefined {
  if (BARE_SECONDS.test(text)) return Number(text) * 1000;
  if (text === '') return undefined;
  PART.lastIndex = 0;
  let total = 0;
  let end = 0;
  for (let part = PART.exec(text); part !== null; part = PART.exec(text)) {
    total += Number(part[1]) * UNIT_MS[part[2]!]!;
    end = PART.lastIndex;
  }
  return end === text.length ? total : undefined;
}

/** parseDuration for a value a person gave: a Usage error naming where the value came from (a flag, a field) and the value. */
export function requireDuration(text: string, where: string): number {
  const ms = parseDuration(text);
  if (ms === undefined) {
    throw new ApiaryError('Usage', `${where}: "${text}" is not a duration (use e.g. 500ms, 30s, 1m30s or 1h2m3.5s; a bare number is seconds)`);
  }
  return ms;
}
