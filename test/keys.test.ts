import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createKeyFile, KeyStore } from '../src/crypto/keys.js';
import type { Keyring } from '../src/crypto/keyring.js';
import { isApiaryError } from '../src/errors.js';
import { runCli } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';

class MemoryKeyring implements Keyring {
  readonly values = new Map<string, string>();
  gets = 0;
  async get(service: string, account: string): Promise<string | null> {
    this.gets++;
    return this.values.get(`${service}/${account}`) ?? null;
  }
  async set(service: string, account: string, value: string): Promise<void> {
    this.values.set(`${service}/${account}`, value);
  }
}

const deniedKeyring: Keyring = {
  get: async () => null,
  set: async () => {
    throw new Error("Couldn't access platform storage: AccessDenied");
  },
};

async function rejection(p: Promise<unknown>): Promise<{ code: string; message: string; hints: readonly string[] }> {
  try {
    await p;
  } catch (err) {
    if (isApiaryError(err)) return { code: err.code, message: err.message, hints: err.hints };
    throw err;
  }
  throw new Error('expected a rejection');
}

describe('KeyStore with a keyring', () => {
  it('creates a key on first use under service "apiary", then fetches it once and caches it', async () => {
    const keyring = new MemoryKeyring();
    const store = new KeyStore({ env: {}, keyring });
    const { key, created } = await store.getOrCreate();
    expect(created).toBe(true);
    expect([...keyring.values.keys()]).toEqual(['apiary/master-key']);
    const again = new KeyStore({ env: {}, keyring });
    expect((await again.get()).id).toBe(key.id);
    await again.get();
    await again.get();
    expect(keyring.gets).toBe(2); // one per store: the create, then one fetch for `again`
  });

  it('turns AccessDenied into a clear message with both ways out', async () => {
    const store = new KeyStore({ env: {}, keyring: deniedKeyring });
    const failure = await rejection(store.getOrCreate());
    expect(failure.code).toBe('KeyUnavailable');
    expect(failure.message).toBe("cannot use the OS keyring: Couldn't access platform storage: AccessDenied");
    expect(failure.hints.join('\n')).toContain('Secret Service');
    expect(failure.hints.join('\n')).toContain('APIARY_KEY_FILE');
  });

  it('get() never creates a key', async () => {
    const keyring = new MemoryKeyring();
    const failure = await rejection(new KeyStore({ env: {}, keyring }).get());
    expect(failure.message).toContain('no apiary master key found');
    expect(keyring.values.size).toBe(0);
  });
});

describe('key files', () => {
  it('key init --file creates an owner-only file that APIARY_KEY_FILE then uses', async () => {
    const path = join(await tempDir(), 'sub', 'master.key');
    const key = await createKeyFile(path);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    const store = new KeyStore({ env: { APIARY_KEY_FILE: path }, keyring: deniedKeyring });
    expect((await store.get()).id).toBe(key.id);
    expect(store.location()).toEqual({ backend: 'file', where: path });
  });

  it('refuses a key file that group or others can read, saying how to fix it', async () => {
    const path = join(await tempDir(), 'master.key');
    await createKeyFile(path);
    await chmod(path, 0o644);
    const failure = await rejection(new KeyStore({ env: { APIARY_KEY_FILE: path } }).get());
    expect(failure.code).toBe('KeyFileInsecure');
    expect(failure.message).toBe(`key file ${path} can be read by group or others (mode 0644); apiary refuses to use it`);
    expect(failure.hints).toEqual([`Fix it with: chmod 600 ${path}`]);
  });

  it('never overwrites an existing key file', async () => {
    const path = join(await tempDir(), 'master.key');
    await createKeyFile(path);
    const before = await readFile(path, 'utf8');
    expect((await rejection(createKeyFile(path))).message).toContain('already exists');
    expect(await readFile(path, 'utf8')).toBe(before);
  });

  it('a missing or foreign key file is a clear error', async () => {
    const dir = await tempDir();
    expect((await rejection(new KeyStore({ env: { APIARY_KEY_FILE: join(dir, 'nope') } }).get())).hints).toEqual([
      `Create it with: apiary key init --file ${join(dir, 'nope')}`,
    ]);
    await writeFile(join(dir, 'junk'), 'hello', { mode: 0o600 });
    expect((await rejection(new KeyStore({ env: { APIARY_KEY_FILE: join(dir, 'junk') } }).get())).message).toContain('is not an apiary key file');
  });
});

describe('no keyring at all (CLI)', () => {
  it('prints the underlying failure and both ways out, no stack trace, exit 1', async () => {
    const dir = await tempDir();
    const env = { DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent/bus', XDG_RUNTIME_DIR: dir, APIARY_KEY_FILE: '' };
    const r = await runCli(['key', 'init', '--dir', dir], { env });
    expect(r.code).toBe(1);
    // The underlying failure is named as the platform reports it.
    expect(r.stderr).toContain('error: cannot use the OS keyring: Platform failure: DBus error: Failed to connect to socket /nonexistent/bus');
    expect(r.stderr).toContain('Secret Service');
    expect(r.stderr).toContain('APIARY_KEY_FILE');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
