/**
 * Sealed values (DESIGN.md section 4):
 *   apiary:v1:<keyid>:<base64url(nonce | ciphertext | tag)>
 * AES-256-GCM with a fresh 12-byte nonce per value, the encryption key derived
 * from the master key with HKDF-SHA256, and associated data binding the value
 * to its secret name and key.
 */
import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import { ApiaryError } from '../errors.js';
import { SecretValue } from './secret-value.js';

export const MASTER_KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const PREFIX = 'apiary:v1:';
const HKDF_SALT = Buffer.from('apiary.dev/v1 sealed values');
const HKDF_INFO = Buffer.from('aes-256-gcm');

/** The master key and what is derived from it; the bytes never leave this object. */
export class MasterKey {
  readonly id: string;
  readonly #encryptionKey: Buffer;

  constructor(bytes: Buffer) {
    if (bytes.length !== MASTER_KEY_BYTES) {
      throw new ApiaryError('KeyUnavailable', `the master key must be ${MASTER_KEY_BYTES} bytes; this one is ${bytes.length}`);
    }
    this.id = keyIdOf(bytes);
    this.#encryptionKey = Buffer.from(hkdfSync('sha256', bytes, HKDF_SALT, HKDF_INFO, 32));
  }

  static generate(): { key: MasterKey; bytes: Buffer } {
    const bytes = randomBytes(MASTER_KEY_BYTES);
    return { key: new MasterKey(bytes), bytes };
  }

  /** @internal used by seal/unseal only. */
  encryptionKey(): Buffer {
    return this.#encryptionKey;
  }

  toJSON(): string {
    return `MasterKey(${this.id})`;
  }
}

/** A short hex fingerprint of the key: safe to show, names the key. */
export function keyIdOf(bytes: Buffer): string {
  return createHash('sha256').update('apiary key id\0').update(bytes).digest('hex').slice(0, 8);
}

function associatedData(secretName: string, key: string): Buffer {
  return Buffer.from(`apiary:v1\0${secretName}\0${key}`);
}

export function seal(master: MasterKey, secretName: string, key: string, value: SecretValue | string): string {
  const plaintext = typeof value === 'string' ? value : value.reveal();
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', master.encryptionKey(), nonce);
  cipher.setAAD(associatedData(secretName, key));
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  const payload = Buffer.concat([nonce, body, cipher.getAuthTag()]);
  return `${PREFIX}${master.id}:${payload.toString('base64url')}`;
}

/** The key id a sealed value names, or undefined if it is not a sealed value. */
export function sealedKeyId(sealed: string): string | undefined {
  const match = /^apiary:v1:([0-9a-f]+):/.exec(sealed);
  return match?.[1];
}

export function unseal(master: MasterKey, secretName: string, key: string, sealed: string): SecretValue {
  const where = `secret "${secretName}" key "${key}"`;
  const match = /^apiary:v1:([0-9a-f]+):([A-Za-z0-9_-]+)$/.exec(sealed);
  if (match === null) {
    throw new ApiaryError('SecretDecryptFailed', `${where} is not a sealed value (expected apiary:v1:<keyid>:<data>)`);
  }
  const [, keyId, data] = match as unknown as [string, string, string];
  if (keyId !== master.id) {
    throw new ApiaryError(
      'KeyMismatch',
      `${where} was sealed for key ${keyId}, but this machine's key is ${master.id}`,
      { hints: ['Seal the value again here (apiary secret set), or use the key it was sealed with (APIARY_KEY_FILE).'] },
    );
  }
  const payload = Buffer.from(data, 'base64url');
  if (payload.length < NONCE_BYTES + TAG_BYTES) {
    throw new ApiaryError('SecretDecryptFailed', `${where} failed to decrypt: the sealed value is truncated`);
  }
  const nonce = payload.subarray(0, NONCE_BYTES);
  const tag = payload.subarray(payload.length - TAG_BYTES);
  const body = payload.subarray(NONCE_BYTES, payload.length - TAG_BYTES);
  try {
    const decipher = createDecipheriv('aes-256-gcm', master.encryptionKey(), nonce);
    decipher.setAAD(associatedData(secretName, key));
    decipher.setAuthTag(tag);
    const plaintext = Buffer.concat([decipher.update(body), decipher.final()]);
    return new SecretValue(plaintext.toString('utf8'));
  } catch (cause) {
    throw new ApiaryError(
      'SecretDecryptFailed',
      `${where} failed to decrypt: the value was altered, or was sealed for another secret name or key`,
      { cause },
    );
  }
}
