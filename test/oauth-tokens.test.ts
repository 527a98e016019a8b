/** The sealed OAuth store: one owner-only file per server, bound to its name, clients found only by their issuer. */
import { copyFile, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MasterKey } from '../src/crypto/seal.js';
import { SecretValue } from '../src/crypto/secret-value.js';
import { StateLayout } from '../src/state/layout.js';
import { OAuthTokenStore, type OAuthGrant } from '../src/state/oauth-tokens.js';
import { tempDir } from './helpers/tmp.js';

const key = MasterKey.generate().key;
const grant: OAuthGrant = {
  issuer: 'https://as.example',
  resource: 'https://mcp.example/mcp',
  clientId: 'c1',
  accessToken: new SecretValue('canary-access-4f1e'),
  refreshToken: new SecretValue('canary-refresh-9a2b'),
  expiresAt: 2_000,
  issuedAt: 1_000,
  scope: 'mcp',
  tokenType: 'Bearer',
};

async function store(): Promise<{ store: OAuthTokenStore; layout: StateLayout }> {
  const layout = new StateLayout(join(await tempDir('apiary-oauth-store-'), 'state'));
  return { layout, store: new OAuthTokenStore(layout, async () => key) };
}

describe('OAuthTokenStore', () => {
  it('keeps a grant sealed in an owner-only file and gives it back whole', async () => {
    const { store: s, layout } = await store();
    await s.saveGrant('github', grant);
    const text = await readFile(layout.oauthTokensFile('github'), 'utf8');
    expect(text).toMatch(/^\{"sealed":"apiary:v1:[0-9a-f]{8}:[A-Za-z0-9_-]+"\}\n$/);
    expect(text).not.toContain('canary');
    expect((await stat(layout.oauthTokensFile('github'))).mode & 0o777).toBe(0o600);
    expect((await stat(layout.oauthDir)).mode & 0o777).toBe(0o700);
    const back = (await s.grant('github'))!;
    expect(back.accessToken.reveal()).toBe('canary-access-4f1e');
    expect(back.refreshToken!.reveal()).toBe('canary-refresh-9a2b');
    expect({ ...back, accessToken: undefined, refreshToken: undefined }).toEqual({ ...grant, accessToken: undefined, refreshToken: undefined });
    expect(JSON.stringify(back)).not.toContain('canary');
  });

  it('refuses a name that could leave the folder, and a file copied to another server\'s name', async () => {
    const { store: s, layout } = await store();
    await expect(s.saveGrant('../escape', grant)).rejects.toMatchObject({ code: 'NameInvalid' });
    await expect(s.grant('../escape')).rejects.toMatchObject({ code: 'NameInvalid' });
    await s.saveGrant('github', grant);
    await copyFile(layout.oauthTokensFile('github'), layout.oauthTokensFile('linear'));
    await expect(s.grant('linear')).rejects.toMatchObject({ code: 'SecretDecryptFailed' });
    expect(await s.grant('absent')).toBeUndefined();
    expect(await s.forgetGrant('github')).toBe(true);
    expect(await s.grant('github')).toBeUndefined();
    expect(await s.forgetGrant('github')).toBe(false);
  });

  it('finds a registered client only by the issuer that registered it; its secret is sealed', async () => {
    const { store: s, layout } = await store();
    await s.saveClient({ issuer: 'https://as.example', clientId: 'dyn-1', clientSecret: new SecretValue('canary-client-secret'), redirectUri: 'http://127.0.0.1:4000/callback' });
    expect((await s.client('https://as.example'))?.clientSecret?.reveal()).toBe('canary-client-secret');
    expect(await s.client('https://as.example/')).toBeUndefined();
    expect(await s.client('https://other.example')).toBeUndefined();
    for (const name of await readdir(layout.oauthClientsDir)) expect(await readFile(join(layout.oauthClientsDir, name), 'utf8')).not.toContain('canary');
  });

  it('says what to do with a file that is not a sealed record', async () => {
    const { store: s, layout } = await store();
    await s.saveGrant('github', grant);
    await writeFile(layout.oauthTokensFile('github'), 'garbage');
    await expect(s.grant('github')).rejects.toMatchObject({ code: 'StateInvalid', message: `${layout.oauthTokensFile('github')} is not a sealed OAuth record; remove it and connect again` });
  });
});
