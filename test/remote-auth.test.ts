/** spec.remote.auth resolved against secrets: what connect and the controller log in with. */
import { describe, expect, it } from 'vitest';
import { MCPServerManifest, type SecretManifest } from '../src/api/manifests.js';
import { SecretValue } from '../src/crypto/secret-value.js';
import type { SecretResource } from '../src/manifests/resource.js';
import { resolveRemoteAuth } from '../src/reconcilers/remote-auth.js';
import type { SecretLookup } from '../src/reconcilers/secret-resolver.js';

const spec = (remote: unknown, env?: unknown): ReturnType<typeof MCPServerManifest.parse>['spec'] =>
  MCPServerManifest.parse({ apiVersion: 'apiary.dev/v1alpha1', kind: 'MCPServer', metadata: { name: 'hosted' }, spec: { remote, ...(env ? { env } : {}) } }).spec;

const secrets = (values: Record<string, Record<string, string>>) => async (name: string): Promise<SecretLookup> => {
  const keys = values[name];
  if (keys === undefined) return { state: 'missing' };
  const entries = new Map(Object.entries(keys).map(([key, value]) => [key, { key, form: 'plain' as const, value: new SecretValue(value) }]));
  return { state: 'ok', resource: { kind: 'Secret', name, manifest: {} as SecretManifest } as unknown as SecretResource, entries, version: 'v' };
};

describe('resolveRemoteAuth', () => {
  it('is undefined for a server without auth', async () => {
    expect(await resolveRemoteAuth(spec({ url: 'https://h.example/mcp' }), secrets({}))).toBeUndefined();
  });

  it("gives the URL with spec.env's values and the pre-registered client with its secret", async () => {
    const auth = await resolveRemoteAuth(
      spec({ url: 'https://$(HOST)/mcp', auth: { type: 'oauth', scopes: ['mcp'], clientId: 'c1', clientSecretRef: { name: 'oauth', key: 'secret' } } }, [{ name: 'HOST', value: 'h.example' }]),
      secrets({ oauth: { secret: 'client-secret-value' } }),
    );
    expect(auth).toMatchObject({ url: 'https://h.example/mcp', settings: { scopes: ['mcp'], clientId: 'c1' }, problems: [] });
    expect(auth !== undefined && 'settings' in auth ? auth.settings.clientSecret?.reveal() : undefined).toBe('client-secret-value');
  });

  it('names a missing client secret and key, never logging in without it', async () => {
    const remote = { url: 'https://h.example/mcp', auth: { type: 'oauth', clientId: 'c1', clientSecretRef: { name: 'oauth', key: 'secret' } } };
    expect(await resolveRemoteAuth(spec(remote), secrets({}))).toEqual({
      problems: [{ reason: 'SecretNotFound', secret: 'oauth', message: 'secret "oauth" not found (needed for spec.remote.auth.clientSecretRef)' }],
    });
    expect(await resolveRemoteAuth(spec(remote), secrets({ oauth: { other: 'x' } }))).toEqual({
      problems: [{ reason: 'SecretKeyNotFound', secret: 'oauth', message: 'secret "oauth" has no key "secret" (needed for spec.remote.auth.clientSecretRef)' }],
    });
  });
});
