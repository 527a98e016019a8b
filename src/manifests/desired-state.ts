/**
 * The desired state: what the manifest directory declares, kept per file so
 * one file event re-reads one file. A file whose read looks torn (YAML syntax
 * errors, or suddenly empty) is reported as unsettled so the source can read
 * it again before acting on it.
 */
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { relative } from 'node:path';
import { isDns1123Label, resourceKey, type ResourceKey } from '../api/names.js';
import { messageOf } from '../errors.js';
import type { ManifestError } from './errors.js';
import { assemble, listManifestFiles, readManifestText, unreadableFile } from './loader.js';
import { parseManifestText } from './parse.js';
import type { ParsedDocument } from './parse.js';
import { referencedSecretNames } from './references.js';
import { canonicalJson, type LockedTool, type ToolsLock } from '../api/tool-lock.js';
import { readToolsLock, toolsLockPath } from './tools-lock.js';
import type { Resource } from './resource.js';
import { mapConcurrent } from '../util/concurrency.js';

export interface DesiredEntry {
  key: ResourceKey;
  /** The valid resource, if the declaration is valid. */
  resource?: Resource;
  /** Errors of the declaration(s), when invalid. */
  errors: ManifestError[];
  /** Following a git repository: the revision this declaration was read from (what its status names as applied). */
  revision?: string;
}

/** What a cheap stat tells of a file: a save in place changes its size or mtime, an atomic one (rename over it) its inode. */
interface FileIdentity {
  mtimeMs: number;
  size: number;
  ino?: number;
}

interface FileEntry extends FileIdentity {
  fingerprint: string;
  /** Hash of the file's text: a re-read of the same text is not parsed again. */
  textHash?: string;
  docs: ParsedDocument[];
}

export interface FileRead {
  path: string;
  /** False when the read may have caught a half-written file. */
  settled: boolean;
  entry?: FileEntry;
}

/** Stats in flight during a scan: enough to keep libuv's four threads busy, few enough not to queue everything else behind them. */
const STAT_CONCURRENCY = 16;

export class DesiredState {
  readonly dir: string;
  readonly #files = new Map<string, FileEntry>();
  /** Files that could not be read at their last read (reported once). */
  readonly #unreadable = new Set<string>();
  #entries = new Map<ResourceKey, DesiredEntry>();
  #documents: readonly ParsedDocument[] = [];
  /** Secret name -> the valid MCPServers that reference it (rebuilt with the entries). */
  #users = new Map<string, string[]>();
  /** tools.lock.yaml as last read whole (a damaged one leaves the pins as they were). */
  #toolsLock: ToolsLock | undefined;
  /** What tools.lock.yaml was (size, mtime, inode) when it was last read: `isStale` compares with it. */
  #toolsLockSeen: FileIdentity | undefined;
  /** The revision the directory was last read whole from (following git), carried by every entry. */
  #revision: string | undefined;

  readonly #onWarning: ((warning: ManifestError) => void) | undefined;
  readonly #onUnnamed: ((error: ManifestError) => void) | undefined;
  /** How a file is named in messages (default: relative to the working directory). */
  #display: (path: string) => string = (path) => relative(process.cwd(), path) || path;

  /**
   * `onWarning` hears each manifest warning, and `onUnnamed` each error of a
   * document that declares no valid resource (so no status can carry it), once,
   * when the file that has it is (re)read with a change.
   */
  constructor(dir: string, onWarning?: (warning: ManifestError) => void, onUnnamed?: (error: ManifestError) => void) {
    this.dir = dir;
    this.#onWarning = onWarning;
    this.#onUnnamed = onUnnamed;
  }

  /** Names files in messages another way: as in the git repository they come from. */
  setDisplay(display: (path: string) => string): void {
    this.#display = display;
  }

  get(key: ResourceKey): DesiredEntry | undefined {
    return this.#entries.get(key);
  }

  keys(): ResourceKey[] {
    return [...this.#entries.keys()];
  }

  /**
   * The revision a key's status names as applied: its entry's, or, for a key
   * no longer declared (being pruned), the revision that no longer declares it.
   */
  revisionOf(key: ResourceKey): string | undefined {
    return this.#entries.get(key)?.revision ?? this.#revision;
  }

  /** The server's entry in tools.lock.yaml, if it has one. */
  toolsLockEntry(server: string): Record<string, LockedTool> | undefined {
    return this.#toolsLock?.servers[server];
  }

  /** Is `path` the directory's tools.lock.yaml (no manifest: read with reloadToolsLock)? */
  isToolsLock(path: string): boolean {
    return path === toolsLockPath(this.dir);
  }

  /**
   * Reads tools.lock.yaml again: the MCPServers whose entry changed are
   * affected. A damaged lock is an error (file:line:col) and the pins stay
   * as they were: a typo must not lift them.
   */
  async reloadToolsLock(): Promise<{ affected: Set<ResourceKey>; error?: string }> {
    let lock: ToolsLock | undefined;
    // Looked at before the read: a write landing after it shows as stale at the next look, never as read.
    this.#toolsLockSeen = identityOf(await stat(toolsLockPath(this.dir)).catch(() => undefined));
    try {
      lock = await readToolsLock(this.dir);
    } catch (err) {
      return { affected: new Set(), error: messageOf(err) };
    }
    const before = this.#toolsLock?.servers ?? {};
    const after = lock?.servers ?? {};
    const affected = new Set<ResourceKey>();
    for (const server of new Set([...Object.keys(before), ...Object.keys(after)])) {
      if (canonicalJson(before[server] ?? null) !== canonicalJson(after[server] ?? null)) affected.add(resourceKey('MCPServer', server));
    }
    this.#toolsLock = lock;
    return { affected };
  }

  /** The valid MCPServers (sorted names) that reference secret `name`. */
  serversUsingSecret(name: string): string[] {
    return this.#users.get(name) ?? [];
  }

  /** Every document read, in file order, with the errors assembling them found (duplicates): what readers compose views from. */
  documents(): readonly ParsedDocument[] {
    return this.#documents;
  }

  resources(): Resource[] {
    return [...this.#entries.values()].flatMap((e) => (e.resource ? [e.resource] : []));
  }

  /** Reads a file without changing the desired state (a file that turns unreadable is reported, once). */
  async read(path: string): Promise<FileRead> {
    const file = this.#display(path);
    let info;
    try {
      info = await stat(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { path, settled: true };
      return this.#keepUnreadable(path, { file, line: 1, col: 1, message: `cannot read: ${messageOf(err)}`, code: 'Unreadable' });
    }
    if (!info.isFile()) return { path, settled: true };
    // The same text as last time (a new git revision re-reads every file): what was parsed then stands.
    const read = await readManifestText(path, file);
    const textHash = 'text' in read ? createHash('sha256').update(read.text).digest('hex') : undefined;
    const previous = this.#files.get(path);
    if (previous !== undefined && textHash !== undefined && textHash === previous.textHash) {
      this.#unreadable.delete(path);
      return { path, settled: true, entry: { ...previous, ...identityOf(info) } };
    }
    const docs = 'text' in read ? parseManifestText(read.text, path, file) : [unreadableFile(path, read.error)];
    const unreadable = docs.length === 1 ? docs[0]!.errors.find((e) => e.code === 'Unreadable') : undefined;
    if (unreadable !== undefined) return this.#keepUnreadable(path, unreadable);
    this.#unreadable.delete(path);
    const text = docs.map((d) => d.text).join('\u0000');
    const fingerprint = createHash('sha256').update(`${info.size}:${text}`).digest('hex');
    // A write in progress shows as a syntax error (or an emptied file); an alias bomb ("YAML error: Excessive
    // alias count") is decided by the whole text, so it is reported at once, not retried as half-written.
    const torn = docs.some((d) => d.errors.some((e) => e.message.startsWith('YAML syntax error'))) || (docs.length === 0 && (this.#files.get(path)?.docs.length ?? 0) > 0);
    return { path, settled: !torn, entry: { fingerprint, ...(textHash !== undefined && !torn ? { textHash } : {}), ...identityOf(info), docs } };
  }

  /**
   * A file that cannot be read (permissions, I/O) says nothing about its
   * resources: what was last read from it stands, as when the whole directory
   * goes missing. Reported once, when it becomes unreadable.
   */
  #keepUnreadable(path: string, error: ManifestError): FileRead {
    if (!this.#unreadable.has(path)) {
      this.#unreadable.add(path);
      this.#onUnnamed?.({ ...error, message: `${error.message}; what was last read from it stays in force` });
    }
    const previous = this.#files.get(path);
    return previous !== undefined ? { path, settled: true, entry: previous } : { path, settled: true };
  }

  /** Applies a read; returns the keys whose declaration may have changed. */
  commit(read: FileRead): Set<ResourceKey> {
    return this.commitAll([read]);
  }

  /** Applies several reads with one rebuild (a full scan of many files stays linear). */
  commitAll(reads: readonly FileRead[]): Set<ResourceKey> {
    const affected = new Set<ResourceKey>();
    let changed = false;
    for (const read of reads) {
      const before = this.#files.get(read.path);
      if (before?.fingerprint === read.entry?.fingerprint) {
        // The same declarations (a save that changed nothing, a touch): what the file is now is remembered, or
        // isStale would call it changed at every look and the watcher would read it again every 150 ms.
        if (before !== undefined && read.entry !== undefined) this.#files.set(read.path, { ...before, mtimeMs: read.entry.mtimeMs, size: read.entry.size, ...(read.entry.ino !== undefined ? { ino: read.entry.ino } : {}) });
        continue;
      }
      changed = true;
      for (const doc of [...(before?.docs ?? []), ...(read.entry?.docs ?? [])]) {
        const key = keyOf(doc);
        if (key !== undefined) affected.add(key);
      }
      if (read.entry === undefined) this.#files.delete(read.path);
      else this.#files.set(read.path, read.entry);
      for (const doc of read.entry?.docs ?? []) {
        for (const warning of doc.warnings) this.#onWarning?.(warning);
        if (keyOf(doc) === undefined) for (const error of doc.errors) this.#onUnnamed?.(error);
      }
    }
    if (!changed) return affected;
    const previous = this.#entries;
    const previousUsers = this.#users;
    this.#rebuild();
    // Conflicts span files: a key whose entry changed anywhere is affected too.
    for (const [key, entry] of this.#entries) if (!affected.has(key) && !sameEntry(previous.get(key), entry)) affected.add(key);
    for (const key of previous.keys()) if (!this.#entries.has(key)) affected.add(key);
    // A secret's status names the servers using it: a server that starts or stops referencing it changes that status.
    for (const secret of changedUsers(previousUsers, this.#users)) affected.add(resourceKey('Secret', secret));
    return affected;
  }

  /** Is the file on disk different from what was last committed (cheap stat check)? */
  async isStale(path: string): Promise<boolean> {
    const info = identityOf(await stat(path).catch(() => undefined));
    const known = this.isToolsLock(path) ? this.#toolsLockSeen : this.#files.get(path);
    if (known === undefined || info === undefined) return known !== undefined || info !== undefined;
    return info.mtimeMs !== known.mtimeMs || info.size !== known.size || (known.ino !== undefined && info.ino !== known.ino);
  }

  /**
   * Is the manifest directory itself there? When it is not (unmounted, moved
   * away mid-checkout), nothing is read and nothing is pruned: losing the whole
   * directory is not a request to stop every server.
   */
  async present(): Promise<boolean> {
    return (await stat(this.dir).catch(() => undefined))?.isDirectory() === true;
  }

  /**
   * Re-reads every changed file; returns affected keys. Used at start and by the periodic resync.
   * `reread`: read every file, not only those whose size or time changed (a
   * new git revision: its files are all new, some with the very same stat).
   * `revision`: the git revision the directory holds now; every entry then
   * carries it (a file the revision did not change was read from it too).
   * Without one, entries keep the revision they had.
   */
  async scan(options: { reread?: boolean; revision?: string | undefined } = {}): Promise<{ affected: Set<ResourceKey>; unsettled: string[]; missing?: true }> {
    if (!(await this.present())) return { affected: new Set(), unsettled: [], missing: true };
    if (options.revision !== undefined) this.#revision = options.revision;
    const unreadableFolders: string[] = [];
    const files = await listManifestFiles(this.dir, (folder) => unreadableFolders.push(`${folder}/`)).catch(() => [] as string[]);
    const affected = new Set<ResourceKey>();
    const unsettled: string[] = [];
    const present = new Set(files);
    for (const path of [...this.#files.keys()]) {
      if (present.has(path)) continue;
      // Below a folder that cannot be listed now: not gone, just not visible; it stays as it was.
      if (unreadableFolders.some((folder) => path.startsWith(folder))) continue;
      files.push(path);
    }
    const reads: FileRead[] = [];
    const stale = options.reread === true ? files.map(() => true) : await mapConcurrent(files, STAT_CONCURRENCY, (path) => this.isStale(path));
    for (const [i, path] of files.entries()) {
      if (!stale[i]) continue;
      const read = await this.read(path);
      if (read.settled) reads.push(read);
      else unsettled.push(path);
    }
    for (const key of this.commitAll(reads)) affected.add(key);
    const pins = await this.reloadToolsLock();
    for (const key of pins.affected) affected.add(key);
    if (pins.error !== undefined) this.#onUnnamed?.({ file: this.#display(toolsLockPath(this.dir)), line: 1, col: 1, message: pins.error });
    // Entries the revision left as they were (no rebuild) come from it as well.
    if (options.revision !== undefined) for (const entry of this.#entries.values()) entry.revision = options.revision;
    return { affected, unsettled };
  }

  #rebuild(): void {
    const docs = [...this.#files.entries()].sort(([a], [b]) => a.localeCompare(b)).flatMap(([, f]) => f.docs);
    const result = assemble(docs, []);
    this.#documents = result.documents;
    const entries = new Map<ResourceKey, DesiredEntry>();
    for (const doc of result.documents) {
      const key = keyOf(doc);
      if (key === undefined) continue;
      const entry: DesiredEntry = entries.get(key) ?? { key, errors: [], ...(this.#revision !== undefined ? { revision: this.#revision } : {}) };
      if (doc.resource !== undefined && doc.errors.length === 0) entry.resource = doc.resource;
      entry.errors.push(...doc.errors);
      entries.set(key, entry);
    }
    const users = new Map<string, string[]>();
    for (const entry of entries.values()) {
      if (entry.errors.length > 0) delete entry.resource;
      if (entry.resource?.kind !== 'MCPServer') continue;
      for (const secret of referencedSecretNames(entry.resource)) users.set(secret, [...(users.get(secret) ?? []), entry.resource.name]);
    }
    for (const list of users.values()) list.sort();
    this.#entries = entries;
    this.#users = users;
  }
}

/**
 * The resource a document declares, if it names one validly. A document whose
 * name is not a DNS-1123 label is reported (its errors say where) but is no
 * resource: it gets no queue key, no status and no file of any kind.
 */
function identityOf(info: Stats): FileIdentity;
function identityOf(info: Stats | undefined): FileIdentity | undefined;
function identityOf(info: Stats | undefined): FileIdentity | undefined {
  return info === undefined ? undefined : { mtimeMs: info.mtimeMs, size: info.size, ino: info.ino };
}

function keyOf(doc: ParsedDocument): ResourceKey | undefined {
  if (doc.kind === undefined || doc.name === undefined || !isDns1123Label(doc.name)) return undefined;
  return resourceKey(doc.kind, doc.name);
}

/** The secrets whose list of users differs between two user maps. */
function changedUsers(before: ReadonlyMap<string, readonly string[]>, after: ReadonlyMap<string, readonly string[]>): string[] {
  const names = new Set([...before.keys(), ...after.keys()]);
  return [...names].filter((name) => (before.get(name) ?? []).join('\n') !== (after.get(name) ?? []).join('\n'));
}

function sameEntry(a: DesiredEntry | undefined, b: DesiredEntry): boolean {
  if (a === undefined) return false;
  // Unchanged files keep their parsed objects: identity is the cheap common case.
  if (a.resource === b.resource && a.errors.length === 0 && b.errors.length === 0) return true;
  return JSON.stringify(a.resource?.manifest) === JSON.stringify(b.resource?.manifest) &&
    JSON.stringify(a.errors) === JSON.stringify(b.errors) &&
    a.resource?.source.path === b.resource?.source.path;
}
