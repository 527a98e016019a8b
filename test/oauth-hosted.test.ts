/**
 * A hosted server with spec.remote.auth behind a real controller: Stuck
 * AuthorizationRequired until a login, Ready live once `connect` has sealed
 * tokens, served through token expiry with refreshes nobody notices, and
 * Stuck again when the authorization server revokes the grant. The parts are
 * real: oidc-provider, an SDK server checking JWTs with jose, Chromium.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findCondition } from '../src/api/status.js';
import { KeyStore } from '../src/crypto/keys.js';
import { readEndpointToken } from '../src/mcp/endpoint-token.js';
import { connect } from '../src/mcp/oauth-client.js';
import { StateLayout } from '../src/state/layout.js';
import { OAuthTokenStore } from '../src/state/oauth-tokens.js';
import { hasChromium, launchChromium } from './helpers/browser.js';
import { harness } from './helpers/controller.js';
import { logInAndConsent, startAuthServer, startProtectedServer, type AuthServer, type ProtectedServer } from './helpers/oauth-as.js';
import { INSTALL, requireTool } from './helpers/tools.js';

const chromium = requireTool('chromium', INSTALL.chromium, hasChromium);

async function filesUnder(dir: string): Promise<{ path: string; text: string }[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => []);
  return Promise.all(entries.filter((e) => e.isFile()).map(async (e) => ({ path: join(e.parentPath, e.name), text: await readFile(join(e.parentPath, e.name), 'utf8') })));
}

describe.skipIf(!chromium.available)('a hosted server that needs an OAuth login, behind the controller', () => {
  let as: AuthServer;
  let hosted: ProtectedServer;
  beforeAll(async () => {
    as = await startAuthServer({ accessTokenTtl: 3 });
    hosted = await startProtectedServer(as.issuer);
  });
  afterAll(async () => {
    await hosted?.close();
    await as?.close();
  });

  it('is Stuck AuthorizationRequired until connected, then Ready live; calls pass through token expiry with zero failures; its authorization server away: not Ready and calls fail saying so, recovered when back; a revoked grant: Stuck again with the reason; kept through a restart; disconnected: Stuck', async () => {
    const h = await harness();
    await h.write('hosted.yaml', `apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata:\n  name: hosted\nspec:\n  remote:\n    url: ${hosted.url}\n    auth:\n      type: oauth\n`);
    await h.start();
    const stuck = await h.waitFor('hosted Stuck for a login', async () => {
      const s = await h.status('hosted');
      return s?.phase === 'Stuck' ? s : undefined;
    }, 20_000);
    const ready = findCondition(stuck.conditions, 'Ready');
    expect(ready?.reason).toBe('AuthorizationRequired');
    expect(ready?.message).toBe('MCPServer hosted needs a login: it has no tokens yet; connect it with: apiary connect hosted');

    const layout = new StateLayout(h.stateDir);
    const store = new OAuthTokenStore(layout, () => new KeyStore({ env: { APIARY_KEY_FILE: h.keyFile } }).get());
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      await connect({ name: 'hosted', serverUrl: hosted.url, settings: {}, store, open: (url) => logInAndConsent(page, url), timeoutMs: 30_000 });
    } finally {
      await browser.close();
    }
    const url = await h.waitFor('hosted Ready after the login', async () => {
      const s = await h.status('hosted');
      return findCondition(s?.conditions, 'Ready')?.status === 'True' && s?.phase === 'Running' ? s.url : undefined;
    }, 20_000);

    // A 2025-11-25 client (passed through) and a 2026-07-28 one (its session with the server held by apiary), side by side.
    const token = (await readEndpointToken(layout))!;
    const auth = { requestInit: { headers: { Authorization: `Bearer ${token}` } } };
    const legacy = new Client({ name: 'legacy', version: '1' }, { versionNegotiation: { mode: 'legacy' } });
    const modern = new Client({ name: 'modern', version: '1' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
    await legacy.connect(new StreamableHTTPClientTransport(new URL(url!), auth));
    await modern.connect(new StreamableHTTPClientTransport(new URL(url!), auth));
    const refreshesBefore = as.grants['refresh_token'] ?? 0;
    let calls = 0;
    let failures = 0;
    const call = async (client: Client): Promise<void> => {
      const result = await client.callTool({ name: 'whoami', arguments: {} }).catch(() => undefined);
      if (result === undefined || result.isError === true || (result.content as { text: string }[])[0]?.text !== 'alice') failures++;
      calls++;
    };
    // The test: 30 seconds of calls through ten lifetimes of a 3-second access token, not one failed.
    const started = Date.now();
    const until = started + 30_000;
    while (Date.now() < until) await Promise.all([call(legacy), call(modern)]);
    const refreshes = (as.grants['refresh_token'] ?? 0) - refreshesBefore;
    await legacy.close();
    await modern.close();
    process.stdout.write(`oauth-hosted: ${calls} calls in ${Date.now() - started} ms, ${failures} failed, ${refreshes} refreshes\n`);
    expect({ failures, atLeastEightRefreshes: refreshes >= 8 }).toEqual({ failures: 0, atLeastEightRefreshes: true });
    expect(calls).toBeGreaterThan(100);

    // The tokens in use exist on disk only sealed: no status, log or other file holds them.
    const grant = (await store.grant('hosted'))!;
    const canaries = [grant.accessToken.reveal(), grant.refreshToken!.reveal()];
    for (const file of await filesUnder(h.stateDir)) for (const canary of canaries) expect(file.text, file.path).not.toContain(canary);
    for (const canary of canaries) expect(JSON.stringify(h.logs)).not.toContain(canary);

    // The authorization server gone: once the token expires, status says so and calls fail saying why; back, and all is well.
    await as.pause();
    const unreachable = await h.waitFor('hosted not Ready while its authorization server is away', async () => {
      const s = await h.status('hosted');
      const ready = findCondition(s?.conditions, 'Ready');
      return ready?.status === 'False' ? { phase: s?.phase, ready } : undefined;
    }, 20_000);
    expect(unreachable.phase).toBe('Running');
    expect(unreachable.ready?.reason).toBe('AuthorizationServerUnreachable');
    expect(unreachable.ready?.message).toMatch(/^MCPServer hosted: cannot (refresh its token at|reach its authorization server) http:\/\/127\.0\.0\.1:\d+/);
    // apiary counts a token expired a second early (exp is whole seconds): the server may still take it for that long.
    const refusedCall = await h.waitFor('a call refused once the token has expired', async () => {
      const away = new Client({ name: 'away', version: '1' }, { versionNegotiation: { mode: 'legacy' } });
      return away.connect(new StreamableHTTPClientTransport(new URL(url!), auth)).then(() => away.callTool({ name: 'whoami', arguments: {} })).then(() => undefined, (e: unknown) => String(e));
    }, 10_000);
    expect(refusedCall).toContain("refused apiary's token: MCPServer hosted: cannot");
    await as.resume();
    await h.waitFor('hosted Ready again once its authorization server is back', async () => {
      const s = await h.status('hosted');
      return findCondition(s?.conditions, 'Ready')?.status === 'True' ? s : undefined;
    }, 30_000);
    const back = new Client({ name: 'back', version: '1' }, { versionNegotiation: { mode: 'legacy' } });
    await back.connect(new StreamableHTTPClientTransport(new URL(url!), auth));
    expect(((await back.callTool({ name: 'whoami', arguments: {} })).content as { text: string }[])[0]?.text).toBe('alice');
    await back.close();

    as.revokeRefreshTokens();
    const refused = await h.waitFor('hosted Stuck again once its refresh is refused', async () => {
      const s = await h.status('hosted');
      return s?.phase === 'Stuck' ? findCondition(s.conditions, 'Ready') : undefined;
    }, 20_000);
    expect(refused?.reason).toBe('AuthorizationRequired');
    expect(refused?.message).toMatch(/^MCPServer hosted needs a login: the authorization server refused to refresh its tokens: invalid_grant.*; connect it with: apiary connect hosted$/);

    // Connected again while apiary runs: Ready live; kept through a restart of apiary with no new login; disconnected: Stuck at once.
    const browser2 = await launchChromium();
    try {
      const page = await browser2.newPage();
      await connect({ name: 'hosted', serverUrl: hosted.url, settings: {}, store, open: (u) => logInAndConsent(page, u), timeoutMs: 30_000 });
    } finally {
      await browser2.close();
    }
    const readyAgain = async (what: string): Promise<void> =>
      void (await h.waitFor(what, async () => {
        const s = await h.status('hosted');
        return findCondition(s?.conditions, 'Ready')?.status === 'True' ? s : undefined;
      }, 20_000));
    await readyAgain('hosted Ready after connecting again');
    await h.controller!.stop();
    await h.start();
    await h.settled();
    await readyAgain('hosted Ready after apiary restarted, with no new login');
    // The restarted controller's token (a new run may make a new one) and its endpoint.
    const restartedAuth = { requestInit: { headers: { Authorization: `Bearer ${(await readEndpointToken(layout))!}` } } };
    const whoamiAfterRestart = await h.waitFor('a call answered after the restart', async () => {
      const client = new Client({ name: 'after-restart', version: '1' }, { versionNegotiation: { mode: 'legacy' } });
      try {
        await client.connect(new StreamableHTTPClientTransport(new URL(url!), restartedAuth));
        return ((await client.callTool({ name: 'whoami', arguments: {} })).content as { text: string }[])[0]?.text;
      } catch {
        return undefined;
      } finally {
        await client.close().catch(() => undefined);
      }
    }, 20_000);
    expect(whoamiAfterRestart).toBe('alice');
    await store.forgetGrant('hosted');
    const disconnected = await h.waitFor('hosted Stuck once disconnected', async () => {
      const s = await h.status('hosted');
      return s?.phase === 'Stuck' ? findCondition(s.conditions, 'Ready') : undefined;
    }, 20_000);
    // Which words depends on whether a refresh was under way when the tokens went.
    expect(disconnected?.message).toMatch(/^MCPServer hosted needs a login: it (has no tokens yet|was disconnected); connect it with: apiary connect hosted$/);
  }, 150_000);
});
