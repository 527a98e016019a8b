/**
 * Edits of declared resources in the manifest directory: delete documents,
 * set or clear spec.suspend. Each holds the directory lock across its
 * read-modify-write and keeps the rest of the file as it was.
 */
import { kindLower, type Kind } from '../api/names.js';
import { ApiaryError } from '../errors.js';
import { editBlockMapLine, editDocumentInFile, requireEditable, withDirectoryLock } from './edit.js';
import { loadDirectory, type LoadResult } from './loader.js';
import type { ParsedDocument } from './parse.js';

export interface Target {
  kind: Kind;
  name: string;
}

export interface DeletedResource extends Target {
  file: string;
  fileDeleted: boolean;
}

/** Removes the declaring documents; a multi-document file keeps its other documents and comments. */
export async function deleteDocuments(dir: string, targets: readonly Target[], options: { ignoreNotFound?: boolean } = {}): Promise<DeletedResource[]> {
  return withDirectoryLock(dir, async () => deleteDocumentsLoaded(await loadDirectory(dir), dir, targets, options));
}

/** deleteDocuments with the directory lock held and the directory as `loaded` read under it. */
export async function deleteDocumentsLoaded(loaded: Pick<LoadResult, 'documents'>, dir: string, targets: readonly Target[], options: { ignoreNotFound?: boolean } = {}): Promise<DeletedResource[]> {
  const found = targets.map((t) => ({ target: t, doc: loaded.documents.find((d) => d.kind === t.kind && d.name === t.name) }));
  const missing = found.filter((f) => f.doc === undefined).map((f) => `${kindLower(f.target.kind)}/${f.target.name}`);
  if (missing.length > 0 && options.ignoreNotFound !== true) {
    throw new ApiaryError('NotFound', `${missing.join(', ')} not found in ${dir}`);
  }
  const present = found.filter((f): f is { target: Target; doc: ParsedDocument } => f.doc !== undefined);
  for (const { doc } of present) requireEditable(doc);
  // Delete from the last document of each file to the first, so indexes stay valid.
  present.sort((a, b) => a.doc.source.path.localeCompare(b.doc.source.path) || b.doc.source.index - a.doc.source.index);
  const results: DeletedResource[] = [];
  for (const { target, doc } of present) {
    const outcome = await editDocumentInFile(doc.source.path, doc.source.index, () => 'delete');
    results.push({ ...target, file: doc.source.path, fileDeleted: outcome === 'deleted' });
  }
  return results;
}

/** All or nothing: a typo in one name acts on none (restart, suspend, resume from the CLI and the console). */
export async function requireServers(dir: string, names: readonly string[]): Promise<void> {
  const loaded = await loadDirectory(dir);
  const missing = names.find((name) => !loaded.documents.some((d) => d.kind === 'MCPServer' && d.name === name));
  if (missing !== undefined) throw new ApiaryError('NotFound', `mcpserver/${missing} not found in ${dir}`);
}

/**
 * Sets (or, with false, removes) spec.suspend on an MCPServer or a
 * GitRepository, keeping comments and layout. A GitRepository's own manifest
 * may be edited in a directory that follows git: it is local, not the
 * repository's (so the caller refuses such a directory for an MCPServer only).
 */
export async function setSuspend(dir: string, name: string, suspend: boolean, kind: 'MCPServer' | 'GitRepository' = 'MCPServer'): Promise<{ file: string; changed: boolean }> {
  return withDirectoryLock(dir, async () => setSuspendLoaded(await loadDirectory(dir), dir, name, suspend, kind));
}

/** setSuspend with the directory lock held and the directory as `loaded` read under it. */
export async function setSuspendLoaded(loaded: Pick<LoadResult, 'documents'>, dir: string, name: string, suspend: boolean, kind: 'MCPServer' | 'GitRepository' = 'MCPServer'): Promise<{ file: string; changed: boolean }> {
  const doc = loaded.documents.find((d) => d.kind === kind && d.name === name);
  if (doc === undefined) throw new ApiaryError('NotFound', `${kindLower(kind)}/${name} not found in ${dir}`);
  requireEditable(doc);
  const current = (doc.resource?.kind === 'MCPServer' || doc.resource?.kind === 'GitRepository') && doc.resource.manifest.spec.suspend === true;
  if (current === suspend) return { file: doc.source.path, changed: false };
  // Edit only the suspend line, so comments and layout stay as written; fall back to re-rendering the document.
  if (!(await editBlockMapLine(doc.source.path, doc.source.index, ['spec'], 'suspend', suspend ? 'true' : undefined))) {
    await editDocumentInFile(doc.source.path, doc.source.index, (document) => {
      if (suspend) document.setIn(['spec', 'suspend'], true);
      else document.deleteIn(['spec', 'suspend']);
    });
  }
  return { file: doc.source.path, changed: true };
}
