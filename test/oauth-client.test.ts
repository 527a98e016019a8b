/**
 * apiary as the OAuth client of a hosted MCP server, against real parts on
 * 127.0.0.1: oidc-provider (dynamic registration, login and consent pages,
 * refresh tokens, revocation), an MCP SDK server that checks its tokens with
 * jose, and Debian's Chromium for the login.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MasterKey } from '../src/crypto/seal.js';
import { SecretValue } from '../src/crypto/secret-value.js';
import { isApiaryError } from '../src/errors.js';
import { connect, revoke } from '../src/mcp/oauth-client.js';
import { listenForRedirect } from '../src/mcp/oauth-loopback.js';
import { bearerFetch, OAuthSession } from '../src/mcp/oauth-session.js';
import { StateLayout } from '../src/state/layout.js';
import { OAuthTokenStore } from '../src/state/oauth-tokens.js';
import { hasChromium, launchChromium } from './helpers/browser.js';
import { logInAndConsent, startAuthServer, startProtectedServer, type AuthServer, type ProtectedServer } from './helpers/oauth-as.js';
import { tempDir } from './helpers/tmp.js';
import { INSTALL, requireTool } from './helpers/tools.js';

const chromium = requireTool('chromium', INSTALL.chromium, hasChromium);
const key = MasterKey.generate().key;

async function storeIn(): Promise<{ store: OAuthTokenStore; layout: StateLayout }> {
  const layout = new StateLayout(join(await tempDir('apiary-oauth-'), 'state'));
  return { layout, store: new OAuthTokenStore(layout, async () => key) };
}

/** Every file under `dir`, read as text. */
async function filesUnder(dir: string): Promise<{ path: string; text: string }[]> {
  const out: { path: string; text: string }[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out.push({ path: join(entry.parentPath, entry.name), text: await readFile(join(entry.parentPath, entry.name), 'utf8') });
  }
  return out;
}

async function whoami(session: OAuthSession, url: string): Promise<string> {
  const client = new Client({ name: 'test', version: '1' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { fetch: bearerFetch(session) }));
  try {
    const result = await client.callTool({ name: 'whoami', arguments: {} });
    return (result.content as { text: string }[])[0]!.text;
  } finally {
    await client.close();
  }
}

describe.skipIf(!chromium.available)('OAuth client: a hosted server that needs a login', () => {
  let browser: Browser;
  let as: AuthServer;
  let hosted: ProtectedServer;

  beforeAll(async () => {
    browser = await launchChromium();
    as = await startAuthServer({ accessTokenTtl: 3 });
    hosted = await startProtectedServer(as.issuer);
  });
  afterAll(async () => {
    await browser?.close();
    await hosted?.close();
    await as?.close();
  });

  async function login(store: OAuthTokenStore, name: string): Promise<Awaited<ReturnType<typeof connect>>> {
    const page = await browser.newPage();
    try {
      return await connect({ name, serverUrl: hosted.url, settings: {}, store, open: (url) => logInAndConsent(page, url), timeoutMs: 30_000 });
    } finally {
      await page.close();
    }
  }

  it('connects once through the browser (registered dynamically, PKCE, resource, iss), keeps the tokens only sealed, and calls through expiry with refreshes that coalesce', async () => {
    const { store, layout } = await storeIn();
    const registrationsBefore = as.registrations;
    const connected = await login(store, 'hosted');
    expect(connected).toMatchObject({ issuer: as.issuer, refreshable: true });
    expect(as.registrations).toBe(registrationsBefore + 1);

    const grant = (await store.grant('hosted'))!;
    const canaries = [grant.accessToken.reveal(), grant.refreshToken!.reveal()];
    for (const file of await filesUnder(layout.root)) {
      for (const canary of canaries) expect(file.text, file.path).not.toContain(canary);
      expect((await stat(file.path)).mode & 0o777, file.path).toBe(0o600);
    }
    expect(JSON.stringify(grant)).not.toContain(canaries[0]);

    const session = new OAuthSession({ name: 'hosted', store, settings: {} });
    const refreshesBefore = as.grants['refresh_token'] ?? 0;
    let calls = 0;
    const until = Date.now() + 7_000;
    while (Date.now() < until) {
      expect(await whoami(session, hosted.url)).toBe('alice');
      calls++;
    }
    // 3 s tokens over 7 s: refreshed ahead of expiry at least twice, and every refresh counted by the provider too.
    expect(session.refreshes).toBeGreaterThanOrEqual(2);
    expect((as.grants['refresh_token'] ?? 0) - refreshesBefore).toBe(session.refreshes);
    expect(calls).toBeGreaterThan(session.refreshes);

    // Ten requests refused at once with the same token: one refresh.
    const used = await session.accessToken();
    const before = session.refreshes;
    const fresh = await Promise.all(Array.from({ length: 10 }, () => session.afterUnauthorized(used)));
    expect(session.refreshes).toBe(before + 1);
    expect(new Set(fresh.map((t) => t.reveal())).size).toBe(1);

    // The refreshed tokens are sealed too.
    const now = (await store.grant('hosted'))!;
    for (const file of await filesUnder(layout.root)) expect(file.text).not.toContain(now.accessToken.reveal());
  });

  it('a second connect with the same issuer reuses the registered client; a revoked refresh token is AuthorizationRequired with the reason', async () => {
    const { store } = await storeIn();
    await login(store, 'first');
    const registrations = as.registrations;
    await login(store, 'second');
    expect(as.registrations).toBe(registrations);

    as.revokeRefreshTokens();
    const session = new OAuthSession({ name: 'second', store, settings: {} });
    const token = await session.accessToken();
    const err = await session.afterUnauthorized(token).then(() => undefined, (e: unknown) => e);
    expect(isApiaryError(err, 'AuthorizationRequired')).toBe(true);
    expect((err as Error).message).toMatch(/^MCPServer second needs a login: the authorization server refused to refresh its tokens: invalid_grant/);
    expect((err as Error).message).not.toContain(token.reveal());
  });

  it('disconnect revokes at the server (RFC 7009): the refresh token is gone there', async () => {
    const { store } = await storeIn();
    await login(store, 'hosted');
    const grant = (await store.grant('hosted'))!;
    const held = as.refreshTokens();
    expect(held).toBeGreaterThan(0);
    expect(await revoke(grant, {}, store)).toBe('revoked');
    expect(as.refreshTokens()).toBeLessThan(held);
    const session = new OAuthSession({ name: 'hosted', store, settings: {} });
    await expect(session.afterUnauthorized(grant.accessToken)).rejects.toMatchObject({ code: 'AuthorizationRequired' });
  });

  it('refuses a login answer from another issuer (RFC 9207) before redeeming its code', async () => {
    const { store } = await storeIn();
    // The answer a mix-up attacker would send: this login's state, a code, another issuer.
    const forgeAnswer = async (authorizationUrl: string): Promise<void> => {
      const asked = new URL(authorizationUrl).searchParams;
      const back = new URL(asked.get('redirect_uri')!);
      back.search = new URLSearchParams({ code: 'a-code-from-elsewhere', state: asked.get('state')!, iss: 'http://127.0.0.1:1/attacker' }).toString();
      await fetch(back);
    };
    const err = await connect({ name: 'mixup', serverUrl: hosted.url, settings: {}, store, open: forgeAnswer, timeoutMs: 10_000 }).then(() => undefined, (e: unknown) => e);
    expect(isApiaryError(err, 'AuthorizationFailed')).toBe(true);
    expect((err as Error).message).toMatch(/^the authorization server http:\/\/127\.0\.0\.1:\d+ did not give tokens for the login: .*[Ii]ssuer/);
    expect((err as Error).message).toContain('attacker');
    expect(await store.grant('mixup')).toBeUndefined();
  });
});

describe.skipIf(!chromium.available)('OAuth client: a pre-registered client', () => {
  it('uses the manifest\'s clientId and secret, registers nothing, and refreshes with them', async () => {
    const as = await startAuthServer({
      accessTokenTtl: 60,
      clients: [{ client_id: 'apiary-pre', client_secret: 'pre-secret-value', application_type: 'native', redirect_uris: ['http://127.0.0.1/callback'], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic' }],
    });
    const hosted = await startProtectedServer(as.issuer);
    const browser = await launchChromium();
    try {
      const { store, layout } = await storeIn();
      const settings = { clientId: 'apiary-pre', clientSecret: new SecretValue('pre-secret-value') };
      const page = await browser.newPage();
      await connect({ name: 'pre', serverUrl: hosted.url, settings, store, open: (url) => logInAndConsent(page, url), timeoutMs: 30_000 });
      expect(as.registrations).toBe(0);
      expect((await store.grant('pre'))!.clientId).toBe('apiary-pre');
      const session = new OAuthSession({ name: 'pre', store, settings });
      await session.afterUnauthorized((await store.grant('pre'))!.accessToken);
      expect(session.refreshes).toBe(1);
      expect(await whoami(session, hosted.url)).toBe('alice');
      for (const file of await filesUnder(layout.root)) expect(file.text).not.toContain('pre-secret-value');
      // Another issuer's session never gets this client: its settings name a client the grant was not issued to.
      const other = new OAuthSession({ name: 'pre', store, settings: { clientId: 'someone-else' } });
      await expect(other.afterUnauthorized((await store.grant('pre'))!.accessToken)).rejects.toMatchObject({ code: 'AuthorizationRequired' });
    } finally {
      await browser.close();
      await hosted.close();
      await as.close();
    }
  });
});

describe('the loopback redirect', () => {
  it('ends only on this login\'s state: a stray request is answered 400 and the wait goes on', async () => {
    const redirect = await listenForRedirect({ state: 'expected-state', timeoutMs: 10_000, label: 'x' });
    try {
      const stray = await fetch(`${redirect.redirectUri}?code=evil&state=other`);
      expect(stray.status).toBe(400);
      const elsewhere = await fetch(redirect.redirectUri.replace('/callback', '/other'));
      expect(elsewhere.status).toBe(404);
      const ok = await fetch(`${redirect.redirectUri}?code=good&state=expected-state&iss=x`);
      expect(ok.status).toBe(200);
      expect((await redirect.result).get('code')).toBe('good');
    } finally {
      redirect.close();
    }
  });

  it('an error from the authorization server ends the wait with that error', async () => {
    const redirect = await listenForRedirect({ state: 's', timeoutMs: 10_000, label: 'x' });
    await fetch(`${redirect.redirectUri}?error=access_denied&error_description=the+user+said+no&state=s`);
    await expect(redirect.result).rejects.toMatchObject({ code: 'AuthorizationFailed', message: 'the authorization server refused the login: access_denied (the user said no)' });
  });
});
