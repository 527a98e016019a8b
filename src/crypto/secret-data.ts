/** Opens a Secret resource: every key's value, or why it cannot be read. */
import { ApiaryError } from '../errors.js';
import type { SecretManifest } from '../api/manifests.js';
import type { IdentityStore, KeyStore } from './keys.js';
import { isAgeSealed, openForIdentity } from './age.js';
import { unseal, type MasterKey } from './seal.js';
import { SecretValue } from './secret-value.js';

export type SecretForm = 'sealed' | 'plain' | 'base64';

/** A Secret as sealing needs it: its name (sealed values are bound to it) and its manifest, wherever it was read from. */
export interface SecretObject {
  name: string;
  manifest: SecretManifest;
}

export interface SecretEntry {
  key: string;
  form: SecretForm;
  value?: SecretValue;
  error?: ApiaryError;
}

export function secretForms(resource: SecretObject): Map<string, SecretForm> {
  const forms = new Map<string, SecretForm>();
  const m = resource.manifest;
  if ('encryptedData' in m) for (const k of Object.keys(m.encryptedData ?? {})) forms.set(k, 'sealed');
  for (const k of Object.keys(m.stringData ?? {})) forms.set(k, 'plain');
  for (const k of Object.keys(m.data ?? {})) forms.set(k, 'base64');
  return forms;
}

/** What opens sealed values: the master key (apiary:v1) and this machine's age identity (apiary:v2). */
export type Openers = Pick<KeyStore, 'get'> & { identity?: Pick<IdentityStore, 'all'> };

/** Decrypts once; the key store is asked only if some value is sealed (and the identity only for values sealed to recipients). */
export async function openSecret(resource: SecretObject, keys: Openers): Promise<Map<string, SecretEntry>> {
  const m = resource.manifest;
  const entries = new Map<string, SecretEntry>();
  for (const [k, v] of Object.entries(m.stringData ?? {})) entries.set(k, { key: k, form: 'plain', value: new SecretValue(v) });
  for (const [k, v] of Object.entries(m.data ?? {})) {
    entries.set(k, { key: k, form: 'base64', value: new SecretValue(Buffer.from(v, 'base64').toString('utf8')) });
  }
  const sealed = 'encryptedData' in m ? Object.entries(m.encryptedData ?? {}) : [];
  if (sealed.length === 0) return entries;
  const aged = sealed.filter(([, v]) => isAgeSealed(v));
  const legacy = sealed.filter(([, v]) => !isAgeSealed(v));
  if (aged.length > 0) {
    let identity: string[] | undefined;
    let identityError: ApiaryError | undefined;
    try {
      if (keys.identity === undefined) throw new ApiaryError('KeyUnavailable', 'no age identity is available here');
      identity = await keys.identity.all();
    } catch (err) {
      identityError = err instanceof ApiaryError ? err : new ApiaryError('KeyUnavailable', String(err), { cause: err });
    }
    for (const [k, v] of aged) {
      try {
        if (identity === undefined) throw identityError!;
        entries.set(k, { key: k, form: 'sealed', value: await openForIdentity(identity, resource.name, k, v) });
      } catch (err) {
        entries.set(k, { key: k, form: 'sealed', error: err as ApiaryError });
      }
    }
  }
  if (legacy.length === 0) return entries;
  let master: MasterKey | undefined;
  let keyError: ApiaryError | undefined;
  try {
    master = await keys.get();
  } catch (err) {
    keyError = err instanceof ApiaryError ? err : new ApiaryError('KeyUnavailable', String(err), { cause: err });
  }
  for (const [k, v] of legacy) {
    if (master === undefined) {
      entries.set(k, { key: k, form: 'sealed', error: keyError! });
      continue;
    }
    try {
      entries.set(k, { key: k, form: 'sealed', value: unseal(master, resource.name, k, v) });
    } catch (err) {
      entries.set(k, { key: k, form: 'sealed', error: err as ApiaryError });
    }
  }
  return entries;
}
