/**
 * The directory's rate limits as the limiter takes them (the Gateway's
 * spec.rateLimits, each MCPServer's own by name), and what `validate` says
 * about them: a perTool rule for servers the directory does not have, and a
 * rate so slow it is more likely a slip of units than a wish.
 */
import { compileGlobs } from '../api/access.js';
import type { GatewayRateLimits, RateLimit } from '../api/manifests.js';
import { createRateLimiter, type TokenBuckets } from '../api/rate-limit.js';
import type { ManifestError } from './errors.js';
import { locate } from './locate.js';
import type { GatewayResource, MCPServerResource, Resource } from './resource.js';
import type { Document, LineCounter } from 'yaml';

export interface DirectoryRateLimits {
  gateway: GatewayRateLimits | undefined;
  perServer: ReadonlyMap<string, GatewayRateLimits>;
}

export function rateLimitsOf(resources: readonly Resource[]): DirectoryRateLimits {
  const gateway = resources.find((r): r is GatewayResource => r.kind === 'Gateway')?.manifest.spec?.rateLimits;
  const servers = resources.filter((r): r is MCPServerResource => r.kind === 'MCPServer' && r.manifest.spec.rateLimits !== undefined);
  return { gateway, perServer: new Map(servers.map((s) => [s.name, s.manifest.spec.rateLimits!])) };
}

/** The limiter for a directory; undefined when it sets no limit (the endpoints then skip the check). `now` in ms. */
export function rateLimiterFor(resources: readonly Resource[], now: () => number): TokenBuckets | undefined {
  const { gateway, perServer } = rateLimitsOf(resources);
  return createRateLimiter(gateway, perServer, now);
}

/** A Gateway perTool rule whose server glob matches no MCPServer of the directory: it limits nothing (a typo, or a server since removed). */
export function rateLimitWarnings(resources: readonly Resource[]): ManifestError[] {
  const gateway = resources.find((r): r is GatewayResource => r.kind === 'Gateway');
  const rules = gateway?.manifest.spec?.rateLimits?.perTool ?? [];
  const servers = resources.filter((r) => r.kind === 'MCPServer').map((r) => r.name);
  const out: ManifestError[] = [];
  rules.forEach((rule, i) => {
    if (gateway === undefined || rule.server === undefined) return;
    const matches = compileGlobs([rule.server]);
    if (servers.some(matches)) return;
    const field = `spec.rateLimits.perTool[${i}].server`;
    const at = gateway.perToolAt?.[i] ?? gateway.source;
    out.push({ file: gateway.source.file, line: at.line, col: at.col, field, message: `${field}: "${rule.server}" matches no MCPServer in the directory, so this limit applies to nothing` });
  });
  return out;
}

const HOUR_SECONDS = 3600;

function slowRate(limit: RateLimit): boolean {
  return limit.perSeconds > limit.requests * HOUR_SECONDS;
}

function wait(limit: RateLimit): string {
  const seconds = limit.perSeconds / limit.requests;
  return seconds >= 86_400 ? `${+(seconds / 86_400).toFixed(1)} days` : `${+(seconds / HOUR_SECONDS).toFixed(1)} hours`;
}

/**
 * A limit of less than one call an hour (perSeconds is in seconds: 1 per
 * 7200 is one call every two hours). Allowed, since it may be meant, but said
 * where it is written: a caller over it waits that long for the next call.
 */
export function slowRateWarnings(limits: GatewayRateLimits | undefined, doc: Document, lc: LineCounter, file: string): ManifestError[] {
  const entries: [(string | number)[], RateLimit | undefined][] = [
    [['spec', 'rateLimits', 'perSubject'], limits?.perSubject],
    [['spec', 'rateLimits', 'perServer'], limits?.perServer],
    ...(limits?.perTool ?? []).map((l, i): [(string | number)[], RateLimit] => [['spec', 'rateLimits', 'perTool', i], l]),
  ];
  return entries.flatMap(([path, limit]) => {
    if (limit === undefined || !slowRate(limit)) return [];
    const field = path.map((p) => (typeof p === 'number' ? `[${p}]` : p)).join('.').replace(/\.\[/g, '[');
    const pos = locate(doc, [...path, 'perSeconds'], lc);
    return [{ file, line: pos.line, col: pos.col, field, message: `${field}: ${limit.requests} call(s) per ${limit.perSeconds} s is less than one an hour: a caller over it waits ${wait(limit)} for the next (perSeconds is in seconds)` }];
  });
}
