/**
 * Values sealed for a team (DESIGN.md section 9, "Recipients"):
 *   apiary:v2:<base64url(age file)>
 * An age file (age-encryption.org/v1, X25519 recipients, through the
 * `age-encryption` library) encrypted to every recipient in the manifest
 * directory's `recipients` file. What is encrypted binds the value to its
 * secret name and key, readable to anyone who opens it with `age -d`:
 *
 *   apiary.dev/sealed-value: v2
 *   secret: <name>
 *   key: <key>
 *
 *   <value>
 *
 * and opening checks them, so a value moved to another secret or key is
 * refused, as the associated data of `apiary:v1` values refuses it.
 */
import { join } from 'node:path';
import { ApiaryError, messageOf } from '../errors.js';
import type * as AgeModule from 'age-encryption';
import { SecretValue } from './secret-value.js';
import { readTextIfPresent } from '../util/atomic.js';

export const AGE_PREFIX = 'apiary:v2:';
/** The file at the manifest directory's root that lists who may open the values. */
export const RECIPIENTS_FILE = 'recipients';
const HEADER = 'apiary.dev/sealed-value: v2';
/** An age X25519 recipient: "age1" and 58 bech32 characters. */
const RECIPIENT = /^age1[02-9ac-hj-np-z]{58}$/;
const IDENTITY = /^AGE-SECRET-KEY-1[02-9AC-HJ-NP-Z]{58}$/;

export function isAgeSealed(value: string): boolean {
  return value.startsWith(AGE_PREFIX);
}

export function isRecipient(text: string): boolean {
  return RECIPIENT.test(text);
}

export function isIdentity(text: string): boolean {
  return IDENTITY.test(text);
}

type AgeLibrary = typeof AgeModule;
/** Loaded on first use: most verbs never seal or open a value. */
const age = (): Promise<AgeLibrary> => import('age-encryption');

export async function generateIdentity(): Promise<string> {
  // X25519, not the post-quantum hybrid the library defaults to: Debian's age (1.1) reads only X25519.
  return (await age()).generateX25519Identity();
}

export async function recipientOf(identity: string): Promise<string> {
  return (await age()).identityToRecipient(identity);
}

export interface Recipients {
  /** Where they were read from. */
  file: string;
  recipients: string[];
}

/**
 * The directory's `recipients` file: one age recipient per line, `#`
 * comments and blank lines allowed; undefined when there is none. A line
 * that is not a recipient is an error naming its file and line.
 */
export async function readRecipients(dir: string): Promise<Recipients | undefined> {
  const file = join(dir, RECIPIENTS_FILE);
  const text = await readTextIfPresent(file);
  if (text === undefined) return undefined;
  return { file, recipients: parseRecipients(text, file) };
}

export function parseRecipients(text: string, file: string): string[] {
  const out: string[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') return;
    if (!isRecipient(line)) {
      const hint = isIdentity(line) ? ' (this is a private identity: never put it in recipients; run apiary key export-public for the recipient)' : '';
      throw new ApiaryError('ManifestInvalid', `${file}:${i + 1}:1: not an age recipient (age1...)${hint}`);
    }
    if (!out.includes(line)) out.push(line);
  });
  if (out.length === 0) throw new ApiaryError('ManifestInvalid', `${file}: lists no recipient; add one per line (apiary key export-public prints this machine's)`);
  return out;
}

function bound(name: string, key: string, value: string): string {
  return `${HEADER}\nsecret: ${name}\nkey: ${key}\n\n${value}`;
}

/** Seals a value for every recipient, bound to its secret name and key. */
export async function sealForRecipients(recipients: readonly string[], name: string, key: string, value: SecretValue | string): Promise<string> {
  const { Encrypter } = await age();
  const encrypter = new Encrypter();
  for (const r of recipients) encrypter.addRecipient(r);
  const file = await encrypter.encrypt(bound(name, key, typeof value === 'string' ? value : value.reveal()));
  return `${AGE_PREFIX}${Buffer.from(file).toString('base64url')}`;
}

/** The recipients' stanzas in an age file's header: how many it was sealed for. */
export function recipientCount(sealed: string): number {
  const file = Buffer.from(sealed.slice(AGE_PREFIX.length), 'base64url');
  const end = file.indexOf('\n---');
  return (end < 0 ? file : file.subarray(0, end)).toString('latin1').split('\n').filter((l) => l.startsWith('-> ')).length;
}

/**
 * Opens a value with this machine's identity: refused when it was sealed
 * for others (saying how many, and who this machine is) or for another
 * secret name or key.
 */
export async function openForIdentity(identities: string | readonly string[], name: string, key: string, sealed: string): Promise<SecretValue> {
  const all = typeof identities === 'string' ? [identities] : identities;
  const where = `secret "${name}" key "${key}"`;
  const data = sealed.slice(AGE_PREFIX.length);
  if (!/^[A-Za-z0-9_-]+$/.test(data)) throw new ApiaryError('SecretDecryptFailed', `${where} is not a sealed value (expected apiary:v2:<data>)`);
  const { Decrypter } = await age();
  const decrypter = new Decrypter();
  for (const identity of all) decrypter.addIdentity(identity);
  let text: string;
  try {
    text = await decrypter.decrypt(Buffer.from(data, 'base64url'), 'text');
  } catch (cause) {
    const message = messageOf(cause);
    if (/no identity matched/i.test(message)) {
      const count = recipientCount(sealed);
      const me = await recipientOf(all[0]!);
      throw new ApiaryError('SecretDecryptFailed', `${where} is sealed for ${count} recipient${count === 1 ? '' : 's'}, none of them this machine (${me})`, {
        cause,
        hints: [`Ask a member to add you: apiary recipients add ${me} (it reseals every value for you too).`],
      });
    }
    throw new ApiaryError('SecretDecryptFailed', `${where} failed to decrypt: the sealed value is damaged (${message})`, { cause });
  }
  const match = /^apiary\.dev\/sealed-value: v2\nsecret: (.*)\nkey: (.*)\n\n/.exec(text);
  if (match === null) throw new ApiaryError('SecretDecryptFailed', `${where} opened, but is not an apiary value (no bound secret name and key)`);
  if (match[1] !== name || match[2] !== key) {
    throw new ApiaryError('SecretDecryptFailed', `${where} holds a value sealed for secret "${match[1]}" key "${match[2]}"; a value cannot be moved to another secret or key`, {
      hints: [`Seal it again for this one: apiary secret set ${name} ${key}`],
    });
  }
  return new SecretValue(text.slice(match[0].length));
}
