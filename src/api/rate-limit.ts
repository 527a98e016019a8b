/**
 * Rate limits (issue 26): token buckets with a lazy refill, kept per caller,
 * per server and per tool, asked once per call by the endpoints (gate.ts
 * RateLimiter). Pure: no timers, the clock is passed in, so a test moves time
 * instead of sleeping.
 *
 * Which buckets a call to `server`/`tool` by `caller` spends from:
 * - subject: the Gateway's perSubject, one bucket per caller across every
 *   server; and the server's own perSubject, one bucket per caller at that
 *   server (a server may be stricter with each caller; it cannot lift the
 *   Gateway's cap on a caller's total).
 * - server: the server's own perServer if it sets one, else the Gateway's;
 *   one bucket per server, across callers.
 * - tool: the server's own perTool rules if it sets perTool (`[]` lifts the
 *   Gateway's), else the Gateway's rules whose server glob matches; one
 *   bucket per rule and tool, across callers.
 * A field the server leaves out keeps the Gateway's: an MCPServer adjusts the
 * limits field by field, it does not silently drop the ones it does not name.
 *
 * A call spends one token from every bucket that applies, or from none: all
 * are checked first, so a refused call costs nothing (a client that retries
 * too early does not push its own retry further away).
 *
 * What a bucket promises: `requests` calls at once (the burst), then one
 * every `perSeconds / requests` seconds. Over any stretch of w seconds a key
 * gets at most `requests + floor(w * requests / perSeconds)` calls: a full
 * bucket plus what refilled. (So within one period up to 2·requests − 1 may
 * pass, as with every token bucket; the long-run rate is requests/perSeconds.)
 *
 * Arithmetic is kept exact for whole-millisecond clocks and periods: a bucket
 * holds `level` in units of 1/requests of a token-millisecond, so refill adds
 * `requests` per millisecond and a call costs `perSeconds * 1000`; both are
 * integers whenever the period is a whole number of milliseconds, and so is
 * retryAfterMs, the first millisecond at which the call would pass.
 */
import { compileGlobs } from './access.js';
import type { RateLimited, RateLimiter } from './gate.js';
import type { GatewayRateLimits, RateLimit } from './manifests.js';

/** How many buckets of each kind (subject, server, tool) are kept; beyond it the least recently used go. */
export const MAX_BUCKETS = 4096;
/** How many of the oldest buckets an insertion looks at for one that has refilled (dropping it loses nothing). */
const SWEEP = 8;

type Limit = RateLimited['limit'];

interface Rate {
  /** A full bucket, in units (requests · period ms). */
  cap: number;
  /** What one call costs: the period in ms. */
  cost: number;
  /** Units refilled per ms: requests. */
  refill: number;
}

interface Bucket {
  level: number;
  at: number;
  rate: Rate;
  /** Spent from since eviction last passed it (see BucketMap). */
  used: boolean;
}

/** The buckets a call to one server may spend from, compiled once per server. */
/** Every field present (undefined when unset): one object shape for every plan keeps take() monomorphic. */
interface Plan {
  subject: Rate | undefined;
  serverSubject: Rate | undefined;
  serverSubjectKeys: Keys;
  server: Rate | undefined;
  tools: readonly { keys: Keys; tool: (name: string) => boolean; rate: Rate }[];
}

/**
 * Bucket keys, made once per name. A key concatenated on every call is a new
 * string V8 must flatten and hash before a Map finds it: measured, that was
 * most of take()'s time (~0.4 µs of a tool bucket's ~0.6); a remembered key
 * is hashed once.
 */
class Keys {
  readonly #made = new Map<string, string>();
  readonly #prefix: string;

  constructor(prefix: string) {
    this.#prefix = prefix;
  }

  of(name: string): string {
    let key = this.#made.get(name);
    if (key === undefined) {
      if (this.#made.size >= MAX_BUCKETS) this.#made.clear();
      key = this.#prefix + name;
      this.#made.set(name, key);
    }
    return key;
  }
}

/** A rate limiter that also says how many buckets it holds (the memory bound, for tests). */
export interface TokenBuckets extends RateLimiter {
  readonly size: number;
}

export interface RateLimiterOptions {
  /** Per kind of bucket; default MAX_BUCKETS. */
  maxBuckets?: number;
}

/** The period in ms, to the microsecond: 3.126 s is 3126 ms, not 3125.9999999999995 (binary floating point). */
export function periodMs(limit: RateLimit): number {
  return Math.max(Math.round(limit.perSeconds * 1e6) / 1e3, 1e-3);
}

function rateOf(limit: RateLimit | undefined): Rate | undefined {
  if (limit === undefined) return undefined;
  const cost = periodMs(limit);
  return { cap: limit.requests * cost, cost, refill: limit.requests };
}

/** The bucket's level at `now`: what it held, plus what refilled since, up to full. */
function levelAt(bucket: Bucket, now: number): number {
  return Math.min(bucket.rate.cap, bucket.level + Math.max(0, now - bucket.at) * bucket.rate.refill);
}

/**
 * Buckets of one kind, oldest first (a Map keeps insertion order). A use
 * marks its bucket rather than re-inserting it, which would cost a delete and
 * an insert per call; eviction gives a marked bucket a second chance (the
 * CLOCK approximation of least recently used).
 */
class BucketMap {
  readonly #map = new Map<string, Bucket>();
  readonly #max: number;

  constructor(max: number) {
    this.#max = max;
  }

  get size(): number {
    return this.#map.size;
  }

  get(key: string): Bucket | undefined {
    return this.#map.get(key);
  }

  /** Spends one call's cost from `bucket` (found by get) at `level`, or starts a bucket for `key`. */
  spend(key: string, bucket: Bucket | undefined, rate: Rate, level: number, now: number): void {
    if (bucket !== undefined) {
      bucket.level = level - rate.cost;
      bucket.at = Math.max(now, bucket.at);
      bucket.used = true;
      return;
    }
    if (this.#map.size >= this.#max) this.#evict(now);
    this.#map.set(key, { level: level - rate.cost, at: now, rate, used: false });
  }

  /**
   * Makes room: a full bucket among the oldest is dropped for free (it is what
   * a fresh one would be); failing that, the least recently used goes, and
   * that key starts again full (the price of a bound: many distinct callers
   * or tool names can each get a fresh burst once pushed out).
   */
  #evict(now: number): void {
    let looked = 0;
    for (const [key, bucket] of this.#map) {
      if (levelAt(bucket, now) >= bucket.rate.cap) {
        this.#map.delete(key);
        return;
      }
      if (++looked >= SWEEP) break;
    }
    for (const [key, bucket] of this.#map) {
      this.#map.delete(key);
      if (!bucket.used) return;
      // Used since it was last looked at: to the back, as if inserted now (a Map iterates entries added during the loop, so this ends once every mark is cleared).
      bucket.used = false;
      this.#map.set(key, bucket);
    }
  }
}

function planFor(server: string, gateway: GatewayRateLimits | undefined, own: GatewayRateLimits | undefined): Plan {
  const rules = own?.perTool !== undefined
    ? own.perTool.map((rule, i) => ({ id: `s${i}`, rule }))
    : (gateway?.perTool ?? []).map((rule, i) => ({ id: `g${i}`, rule })).filter(({ rule }) => rule.server === undefined || compileGlobs([rule.server])(server));
  return {
    subject: rateOf(gateway?.perSubject),
    serverSubject: rateOf(own?.perSubject),
    // Server names are [a-z0-9-]: '*' never starts one, so the Gateway's per-caller keys (maps.subjectKeys) and a server's cannot meet.
    serverSubjectKeys: new Keys(`${server}\0`),
    server: rateOf(own?.perServer ?? gateway?.perServer),
    tools: rules.map(({ id, rule }) => ({ keys: new Keys(`${id}\0${server}\0`), tool: compileGlobs([rule.tool]), rate: rateOf(rule)! })),
  };
}

function anyLimit(limits: GatewayRateLimits | undefined): boolean {
  return limits !== undefined && (limits.perSubject !== undefined || limits.perServer !== undefined || (limits.perTool?.length ?? 0) > 0);
}

/** How many servers' plans are kept; servers come from the manifests, so this is only a guard. */
const MAX_PLANS = 1024;

/**
 * The limiter for a Gateway's `spec.rateLimits` and each MCPServer's own
 * (`perServer`, by server name); undefined when neither sets a limit, so the
 * endpoints skip the check entirely. `now` in milliseconds.
 */
export function createRateLimiter(
  gateway: GatewayRateLimits | undefined,
  perServer: ReadonlyMap<string, GatewayRateLimits>,
  now: () => number,
  options: RateLimiterOptions = {},
): TokenBuckets | undefined {
  if (!anyLimit(gateway) && ![...perServer.values()].some(anyLimit)) return undefined;
  const max = options.maxBuckets ?? MAX_BUCKETS;
  const maps: Maps = { subject: new BucketMap(max), server: new BucketMap(max), tool: new BucketMap(max), subjectKeys: new Keys('*\0') };
  const plans = new Map<string, Plan>();
  const planOf = (server: string): Plan => {
    let plan = plans.get(server);
    if (plan === undefined) {
      plan = planFor(server, gateway, perServer.get(server));
      if (plans.size >= MAX_PLANS) plans.clear();
      plans.set(server, plan);
    }
    return plan;
  };
  return {
    get size() {
      return maps.subject.size + maps.server.size + maps.tool.size;
    },
    take: (callerKey, server, tool) => take(maps, planOf(server), callerKey, server, tool, now()),
  };
}

type Maps = Record<Limit, BucketMap> & { subjectKeys: Keys };

interface Charge {
  limit: Limit;
  key: string;
  rate: Rate;
  bucket: Bucket | undefined;
  level: number;
}

/** The buckets this call spends from, in the order subject, server, tool (the order a tie is reported in). */
function charges(maps: Maps, plan: Plan, callerKey: string, server: string, tool: string | undefined, now: number): Charge[] {
  const out: Charge[] = [];
  const add = (limit: Limit, key: string, rate: Rate): void => {
    const bucket = maps[limit].get(key);
    out.push({ limit, key, rate, bucket, level: bucket === undefined ? rate.cap : levelAt(bucket, now) });
  };
  if (plan.subject !== undefined) add('subject', maps.subjectKeys.of(callerKey), plan.subject);
  if (plan.serverSubject !== undefined) add('subject', plan.serverSubjectKeys.of(callerKey), plan.serverSubject);
  if (plan.server !== undefined) add('server', server, plan.server);
  if (tool !== undefined) {
    for (const rule of plan.tools) if (rule.tool(tool)) add('tool', rule.keys.of(tool), rule.rate);
  }
  return out;
}

/**
 * Checks every bucket, then spends from all or none. Refused: the bucket
 * that keeps the call waiting longest, and how long (after that many ms
 * every bucket that refused now holds a token again).
 */
function take(maps: Maps, plan: Plan, callerKey: string, server: string, tool: string | undefined, now: number): RateLimited | undefined {
  const all = charges(maps, plan, callerKey, server, tool, now);
  let refused: RateLimited | undefined;
  for (const c of all) {
    if (c.level >= c.rate.cost) continue;
    const retryAfterMs = Math.ceil((c.rate.cost - c.level) / c.rate.refill);
    if (refused === undefined || retryAfterMs > refused.retryAfterMs) refused = { limit: c.limit, retryAfterMs };
  }
  if (refused !== undefined) return refused;
  // Existing buckets first: a new one's insertion may evict, and what was just spent from is then marked used, not an unmarked victim.
  for (const c of all) if (c.bucket !== undefined) maps[c.limit].spend(c.key, c.bucket, c.rate, c.level, now);
  for (const c of all) if (c.bucket === undefined) maps[c.limit].spend(c.key, undefined, c.rate, c.level, now);
  return undefined;
}
