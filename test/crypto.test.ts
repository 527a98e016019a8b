import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { MasterKey, seal, sealedKeyId, unseal } from '../src/crypto/seal.js';
import { SecretValue } from '../src/crypto/secret-value.js';
import { isApiaryError } from '../src/errors.js';

const { key } = MasterKey.generate();

function failure(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (err) {
    if (isApiaryError(err)) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error('expected a failure');
}

describe('sealed values', () => {
  it('round-trips, in the documented format', () => {
    const sealed = seal(key, 'github', 'token', 'ghp_example');
    expect(sealed).toMatch(new RegExp(`^apiary:v1:${key.id}:[A-Za-z0-9_-]+$`));
    expect(key.id).toMatch(/^[0-9a-f]{8}$/);
    expect(sealedKeyId(sealed)).toBe(key.id);
    expect(unseal(key, 'github', 'token', sealed).reveal()).toBe('ghp_example');
  });

  it('round-trips empty-ish, unicode and long values', () => {
    for (const v of ['x', 'päss wörd ✓', 'a'.repeat(100_000), 'line1\nline2']) {
      expect(unseal(key, 's', 'k', seal(key, 's', 'k', v)).reveal()).toBe(v);
    }
  });

  it('a value moved to another secret name fails to decrypt, naming secret and key', () => {
    const sealed = seal(key, 'github', 'token', 'ghp_example');
    expect(failure(() => unseal(key, 'gitlab', 'token', sealed))).toEqual({
      code: 'SecretDecryptFailed',
      message: 'secret "gitlab" key "token" failed to decrypt: the value was altered, or was sealed for another secret name or key',
    });
  });

  it('a value moved to another key fails to decrypt', () => {
    const sealed = seal(key, 'github', 'token', 'ghp_example');
    expect(failure(() => unseal(key, 'github', 'password', sealed)).code).toBe('SecretDecryptFailed');
  });

  it('any flipped bit fails authentication', () => {
    const sealed = seal(key, 'github', 'token', 'ghp_example');
    const prefix = sealed.slice(0, sealed.lastIndexOf(':') + 1);
    const payload = Buffer.from(sealed.slice(prefix.length), 'base64url');
    for (let byte = 0; byte < payload.length; byte++) {
      const tampered = Buffer.from(payload);
      tampered[byte]! ^= 1 << byte % 8;
      const result = failure(() => unseal(key, 'github', 'token', prefix + tampered.toString('base64url')));
      expect(result.code).toBe('SecretDecryptFailed');
      expect(result.message).not.toContain('ghp_example');
    }
  });

  it('a value sealed for another key names both key ids', () => {
    const other = MasterKey.generate().key;
    const sealed = seal(other, 'github', 'token', 'ghp_example');
    const result = failure(() => unseal(key, 'github', 'token', sealed));
    expect(result.code).toBe('KeyMismatch');
    expect(result.message).toBe(`secret "github" key "token" was sealed for key ${other.id}, but this machine's key is ${key.id}`);
  });

  it('a truncated or malformed value fails clearly', () => {
    expect(failure(() => unseal(key, 's', 'k', `apiary:v1:${key.id}:AAAA`)).message).toContain('truncated');
    expect(failure(() => unseal(key, 's', 'k', 'plain text')).message).toContain('is not a sealed value');
  });

  it('10,000 seals of one value give 10,000 distinct nonces and ciphertexts', () => {
    const nonces = new Set<string>();
    const ciphertexts = new Set<string>();
    for (let i = 0; i < 10_000; i++) {
      const sealed = seal(key, 'github', 'token', 'same value');
      const payload = Buffer.from(sealed.slice(sealed.lastIndexOf(':') + 1), 'base64url');
      nonces.add(payload.subarray(0, 12).toString('hex'));
      ciphertexts.add(payload.subarray(12).toString('hex'));
    }
    expect(nonces.size).toBe(10_000);
    expect(ciphertexts.size).toBe(10_000);
  });
});

describe('SecretValue', () => {
  it('never prints its value', () => {
    const v = new SecretValue('hunter2');
    expect(String(v)).toBe('[redacted]');
    expect(`${v}`).toBe('[redacted]');
    expect(JSON.stringify({ v })).toBe('{"v":"[redacted]"}');
    expect(inspect({ v })).not.toContain('hunter2');
    expect(v.reveal()).toBe('hunter2');
  });

  it('a master key never serializes its bytes', () => {
    expect(JSON.stringify({ key })).toBe(`{"key":"MasterKey(${key.id})"}`);
  });
});
