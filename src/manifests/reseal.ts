/**
 * `apiary secret reseal` and `apiary key rotate`: every sealed value in the
 * manifest directory opened and sealed again for the current recipients,
 * across every file at once or not at all (see transaction.ts). Values are
 * replaced where they stand, so comments and layout stay; `apiary:v1` values
 * are upgraded on the way.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateIdentity, isAgeSealed, isRecipient, readRecipients, recipientOf, RECIPIENTS_FILE, sealForRecipients } from '../crypto/age.js';
import type { KeyStore } from '../crypto/keys.js';
import { openSecret, type Openers } from '../crypto/secret-data.js';
import { ApiaryError } from '../errors.js';
import { withDirectoryLock } from './edit.js';
import { formatManifestError } from './errors.js';
import { loadDirectory } from './loader.js';
import type { SecretResource } from './resource.js';
import { commitFiles, recover, type Plan, type Recovery } from './transaction.js';

export interface ResealedFile {
  /** As shown: relative to the directory's parent, as every other message names manifest files. */
  file: string;
  values: number;
  /** Of those, how many were apiary:v1 (this machine's key) before. */
  upgraded: number;
}

export interface ResealResult {
  /** What an interrupted earlier run left, finished or dropped first. */
  recovered: Recovery;
  files: ResealedFile[];
  recipients: number;
  /** Plain values (stringData, data) seen and left as they are: `apiary seal` seals them. */
  plain: number;
}

export interface RotateResult extends ResealResult {
  from?: string;
  to?: string;
}

/** Finishes or drops an interrupted reseal or rotation; a rotation's identity staged without a commit is forgotten. */
async function recoverFor(dir: string, keys: Pick<KeyStore, 'identity'>): Promise<Recovery> {
  const recovered = await recover(dir, () => keys.identity.promotePending().then(() => undefined));
  if (recovered.outcome !== 'finished') await keys.identity.dropPending();
  return recovered;
}

export async function resealDirectory(dir: string, keys: KeyStore, displayRoot = dir): Promise<ResealResult> {
  return withDirectoryLock(dir, async () => {
    const recovered = await recoverFor(dir, keys);
    if (recovered.outcome === 'finished') return { recovered, files: [], recipients: 0, plain: 0 };
    const listed = await requireRecipients(dir);
    return { recovered, ...(await resealAll(dir, displayRoot, keys, listed.recipients, 'reseal')) };
  }, { pendingPlanOk: true });
}

/**
 * A new age identity for this machine: staged beside the current one, its
 * recipient put in the recipients file in place of the current one's, every
 * value resealed, and only then does it replace the current one.
 */
export async function rotateIdentity(dir: string, keys: KeyStore, displayRoot = dir): Promise<RotateResult> {
  return withDirectoryLock(dir, async () => {
    const recovered = await recoverFor(dir, keys);
    if (recovered.outcome === 'finished') return { recovered, files: [], recipients: 0, plain: 0 };
    const listed = await requireRecipients(dir);
    const current = await keys.identity.get();
    const from = await recipientOf(current);
    if (!listed.recipients.includes(from)) {
      throw new ApiaryError('Usage', `this machine (${from}) is not in ${listed.file}; key rotate replaces this machine's own line there`, {
        hints: ['Add it first (apiary key export-public prints it), or have a member reseal without it.'],
      });
    }
    const next = await generateIdentity();
    const to = await recipientOf(next);
    await keys.identity.stagePending(next);
    const text = await readFile(listed.file, 'utf8');
    const recipients = listed.recipients.map((r) => (r === from ? to : r));
    const result = await resealAll(dir, displayRoot, keys, recipients, 'key rotate', { [listed.file]: text.split(from).join(to) }, 'promote-identity');
    return { recovered, ...result, from, to };
  }, { pendingPlanOk: true });
}

/**
 * `apiary recipients add|remove`: the recipients file changed and every value
 * resealed for the new list, in one all-or-nothing rewrite.
 */
export async function changeRecipients(dir: string, keys: KeyStore, change: { add?: { recipient: string; comment?: string }; remove?: string }, displayRoot = dir): Promise<ResealResult & { changed: string }> {
  return withDirectoryLock(dir, async () => {
    const recovered = await recoverFor(dir, keys);
    if (recovered.outcome === 'finished') return { recovered, files: [], recipients: 0, plain: 0, changed: '' };
    const listed = await readRecipients(dir);
    const file = listed?.file ?? join(dir, RECIPIENTS_FILE);
    const text = listed === undefined ? '# Who may open the values sealed in this directory: one age recipient per line.\n' : await readFile(file, 'utf8');
    let next: string;
    let recipients: string[];
    let changed: string;
    if (change.add !== undefined) {
      const { recipient, comment } = change.add;
      if (!isRecipient(recipient)) throw new ApiaryError('Usage', `"${recipient}" is not an age recipient (age1...)`);
      if (listed?.recipients.includes(recipient) === true) throw new ApiaryError('Usage', `${recipient} is already in ${file}`);
      if (listed === undefined) {
        // The first line decides who can open what is sealed from now on: this machine must be among them.
        const me = await recipientOf((await keys.identity.getOrCreate()).identity);
        if (recipient !== me) {
          throw new ApiaryError('Usage', `the directory has no recipients file yet, and ${recipient} is not this machine (${me}): values resealed for it alone could not be opened here`, {
            hints: [`Add this machine first: apiary recipients add ${me} --comment "$(hostname)"`],
          });
        }
      }
      next = `${text}${text.endsWith('\n') || text === '' ? '' : '\n'}${recipient}${comment !== undefined ? `  # ${comment.replace(/\n/g, ' ')}` : ''}\n`;
      recipients = [...(listed?.recipients ?? []), recipient];
      changed = `added ${recipient}`;
    } else {
      const gone = change.remove!;
      const lines = text.split('\n');
      // By recipient, or by the comment on its line (a name is easier to type than age1...).
      const index = lines.findIndex((l) => l.replace(/#.*$/, '').trim() === gone || (l.includes('#') && l.slice(l.indexOf('#') + 1).trim() === gone && isRecipient(l.replace(/#.*$/, '').trim())));
      if (index < 0) throw new ApiaryError('NotFound', `${gone} is not in ${file}`);
      const removed = lines[index]!.replace(/#.*$/, '').trim();
      lines.splice(index, 1);
      next = lines.join('\n');
      recipients = (listed?.recipients ?? []).filter((r) => r !== removed);
      if (recipients.length === 0) throw new ApiaryError('Usage', `removing ${removed} would leave no one to open the values; add the new member first`);
      changed = `removed ${removed}`;
    }
    const result = await resealAll(dir, displayRoot, keys, recipients, `recipients: ${changed}`, { [file]: next });
    return { recovered, ...result, changed };
  }, { pendingPlanOk: true });
}

async function requireRecipients(dir: string): Promise<{ file: string; recipients: string[] }> {
  const listed = await readRecipients(dir);
  if (listed === undefined) {
    throw new ApiaryError('Usage', `${join(dir, RECIPIENTS_FILE)} does not exist: values are sealed with this machine's key, and there is no one to reseal them for`, {
      hints: ['Create it with one age recipient per line; `apiary key export-public` prints this machine\'s.'],
    });
  }
  return listed;
}

async function resealAll(dir: string, displayRoot: string, keys: KeyStore, recipients: string[], operation: string, extra: Record<string, string> = {}, after?: Plan['after']): Promise<Omit<ResealResult, 'recovered'>> {
  const loaded = await loadDirectory(dir, displayRoot);
  const broken = loaded.documents.find((d) => d.kind === 'Secret' && d.errors.length > 0)?.errors[0];
  if (broken !== undefined) throw new ApiaryError('ManifestInvalid', `${formatManifestError(broken)}; nothing was resealed`);
  const byFile = new Map<string, SecretResource[]>();
  for (const r of loaded.resources) if (r.kind === 'Secret') byFile.set(r.source.path, [...(byFile.get(r.source.path) ?? []), r]);
  // During a rotation the staged identity opens too (a value resealed for it by an interrupted run).
  const openers: Openers = { get: () => keys.get(), identity: keys.identity };
  const changes = new Map<string, string>();
  const files: ResealedFile[] = [];
  let plain = 0;
  for (const [path, secrets] of byFile) {
    let text = await readFile(path, 'utf8');
    let values = 0;
    let upgraded = 0;
    for (const secret of secrets) {
      const m = secret.manifest;
      plain += Object.keys(m.stringData ?? {}).length + Object.keys(m.data ?? {}).length;
      const sealed = Object.entries('encryptedData' in m ? (m.encryptedData ?? {}) : {});
      if (sealed.length === 0) continue;
      const entries = await openSecret(secret, openers);
      for (const [key, token] of sealed) {
        const entry = entries.get(key)!;
        if (entry.value === undefined) throw new ApiaryError(entry.error?.code ?? 'SecretDecryptFailed', `${entry.error?.message ?? `secret "${secret.name}" key "${key}" cannot be opened here`}; nothing was resealed`, { hints: entry.error?.hints ?? [] });
        const parts = text.split(token);
        if (parts.length !== 2) throw new ApiaryError('ManifestInvalid', `${secret.source.file}: the sealed value of secret "${secret.name}" key "${key}" appears ${parts.length - 1} times in the file; nothing was resealed`);
        text = parts.join(await sealForRecipients(recipients, secret.name, key, entry.value));
        values += 1;
        if (!isAgeSealed(token)) upgraded += 1;
      }
    }
    if (values === 0) continue;
    changes.set(path, text);
    files.push({ file: secrets[0]!.source.file, values, upgraded });
  }
  for (const [path, text] of Object.entries(extra)) changes.set(path, text);
  if (changes.size > 0) await commitFiles(dir, operation, changes, after, () => keys.identity.promotePending().then(() => undefined));
  return { files: files.sort((a, b) => a.file.localeCompare(b.file)), recipients: recipients.length, plain };
}
