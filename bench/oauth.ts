/**
 * What a hosted server behind an OAuth login costs through apiary (step 18,
 * `npm run bench -- oauth`), against the peer a user would otherwise have:
 * an MCP SDK v2 client calling the hosted server itself with the same access
 * token. Real parts on 127.0.0.1: oidc-provider as the authorization server,
 * an SDK server that verifies each request's JWT with jose, Chromium for the
 * one login; apiary's tokens come from `connect` as a user's do.
 *
 * Rows: the call through apiary's endpoint (both revisions) beside the SDK
 * calling the hosted server directly, in turns; then two controllers in
 * turns, one whose tokens live 300 s and one whose tokens live 3 s (so it
 * refreshes about every second and a half, ahead of expiry): what the
 * refreshes cost the calls around them, and how many failed (none may).
 */
import { join } from 'node:path';
import { KeyStore } from '../src/crypto/keys.js';
import { connect } from '../src/mcp/oauth-client.js';
import { StateLayout } from '../src/state/layout.js';
import { OAuthTokenStore } from '../src/state/oauth-tokens.js';
import { StatusStore } from '../src/state/status-store.js';
import { hasChromium, launchChromium } from '../test/helpers/browser.js';
import { logInAndConsent, startAuthServer, startProtectedServer, type AuthServer, type ProtectedServer } from '../test/helpers/oauth-as.js';
import { inTurns, v2Client, withApiary, type Caller, type Result } from './mcp.js';
import { fmtMs, now, percentile, ratioNote, type Row } from './stats.js';

const WHOAMI = (c: Caller): Promise<unknown> => c.callTool({ name: 'whoami', arguments: {} });

function hostedManifest(url: string): string {
  return `apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata:\n  name: hosted\nspec:\n  remote:\n    url: ${url}\n    auth:\n      type: oauth\n`;
}

/** One login through Chromium, as `apiary connect` does it, then the hosted server Ready at apiary's endpoint; its URL and the access token apiary holds. */
async function connected(stateDir: string, hosted: ProtectedServer): Promise<{ url: string; token: string }> {
  const layout = new StateLayout(stateDir);
  const store = new OAuthTokenStore(layout, () => new KeyStore({ env: { APIARY_KEY_FILE: join(stateDir, '..', 'key') } }).get());
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    await connect({ name: 'hosted', serverUrl: hosted.url, settings: {}, store, open: (url) => logInAndConsent(page, url), timeoutMs: 60_000 });
  } finally {
    await browser.close();
  }
  const status = new StatusStore(layout);
  for (let i = 0; i < 300; i++) {
    const s = (await status.read('MCPServer', 'hosted'))?.status as { url?: string; phase?: string; conditions?: { type: string; status: string }[] } | undefined;
    if (s?.phase === 'Running' && s.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') && s.url !== undefined) {
      const grant = await store.grant('hosted');
      if (grant === undefined) break;
      return { url: s.url, token: grant.accessToken.reveal() };
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('bench: the hosted server never became Ready after the login');
}

/** Calls for `ms`, one at a time, with the failures counted (a refresh must never fail a call). */
async function callFor(c: Caller, ms: number): Promise<{ latencies: number[]; failed: number }> {
  const latencies: number[] = [];
  let failed = 0;
  const end = now() + ms;
  while (now() < end) {
    const t = now();
    try {
      const r = (await WHOAMI(c)) as { isError?: boolean };
      if (r.isError === true) failed++;
    } catch {
      failed++;
    }
    latencies.push(now() - t);
  }
  return { latencies, failed };
}

async function withHosted<T>(ttl: number, fn: (as: AuthServer, hosted: ProtectedServer) => Promise<T>): Promise<T> {
  const as = await startAuthServer({ accessTokenTtl: ttl });
  const hosted = await startProtectedServer(as.issuer);
  try {
    return await fn(as, hosted);
  } finally {
    await hosted.close();
    await as.close();
  }
}

export async function benchOAuth(calls = 3000, refreshWindowMs = 20_000): Promise<Row[]> {
  if (!hasChromium()) return [{ measure: 'a hosted server behind an OAuth login', result: 'skipped: the login needs Chromium (/usr/bin/chromium, or APIARY_CHROMIUM)' }];
  return withHosted(300, (_as, hosted) =>
    withApiary(
      async (_u, headers, _a, stateDir) => {
        const { url, token } = await connected(stateDir, hosted);
        const bearer = { Authorization: `Bearer ${token}` };
        // How many HTTP requests the hosted server gets per call, each client kind on its own.
        const perCall = async (make: () => Promise<Caller>): Promise<number> => {
          const c = await make();
          await WHOAMI(c);
          const before = hosted.accepted;
          for (let i = 0; i < 50; i++) await WHOAMI(c);
          const n = (hosted.accepted - before) / 50;
          await c.close();
          return n;
        };
        const upstream = {
          direct: await perCall(() => v2Client(hosted.url, bearer, 'legacy')),
          legacy: await perCall(() => v2Client(url, headers, 'legacy')),
          modern: await perCall(() => v2Client(url, headers, 'modern')),
        };
        const [direct, legacy, modern] = (await inTurns(
          [() => v2Client(hosted.url, bearer, 'legacy'), () => v2Client(url, headers, 'legacy'), () => v2Client(url, headers, 'modern')],
          calls,
          6,
          WHOAMI,
        )) as [Result, Result, Result];
        const rows: Row[] = [
          { measure: 'tools/call to a hosted server behind OAuth, SDK v2 client calling it directly with the access token (the peer)', result: `p50 ${fmtMs(direct.p50)} / p99 ${fmtMs(direct.p99)}, ${direct.rps.toFixed(0)} calls/s; ${upstream.direct} requests to the server per call` },
          {
            measure: 'the same through apiary (it holds and refreshes the token), SDK v2 client, 2025-11-25 (passed through)',
            result: `p50 ${fmtMs(legacy.p50)} / p99 ${fmtMs(legacy.p99)}, ${legacy.rps.toFixed(0)} calls/s; ${upstream.legacy} requests to the server per call`,
            note: `${ratioNote(direct.p50, legacy.p50)}; +${fmtMs(legacy.p50 - direct.p50)} p50; ${(legacy.rps / direct.rps).toFixed(2)}x the calls/s`,
          },
          {
            measure: 'the same through apiary, SDK v2 client pinned to 2026-07-28 (apiary keeps the session with the server)',
            result: `p50 ${fmtMs(modern.p50)} / p99 ${fmtMs(modern.p99)}, ${modern.rps.toFixed(0)} calls/s; ${upstream.modern} requests to the server per call`,
            note: `${ratioNote(direct.p50, modern.p50)}; ${(modern.rps / direct.rps).toFixed(2)}x the calls/s`,
          },
        ];
        return [...rows, ...(await refreshRows(refreshWindowMs))];
      },
      hostedManifest(hosted.url),
    ),
  );
}

/** Two controllers in turns: tokens of 300 s (no refresh in the window) and of 3 s (refreshed ahead of expiry, about every 1.5 s). */
async function refreshRows(windowMs: number): Promise<Row[]> {
  return withHosted(300, (_longAs, longHosted) =>
    withHosted(3, (shortAs, shortHosted) =>
      withApiary(
        async (_u1, longHeaders, _a1, longState) => {
          const long = await connected(longState, longHosted);
          return withApiary(
            async (_u2, shortHeaders, _a2, shortState) => {
              const short = await connected(shortState, shortHosted);
              const steady = await v2Client(long.url, longHeaders, 'modern');
              const refreshing = await v2Client(short.url, shortHeaders, 'modern');
              const refreshesBefore = shortAs.grants['refresh_token'] ?? 0;
              const taken = { steady: { latencies: [] as number[], failed: 0 }, refreshing: { latencies: [] as number[], failed: 0 } };
              // Turns of 1 s each, so both see the same machine; the short-lived one's refreshes fall inside its turns.
              for (let t = 0; t < windowMs / 1000; t++) {
                for (const [key, client] of [['steady', steady], ['refreshing', refreshing]] as const) {
                  const r = await callFor(client, 500);
                  taken[key].latencies.push(...r.latencies);
                  taken[key].failed += r.failed;
                }
              }
              await steady.close();
              await refreshing.close();
              const refreshes = (shortAs.grants['refresh_token'] ?? 0) - refreshesBefore;
              const s = taken.steady.latencies;
              const r = taken.refreshing.latencies;
              const max = (xs: number[]): number => xs.reduce((a, b) => Math.max(a, b), 0);
              return [
                {
                  measure: `calls through apiary for ${(windowMs / 1000).toFixed(0)} s in turns, tokens that live 300 s (no refresh)`,
                  result: `${s.length} calls, ${taken.steady.failed} failed; p50 ${fmtMs(percentile(s, 50))} / p99 ${fmtMs(percentile(s, 99))} / max ${fmtMs(max(s))}`,
                },
                {
                  measure: 'the same with tokens that live 3 s, refreshed by apiary ahead of expiry',
                  result: `${r.length} calls, ${taken.refreshing.failed} failed, ${refreshes} refreshes; p50 ${fmtMs(percentile(r, 50))} / p99 ${fmtMs(percentile(r, 99))} / max ${fmtMs(max(r))}`,
                  target: 'no call fails during a refresh',
                  note: `p99 ${(percentile(r, 99) / percentile(s, 99)).toFixed(2)}x, p50 ${(percentile(r, 50) / percentile(s, 50)).toFixed(2)}x the calls without refreshes`,
                },
              ];
            },
            hostedManifest(shortHosted.url),
          );
        },
        hostedManifest(longHosted.url),
      ),
    ),
  );
}
