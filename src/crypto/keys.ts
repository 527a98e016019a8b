/**
 * Where the master key lives: the OS keyring (service "apiary"), or, on a
 * machine without one, a key file named by APIARY_KEY_FILE. The key is
 * fetched once per process and cached.
 */
import { readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { ApiaryError, messageOf } from '../errors.js';
import { ensureDir, writeFileAtomic } from '../util/atomic.js';
import { osKeyring, type Keyring } from './keyring.js';
import { MASTER_KEY_BYTES, MasterKey } from './seal.js';
import { generateIdentity, isIdentity, recipientOf } from './age.js';

export const KEYRING_SERVICE = 'apiary';
export const DEFAULT_KEYRING_ACCOUNT = 'master-key';
const KEY_FILE_PREFIX = 'apiary-master-key:v1:';

export interface KeyLocation {
  backend: 'keyring' | 'file';
  /** Human-readable: `keyring service "apiary", account "master-key"` or the file path. */
  where: string;
}

export type KeyStatus = KeyLocation & ({ state: 'ok'; id: string } | { state: 'absent' } | { state: 'unavailable'; error: ApiaryError });

export interface KeyStoreOptions {
  env?: NodeJS.ProcessEnv;
  keyring?: Keyring;
}

export class KeyStore {
  readonly #env: NodeJS.ProcessEnv;
  readonly #keyring: Keyring;
  #cached: Promise<MasterKey> | undefined;
  /** This machine's age identity, for values sealed to recipients. */
  readonly identity: IdentityStore;

  constructor(options: KeyStoreOptions = {}) {
    this.#env = options.env ?? process.env;
    this.#keyring = options.keyring ?? osKeyring;
    this.identity = new IdentityStore(this, options);
  }

  get keyFile(): string | undefined {
    const file = this.#env['APIARY_KEY_FILE'];
    return file === undefined || file === '' ? undefined : resolve(file);
  }

  get account(): string {
    return this.#env['APIARY_KEYRING_ACCOUNT'] || DEFAULT_KEYRING_ACCOUNT;
  }

  location(): KeyLocation {
    const file = this.keyFile;
    return file !== undefined
      ? { backend: 'file', where: file }
      : { backend: 'keyring', where: `OS keyring, service "${KEYRING_SERVICE}", account "${this.account}"` };
  }

  /** The existing key; never creates one. */
  get(): Promise<MasterKey> {
    this.#cached ??= this.#load(false).then((r) => r.key);
    this.#cached.catch(() => (this.#cached = undefined));
    return this.#cached;
  }

  /**
   * Whether the key can be used here, without creating one: `absent` is
   * fine (the first sealed value creates it); `unavailable` carries why and
   * the way out (the keyring cannot be reached, a key file is unsafe...).
   */
  async status(): Promise<KeyStatus> {
    const location = this.location();
    if (this.keyFile === undefined) {
      try {
        if ((await this.#keyring.get(KEYRING_SERVICE, this.account)) === null) return { state: 'absent', ...location };
      } catch (cause) {
        return { state: 'unavailable', ...location, error: keyringUnavailable(cause) };
      }
    }
    try {
      return { state: 'ok', ...location, id: (await this.get()).id };
    } catch (err) {
      return { state: 'unavailable', ...location, error: err instanceof ApiaryError ? err : new ApiaryError('KeyUnavailable', messageOf(err)) };
    }
  }

  /** The key, created on first use (keyring only; key files are made by `key init --file`). */
  async getOrCreate(): Promise<{ key: MasterKey; created: boolean }> {
    const result = await this.#load(true);
    this.#cached = Promise.resolve(result.key);
    return result;
  }

  async #load(create: boolean): Promise<{ key: MasterKey; created: boolean }> {
    const file = this.keyFile;
    if (file !== undefined) return { key: await readKeyFile(file), created: false };
    return this.#loadFromKeyring(create);
  }

  async #loadFromKeyring(create: boolean): Promise<{ key: MasterKey; created: boolean }> {
    let stored: string | null;
    try {
      stored = await this.#keyring.get(KEYRING_SERVICE, this.account);
    } catch (cause) {
      throw keyringUnavailable(cause);
    }
    if (stored !== null) return { key: decodeStoredKey(stored, this.location().where), created: false };
    if (!create) {
      throw new ApiaryError('KeyUnavailable', `no apiary master key found (looked in the ${this.location().where})`, {
        hints: [
          'Create one with `apiary key init` (or by sealing a value: `apiary secret set NAME KEY`).',
          'On a machine without a keyring, set APIARY_KEY_FILE to a key file (`apiary key init --file PATH`).',
        ],
      });
    }
    const { key, bytes } = MasterKey.generate();
    try {
      await this.#keyring.set(KEYRING_SERVICE, this.account, bytes.toString('base64'));
    } catch (cause) {
      throw keyringUnavailable(cause);
    }
    return { key, created: true };
  }
}

/** Where this machine's age identity is read from, in order. */
export type IdentitySource = { kind: 'env'; where: string } | { kind: 'file'; path: string; where: string } | { kind: 'keyring'; account: string; where: string };

/**
 * This machine's age identity (issue 14): from $APIARY_AGE_IDENTITY (the
 * identity itself, for CI), a file named by $APIARY_AGE_IDENTITY_FILE, a file
 * beside $APIARY_KEY_FILE on a machine without a keyring, or the OS keyring.
 */
export class IdentityStore {
  readonly #env: NodeJS.ProcessEnv;
  readonly #keyring: Keyring;
  readonly #keys: KeyStore;

  constructor(keys: KeyStore, options: KeyStoreOptions = {}) {
    this.#keys = keys;
    this.#env = options.env ?? process.env;
    this.#keyring = options.keyring ?? osKeyring;
  }

  source(): IdentitySource {
    if (this.#env['APIARY_AGE_IDENTITY']) return { kind: 'env', where: 'environment variable APIARY_AGE_IDENTITY' };
    const file = this.#env['APIARY_AGE_IDENTITY_FILE'];
    if (file) return { kind: 'file', path: resolve(file), where: resolve(file) };
    if (this.#keys.keyFile !== undefined) return { kind: 'file', path: `${this.#keys.keyFile}.age`, where: `${this.#keys.keyFile}.age` };
    const account = this.#env['APIARY_KEYRING_ACCOUNT'] ? `${this.#env['APIARY_KEYRING_ACCOUNT']}-age-identity` : 'age-identity';
    return { kind: 'keyring', account, where: `OS keyring, service "${KEYRING_SERVICE}", account "${account}"` };
  }

  /** The identity; never creates one. Read afresh each time: a key rotation may have replaced it. */
  async get(): Promise<string> {
    return (await this.#load(false)).identity;
  }

  /**
   * Every identity that may open a value here: the current one, and during a
   * key rotation the new one beside it (values resealed for it open before
   * it takes over). At least one, or the error that says there is none.
   */
  async all(): Promise<string[]> {
    const pending = await this.#readPending();
    try {
      return [await this.get(), ...(pending !== undefined ? [pending] : [])];
    } catch (err) {
      if (pending !== undefined) return [pending];
      throw err;
    }
  }

  /** The identity, created on first use (not one named by the environment: that is the pipeline's to give). */
  async getOrCreate(): Promise<{ identity: string; created: boolean }> {
    return this.#load(true);
  }

  /** A key rotation's new identity, stored beside the current one until promotePending(). */
  async stagePending(identity: string): Promise<void> {
    const source = this.source();
    if (source.kind === 'env') throw new ApiaryError('Usage', 'the age identity comes from APIARY_AGE_IDENTITY; rotate it where it is kept, and give the pipeline the new one');
    if (source.kind === 'file') {
      await writeFileAtomic(`${source.path}.next`, `# apiary age identity (a key rotation in progress), created ${new Date().toISOString()}\n${identity}\n`, { mode: 0o600 });
      return;
    }
    await this.#setKeyring(`${source.account}-next`, identity);
  }

  /** The staged identity becomes the current one (idempotent: nothing staged, nothing done). */
  async promotePending(): Promise<boolean> {
    const source = this.source();
    if (source.kind === 'env') return false;
    if (source.kind === 'file') {
      if ((await stat(`${source.path}.next`).catch(() => undefined)) === undefined) return false;
      await rename(`${source.path}.next`, source.path);
      return true;
    }
    const pending = await this.#readPending();
    if (pending === undefined) return false;
    await this.#setKeyring(source.account, pending);
    await this.#setKeyring(`${source.account}-next`, '');
    return true;
  }

  /** A rotation that never committed: its staged identity is forgotten. */
  async dropPending(): Promise<void> {
    const source = this.source();
    if (source.kind === 'file') await rm(`${source.path}.next`, { force: true });
    else if (source.kind === 'keyring' && (await this.#readPending()) !== undefined) await this.#setKeyring(`${source.account}-next`, '');
  }

  async #readPending(): Promise<string | undefined> {
    const source = this.source();
    if (source.kind === 'env') return undefined;
    if (source.kind === 'file') {
      const next = `${source.path}.next`;
      const text = await readOwnerOnly(next, 'age identity file', { code: 'NotFound', message: `the staged age identity ${next} cannot be read` }).catch((err: unknown) => {
        if (err instanceof ApiaryError && err.code === 'NotFound') return undefined;
        throw err;
      });
      return text === undefined ? undefined : parseIdentity(text, next);
    }
    let stored: string | null;
    try {
      stored = await this.#keyring.get(KEYRING_SERVICE, `${source.account}-next`);
    } catch (cause) {
      throw keyringUnavailable(cause);
    }
    return stored === null || stored === '' ? undefined : parseIdentity(stored, `${source.where}-next`);
  }

  async #setKeyring(account: string, value: string): Promise<void> {
    try {
      await this.#keyring.set(KEYRING_SERVICE, account, value);
    } catch (cause) {
      throw keyringUnavailable(cause);
    }
  }

  async #load(create: boolean): Promise<{ identity: string; created: boolean }> {
    const source = this.source();
    if (source.kind === 'env') return { identity: parseIdentity(this.#env['APIARY_AGE_IDENTITY']!, source.where), created: false };
    if (source.kind === 'file') {
      const text = await readOwnerOnly(source.path, 'age identity file', { code: 'NotFound', message: `the age identity file ${source.path} cannot be read` }).catch(async (err: unknown) => {
        if (!create || !(err instanceof ApiaryError) || err.code !== 'NotFound') throw err;
        return undefined;
      });
      if (text !== undefined) return { identity: parseIdentity(text, source.where), created: false };
      const identity = await generateIdentity();
      await ensureDir(dirname(source.path));
      await writeFileAtomic(source.path, `# apiary age identity, created ${new Date().toISOString()}\n# public key: ${await recipientOf(identity)}\n${identity}\n`, { mode: 0o600 });
      return { identity, created: true };
    }
    let stored: string | null;
    try {
      stored = await this.#keyring.get(KEYRING_SERVICE, source.account);
    } catch (cause) {
      throw keyringUnavailable(cause);
    }
    if (stored !== null) return { identity: parseIdentity(stored, source.where), created: false };
    if (!create) {
      throw new ApiaryError('KeyUnavailable', `this machine has no age identity yet (looked in the ${source.where})`, {
        hints: ['Create one with `apiary key export-public` and give the printed recipient to a member, to add to the recipients file.'],
      });
    }
    const identity = await generateIdentity();
    try {
      await this.#keyring.set(KEYRING_SERVICE, source.account, identity);
    } catch (cause) {
      throw keyringUnavailable(cause);
    }
    return { identity, created: true };
  }
}

/** An identity file as age-keygen writes it (comments, then the key), or the key alone. */
function parseIdentity(text: string, where: string): string {
  const line = text.split('\n').map((l) => l.trim()).find((l) => l !== '' && !l.startsWith('#'));
  if (line === undefined || !isIdentity(line)) throw new ApiaryError('KeyUnavailable', `the age identity in the ${where} is not an X25519 age identity (AGE-SECRET-KEY-1...)`);
  return line;
}

/**
 * A file that holds a key (the master key file, an age identity file): read
 * only when it is this user's and nobody else can read it.
 */
async function readOwnerOnly(path: string, what: string, missing: { code: 'KeyUnavailable' | 'NotFound'; message: string; hints?: string[] }): Promise<string> {
  const info = await stat(path).catch((cause: unknown) => {
    const absent = (cause as NodeJS.ErrnoException).code === 'ENOENT';
    throw new ApiaryError(absent ? missing.code : 'KeyUnavailable', `${missing.message} (${messageOf(cause)})`, { cause, ...(missing.hints ? { hints: missing.hints } : {}) });
  });
  if ((info.mode & 0o077) !== 0) {
    throw new ApiaryError('KeyFileInsecure', `${what} ${path} can be read by group or others (mode ${(info.mode & 0o777).toString(8).padStart(4, '0')}); apiary refuses to use it`, { hints: [`Fix it with: chmod 600 ${path}`] });
  }
  if (typeof process.getuid === 'function' && info.uid !== process.getuid()) {
    throw new ApiaryError('KeyFileInsecure', `${what} ${path} belongs to another user (uid ${info.uid}); apiary refuses to use it`);
  }
  return readFile(path, 'utf8');
}

function keyringUnavailable(cause: unknown): ApiaryError {
  return new ApiaryError('KeyUnavailable', `cannot use the OS keyring: ${messageOf(cause)}`, {
    cause,
    hints: [
      'apiary keeps its master key in the OS keyring (Secret Service on Linux, Keychain on macOS, Credential Manager on Windows).',
      'Ways out:',
      '  - start and unlock a Secret Service (for example gnome-keyring-daemon inside a D-Bus session), or',
      '  - use a key file instead:  apiary key init --file ~/.config/apiary/master.key',
      '                             export APIARY_KEY_FILE=~/.config/apiary/master.key',
    ],
  });
}

function decodeStoredKey(text: string, where: string): MasterKey {
  const bytes = Buffer.from(text.trim(), 'base64');
  if (bytes.length !== MASTER_KEY_BYTES) {
    throw new ApiaryError('KeyUnavailable', `the master key in the ${where} is not a valid apiary key`);
  }
  return new MasterKey(bytes);
}

async function readKeyFile(path: string): Promise<MasterKey> {
  const stored = await readOwnerOnly(path, 'key file', { code: 'KeyUnavailable', message: `APIARY_KEY_FILE names ${path}, which cannot be read`, hints: [`Create it with: apiary key init --file ${path}`] });
  const text = stored.trim();
  if (!text.startsWith(KEY_FILE_PREFIX)) {
    throw new ApiaryError('KeyUnavailable', `key file ${path} is not an apiary key file`);
  }
  return decodeStoredKey(text.slice(KEY_FILE_PREFIX.length), path);
}

/** Creates a new key file, owner-only. Never overwrites one. */
export async function createKeyFile(path: string): Promise<MasterKey> {
  const absolute = resolve(path);
  if (await stat(absolute).then(() => true, () => false)) {
    throw new ApiaryError('Io', `${absolute} already exists; apiary never overwrites a key (values sealed with it would be lost)`);
  }
  await ensureDir(dirname(absolute));
  const { key, bytes } = MasterKey.generate();
  await writeFileAtomic(absolute, `${KEY_FILE_PREFIX}${bytes.toString('base64')}\n`, { mode: 0o600 });
  return key;
}
