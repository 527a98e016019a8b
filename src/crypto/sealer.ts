/**
 * What seals a new value for a manifest directory: to every recipient in its
 * `recipients` file (apiary:v2, age), or, without one, with this machine's
 * master key (apiary:v1) as before. One choice per directory, made here, so
 * every writer (secret set, seal, install, the console) seals alike.
 */
import type { KeyStore } from './keys.js';
import { readRecipients, sealForRecipients } from './age.js';
import { seal } from './seal.js';
import type { SecretValue } from './secret-value.js';

export interface Sealer {
  /** For messages ("sealed 2 value(s) with ..."): "key 1a2b3c4d" (this machine's), or "age to 3 recipients in manifests/recipients". */
  readonly description: string;
  /** The master key was created to seal (the first value sealed on this machine, without recipients). */
  readonly keyCreated: boolean;
  seal(name: string, key: string, value: SecretValue | string): Promise<string>;
}

export async function sealerFor(dir: string, keys: Pick<KeyStore, 'getOrCreate'>): Promise<Sealer> {
  const listed = await readRecipients(dir);
  if (listed !== undefined) {
    const { recipients } = listed;
    return {
      description: `age to ${recipients.length} recipient${recipients.length === 1 ? '' : 's'} in ${listed.file}`,
      keyCreated: false,
      seal: (name, key, value) => sealForRecipients(recipients, name, key, value),
    };
  }
  const { key: master, created } = await keys.getOrCreate();
  return { description: `key ${master.id}`, keyCreated: created, seal: async (name, key, value) => seal(master, name, key, value) };
}
