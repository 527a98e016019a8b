/**
 * Reads a manifest directory (DESIGN.md section 7): every *.yaml / *.yml
 * below it, hidden files and editor temp files skipped. Returns the valid
 * resources and every error, each located to file:line:col.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { resourceKey, type ResourceKey } from '../api/names.js';
import { messageOf } from '../errors.js';
import { accessWarnings } from './access.js';
import { rateLimitWarnings } from './rate-limits.js';
import type { ManifestError } from './errors.js';
import { parseManifestText, type ParsedDocument } from './parse.js';
import { TOOLS_LOCK_FILE } from './tools-lock-file.js';
import type { Resource } from './resource.js';

export const MAX_MANIFEST_BYTES = 1024 * 1024;

export interface LoadResult {
  resources: Resource[];
  documents: ParsedDocument[];
  errors: ManifestError[];
  warnings: ManifestError[];
  files: string[];
}

const EDITOR_TEMP = [/~$/, /\.sw[a-p]$/, /^#.*#$/, /\.(tmp|bak|orig|rej)$/i];

export function isManifestFileName(name: string): boolean {
  if (name.startsWith('.')) return false;
  if (EDITOR_TEMP.some((re) => re.test(name))) return false;
  return /\.ya?ml$/i.test(name);
}

/**
 * Every manifest file below `dir`, sorted for a stable order. A subfolder
 * that cannot be read is passed to `onUnreadable` (or, without it, skipped);
 * only `dir` itself failing is an error.
 */
export async function listManifestFiles(dir: string, onUnreadable?: (folder: string, err: unknown) => void): Promise<string[]> {
  const out: string[] = [];
  const walk = async (folder: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(folder, { withFileTypes: true });
    } catch (err) {
      if (folder === dir) throw err;
      onUnreadable?.(folder, err);
      return;
    }
    for (const entry of entries) {
      if (entry.name.startsWith('.') || entry.name === 'node_modules') continue;
      // The tool pins at the root are no manifest (src/manifests/tools-lock.ts).
      if (folder === dir && entry.name === TOOLS_LOCK_FILE) continue;
      const full = join(folder, entry.name);
      if (entry.isDirectory()) {
        await walk(full);
      } else if (isManifestFileName(entry.name)) {
        if (entry.isFile()) out.push(full);
        else if (entry.isSymbolicLink() && (await stat(full).catch(() => undefined))?.isFile()) out.push(full);
      }
    }
  };
  await walk(dir);
  return out.sort();
}

/**
 * A manifest file's text, or the error that keeps it from being read: over
 * 1 MiB (checked before reading, so a huge file costs nothing) or not UTF-8.
 * Every reader of manifests (the controller, validate, apply, diff) goes through it.
 */
export async function readManifestText(path: string, file: string): Promise<{ text: string } | { error: ManifestError }> {
  let bytes: Buffer;
  try {
    const info = await stat(path);
    if (info.size > MAX_MANIFEST_BYTES) return { error: { file, line: 1, col: 1, message: tooLarge(info.size) } };
    bytes = await readFile(path);
  } catch (err) {
    return { error: unreadable(file, err) };
  }
  const text = decodeUtf8(bytes);
  if (typeof text !== 'string') return { error: { file, line: text.line, col: 1, message: 'file is not valid UTF-8 text' } };
  return { text };
}

function unreadable(file: string, err: unknown): ManifestError {
  const code = (err as NodeJS.ErrnoException).code;
  const why = code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code === 'ENOENT' ? 'it was removed while being read' : messageOf(err);
  return { file, line: 1, col: 1, message: `cannot read: ${why}`, code: 'Unreadable' };
}

export function tooLarge(bytes: number): string {
  return `file is ${(bytes / 1024 / 1024).toFixed(1)} MiB; manifests over 1 MiB are not read`;
}

/** A document that stands for a whole file that could not be read. */
export function unreadableFile(path: string, error: ManifestError): ParsedDocument {
  return { source: { path, file: error.file, index: 0, line: error.line, col: 1 }, errors: [error], warnings: [], text: '' };
}

/** Reads and parses one file; size and encoding problems come back as errors. */
export async function loadFile(path: string, file: string): Promise<ParsedDocument[]> {
  const read = await readManifestText(path, file);
  if ('error' in read) return [unreadableFile(path, read.error)];
  return parseManifestText(read.text, path, file);
}

function decodeUtf8(bytes: Buffer): string | { line: number } {
  try {
    const text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
    return text;
  } catch {
    return { line: firstInvalidUtf8Line(bytes) };
  }
}

function firstInvalidUtf8Line(bytes: Buffer): number {
  let line = 1;
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    const length = b < 0x80 ? 1 : b >= 0xc2 && b < 0xe0 ? 2 : b >= 0xe0 && b < 0xf0 ? 3 : b >= 0xf0 && b < 0xf5 ? 4 : 0;
    if (length === 0) return line;
    const chunk = bytes.subarray(i, i + length);
    if (chunk.length < length || !Buffer.from(chunk.toString('utf8'), 'utf8').equals(chunk)) return line;
    if (b === 0x0a) line++;
    i += length;
  }
  return line;
}

/**
 * Every document that declares an already-declared (kind, name) pair gets a
 * conflict error, at both places. Returns new objects; the input is not changed.
 */
function withConflicts(documents: readonly ParsedDocument[]): ParsedDocument[] {
  const byKey = new Map<ResourceKey, ParsedDocument[]>();
  for (const doc of documents) {
    if (doc.kind === undefined || doc.name === undefined) continue;
    const key = resourceKey(doc.kind, doc.name);
    byKey.set(key, [...(byKey.get(key) ?? []), doc]);
  }
  return documents.map((doc) => {
    if (doc.kind === undefined || doc.name === undefined) return doc;
    const group = byKey.get(resourceKey(doc.kind, doc.name))!;
    if (group.length < 2) return doc;
    const others = group
      .filter((other) => other !== doc)
      .map((other) => `${other.source.file}:${other.namePosition?.line ?? other.source.line}`);
    const pos = doc.namePosition ?? { line: doc.source.line, col: doc.source.col };
    const conflict: ManifestError = {
      file: doc.source.file,
      line: pos.line,
      col: pos.col,
      message: `metadata.name: ${doc.kind} "${doc.name}" is declared more than once; also at ${others.join(', ')}`,
    };
    const { resource: _dropped, ...rest } = doc;
    return { ...rest, errors: [...doc.errors, conflict] };
  });
}

let directoryLoads = 0;

/**
 * How many times this process has read and parsed a whole directory: a
 * write should read it once (tests and the console bench count with it).
 */
export function directoryLoadCount(): number {
  return directoryLoads;
}

/**
 * Loads a directory. `displayRoot` is how the directory is shown in error
 * messages (defaults to the path given).
 */
export async function loadDirectory(dir: string, displayRoot: string = dir): Promise<LoadResult> {
  directoryLoads++;
  const documents: ParsedDocument[] = [];
  const files = await listManifestFiles(dir, (folder, err) => {
    documents.push(unreadableFile(folder, unreadable(`${join(displayRoot, relative(dir, folder))}/`, err)));
  });
  for (const path of files) {
    documents.push(...(await loadFile(path, join(displayRoot, relative(dir, path)))));
  }
  return assemble(documents, files);
}

export function assemble(parsed: readonly ParsedDocument[], files: string[]): LoadResult {
  const documents = withConflicts(parsed);
  const resources: Resource[] = [];
  const errors: ManifestError[] = [];
  const warnings: ManifestError[] = [];
  for (const doc of documents) {
    if (doc.resource !== undefined) resources.push(doc.resource);
    errors.push(...doc.errors);
    warnings.push(...doc.warnings);
  }
  errors.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.col - b.col);
  warnings.push(...accessWarnings(resources), ...rateLimitWarnings(resources));
  return { resources, documents, errors, warnings, files };
}
