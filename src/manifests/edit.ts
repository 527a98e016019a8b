/**
 * Edits manifest files in place. Only the edited document is re-rendered
 * (through yaml's Document API, which keeps its comments); every other
 * document and comment in the file stays byte for byte as it was. Writes are
 * atomic and serialized per manifest directory with a lock.
 */
import { closeSync, openSync } from 'node:fs';
import { readFile, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { tryLock } from 'fs-native-extensions';
import { manifestLockFile } from '../util/state-home.js';
import { isMap, isScalar, LineCounter, Parser, parseDocument, type Document } from 'yaml';
import { ApiaryError } from '../errors.js';
import { formatManifestError } from './errors.js';
import { pendingPlan } from './transaction.js';
import type { ParsedDocument } from './parse.js';
import { ensureDir, FILE_MODE, MANIFEST_WRITE, sweepTempFiles, writeFileAtomic } from '../util/atomic.js';

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

/** Each document's own text, as written; the first includes any comments above it. */
export function documentTexts(text: string): string[] {
  const segments = splitDocuments(text);
  const texts: string[] = [];
  let prefix = '';
  for (const segment of segments) {
    if (!segment.isDocument) {
      prefix += segment.text;
      continue;
    }
    texts.push(prefix + segment.text);
    prefix = '';
  }
  return texts;
}

/** Replaces document `index` (and, for the first, the comments above it) with `replacement`, as written. */
export function replaceDocumentText(text: string, index: number, replacement: string): string {
  const segments = splitDocuments(text);
  const docPositions = segments.flatMap((s, i) => (s.isDocument ? [i] : []));
  const at = docPositions[index];
  if (at === undefined) throw new ApiaryError('Io', `document ${index + 1} not found; the file changed while apiary was editing it`);
  let next = replacement.endsWith('\n') ? replacement : `${replacement}\n`;
  const target = segments[at]!;
  if (/^---/.test(target.text) && !/^(\s*#.*\n|\s*\n)*---/.test(next)) next = `---\n${next}`;
  const from = index === 0 ? 0 : at;
  return [...segments.slice(0, from), { text: next, isDocument: true }, ...segments.slice(at + 1)].map((s) => s.text).join('');
}

/** Refuses to edit a document whose YAML does not parse (its errors say where). */
export function requireEditable(doc: ParsedDocument): void {
  const syntax = doc.errors.find((e) => e.message.startsWith('YAML'));
  if (syntax !== undefined) throw new ApiaryError('ManifestInvalid', `cannot edit ${doc.source.file}: ${formatManifestError(syntax)}`);
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
  await writeFileAtomic(path, next, MANIFEST_WRITE);
  return 'written';
}

/** How long a writer waits for another one before giving up. */
const LOCK_WAIT_MS = 60_000;

/**
 * Serializes writers of one manifest directory across processes. Finding a
 * declaration and rewriting it is a read-modify-write over many files, so the
 * lock covers the whole directory. It is a kernel lock on an open file: it
 * goes with its holder however the holder ends (Ctrl-C, kill -9), so nobody
 * ever waits on a stale lock, and no signal handler is needed to release it.
 * Whether the directory may be written at all (one that follows git may not)
 * is the caller's to decide: `refuseGitSourced` in source/directory.ts.
 */
export async function withDirectoryLock<T>(dir: string, fn: () => Promise<T>, options: { pendingPlanOk?: boolean } = {}): Promise<T> {
  await ensureDir(dir);
  const fd = await openLockFile(dir);
  try {
    for (let waited = 0, pause = 5; !tryLock(fd); waited += pause, pause = Math.min(pause * 2, 100)) {
      if (waited >= LOCK_WAIT_MS) throw new ApiaryError('Io', `cannot lock ${dir} for writing: another apiary command has held it for ${LOCK_WAIT_MS / 1000} s`);
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
    // A committed rewrite of several files that was interrupted: writing now could be undone by its end.
    const pending = options.pendingPlanOk === true ? undefined : await pendingPlan(dir);
    if (pending !== undefined) {
      throw new ApiaryError('StateInvalid', `an interrupted ${pending} of ${dir} is not finished; nothing was written`, { hints: ['Finish it with: apiary secret reseal (it completes the interrupted run first, and stops there)'] });
    }
    // Writers killed mid-write leave hidden temp files; while we hold the lock none is ours to keep.
    await sweepTempFiles(dir);
    return await fn();
  } finally {
    closeSync(fd); // closing the file drops the lock
  }
}

/**
 * The lock file lives under the user's state home, keyed by the directory; when
 * that cannot be written (a read-only home), a hidden file in the directory
 * itself serves, as a writer can write there anyway.
 */
async function openLockFile(dir: string): Promise<number> {
  const preferred = manifestLockFile(dir);
  try {
    await ensureDir(dirname(preferred));
    return openSync(preferred, 'a', FILE_MODE);
  } catch {
    return openSync(join(dir, LOCK_FALLBACK), 'a', FILE_MODE);
  }
}

const LOCK_FALLBACK = '.apiary.lock';

/** `base.yaml` in `dir`, or `base-2.yaml`, `base-3.yaml`... whichever does not exist yet. */
export async function freshFile(dir: string, base: string): Promise<string> {
  for (let i = 1; ; i++) {
    const path = join(dir, i === 1 ? `${base}.yaml` : `${base}-${i}.yaml`);
    if (!(await stat(path).then(() => true, () => false))) return path;
  }
}

/**
 * Sets `key: value` (or, with undefined, removes the key) in the block
 * mapping at `path` of a document's text by editing only the lines
 * involved, so every comment and the layout stay exactly as written. Returns
 * undefined when the mapping is not a plain block mapping (the caller then
 * falls back to the Document API).
 */
export function setInBlockMap(text: string, path: readonly string[], key: string, value: string | undefined): string | undefined {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc });
  if (doc.errors.length > 0) return undefined;
  const map = doc.getIn(path, true);
  if (!isMap(map) || map.flow === true || map.items.length === 0) return undefined;
  const pair = map.items.find((p) => isScalar(p.key) && String(p.key.value) === key);
  const lineStart = (offset: number): number => text.lastIndexOf('\n', offset - 1) + 1;
  const lineEnd = (offset: number): number => {
    const end = text.indexOf('\n', offset);
    return end === -1 ? text.length : end + 1;
  };
  if (pair !== undefined) {
    const keyNode = pair.key as { range?: [number, number, number] };
    const valueNode = pair.value as { range?: [number, number, number] } | null;
    if (!isScalar(pair.value) || keyNode.range === undefined || valueNode?.range === undefined) return undefined;
    if (value === undefined) return text.slice(0, lineStart(keyNode.range[0])) + text.slice(lineEnd(valueNode.range[1]));
    return text.slice(0, valueNode.range[0]) + value + text.slice(valueNode.range[1]);
  }
  if (value === undefined) return text;
  const firstKey = map.items[0]!.key as { range?: [number, number, number] };
  const last = map.items[map.items.length - 1]!;
  const lastEnd = (last.value as { range?: [number, number, number] } | null)?.range?.[1] ?? (last.key as { range?: [number, number, number] }).range?.[1];
  if (firstKey.range === undefined || lastEnd === undefined) return undefined;
  const indent = ' '.repeat(lc.linePos(firstKey.range[0]).col - 1);
  const at = lineEnd(Math.max(lastEnd - 1, 0));
  const before = text.slice(0, at);
  return `${before}${before.endsWith('\n') ? '' : '\n'}${indent}${key}: ${value}\n${text.slice(at)}`;
}

/**
 * setInBlockMap on document `index` of the file at `path`, written atomically.
 * Returns false (writing nothing) when the mapping is not a plain block mapping.
 */
export async function editBlockMapLine(path: string, index: number, mapPath: readonly string[], key: string, value: string | undefined): Promise<boolean> {
  const text = await readFile(path, 'utf8');
  const docText = documentTexts(text)[index];
  const edited = docText === undefined ? undefined : setInBlockMap(docText, mapPath, key, value);
  if (edited === undefined) return false;
  await writeFileAtomic(path, replaceDocumentText(text, index, edited), MANIFEST_WRITE);
  return true;
}
