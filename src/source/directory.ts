/**
 * A directory that declares a GitRepository is a source directory: the
 * manifests that run are the repository's, and the directory holds only the
 * GitRepository that names it. These read one and say what is wrong with it.
 */
import { lstat, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { stringify } from 'yaml';
import { API_GROUP_VERSION } from '../api/names.js';
import { ApiaryError } from '../errors.js';
import { parseManifestText, type ParsedDocument } from '../manifests/parse.js';
import { FLAG_SOURCE_FILE, StateLayout } from '../state/layout.js';
import { ensurePrivateDir, writeFileAtomic } from '../util/atomic.js';
import { redactUrl } from '../util/redact-url.js';
import { refFromFlag } from './spec.js';
import { formatManifestError } from '../manifests/errors.js';
import { listManifestFiles, loadDirectory, type LoadResult } from '../manifests/loader.js';
import type { GitRepositoryResource } from '../manifests/resource.js';

export interface SourceDirectory {
  /** The one valid GitRepository, if the directory has exactly one and nothing else is wrong. */
  resource?: GitRepositoryResource;
  /** Every document that declares a GitRepository (valid or not). */
  declared: number;
  /** What keeps the directory from being followed, `file:line:col: message` each. */
  errors: string[];
  /** Every document the directory holds (what readers show beside the repository's); none read when no file names a GitRepository. */
  documents: readonly ParsedDocument[];
}

/** Reads a directory as a source directory. A plain one (no file so much as names a GitRepository: the usual case for up and every writer) is read, not parsed. */
export async function readSourceDirectory(dir: string, display: string = relative(process.cwd(), dir) || '.', read?: LoadResult): Promise<SourceDirectory> {
  if (read === undefined && !(await mentionsGitRepository(dir))) return { declared: 0, errors: [], documents: [] };
  const loaded = read ?? (await loadDirectory(dir, display));
  const sources = loaded.documents.filter((d) => d.kind === 'GitRepository');
  if (sources.length === 0) return { declared: 0, errors: [], documents: loaded.documents };
  const errors: string[] = [];
  for (const doc of sources) errors.push(...doc.errors.map(formatManifestError));
  if (sources.length > 1) {
    errors.push(`${sources[1]!.source.file}:${sources[1]!.source.line}:${sources[1]!.source.col}: a directory follows one GitRepository; this is the second (the first is at ${sources[0]!.source.file}:${sources[0]!.source.line})`);
  }
  for (const doc of loaded.documents) {
    if (doc.kind === 'GitRepository') continue;
    errors.push(`${doc.source.file}:${doc.source.line}:${doc.source.col}: ${doc.kind ?? 'this document'}${doc.name !== undefined ? ` "${doc.name}"` : ''} cannot sit beside a GitRepository: the manifests that run are the repository's; commit it there`);
  }
  const resource = sources.length === 1 && errors.length === 0 ? sources[0]!.resource : undefined;
  return { ...(resource?.kind === 'GitRepository' ? { resource } : {}), declared: sources.length, errors, documents: loaded.documents };
}

/**
 * A directory that follows a git repository is not written to: what runs is
 * the repository's, and a change made here would be undone by nothing and
 * applied by nothing. The way is a commit (or a clone, with --dir). Every
 * front door calls it before a write to the manifest directory (the file
 * edits themselves know no git); a GitRepository's own suspend is the one
 * write that skips it. A writer that has read the directory under its lock
 * passes that read (`loaded`), so the check reads nothing again.
 */
export async function refuseGitSourced(dir: string, loaded?: LoadResult): Promise<void> {
  const source = await readSourceDirectory(dir, undefined, loaded).catch(() => undefined);
  if (source === undefined || source.declared === 0) return;
  const spec = source.resource?.manifest.spec;
  const what = spec !== undefined ? `git repository ${redactUrl(spec.url)} (GitRepository "${source.resource!.name}")` : 'a git repository (a GitRepository is declared in it)';
  throw new ApiaryError('GitSourced', `${dir} follows ${what}: the manifests that run are the repository's, so nothing is written here`, {
    hints: [
      'Commit the change to the repository instead; apiary applies it within spec.interval, or at once with: apiary reconcile source',
      'Or write to a local clone of the repository: apiary --dir CLONE ... (then commit and push)',
    ],
  });
}

export interface GitFlags {
  url: string;
  ref?: string | undefined;
  path?: string | undefined;
  interval?: string | undefined;
}

export const FLAG_SOURCE_NAME = 'origin';

/**
 * `up --git URL [--ref] [--path] [--interval]` as a GitRepository manifest in
 * the state directory's source folder: one shape for both ways of asking, so
 * the controller, `get`, `suspend source` read the same thing. A suspend set
 * earlier survives a restart with the same flags.
 */
export async function writeFlagSource(dir: string, flags: GitFlags): Promise<GitRepositoryResource> {
  const earlier = await readSourceDirectory(dir).catch(() => undefined);
  const spec: Record<string, unknown> = { url: flags.url };
  if (flags.ref !== undefined) spec['ref'] = refFromFlag(flags.ref);
  if (flags.path !== undefined && flags.path !== '' && flags.path !== '.') spec['path'] = flags.path;
  if (flags.interval !== undefined) spec['interval'] = flags.interval;
  if (earlier?.resource?.manifest.spec.suspend === true && earlier.resource.manifest.spec.url === flags.url) spec['suspend'] = true;
  const manifest = { apiVersion: API_GROUP_VERSION, kind: 'GitRepository', metadata: { name: FLAG_SOURCE_NAME }, spec };
  const text = `# Written by apiary up --git; apiary suspend source / resume source edit it.\n${stringify(manifest)}`;
  const docs = parseManifestText(text, join(dir, FLAG_SOURCE_FILE), '--git');
  const problems = docs.flatMap((d) => d.errors.map((e) => e.message));
  if (problems.length > 0 || docs[0]?.resource?.kind !== 'GitRepository') {
    throw new ApiaryError('Usage', `--git/--ref/--path/--interval: ${problems.join('; ').replace(/\bspec\./g, '') || 'invalid'}`);
  }
  await ensurePrivateDir(dir);
  await writeFileAtomic(join(dir, FLAG_SOURCE_FILE), text);
  return docs[0].resource;
}

/**
 * Where the manifests that run are read from: the directory itself, or, when
 * it follows a git repository, the revision the controller switched to
 * (`<state>/git/current`). What read-only verbs (restart's name check, secret
 * get/list, render, the console's reads) look at. One lstat when the state
 * directory never followed git.
 */
export async function runningManifestDir(dir: string, stateDir: string): Promise<string> {
  const current = new StateLayout(stateDir).gitCurrent;
  if ((await lstat(current).catch(() => undefined))?.isSymbolicLink() !== true) return dir;
  const source = await readSourceDirectory(dir).catch(() => undefined);
  return source !== undefined && source.declared > 0 ? current : dir;
}

/** Does any manifest file in `dir` so much as name a GitRepository? A read without a parse. */
async function mentionsGitRepository(dir: string): Promise<boolean> {
  const files = await listManifestFiles(dir).catch(() => [] as string[]);
  for (const file of files) {
    if ((await readFile(file, 'utf8').catch(() => '')).includes('GitRepository')) return true;
  }
  return false;
}
