/**
 * The edit-and-apply workflow against the manifest directory: read what the
 * user wants (a file, a folder or stdin), check all of it, then write each
 * document where the directory already declares it, or into a new file named
 * after kind and name. Documents are copied as written, comments included.
 */
import { readFile, stat, utimes } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { kindLower, resourceKey, type Kind, type ResourceKey } from '../api/names.js';
import { ApiaryError } from '../errors.js';
import { MANIFEST_WRITE, writeFileAtomic } from '../util/atomic.js';
import { documentTexts, freshFile, replaceDocumentText, withDirectoryLock } from './edit.js';
import type { ManifestError } from './errors.js';
import { assemble, listManifestFiles, loadDirectory, MAX_MANIFEST_BYTES, readManifestText, tooLarge, unreadableFile, type LoadResult } from './loader.js';
import { parseManifestText, type ParsedDocument } from './parse.js';
import type { Resource } from './resource.js';

export interface InputDocument {
  key: ResourceKey;
  kind: Kind;
  name: string;
  /** The document as the user wrote it. */
  text: string;
  resource: Resource;
  /** Where it came from (a path, or "-" for stdin). */
  origin: string;
  /** The input file is itself inside the manifest directory. */
  inDirectory: boolean;
  path?: string;
}

export interface InputRead {
  documents: InputDocument[];
  errors: ManifestError[];
  warnings: ManifestError[];
}

export function isInside(dir: string, path: string): boolean {
  const rel = relative(dir, path);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
}

/** Reads a file, a folder or stdin ("-"), and checks every document. */
export async function readInput(path: string, dir: string, stdin?: (limitBytes: number) => Promise<string | undefined>): Promise<InputRead> {
  const sources: { text: string; path?: string; display: string }[] = [];
  const parsed: ParsedDocument[] = [];
  if (path === '-') {
    if (stdin === undefined) throw new ApiaryError('Usage', 'no standard input to read');
    // Read no further than the limit: a stream of any size costs at most 1 MiB.
    const text = await stdin(MAX_MANIFEST_BYTES);
    if (text === undefined) parsed.push(unreadableFile('-', { file: '<stdin>', line: 1, col: 1, message: 'input is over 1 MiB; manifests over 1 MiB are not read' }));
    else sources.push({ text, display: '<stdin>' });
  } else {
    const absolute = resolve(path);
    const info = await stat(absolute).catch(() => undefined);
    if (info === undefined) throw new ApiaryError('NotFound', `${path}: no such file or directory`);
    const files = info.isDirectory() ? await listManifestFiles(absolute) : [absolute];
    for (const file of files) {
      const display = info.isDirectory() ? join(path, relative(absolute, file)) : path;
      const read = await readManifestText(file, display);
      if ('error' in read) parsed.push(unreadableFile(file, read.error));
      else sources.push({ text: read.text, path: file, display });
    }
  }
  const texts = new Map<ParsedDocument, string>();
  for (const source of sources) {
    const docs = parseManifestText(source.text, source.path ?? '-', source.display);
    const raw = documentTexts(source.text);
    for (const doc of docs) {
      parsed.push(doc);
      texts.set(doc, raw[doc.source.index] ?? doc.text);
    }
  }
  // Conflicts inside the input are errors too.
  const checked = assemble(parsed, []);
  const documents: InputDocument[] = [];
  for (const doc of checked.documents) {
    if (doc.resource === undefined || doc.errors.length > 0) continue;
    const original = parsed.find((p) => p.source === doc.source)!;
    documents.push({
      key: resourceKey(doc.resource.kind, doc.resource.name),
      kind: doc.resource.kind,
      name: doc.resource.name,
      text: texts.get(original) ?? doc.text,
      resource: doc.resource,
      origin: doc.source.file,
      inDirectory: doc.source.path !== '-' && isInside(dir, doc.source.path),
      ...(doc.source.path !== '-' ? { path: doc.source.path } : {}),
    });
  }
  return { documents, errors: checked.errors, warnings: checked.warnings };
}

export type ApplyAction = 'created' | 'configured' | 'unchanged';

export interface PlannedChange {
  input: InputDocument;
  action: ApplyAction;
  /** The declaring document in the directory, if any. */
  existing?: { path: string; index: number; text: string; resource?: Resource };
}

/** What apply would do, against the directory as it is now. */
export async function planChanges(dir: string, inputs: readonly InputDocument[], loaded?: LoadResult): Promise<PlannedChange[]> {
  const current = loaded ?? (await loadDirectory(dir));
  const changes: PlannedChange[] = [];
  const fileTexts = new Map<string, string[]>();
  for (const input of inputs) {
    const existingDoc = current.documents.find((d) => d.kind === input.kind && d.name === input.name);
    if (existingDoc === undefined) {
      changes.push({ input, action: 'created' });
      continue;
    }
    let texts = fileTexts.get(existingDoc.source.path);
    if (texts === undefined) {
      texts = documentTexts(await readFile(existingDoc.source.path, 'utf8'));
      fileTexts.set(existingDoc.source.path, texts);
    }
    const same = existingDoc.resource !== undefined && existingDoc.errors.length === 0 && JSON.stringify(existingDoc.resource.manifest) === JSON.stringify(input.resource.manifest);
    changes.push({
      input,
      action: input.inDirectory || same ? 'unchanged' : 'configured',
      existing: {
        path: existingDoc.source.path,
        index: existingDoc.source.index,
        text: texts[existingDoc.source.index] ?? existingDoc.text,
        ...(existingDoc.resource ? { resource: existingDoc.resource } : {}),
      },
    });
  }
  return changes;
}

export interface AppliedChange {
  key: ResourceKey;
  kind: Kind;
  name: string;
  action: ApplyAction;
  file: string;
}

/** Plans and writes under the directory lock, so a concurrent writer cannot slip in between. */
export async function apply(dir: string, inputs: readonly InputDocument[]): Promise<AppliedChange[]> {
  return withDirectoryLock(dir, async () => applyLoaded(await loadDirectory(dir), dir, inputs));
}

/** apply with the directory lock held and the directory as `loaded` read under it. */
export async function applyLoaded(loaded: LoadResult, dir: string, inputs: readonly InputDocument[]): Promise<AppliedChange[]> {
  const changes = await planChanges(dir, inputs, loaded);
  const results: AppliedChange[] = [];
  for (const change of changes) {
    const { input } = change;
    let file: string;
    if (change.input.inDirectory && input.path !== undefined) {
      // Already in the directory: nudge the watcher so the controller reconciles it now.
      const now = new Date();
      await utimes(input.path, now, now);
      file = input.path;
    } else if (change.existing === undefined) {
      file = await freshFile(dir, `${kindLower(input.kind)}-${input.name}`);
      await writeFileAtomic(file, input.text.endsWith('\n') ? input.text : `${input.text}\n`, MANIFEST_WRITE);
    } else {
      file = change.existing.path;
      // An unchanged object whose text changed (comments, layout) is still written as the user wrote it.
      if (change.existing.text.trim() !== input.text.trim()) {
        const next = replaceDocumentText(await readFile(file, 'utf8'), change.existing.index, input.text);
        const bytes = Buffer.byteLength(next);
        // Never write a file the loader would then refuse.
        if (bytes > MAX_MANIFEST_BYTES) throw new ApiaryError('ManifestInvalid', `${file}: ${tooLarge(bytes)}: not written`);
        await writeFileAtomic(file, next, MANIFEST_WRITE);
      }
    }
    results.push({ key: input.key, kind: input.kind, name: input.name, action: change.action, file });
  }
  return results;
}
