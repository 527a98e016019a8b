/**
 * `tools.lock.yaml` at the manifest directory's root (DESIGN.md section 10):
 * the pinned tool definitions, meant for git as a package lock is. Written
 * byte-for-byte the same for the same pins (sorted, no line folding), so a
 * lock that did not change makes no diff; the file it replaces is kept as
 * `tools.lock.yaml.apiary-backup` (a person may have edited it by hand).
 * The loader skips it: it is no manifest.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LineCounter, parseDocument, stringify } from 'yaml';
import * as z from 'zod';
import { API_GROUP_VERSION } from '../api/names.js';
import type { ToolsLock } from '../api/tool-lock.js';
import { ApiaryError, messageOf } from '../errors.js';
import { MANIFEST_WRITE, readTextIfPresent, writeFileAtomic } from '../util/atomic.js';
import { formatPath } from './field-path.js';
import { locate } from './locate.js';
import { TOOLS_LOCK_FILE } from './tools-lock-file.js';

export { TOOLS_LOCK_FILE };
export const TOOLS_LOCK_KIND = 'ToolsLock';

const HEADER = '# Pinned tool definitions, written by `apiary tools lock` and `apiary tools approve`.\n# Commit it: a server whose tools differ from it is ToolsDrifted. The digest decides; the description is for reading.\n';

const LockedTool = z.strictObject({ digest: z.string().regex(/^sha256:[0-9a-f]{64}$/, 'expected sha256:<64 hex digits>'), description: z.string() });
const LockFile = z.strictObject({
  apiVersion: z.literal(API_GROUP_VERSION),
  kind: z.literal(TOOLS_LOCK_KIND),
  servers: z.record(z.string(), z.record(z.string(), LockedTool)).nullish(),
});

export function toolsLockPath(dir: string): string {
  return join(dir, TOOLS_LOCK_FILE);
}

/** The lock as text: the same pins always give the same bytes. */
export function renderToolsLock(lock: ToolsLock): string {
  const sorted = Object.fromEntries(
    Object.keys(lock.servers)
      .sort()
      .map((server) => {
        const tools = lock.servers[server]!;
        return [server, Object.fromEntries(Object.keys(tools).sort().map((tool) => [tool, { digest: tools[tool]!.digest, description: tools[tool]!.description }]))];
      }),
  );
  return HEADER + stringify({ apiVersion: API_GROUP_VERSION, kind: TOOLS_LOCK_KIND, servers: sorted }, { lineWidth: 0, sortMapEntries: false });
}

/** Parses a lock's text; a bad one is an error located to file:line:col. */
export function parseToolsLock(text: string, file: string): ToolsLock {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
  const yamlError = doc.errors[0];
  if (yamlError !== undefined) {
    const { line, col } = lc.linePos(yamlError.pos[0]);
    throw new ApiaryError('ManifestInvalid', `${file}:${line}:${col}: ${yamlError.message.split('\n')[0]}`);
  }
  const parsed = LockFile.safeParse(doc.toJS());
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const at = locate(doc, issue.path, lc, { atKey: issue.code === 'unrecognized_keys' });
    const field = issue.path.length > 0 ? `${formatPath(issue.path)}: ` : '';
    throw new ApiaryError('ManifestInvalid', `${file}:${at.line}:${at.col}: ${field}${issue.message}`, { hints: ['Write it anew with: apiary tools lock'] });
  }
  return { servers: parsed.data.servers ?? {} };
}

/** The directory's lock, or undefined when it has none. */
export async function readToolsLock(dir: string): Promise<ToolsLock | undefined> {
  const path = toolsLockPath(dir);
  const text = await readTextIfPresent(path);
  return text === undefined ? undefined : parseToolsLock(text, path);
}

/**
 * Writes the lock atomically. A previous file with other bytes is kept first
 * as `tools.lock.yaml.apiary-backup` (the last one replaced); an unchanged
 * lock is not written at all. Answers whether it was written and the backup.
 */
export async function writeToolsLock(dir: string, lock: ToolsLock): Promise<{ path: string; written: boolean; backup?: string }> {
  const path = toolsLockPath(dir);
  const text = renderToolsLock(lock);
  const before = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw new ApiaryError('Io', `cannot read ${path}: ${messageOf(err)}`, { cause: err });
  });
  if (before === text) return { path, written: false };
  let backup: string | undefined;
  if (before !== undefined) {
    backup = `${path}.apiary-backup`;
    await writeFileAtomic(backup, before);
  }
  await writeFileAtomic(path, text, MANIFEST_WRITE);
  return { path, written: true, ...(backup !== undefined ? { backup } : {}) };
}
