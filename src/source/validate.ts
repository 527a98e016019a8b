/**
 * A fetched revision's manifests, validated whole before anything of it may
 * run: every file parsed (only those it changed since the last revision
 * validated), assembled, and every problem named as in the repository.
 */
import { createHash } from 'node:crypto';
import { join, relative } from 'node:path';
import { messageOf } from '../errors.js';
import { formatManifestError } from '../manifests/errors.js';
import { assemble, listManifestFiles, readManifestText, unreadableFile } from '../manifests/loader.js';
import { parseManifestText, type ParsedDocument } from '../manifests/parse.js';

/**
 * Parsed files of earlier revisions, by path and content: a new revision
 * parses only the files it changed (the rest are read and hashed). Holds the
 * files of the last revision validated, no more.
 */
export type ParseCache = Map<string, ParsedDocument[]>;

/** Every reason a revision's manifests may not run, `file:line:col: message` each, files named as in the repository. */
export async function validateRevision(dir: string, path: string, cache: ParseCache = new Map()): Promise<string[]> {
  const display = path === '' ? '.' : path;
  let files: string[];
  const unreadable: string[] = [];
  try {
    files = await listManifestFiles(dir, (folder, err) => unreadable.push(`${join(display, relative(dir, folder))}/: cannot read: ${messageOf(err)}`));
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR';
    return [missing ? `path "${path}" is not a folder in this revision (spec.path)` : `cannot read the revision: ${messageOf(err)}`];
  }
  const seen = new Map<string, ParsedDocument[]>();
  const parsed: ParsedDocument[] = [];
  for (const file of files) {
    const shown = join(display, relative(dir, file));
    const read = await readManifestText(file, shown);
    const key = 'text' in read ? `${shown}\0${createHash('sha256').update(read.text).digest('hex')}` : undefined;
    const docs = (key !== undefined ? cache.get(key) : undefined) ?? ('text' in read ? parseManifestText(read.text, file, shown) : [unreadableFile(file, read.error)]);
    if (key !== undefined) seen.set(key, docs);
    parsed.push(...docs);
  }
  cache.clear();
  for (const [key, docs] of seen) cache.set(key, docs);
  const loaded = assemble(parsed, files);
  const problems = [...unreadable, ...loaded.errors.map(formatManifestError)];
  for (const doc of loaded.documents) {
    if (doc.kind === 'GitRepository') {
      problems.push(`${doc.source.file}:${doc.source.line}:${doc.source.col}: a GitRepository is declared in the local directory that follows the repository, not inside the repository`);
    }
  }
  return problems;
}
