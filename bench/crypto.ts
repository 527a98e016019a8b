import { KeyStore } from '../src/crypto/keys.js';
import { MasterKey, seal, unseal } from '../src/crypto/seal.js';
import { fmtMs, now, type Row } from './stats.js';

export async function benchCrypto(): Promise<Row[]> {
  const { key } = MasterKey.generate();
  const value = 'ghp_' + 'x'.repeat(36);
  const n = 20_000;
  let sealed = '';
  let t = now();
  for (let i = 0; i < n; i++) sealed = seal(key, 'github', 'token', value);
  const sealMs = (now() - t) / n;
  t = now();
  for (let i = 0; i < n; i++) unseal(key, 'github', 'token', sealed);
  const unsealMs = (now() - t) / n;
  const rows: Row[] = [
    { measure: 'seal one value (40 bytes)', result: fmtMs(sealMs), note: `mean of ${n}` },
    { measure: 'unseal one value (40 bytes)', result: fmtMs(unsealMs), note: `mean of ${n}` },
  ];

  const store = new KeyStore({ env: { ...process.env, APIARY_KEY_FILE: '', APIARY_KEYRING_ACCOUNT: 'bench' } });
  try {
    t = now();
    await store.getOrCreate();
    const first = now() - t;
    const fresh = new KeyStore({ env: { ...process.env, APIARY_KEY_FILE: '', APIARY_KEYRING_ACCOUNT: 'bench' } });
    t = now();
    await fresh.get();
    const firstFetch = now() - t;
    t = now();
    for (let i = 0; i < 1000; i++) await fresh.get();
    const cached = (now() - t) / 1000;
    rows.push(
      { measure: 'keyring: first key fetch (new store)', result: fmtMs(firstFetch), note: `get-or-create took ${fmtMs(first)}` },
      { measure: 'keyring: cached key fetch', result: fmtMs(cached), note: 'mean of 1000' },
    );
  } catch (err) {
    rows.push({ measure: 'keyring: first key fetch', result: 'n/a', note: `no usable keyring: ${(err as Error).message.slice(0, 80)}` });
  }
  return rows;
}
