/**
 * Opens secrets for the reconcilers, decrypting each version of a secret
 * once: servers that share a secret share its decrypted entries.
 */
import { specHash } from '../api/generation.js';
import { resourceKey } from '../api/names.js';
import { openSecret, type Openers, type SecretEntry } from '../crypto/secret-data.js';
import type { MasterKey } from '../crypto/seal.js';
import type { DesiredState } from '../manifests/desired-state.js';
import { formatManifestError } from '../manifests/errors.js';
import type { SecretResource } from '../manifests/resource.js';

export type SecretLookup =
  | { state: 'missing' }
  | { state: 'invalid'; message: string }
  | { state: 'ok'; resource: SecretResource; entries: Map<string, SecretEntry>; version: string };

export class SecretResolver {
  readonly #keys: Openers;
  readonly #cache = new Map<string, { version: string; entries: Promise<Map<string, SecretEntry>> }>();

  constructor(keys: Openers) {
    this.#keys = keys;
  }

  /** This machine's master key (a hosted server's sealed OAuth tokens are opened with it). */
  masterKey(): Promise<MasterKey> {
    return this.#keys.get();
  }

  async lookup(desired: DesiredState, name: string): Promise<SecretLookup> {
    const entry = desired.get(resourceKey('Secret', name));
    if (entry === undefined) return { state: 'missing' };
    if (entry.resource === undefined || entry.resource.kind !== 'Secret') {
      const first = entry.errors[0];
      return { state: 'invalid', message: first ? formatManifestError(first) : 'invalid manifest' };
    }
    const resource = entry.resource;
    const version = specHash(resource.manifest);
    let cached = this.#cache.get(name);
    if (cached === undefined || cached.version !== version) {
      cached = { version, entries: openSecret(resource, this.#keys) };
      this.#cache.set(name, cached);
    }
    return { state: 'ok', resource, entries: await cached.entries, version };
  }
}
