/**
 * What a hosted server's spec.remote.auth asks for, resolved against its
 * secrets: the URL to log in to (spec.env's $(VAR) replaced), the scopes and
 * the pre-registered client with its secret. `apiary connect` and the
 * controller resolve it alike; a secret that is missing is a problem named
 * with the secret and key, never a login without it.
 */
import type { MCPServerSpec } from '../api/manifests.js';
import { expandEnvironment } from '../api/expansion.js';
import { expandReferences } from '../api/remote.js';
import type { OAuthSettings } from '../mcp/oauth-client.js';
import { resolveEnv, type SecretProblem } from './resolve-env.js';
import type { SecretLookup } from './secret-resolver.js';

export type RemoteAuth = { url: string; settings: OAuthSettings; problems: [] } | { problems: SecretProblem[] };

type RemoteAuthSpec = NonNullable<NonNullable<MCPServerSpec['remote']>['auth']>;

/** Undefined when the server needs no login (no spec.remote.auth). */
export async function resolveRemoteAuth(spec: MCPServerSpec, lookup: (name: string) => Promise<SecretLookup>): Promise<RemoteAuth | undefined> {
  const auth = spec.remote?.auth;
  if (spec.remote === undefined || auth === undefined) return undefined;
  const resolved = await resolveEnv(spec, lookup);
  const settings = await resolveOAuthSettings(auth, lookup);
  const problems = [...resolved.problems, ...('problems' in settings ? settings.problems : [])];
  if (problems.length > 0 || 'problems' in settings) return { problems };
  const values = new Map(expandEnvironment(resolved.vars, (v) => v.reveal()).map(([k, v]) => [k, typeof v === 'string' ? v : v.reveal()]));
  return { url: expandReferences(spec.remote.url, (name) => values.get(name)), settings, problems: [] };
}

/** The scopes and the pre-registered client, its secret read from its Secret. */
export async function resolveOAuthSettings(auth: RemoteAuthSpec, lookup: (name: string) => Promise<SecretLookup>): Promise<OAuthSettings | { problems: SecretProblem[] }> {
  let clientSecret: OAuthSettings['clientSecret'];
  const ref = auth.clientSecretRef;
  if (ref !== undefined) {
    const needed = 'needed for spec.remote.auth.clientSecretRef';
    const found = await lookup(ref.name);
    const entry = found.state === 'ok' ? found.entries.get(ref.key) : undefined;
    if (found.state !== 'ok') return { problems: [{ reason: 'SecretNotFound', secret: ref.name, message: `secret "${ref.name}" ${found.state === 'missing' ? 'not found' : `is invalid: ${found.message}`} (${needed})` }] };
    if (entry === undefined) return { problems: [{ reason: 'SecretKeyNotFound', secret: ref.name, message: `secret "${ref.name}" has no key "${ref.key}" (${needed})` }] };
    if (entry.value === undefined) return { problems: [{ reason: 'SecretDecryptFailed', secret: ref.name, message: `${entry.error?.message ?? `secret "${ref.name}" cannot be decrypted`} (${needed})` }] };
    clientSecret = entry.value;
  }
  return {
    ...(auth.scopes !== undefined ? { scopes: auth.scopes } : {}),
    ...(auth.clientId !== undefined ? { clientId: auth.clientId } : {}),
    ...(clientSecret !== undefined ? { clientSecret } : {}),
  };
}
