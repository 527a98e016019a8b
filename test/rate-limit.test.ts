/**
 * Token buckets as a table: which buckets a call spends from (the Gateway's,
 * a server's own in their place), all or none, refill, the retry hint to the
 * millisecond, and the bound on memory. Time is a number the test moves.
 */
import { describe, expect, it } from 'vitest';
import type { RateLimited } from '../src/api/gate.js';
import type { GatewayRateLimits } from '../src/api/manifests.js';
import { createRateLimiter, type TokenBuckets } from '../src/api/rate-limit.js';
import { rateLimitError } from '../src/mcp/rate-limit-error.js';

class Clock {
  t = 0;
  readonly now = (): number => this.t;
}

function limiter(gateway: GatewayRateLimits | undefined, servers: Record<string, GatewayRateLimits> = {}, maxBuckets?: number): [TokenBuckets, Clock] {
  const clock = new Clock();
  const made = createRateLimiter(gateway, new Map(Object.entries(servers)), clock.now, maxBuckets !== undefined ? { maxBuckets } : {});
  if (made === undefined) throw new Error('expected a limiter');
  return [made, clock];
}

/** Takes `n` calls; what each answered ('ok' or `limit retryAfterMs`). */
function takes(l: TokenBuckets, n: number, caller: string, server: string, tool?: string): string[] {
  return Array.from({ length: n }, () => short(l.take(caller, server, tool)));
}

function short(r: RateLimited | undefined): string {
  return r === undefined ? 'ok' : `${r.limit} ${r.retryAfterMs}`;
}

describe('createRateLimiter', () => {
  it.each<[string, GatewayRateLimits | undefined, Record<string, GatewayRateLimits>]>([
    ['no Gateway limits, no server limits', undefined, {}],
    ['an empty rateLimits', {}, { a: {} }],
    ['an empty perTool', { perTool: [] }, { a: { perTool: [] } }],
  ])('is undefined when no limit is set anywhere (%s): the endpoints skip the check', (_, gateway, servers) => {
    expect(createRateLimiter(gateway, new Map(Object.entries(servers)), () => 0)).toBeUndefined();
  });

  it("is made for a server's own limit alone", () => {
    expect(createRateLimiter(undefined, new Map([['a', { perServer: { requests: 1, perSeconds: 1 } }]]), () => 0)).toBeDefined();
  });
});

describe('a token bucket', () => {
  it('allows a burst of `requests`, then refuses with the exact wait for the next token', () => {
    const [l, clock] = limiter({ perSubject: { requests: 2, perSeconds: 1 } });
    expect(takes(l, 3, 'alice', 'github', 'x')).toEqual(['ok', 'ok', 'subject 500']);
    clock.t = 499;
    expect(short(l.take('alice', 'github', 'x'))).toBe('subject 1');
    clock.t = 500;
    expect(takes(l, 2, 'alice', 'github', 'x')).toEqual(['ok', 'subject 500']);
  });

  it('refills to `requests` at most, however long it sat idle', () => {
    const [l, clock] = limiter({ perServer: { requests: 3, perSeconds: 60 } });
    expect(takes(l, 3, 'a', 'github')).toEqual(['ok', 'ok', 'ok']);
    clock.t = 10 * 60_000;
    expect(takes(l, 4, 'a', 'github')).toEqual(['ok', 'ok', 'ok', 'server 20000']);
  });

  it('rounds the wait up to the first whole millisecond at which the call passes (1000/3 ms per token)', () => {
    const [l, clock] = limiter({ perServer: { requests: 3, perSeconds: 1 } });
    expect(takes(l, 4, 'a', 's')).toEqual(['ok', 'ok', 'ok', 'server 334']);
    clock.t = 333;
    expect(short(l.take('a', 's', undefined))).toBe('server 1');
    clock.t = 334;
    expect(takes(l, 2, 'a', 's')).toEqual(['ok', 'server 333']);
  });

  it('takes fractions of a second', () => {
    const [l, clock] = limiter({ perServer: { requests: 1, perSeconds: 0.25 } });
    expect(takes(l, 2, 'a', 's')).toEqual(['ok', 'server 250']);
    clock.t = 250;
    expect(takes(l, 1, 'a', 's')).toEqual(['ok']);
  });

  it('gives nothing back when the clock steps backwards', () => {
    const [l, clock] = limiter({ perServer: { requests: 1, perSeconds: 1 } });
    clock.t = 5_000;
    expect(takes(l, 1, 'a', 's')).toEqual(['ok']);
    clock.t = 1_000;
    expect(takes(l, 1, 'a', 's')).toEqual(['server 1000']);
    clock.t = 5_999;
    expect(takes(l, 1, 'a', 's')).toEqual(['server 1']);
    clock.t = 6_000;
    expect(takes(l, 1, 'a', 's')).toEqual(['ok']);
  });
});

describe('which buckets a call spends from', () => {
  it('perSubject: one bucket per caller, across servers', () => {
    const [l] = limiter({ perSubject: { requests: 2, perSeconds: 10 } });
    expect([...takes(l, 1, 'alice', 'github'), ...takes(l, 2, 'alice', 'jira')]).toEqual(['ok', 'ok', 'subject 5000']);
    expect(takes(l, 2, 'bob', 'jira')).toEqual(['ok', 'ok']);
  });

  it('perServer: one bucket per server, across callers', () => {
    const [l] = limiter({ perServer: { requests: 2, perSeconds: 10 } });
    expect([...takes(l, 1, 'alice', 'github'), ...takes(l, 2, 'bob', 'github')]).toEqual(['ok', 'ok', 'server 5000']);
    expect(takes(l, 2, 'alice', 'jira')).toEqual(['ok', 'ok']);
  });

  it('perTool: one bucket per matching rule and tool, on the servers its glob matches; calls that are not tool calls skip them', () => {
    const [l] = limiter({ perTool: [{ server: 'git*', tool: 'delete_*', requests: 1, perSeconds: 1 }] });
    expect(takes(l, 2, 'alice', 'github', 'delete_repo')).toEqual(['ok', 'tool 1000']);
    expect(takes(l, 1, 'bob', 'github', 'delete_repo')).toEqual(['tool 1000']);
    expect(takes(l, 1, 'alice', 'github', 'delete_branch')).toEqual(['ok']);
    expect(takes(l, 2, 'alice', 'gitlab', 'delete_repo')).toEqual(['ok', 'tool 1000']);
    expect(takes(l, 2, 'alice', 'github', 'list_repos')).toEqual(['ok', 'ok']);
    expect(takes(l, 2, 'alice', 'jira', 'delete_issue')).toEqual(['ok', 'ok']);
    expect(takes(l, 2, 'alice', 'github', undefined)).toEqual(['ok', 'ok']);
  });

  it('perTool without a server glob covers every server; two matching rules each keep a bucket', () => {
    const [l] = limiter({ perTool: [{ tool: '*', requests: 3, perSeconds: 1 }, { tool: 'search', requests: 1, perSeconds: 2 }] });
    expect(takes(l, 2, 'a', 'x', 'search')).toEqual(['ok', 'tool 2000']);
    expect(takes(l, 3, 'a', 'y', 'fetch')).toEqual(['ok', 'ok', 'ok']);
  });

  it('spends from every bucket or from none: a refused call costs nothing', () => {
    const [l] = limiter({ perSubject: { requests: 10, perSeconds: 100 }, perTool: [{ tool: 'slow', requests: 1, perSeconds: 100 }] });
    expect(takes(l, 5, 'alice', 's', 'slow')).toEqual(['ok', 'tool 100000', 'tool 100000', 'tool 100000', 'tool 100000']);
    // 1 spent of 10: nine more pass, the refusals above took nothing from alice's bucket.
    expect(takes(l, 10, 'alice', 's', 'fast')).toEqual([...Array<string>(9).fill('ok'), 'subject 10000']);
  });

  it('names the bucket that keeps the call waiting longest (a tie: subject, then server, then tool)', () => {
    const [l, clock] = limiter({ perSubject: { requests: 1, perSeconds: 10 }, perServer: { requests: 1, perSeconds: 1 }, perTool: [{ tool: 't', requests: 1, perSeconds: 10 }] });
    expect(takes(l, 2, 'a', 's', 't')).toEqual(['ok', 'subject 10000']);
    clock.t = 9_000;
    expect(takes(l, 1, 'a', 's', 't')).toEqual(['subject 1000']);
    clock.t = 10_000;
    expect(takes(l, 1, 'a', 's', 't')).toEqual(['ok']);
  });
});

describe("an MCPServer's own spec.rateLimits", () => {
  const gateway: GatewayRateLimits = { perSubject: { requests: 5, perSeconds: 100 }, perServer: { requests: 1, perSeconds: 100 }, perTool: [{ tool: 'x', requests: 1, perSeconds: 100 }] };

  it('perServer: in place of the Gateway\'s, for that server only', () => {
    const [l] = limiter(gateway, { big: { perServer: { requests: 3, perSeconds: 100 } } });
    expect(takes(l, 4, 'a', 'big')).toEqual(['ok', 'ok', 'ok', 'server 33334']);
    expect(takes(l, 2, 'b', 'small')).toEqual(['ok', 'server 100000']);
  });

  it("perTool: in place of the Gateway's rules (an empty list lifts them); fields it leaves out keep the Gateway's", () => {
    const [l] = limiter({ ...gateway, perServer: { requests: 100, perSeconds: 1 } }, { own: { perTool: [{ tool: 'y', requests: 2, perSeconds: 100 }] }, free: { perTool: [] } });
    expect(takes(l, 2, 'a', 'own', 'x')).toEqual(['ok', 'ok']);
    expect(takes(l, 3, 'b', 'own', 'y')).toEqual(['ok', 'ok', 'tool 50000']);
    expect(takes(l, 2, 'c', 'free', 'x')).toEqual(['ok', 'ok']);
    expect(takes(l, 2, 'd', 'other', 'x')).toEqual(['ok', 'tool 100000']);
  });

  it("perSubject: a bucket per caller at that server, beside the Gateway's across servers", () => {
    const [l] = limiter({ perSubject: { requests: 3, perSeconds: 30 } }, { strict: { perSubject: { requests: 1, perSeconds: 10 } } });
    expect(takes(l, 2, 'alice', 'strict')).toEqual(['ok', 'subject 10000']);
    expect(takes(l, 1, 'bob', 'strict')).toEqual(['ok']);
    // alice spent 1 of her 3 at strict: two more elsewhere, then the Gateway's bucket refuses.
    expect(takes(l, 3, 'alice', 'other')).toEqual(['ok', 'ok', 'subject 10000']);
  });

  it('does not let a caller key and a server name meet in one bucket', () => {
    const [l] = limiter({ perSubject: { requests: 1, perSeconds: 10 } }, { web: { perSubject: { requests: 1, perSeconds: 10 } } });
    expect(takes(l, 1, 'x', 'web')).toEqual(['ok']);
    expect(takes(l, 1, 'web\0x', 'other')).toEqual(['ok']);
  });
});

describe('memory', () => {
  it('keeps at most maxBuckets per kind, dropping the least recently used (which then starts full again)', () => {
    const [l] = limiter({ perSubject: { requests: 1, perSeconds: 1_000 } }, {}, 3);
    for (const caller of ['a', 'b', 'c', 'd']) expect(takes(l, 2, caller, 's')).toEqual(['ok', 'subject 1000000']);
    expect(l.size).toBe(3);
    expect(takes(l, 1, 'b', 's')).toEqual(['subject 1000000']);
    expect(takes(l, 1, 'a', 's')).toEqual(['ok']);
    expect(l.size).toBe(3);
  });

  it('keeps a bucket spent from since it was made over a newer one left alone (recently used, not recently made)', () => {
    const [l] = limiter({ perSubject: { requests: 2, perSeconds: 1_000 } }, {}, 2);
    expect([...takes(l, 1, 'a', 's'), ...takes(l, 1, 'b', 's'), ...takes(l, 1, 'a', 's')]).toEqual(['ok', 'ok', 'ok']);
    expect(takes(l, 1, 'c', 's')).toEqual(['ok']);
    // b went (fresh again: two calls); a, older but used since, stayed (empty).
    expect([...takes(l, 1, 'a', 's'), ...takes(l, 2, 'b', 's')]).toEqual(['subject 500000', 'ok', 'ok']);
  });

  it('drops a bucket that has refilled before the least recently used one, which is still draining', () => {
    const [l, clock] = limiter(undefined, { slow: { perSubject: { requests: 1, perSeconds: 1_000 } }, fast: { perSubject: { requests: 1, perSeconds: 1 } } }, 2);
    expect([...takes(l, 1, 'a', 'slow'), ...takes(l, 1, 'b', 'fast')]).toEqual(['ok', 'ok']);
    clock.t = 2_000;
    expect(takes(l, 1, 'c', 'fast')).toEqual(['ok']);
    expect(l.size).toBe(2);
    // b's bucket had refilled: it went, and a's (the oldest, 998 s from a token) stayed.
    expect(takes(l, 1, 'a', 'slow')).toEqual(['subject 998000']);
  });

  it('bounds the tool buckets too: callers choose tool names', () => {
    const [l] = limiter({ perTool: [{ tool: '*', requests: 1, perSeconds: 60 }] }, {}, 16);
    for (let i = 0; i < 1_000; i++) l.take('a', 's', `tool-${i}`);
    expect(l.size).toBe(16);
  });
});

describe('rateLimitError', () => {
  it('is the fixed JSON-RPC error: code 429, "Rate limit exceeded", the retry hint in data', () => {
    expect(rateLimitError(7, { limit: 'tool', retryAfterMs: 1_001 }, 'github', 'delete_repo')).toEqual({
      jsonrpc: '2.0',
      id: 7,
      error: { code: 429, message: 'Rate limit exceeded', data: { retryAfterSeconds: 2, retryAfterMs: 1_001, limit: 'tool', server: 'github', tool: 'delete_repo' } },
    });
    expect(rateLimitError('r', { limit: 'server', retryAfterMs: 1_000 }, 'docs', undefined).error?.data).toEqual({ retryAfterSeconds: 1, retryAfterMs: 1_000, limit: 'server', server: 'docs' });
  });
});
