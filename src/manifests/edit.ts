/**
 * Edits manifest files in place. Only the edited document is re-rendered
 * (through yaml's Document API, which keeps its comments); every other
 * document and comment in the file stays byte for byte as it was. Writes are
 * atomic and serialized per manifest directory with a lock.
 */
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import lockfile from 'proper-lockfile';
import { Parser, parseDocument, type Document } from 'yaml';
import { ApiaryError, messageOf } from '../errors.js';
import { ensureDir, writeFileAtomic } from '../util/atomic.js';

interface Segment {
  text: string;
  isDocument: boolean;
}

/** Splits a file into its documents, keeping the text between them. */
export function splitDocuments(text: string): Segment[] {
  const starts: number[] = [];
  for (const token of new Parser().parse(text)) if (token.type === 'document') starts.push(token.offset);
  const segments: Segment[] = [];
  if (starts.length === 0) return [{ text, isDocument: false }];
  if (starts[0]! > 0) segments.push({ text: text.slice(0, starts[0]), isDocument: false });
  starts.forEach((start, i) => segments.push({ text: text.slice(start, starts[i + 1] ?? text.length), isDocument: true }));
  return segments;
}

export type DocumentEdit = (doc: Document) => 'delete' | 'keep' | void;

/** Applies `edit` to document `index` of a file's text; returns the new text, or null if no document is left. */
export function editDocumentText(text: string, index: number, edit: DocumentEdit): string | null {
  const segments = splitDocuments(text);
  const documents = segments.filter((s) => s.isDocument);
  const target = documents[index];
  if (target === undefined) throw new ApiaryError('Io', `document ${index + 1} not found; the file changed while apiary was editing it`);
  const doc = parseDocument(target.text, { keepSourceTokens: false });
  if (doc.errors.length > 0) {
    throw new ApiaryError('ManifestInvalid', `cannot edit a document with YAML errors: ${doc.errors[0]!.message.split('\n')[0]}`);
  }
  const outcome = edit(doc);
  if (outcome === 'keep') return text;
  if (outcome === 'delete') {
    const remaining = segments.filter((s) => s !== target);
    if (!remaining.some((s) => s.isDocument)) return null;
    return remaining.map((s) => s.text).join('');
  }
  let rendered = doc.toString({ lineWidth: 0 });
  const hadMarker = /^---/.test(target.text);
  if (hadMarker && !rendered.startsWith('---')) rendered = `---\n${rendered}`;
  return segments.map((s) => (s === target ? rendered : s.text)).join('');
}

/** Edits document `index` of `path` in place (caller holds the directory lock). */
export async function editDocumentInFile(path: string, index: number, edit: DocumentEdit): Promise<'written' | 'deleted' | 'unchanged'> {
  const text = await readFile(path, 'utf8');
  const next = editDocumentText(text, index, edit);
  if (next === null) {
    await rm(path);
    return 'deleted';
  }
  if (next === text) return 'unchanged';
  await writeFileAtomic(path, next);
  return 'written';
}

export const LOCK_NAME = '.apiary.lock';

/**
 * Serializes writers of one manifest directory across processes. Finding a
 * declaration and rewriting it is a read-modify-write over many files, so the
 * lock covers the whole directory.
 */
export async function withDirectoryLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  await ensureDir(dir);
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(dir, {
      lockfilePath: join(dir, LOCK_NAME),
      realpath: false,
      stale: 5_000,
      update: 1_000,
      retries: { retries: 400, factor: 1.2, minTimeout: 10, maxTimeout: 100, randomize: true },
    });
  } catch (cause) {
    throw new ApiaryError('Io', `cannot lock ${dir} for writing: ${messageOf(cause)}`, { cause });
  }
  try {
    return await fn();
  } finally {
    await release().catch(() => undefined);
  }
}
