/**
 * Writes secrets into the manifest directory: set one sealed value, delete a
 * secret or a key, seal plain values in place. Each operation holds the
 * directory lock across its read-modify-write; its `...Loaded` form is for a
 * caller that already holds the lock and has read the directory under it.
 */
import { readFile } from 'node:fs/promises';
import { isMap, isScalar, Scalar, stringify, type Document, type Pair, type YAMLMap } from 'yaml';
import { API_GROUP_VERSION } from '../api/names.js';
import type { Sealer as ValueSealer } from '../crypto/sealer.js';
import type { SecretValue } from '../crypto/secret-value.js';
import { ApiaryError } from '../errors.js';
import { MANIFEST_WRITE, writeFileAtomic } from '../util/atomic.js';
import { editBlockMapLine, editDocumentInFile, editDocumentText, freshFile, requireEditable, withDirectoryLock } from './edit.js';
import { formatManifestError } from './errors.js';
import { loadDirectory, type LoadResult } from './loader.js';
import type { ParsedDocument } from './parse.js';
import { parseManifestText } from './parse.js';

function secretDocument(loaded: Pick<LoadResult, 'documents'>, name: string): ParsedDocument | undefined {
  return loaded.documents.find((d) => d.kind === 'Secret' && d.name === name);
}

/** Moves a Kubernetes v1 Secret to apiary's apiVersion so it can hold sealed values. */
function ensureApiaryApiVersion(doc: Document): boolean {
  if (doc.get('apiVersion') === API_GROUP_VERSION) return false;
  doc.set('apiVersion', API_GROUP_VERSION);
  doc.delete('immutable');
  return true;
}

type Sealer = (key: string, plaintext: string) => string;
type PlainSource = { pair: Pair<Scalar, YAMLMap<Scalar, unknown>>; base64: boolean };

function isNamed(node: unknown, name: string): node is Scalar {
  return isScalar(node) && String(node.value) === name;
}

/** The top-level pair for `name` (keys apiary added itself may be plain strings). */
function rootPair(doc: Document, name: string): Pair | undefined {
  return isMap(doc.contents) ? doc.contents.items.find((p) => p.key === name || isNamed(p.key, name)) : undefined;
}

/** A comment block made of the comments a removed node carried. */
function joinComments(...parts: (string | null | undefined)[]): string | undefined {
  const kept = parts.filter((c): c is string => c !== undefined && c !== null && c !== '');
  return kept.length > 0 ? kept.join('\n') : undefined;
}

/**
 * Moves plain values (all of them, or only key `only`) from stringData/data into
 * encryptedData, sealed, each entry keeping its comments. Without an
 * encryptedData map the first plain map is renamed, so entries stay where they
 * were written; a map emptied by the move goes, handing its comments to the
 * first entry moved out of it. Returns how many values were sealed.
 */
function sealPlainEntries(doc: Document, sealer: Sealer, only?: string): number {
  const root = doc.contents;
  if (!isMap(root)) return 0;
  const sources: PlainSource[] = [];
  for (const pair of root.items) {
    if ((isNamed(pair.key, 'stringData') || isNamed(pair.key, 'data')) && isMap(pair.value)) {
      sources.push({ pair: pair as PlainSource['pair'], base64: isNamed(pair.key, 'data') });
    }
  }
  const wanted = (item: Pair<unknown, unknown>): boolean => isScalar(item.key) && (only === undefined || String(item.key.value) === only);
  const entries = sources.flatMap((source) => source.pair.value!.items.filter(wanted).map((item) => ({ ...source, item })));
  if (entries.length === 0) return 0;
  ensureApiaryApiVersion(doc);

  let target = rootPair(doc, 'encryptedData')?.value;
  if (!isMap(target)) {
    const whole = sources.find((s) => s.pair.value!.items.length > 0 && s.pair.value!.items.every(wanted));
    if (whole !== undefined) {
      whole.pair.key.value = 'encryptedData';
      target = whole.pair.value;
    } else {
      doc.set('encryptedData', doc.createNode({}));
      target = rootPair(doc, 'encryptedData')!.value;
    }
  }
  const into = target as YAMLMap<Scalar, unknown>;
  const firstMoved = new Map<YAMLMap, Pair>();
  for (const { pair, base64, item } of entries) {
    const key = String((item.key as Scalar).value);
    const old = item.value;
    const raw = isScalar(old) ? String(old.value) : '';
    const sealed = new Scalar(sealer(key, base64 ? Buffer.from(raw, 'base64').toString('utf8') : raw));
    if (isScalar(old)) {
      sealed.comment = old.comment;
      sealed.commentBefore = old.commentBefore;
      sealed.spaceBefore = old.spaceBefore;
    }
    item.value = sealed;
    const from = pair.value!;
    if (from === into) continue;
    from.items.splice(from.items.indexOf(item), 1);
    const existing = into.items.find((i) => (i.key as unknown) === key || isNamed(i.key, key));
    if (existing !== undefined) existing.value = sealed;
    else {
      into.items.push(item as Pair<Scalar, unknown>);
      if (!firstMoved.has(from)) firstMoved.set(from, item);
    }
  }
  for (const { pair } of sources) {
    const map = pair.value!;
    if (map === into || map.items.length > 0) continue;
    const heir = firstMoved.get(map)?.key;
    if (isScalar(heir)) heir.commentBefore = joinComments(pair.key.commentBefore, map.commentBefore, map.comment, heir.commentBefore);
    root.items.splice(root.items.indexOf(pair), 1);
  }
  return entries.length;
}

function putSealed(doc: Document, key: string, sealed: string): boolean {
  const converted = doc.get('apiVersion') !== API_GROUP_VERSION;
  if (sealPlainEntries(doc, () => sealed, key) > 0) return converted;
  ensureApiaryApiVersion(doc);
  if (!isMap(doc.get('encryptedData', true))) doc.set('encryptedData', doc.createNode({}));
  doc.setIn(['encryptedData', key], sealed);
  return converted;
}

export interface SetResult {
  file: string;
  created: boolean;
  converted: boolean;
}

export async function setSecretValue(dir: string, name: string, key: string, value: SecretValue, sealer: ValueSealer): Promise<SetResult> {
  const sealed = await sealer.seal(name, key, value);
  return withDirectoryLock(dir, async () => setSecretValuesLoaded(await loadDirectory(dir), dir, name, new Map([[key, sealed]])));
}

/**
 * Puts sealed values (key -> sealed) into secret `name`, with the directory
 * lock already held and the directory as `loaded` read under it: the
 * existing document edited key by key, or one new document holding them all.
 */
export async function setSecretValuesLoaded(loaded: Pick<LoadResult, 'documents'>, dir: string, name: string, values: ReadonlyMap<string, string>): Promise<SetResult> {
  const existing = secretDocument(loaded, name);
  if (existing === undefined) {
    const path = await freshFile(dir, `secret-${name}`);
    const text = stringify({
      apiVersion: API_GROUP_VERSION,
      kind: 'Secret',
      metadata: { name },
      encryptedData: Object.fromEntries(values),
    });
    await writeFileAtomic(path, `# Created by apiary secret set. Values are sealed (for this machine's key, or the recipients file's members): safe to commit.\n${text}`, MANIFEST_WRITE);
    return { file: path, created: true, converted: false };
  }
  requireEditable(existing);
  let converted = false;
  for (const [key, sealed] of values) {
    if (await setSealedLine(existing, key, sealed)) continue;
    await editDocumentInFile(existing.source.path, existing.source.index, (doc) => {
      converted = putSealed(doc, key, sealed) || converted;
    });
  }
  return { file: existing.source.path, created: false, converted };
}

/**
 * The common case (an apiary Secret that already has a block encryptedData map
 * and holds this key nowhere else) edits one line, so the document keeps its
 * layout and comments exactly. Returns false when the general path is needed.
 */
async function setSealedLine(doc: ParsedDocument, key: string, sealed: string): Promise<boolean> {
  const manifest = doc.resource?.kind === 'Secret' ? doc.resource.manifest : undefined;
  if (manifest === undefined || !('encryptedData' in manifest) || manifest.encryptedData === undefined) return false;
  if (manifest.stringData?.[key] !== undefined || manifest.data?.[key] !== undefined) return false;
  return editBlockMapLine(doc.source.path, doc.source.index, ['encryptedData'], key, sealed);
}

export interface DeleteResult {
  file: string;
  removed: 'secret' | 'key';
  fileDeleted: boolean;
}

export async function deleteSecret(dir: string, name: string, key?: string): Promise<DeleteResult> {
  return withDirectoryLock(dir, async () => deleteSecretLoaded(await loadDirectory(dir), dir, name, key));
}

/** deleteSecret with the directory lock held and the directory as `loaded` read under it. */
export async function deleteSecretLoaded(loaded: Pick<LoadResult, 'documents'>, dir: string, name: string, key?: string): Promise<DeleteResult> {
  const existing = secretDocument(loaded, name);
  if (existing === undefined) throw new ApiaryError('SecretNotFound', `secret "${name}" not found in ${dir}`);
  requireEditable(existing);
  let found = key === undefined;
  const outcome = await editDocumentInFile(existing.source.path, existing.source.index, (doc) => {
    if (key === undefined) return 'delete';
    for (const map of ['encryptedData', 'stringData', 'data']) {
      if (doc.hasIn([map, key])) {
        doc.deleteIn([map, key]);
        found = true;
      }
    }
    return found ? undefined : 'keep';
  });
  if (!found) throw new ApiaryError('SecretKeyNotFound', `secret "${name}" has no key "${key}"`);
  return { file: existing.source.path, removed: key === undefined ? 'secret' : 'key', fileDeleted: outcome === 'deleted' };
}

/**
 * Seals every stringData/data value of every Secret in `path` (of only the
 * Secret named `only`, if given: the console's Seal button), in place.
 * Returns how many values were sealed.
 */
export async function sealFile(path: string, sealer: ValueSealer, lockDir: string, only?: string): Promise<number> {
  return withDirectoryLock(lockDir, async () => {
    let text = await readFile(path, 'utf8');
    const docs = parseManifestText(text, path, path);
    const syntax = docs.flatMap((d) => d.errors).find((e) => e.message.startsWith('YAML'));
    if (syntax !== undefined) throw new ApiaryError('ManifestInvalid', `${formatManifestError(syntax)}; nothing was sealed`);
    // Sealing what does not validate could seal the wrong thing (a value that is not a string, a key in two maps).
    const invalid = docs.find((d) => d.kind === 'Secret' && d.errors.length > 0)?.errors[0];
    if (invalid !== undefined) throw new ApiaryError('ManifestInvalid', `${formatManifestError(invalid)}; nothing was sealed`);
    let count = 0;
    for (const parsed of docs) {
      if (parsed.kind !== 'Secret' || parsed.name === undefined || (only !== undefined && parsed.name !== only)) continue;
      const name = parsed.name;
      // Sealing may be asynchronous (age): first what to seal, then the edit with the sealed values.
      const plain = new Map<string, string>();
      editDocumentText(text, parsed.source.index, (doc) => {
        sealPlainEntries(doc, (key, plaintext) => (plain.set(key, plaintext), ''));
        return 'keep';
      });
      if (plain.size === 0) continue;
      const sealedValues = new Map<string, string>();
      for (const [key, plaintext] of plain) sealedValues.set(key, await sealer.seal(name, key, plaintext));
      const next = editDocumentText(text, parsed.source.index, (doc) => {
        const sealed = sealPlainEntries(doc, (key) => sealedValues.get(key)!);
        count += sealed;
        return sealed === 0 ? 'keep' : undefined;
      });
      if (next !== null) text = next;
    }
    if (count > 0) await writeFileAtomic(path, text, MANIFEST_WRITE);
    return count;
  });
}
