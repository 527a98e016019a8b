/**
 * Writes secrets into the manifest directory: set one sealed value, delete a
 * secret or a key, seal plain values in place. Each operation holds the
 * directory lock across its read-modify-write.
 */
import { readFile } from 'node:fs/promises';
import { isMap, stringify, type Document } from 'yaml';
import { API_GROUP_VERSION } from '../api/names.js';
import { seal, type MasterKey } from '../crypto/seal.js';
import type { SecretValue } from '../crypto/secret-value.js';
import { ApiaryError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic.js';
import { editBlockMapLine, editDocumentInFile, editDocumentText, freshFile, requireEditable, withDirectoryLock } from './edit.js';
import { formatManifestError } from './errors.js';
import { loadDirectory } from './loader.js';
import type { ParsedDocument } from './parse.js';
import { parseManifestText } from './parse.js';

const PLAIN_MAPS = ['stringData', 'data'] as const;

export async function findSecretDocument(dir: string, name: string): Promise<ParsedDocument | undefined> {
  const result = await loadDirectory(dir);
  return result.documents.find((d) => d.kind === 'Secret' && d.name === name);
}

/** Moves a Kubernetes v1 Secret to apiary's apiVersion so it can hold sealed values. */
function ensureApiaryApiVersion(doc: Document): boolean {
  if (doc.get('apiVersion') === API_GROUP_VERSION) return false;
  doc.set('apiVersion', API_GROUP_VERSION);
  doc.delete('immutable');
  return true;
}

function dropEmptyMap(doc: Document, key: string): void {
  const node = doc.get(key, true);
  if (isMap(node) && node.items.length === 0) doc.delete(key);
}

function putSealed(doc: Document, key: string, sealed: string): boolean {
  const converted = ensureApiaryApiVersion(doc);
  for (const map of PLAIN_MAPS) {
    if (doc.hasIn([map, key])) doc.deleteIn([map, key]);
    dropEmptyMap(doc, map);
  }
  if (!isMap(doc.get('encryptedData', true))) doc.set('encryptedData', doc.createNode({}));
  doc.setIn(['encryptedData', key], sealed);
  return converted;
}

export interface SetResult {
  file: string;
  created: boolean;
  converted: boolean;
}

export async function setSecretValue(dir: string, name: string, key: string, value: SecretValue, master: MasterKey): Promise<SetResult> {
  const sealed = seal(master, name, key, value);
  return withDirectoryLock(dir, async () => {
    const existing = await findSecretDocument(dir, name);
    if (existing !== undefined) {
      requireEditable(existing);
      if (await setSealedLine(existing, key, sealed)) return { file: existing.source.path, created: false, converted: false };
      let converted = false;
      await editDocumentInFile(existing.source.path, existing.source.index, (doc) => {
        converted = putSealed(doc, key, sealed);
      });
      return { file: existing.source.path, created: false, converted };
    }
    const path = await freshFile(dir, `secret-${name}`);
    const text = stringify({
      apiVersion: API_GROUP_VERSION,
      kind: 'Secret',
      metadata: { name },
      encryptedData: { [key]: sealed },
    });
    await writeFileAtomic(path, `# Created by apiary secret set. Values are sealed for this machine's key: safe to commit.\n${text}`);
    return { file: path, created: true, converted: false };
  });
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
  return withDirectoryLock(dir, async () => {
    const existing = await findSecretDocument(dir, name);
    if (existing === undefined) throw new ApiaryError('SecretNotFound', `secret "${name}" not found in ${dir}`);
    requireEditable(existing);
    let found = key === undefined;
    const outcome = await editDocumentInFile(existing.source.path, existing.source.index, (doc) => {
      if (key === undefined) return 'delete';
      for (const map of ['encryptedData', ...PLAIN_MAPS]) {
        if (doc.hasIn([map, key])) {
          doc.deleteIn([map, key]);
          found = true;
        }
      }
      return found ? undefined : 'keep';
    });
    if (!found) throw new ApiaryError('SecretKeyNotFound', `secret "${name}" has no key "${key}"`);
    return { file: existing.source.path, removed: key === undefined ? 'secret' : 'key', fileDeleted: outcome === 'deleted' };
  });
}

/** Seals every stringData/data value of every Secret in `path`, in place. Returns how many values were sealed. */
export async function sealFile(path: string, master: MasterKey, lockDir: string): Promise<number> {
  return withDirectoryLock(lockDir, async () => {
    let text = await readFile(path, 'utf8');
    const docs = parseManifestText(text, path, path);
    const syntax = docs.flatMap((d) => d.errors).find((e) => e.message.startsWith('YAML'));
    if (syntax !== undefined) throw new ApiaryError('ManifestInvalid', `cannot seal ${path}: ${formatManifestError(syntax)}`);
    let count = 0;
    for (const parsed of docs) {
      if (parsed.kind !== 'Secret' || parsed.name === undefined) continue;
      const name = parsed.name;
      const next = editDocumentText(text, parsed.source.index, (doc) => {
        const plain = collectPlain(doc);
        if (plain.length === 0) return 'keep';
        for (const [key, value] of plain) putSealed(doc, key, seal(master, name, key, value));
        count += plain.length;
        return undefined;
      });
      if (next !== null) text = next;
    }
    if (count > 0) await writeFileAtomic(path, text);
    return count;
  });
}

function collectPlain(doc: Document): [string, string][] {
  const out: [string, string][] = [];
  const stringData = doc.get('stringData');
  const data = doc.get('data');
  const asObject = (node: unknown): Record<string, unknown> =>
    isMap(node) ? (node.toJSON() as Record<string, unknown>) : {};
  for (const [k, v] of Object.entries(asObject(stringData))) out.push([k, String(v)]);
  for (const [k, v] of Object.entries(asObject(data))) out.push([k, Buffer.from(String(v), 'base64').toString('utf8')]);
  return out;
}
