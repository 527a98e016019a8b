/**
 * Token buckets against random schedules: the bound a bucket promises over
 * every stretch of time, the retry hint to the millisecond, all-or-none
 * spending against a plain model of independent buckets, and the memory
 * bound. Time is a number the test moves; nothing sleeps.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RateLimited } from '../src/api/gate.js';
import type { GatewayRateLimits, RateLimit } from '../src/api/manifests.js';
import { createRateLimiter } from '../src/api/rate-limit.js';

const rate = fc.record({ requests: fc.integer({ min: 1, max: 6 }), perSeconds: fc.integer({ min: 1, max: 4_000 }).map((ms) => ms / 1000) });
const step = fc.record({ dt: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 50 }), fc.integer({ min: 0, max: 5_000 })), caller: fc.constantFrom('a', 'b', 'c'), server: fc.constantFrom('s1', 's2'), tool: fc.constantFrom('t1', 't2', undefined) });

/** At most requests + floor(w · requests / period) calls in any w ms, for every window between two accepted calls. */
function withinBound(times: readonly number[], limit: RateLimit): boolean {
  const period = Math.round(limit.perSeconds * 1000);
  for (let i = 0; i < times.length; i++) {
    for (let j = i; j < times.length; j++) {
      const calls = j - i + 1;
      if (calls > limit.requests + Math.floor(((times[j]! - times[i]!) * limit.requests) / period)) return false;
    }
  }
  return true;
}

describe('token buckets, property-based', () => {
  it('never let a key through more than a full bucket plus what refilled, over any stretch of time', () => {
    fc.assert(
      fc.property(rate, fc.array(step, { maxLength: 120 }), (limit, steps) => {
        let t = 0;
        const l = createRateLimiter({ perSubject: limit }, new Map(), () => t)!;
        const accepted = new Map<string, number[]>();
        for (const s of steps) {
          t += s.dt;
          if (l.take(s.caller, s.server, s.tool) === undefined) accepted.set(s.caller, [...(accepted.get(s.caller) ?? []), t]);
        }
        for (const times of accepted.values()) expect(withinBound(times, limit)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('reach that bound: a burst, then one call per token as it refills', () => {
    fc.assert(
      fc.property(rate, fc.integer({ min: 1, max: 20 }), (limit, periods) => {
        let t = 0;
        const l = createRateLimiter({ perServer: limit }, new Map(), () => t)!;
        let accepted = 0;
        const end = periods * Math.round(limit.perSeconds * 1000);
        while (t <= end) {
          const r = l.take('a', 's', undefined);
          if (r === undefined) accepted++;
          else t += r.retryAfterMs;
        }
        // Every call the bound allows over [0, end] was let through, none more.
        expect(accepted).toBe(limit.requests + periods * limit.requests);
      }),
      { numRuns: 200 },
    );
  });

  it('answer a refusal with the exact wait: refused 1 ms before it, let through at it (probing costs nothing)', () => {
    const limits = fc.record({ perSubject: fc.option(rate, { nil: undefined }), perServer: fc.option(rate, { nil: undefined }), perTool: fc.array(fc.record({ tool: fc.constantFrom('t1', '*'), requests: fc.integer({ min: 1, max: 4 }), perSeconds: fc.integer({ min: 1, max: 3_000 }).map((ms) => ms / 1000) }), { maxLength: 2 }) });
    fc.assert(
      fc.property(limits, fc.array(step, { maxLength: 80 }), (gateway, steps) => {
        let t = 0;
        const l = createRateLimiter(stripUndefined(gateway), new Map(), () => t);
        if (l === undefined) return;
        for (const s of steps) {
          t += s.dt;
          const r = l.take(s.caller, s.server, s.tool);
          if (r === undefined) continue;
          expect(r.retryAfterMs).toBeGreaterThanOrEqual(1);
          const start = t;
          t = start + r.retryAfterMs - 1;
          if (r.retryAfterMs > 1) expect(l.take(s.caller, s.server, s.tool)?.limit).toBe(r.limit);
          t = start + r.retryAfterMs;
          expect(l.take(s.caller, s.server, s.tool)).toBeUndefined();
        }
      }),
      { numRuns: 300 },
    );
  });

  it('spend from all the buckets a call meets or from none, as independent buckets would', () => {
    const servers = fc.record({ s1: fc.record({ perSubject: fc.option(rate, { nil: undefined }), perServer: fc.option(rate, { nil: undefined }) }), s2: fc.record({ perTool: fc.option(fc.array(fc.record({ tool: fc.constantFrom('t1', 't*'), requests: fc.integer({ min: 1, max: 4 }), perSeconds: fc.integer({ min: 1, max: 3_000 }).map((ms) => ms / 1000) }), { maxLength: 2 }), { nil: undefined }) }) });
    const gateway = fc.record({ perSubject: fc.option(rate, { nil: undefined }), perServer: fc.option(rate, { nil: undefined }), perTool: fc.array(fc.record({ server: fc.constantFrom('s1', 's*', undefined), tool: fc.constantFrom('t2', '*'), requests: fc.integer({ min: 1, max: 4 }), perSeconds: fc.integer({ min: 1, max: 3_000 }).map((ms) => ms / 1000) }), { maxLength: 2 }) });
    fc.assert(
      fc.property(gateway, servers, fc.array(step, { maxLength: 120 }), (g, own, steps) => {
        let t = 0;
        const perServer = new Map(Object.entries(own).map(([k, v]) => [k, stripUndefined(v)]));
        const l = createRateLimiter(stripUndefined(g), perServer, () => t);
        if (l === undefined) return;
        const model = new Model(stripUndefined(g), perServer);
        for (const s of steps) {
          t += s.dt;
          expect(l.take(s.caller, s.server, s.tool)).toEqual(model.take(s.caller, s.server, s.tool, t));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('hold at most maxBuckets of each kind, however many callers and tool names come', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 20 }), fc.array(fc.record({ dt: fc.integer({ min: 0, max: 2_000 }), caller: fc.string({ maxLength: 3 }), tool: fc.string({ maxLength: 3 }) }), { maxLength: 200 }), (max, steps) => {
        let t = 0;
        const l = createRateLimiter({ perSubject: { requests: 2, perSeconds: 1 }, perServer: { requests: 50, perSeconds: 1 }, perTool: [{ tool: '*', requests: 1, perSeconds: 1 }] }, new Map(), () => t, { maxBuckets: max })!;
        for (const s of steps) {
          t += s.dt;
          l.take(s.caller, 's', s.tool);
          expect(l.size).toBeLessThanOrEqual(2 * max + 1);
        }
      }),
      { numRuns: 200 },
    );
  });
});

function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/**
 * The rules as the module's comment states them, with nothing shared with
 * it: each bucket a float of tokens refilled by elapsed · requests / period,
 * a call allowed when every bucket it meets holds a whole token.
 */
class Model {
  readonly #tokens = new Map<string, { tokens: number; at: number }>();

  constructor(
    readonly gateway: GatewayRateLimits,
    readonly servers: ReadonlyMap<string, GatewayRateLimits>,
  ) {}

  take(caller: string, server: string, tool: string | undefined, now: number): RateLimited | undefined {
    const own = this.servers.get(server);
    const buckets: [RateLimited['limit'], string, RateLimit][] = [];
    if (this.gateway.perSubject) buckets.push(['subject', `gateway subject ${caller}`, this.gateway.perSubject]);
    if (own?.perSubject) buckets.push(['subject', `${server} subject ${caller}`, own.perSubject]);
    const perServer = own?.perServer ?? this.gateway.perServer;
    if (perServer) buckets.push(['server', `server ${server}`, perServer]);
    const rules = own?.perTool !== undefined ? own.perTool.map((r, i) => ({ r, id: `own${i}` })) : (this.gateway.perTool ?? []).map((r, i) => ({ r, id: `gw${i}` })).filter(({ r }) => r.server === undefined || glob(r.server).test(server));
    if (tool !== undefined) for (const { r, id } of rules) if (glob(r.tool).test(tool)) buckets.push(['tool', `${id} ${server} ${tool}`, r]);
    const levels = buckets.map(([limit, key, r]) => {
      const b = this.#tokens.get(key);
      const tokens = b === undefined ? r.requests : Math.min(r.requests, b.tokens + ((now - b.at) * r.requests) / (r.perSeconds * 1000));
      return { limit, key, r, tokens };
    });
    const short = levels.filter((b) => b.tokens < 1 - 1e-9);
    if (short.length > 0) {
      const waits = short.map((b) => ({ limit: b.limit, retryAfterMs: Math.ceil(((1 - b.tokens) * b.r.perSeconds * 1000) / b.r.requests - 1e-6) }));
      return waits.reduce((a, b) => (b.retryAfterMs > a.retryAfterMs ? b : a));
    }
    for (const b of levels) this.#tokens.set(b.key, { tokens: b.tokens - 1, at: now });
    return undefined;
  }
}

function glob(pattern: string): RegExp {
  return new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
}
