import type { Entry } from '@napi-rs/keyring';

/** The OS keyring behind a small seam, so tests and other platforms can swap it. */
export interface Keyring {
  get(service: string, account: string): Promise<string | null>;
  set(service: string, account: string, value: string): Promise<void>;
}

/**
 * The real keyring through @napi-rs/keyring (Secret Service, Keychain,
 * Credential Manager). On Linux the entry is pinned to the Secret Service:
 * the library's default falls back to the kernel keyring, which forgets its
 * contents at reboot, and a master key lost that way loses every sealed value.
 */
export const osKeyring: Keyring = {
  async get(service, account) {
    return (await entry(service, account)).getPassword() ?? null;
  },
  async set(service, account, value) {
    (await entry(service, account)).setPassword(value);
  },
};

async function entry(service: string, account: string): Promise<Entry> {
  const keyring = await import('@napi-rs/keyring');
  return new keyring.Entry(service, account, { linux: { store: 'secret-service' } });
}
