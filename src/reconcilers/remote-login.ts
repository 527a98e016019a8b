/**
 * The pieces `apiary connect|disconnect` and the console's Connect button
 * share: a server's spec.remote.auth read from the manifest directory and
 * resolved against its secrets, the sealed token store in the state
 * directory, and a disconnect that revokes where it can and forgets always.
 * Neither needs the controller: the controller finds the tokens in the store.
 */
import { openSecret } from '../crypto/secret-data.js';
import type { KeyStore } from '../crypto/keys.js';
import { ApiaryError, messageOf } from '../errors.js';
import { loadDirectory } from '../manifests/loader.js';
import type { MCPServerResource } from '../manifests/resource.js';
import { revoke, type OAuthSettings } from '../mcp/oauth-client.js';
import { StateLayout } from '../state/layout.js';
import { OAuthTokenStore } from '../state/oauth-tokens.js';
import { resolveRemoteAuth, type RemoteAuth } from './remote-auth.js';
import type { SecretLookup } from './secret-resolver.js';

/** The server's manifest, read from the directory, its auth resolved against the directory's secrets. */
export async function remoteAuthIn(dir: string, name: string, keys: KeyStore): Promise<RemoteAuth> {
  const loaded = await loadDirectory(dir);
  const server = loaded.resources.find((r): r is MCPServerResource => r.kind === 'MCPServer' && r.name === name);
  if (server === undefined) throw new ApiaryError('NotFound', `mcpserver "${name}" not found in ${dir}`);
  const lookup = async (secret: string): Promise<SecretLookup> => {
    const resource = loaded.resources.find((r) => r.kind === 'Secret' && r.name === secret);
    if (resource === undefined || resource.kind !== 'Secret') return { state: 'missing' };
    return { state: 'ok', resource, entries: await openSecret(resource, keys), version: '' };
  };
  const auth = await resolveRemoteAuth(server.manifest.spec, lookup);
  if (auth === undefined) {
    throw new ApiaryError('Usage', `mcpserver "${name}" does not log in with OAuth: its manifest has no spec.remote.auth`, {
      hints: ['Add to its spec.remote:  auth: {type: oauth}'],
    });
  }
  return auth;
}

/** The login's URL and settings; a secret the login needs and cannot have is an error that names it. */
export async function loginOf(dir: string, name: string, keys: KeyStore): Promise<{ url: string; settings: OAuthSettings }> {
  const auth = await remoteAuthIn(dir, name, keys);
  if (auth.problems.length > 0 || !('url' in auth)) throw new ApiaryError('SecretNotFound', `mcpserver "${name}" cannot log in: ${auth.problems.map((p) => p.message).join('; ')}`);
  return auth;
}

/** The sealed token store; `create`: make the machine's key if there is none yet (a login), else only use it. */
export function tokenStoreIn(stateDir: string, keys: KeyStore, create: boolean): OAuthTokenStore {
  return new OAuthTokenStore(new StateLayout(stateDir), async () => (create ? (await keys.getOrCreate()).key : keys.get()));
}

/**
 * Forgets a server's tokens, revoking them first where the authorization
 * server offers it; undefined when there were none. The answer's words say
 * what happened at the server (never a token).
 */
export async function disconnectGrant(dir: string, name: string, store: OAuthTokenStore, keys: KeyStore): Promise<string | undefined> {
  if (!(await store.hasGrant(name))) return undefined;
  // The manifest may be gone already: the tokens are still forgotten, revoked with the client kept for their issuer.
  const auth = await remoteAuthIn(dir, name, keys).catch(() => undefined);
  const settings: OAuthSettings = auth !== undefined && 'settings' in auth ? auth.settings : {};
  const revoked = await revokeQuietly(store, name, settings);
  await store.forgetGrant(name);
  return `tokens forgotten${revoked}`;
}

async function revokeQuietly(store: OAuthTokenStore, name: string, settings: OAuthSettings): Promise<string> {
  try {
    const grant = await store.grant(name);
    if (grant === undefined) return '';
    const outcome = await revoke(grant, settings, store);
    return outcome === 'revoked' ? ' and revoked at the authorization server' : outcome === 'not-offered' ? ' (the authorization server offers no revocation)' : ' (not revoked: the client they were issued to is no longer configured)';
  } catch (err) {
    return ` (not revoked: ${messageOf(err)})`;
  }
}
